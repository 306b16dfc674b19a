"""CPython against private (or system) OpenSSL and SQLite, runnable without LD_LIBRARY_PATH and unmoved by one."""

from __future__ import annotations

from buildkit.pybuild.recipe import Action, Command, Context, Recipe


class CPython(Recipe):
    package = "cpython"
    depends = ("openssl", "sqlite")

    def configure(self, ctx: Context) -> list[Command]:
        args = ["./configure", f"--prefix={ctx.prefix}", "--with-ensurepip=install"]
        env: dict[str, str] = {}
        ldflags: list[str] = []
        openssl = ctx.deps.get("openssl", "")
        if openssl:
            args.append(f"--with-openssl={openssl}")
            # Not --with-openssl-rpath=auto: 3.10/3.11's setup.py hands it to distutils as
            # runtime_library_dirs, which links with -Wl,--enable-new-dtags: a DT_RUNPATH again.
            ldflags.append(f"-Wl,-rpath,{openssl}/lib")
        sqlite = ctx.deps.get("sqlite", "")
        if sqlite:
            rpath = f"-Wl,-rpath,{sqlite}/lib"
            if ctx.at_least("3.11"):
                # Explicit variables win over pkg-config, which would find the system's sqlite3.pc.
                env["LIBSQLITE3_CFLAGS"] = f"-I{sqlite}/include"
                env["LIBSQLITE3_LIBS"] = f"-L{sqlite}/lib {rpath} -lsqlite3"
            else:
                env["CPPFLAGS"] = f"-I{sqlite}/include"
                ldflags += [f"-L{sqlite}/lib", rpath]
            env["PKG_CONFIG_PATH"] = f"{sqlite}/lib/pkgconfig"
        if openssl or sqlite:
            # DT_RPATH, not DT_RUNPATH: the private libraries win over an LD_LIBRARY_PATH naming the system's.
            ldflags.insert(0, "-Wl,--disable-new-dtags")
        if ldflags:
            env["LDFLAGS"] = " ".join(ldflags)
        return [Command.of(*args, env=env)]

    def build(self, ctx: Context) -> list[Command]:
        return [Command.of("make", f"-j{ctx.jobs}")]

    def post(self, ctx: Context) -> list[Action | Command]:
        # make exits 0 when _ssl could not be built: only its summary says so.
        return [Action("check-modules", ("_ssl", "_hashlib", "_sqlite3"))]

    def smoke(self, ctx: Context) -> list[Command]:
        return [Command.of(f"{ctx.prefix}/bin/python3", "-c", "import ssl, sqlite3", cwd="/")]
