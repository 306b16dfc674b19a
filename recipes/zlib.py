"""zlib, static and position-independent, for a portable build's zlib module (and pip, which needs it)."""

from __future__ import annotations

from buildkit.pybuild.recipe import Command, Context, Recipe


class Zlib(Recipe):
    package = "zlib"

    def configure(self, ctx: Context) -> list[Command]:
        return [Command.of("./configure", f"--prefix={ctx.prefix}", "--static", env=ctx.env())]

    def build(self, ctx: Context) -> list[Command]:
        return [Command.of("make", f"-j{ctx.jobs}", "libz.a", env=ctx.env())]

    def smoke(self, ctx: Context) -> list[Command]:
        return [Command.of("test", "-e", f"{ctx.prefix}/lib/libz.a", cwd="/")]
