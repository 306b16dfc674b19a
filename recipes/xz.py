"""XZ Utils' liblzma, static and position-independent, for the lzma module (no tools, docs or NLS)."""

from __future__ import annotations

from buildkit.pybuild.recipe import Command, Context, Recipe


class Xz(Recipe):
    package = "xz"

    def configure(self, ctx: Context) -> list[Command]:
        return [Command.of("./configure", f"--prefix={ctx.prefix}", "--disable-shared", "--enable-static",
                           "--disable-xz", "--disable-xzdec", "--disable-lzmadec", "--disable-lzmainfo",
                           "--disable-lzma-links", "--disable-scripts", "--disable-doc", "--disable-nls",
                           env=ctx.env())]

    def smoke(self, ctx: Context) -> list[Command]:
        return [Command.of("test", "-e", f"{ctx.prefix}/lib/liblzma.a", cwd="/")]
