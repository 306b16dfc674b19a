"""OpenSSL: shared libraries in ``<prefix>/lib`` (never lib64), an rpath for its own tools, no docs."""

from __future__ import annotations

from buildkit.pybuild.recipe import Action, Command, Context, Recipe


class OpenSSL(Recipe):
    package = "openssl"

    def configure(self, ctx: Context) -> list[Command]:
        return [
            Command.of(
                "./config",
                f"--prefix={ctx.prefix}",
                f"--openssldir={ctx.prefix}/ssl",
                # OpenSSL 3 installs into lib64/ on x86_64 otherwise, and CPython then links the system
                # libssl while compiling against these headers.
                "--libdir=lib",
                "shared",
                "no-tests",
                # The shared build sets no rpath: without it bin/openssl loads the system libcrypto. A
                # DT_RPATH (not DT_RUNPATH): libssl then finds its libcrypto whatever LD_LIBRARY_PATH says.
                "-Wl,-rpath,$(LIBRPATH)",
                "-Wl,--disable-new-dtags",
            )
        ]

    def install(self, ctx: Context) -> list[Command]:
        return [Command.of("make", "install_sw")]  # install (docs included) costs about a minute more

    def post(self, ctx: Context) -> list[Action | Command]:
        # install_sw creates no openssldir, so there is no CA store: point it at the host's.
        return [Action("link-ca-store", (f"{ctx.prefix}/ssl", ctx.ca_file, ctx.ca_dir))]

    def smoke(self, ctx: Context) -> list[Command]:
        return [Command.of(f"{ctx.prefix}/bin/openssl", "version", cwd="/")]
