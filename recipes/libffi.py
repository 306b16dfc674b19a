"""libffi, static and position-independent, for ctypes. Installed into lib/ (not lib64/ on x86_64)."""

from __future__ import annotations

from buildkit.pybuild.recipe import Command, Context, Recipe


class Libffi(Recipe):
    package = "libffi"

    def configure(self, ctx: Context) -> list[Command]:
        return [Command.of("./configure", f"--prefix={ctx.prefix}", "--disable-shared", "--enable-static",
                           "--disable-docs", "--disable-multi-os-directory", env=ctx.env())]

    def smoke(self, ctx: Context) -> list[Command]:
        return [Command.of("test", "-e", f"{ctx.prefix}/lib/libffi.a", cwd="/")]
