"""GNU readline, static, on the build's own ncurses, for a portable build's readline module."""

from __future__ import annotations

from buildkit.pybuild.recipe import Command, Context, Recipe


class Readline(Recipe):
    package = "readline"
    depends = ("ncurses",)

    def configure(self, ctx: Context) -> list[Command]:
        return [Command.of("./configure", f"--prefix={ctx.prefix}", "--disable-shared", "--enable-static",
                           "--with-curses", "--disable-install-examples", env=ctx.env())]

    def smoke(self, ctx: Context) -> list[Command]:
        return [Command.of("test", "-e", f"{ctx.prefix}/lib/libreadline.a", cwd="/")]
