"""ncurses (wide-character), static, for a portable build's curses and readline modules. No programs, no
terminfo database: the tree reads the host's (the usual folders of Debian, RHEL and SUSE are compiled in)."""

from __future__ import annotations

from buildkit.pybuild.recipe import Command, Context, Recipe

TERMINFO_DIRS = "/etc/terminfo:/lib/terminfo:/usr/share/terminfo:/usr/lib/terminfo"


class Ncurses(Recipe):
    package = "ncurses"

    def configure(self, ctx: Context) -> list[Command]:
        return [Command.of("./configure", f"--prefix={ctx.prefix}", "--without-shared", "--with-normal",
                           "--without-debug", "--without-ada", "--without-cxx", "--without-cxx-binding",
                           "--without-manpages", "--without-progs", "--without-tests", "--enable-widec",
                           "--enable-pc-files", f"--with-pkg-config-libdir={ctx.prefix}/lib/pkgconfig",
                           "--with-default-terminfo-dir=/usr/share/terminfo", f"--with-terminfo-dirs={TERMINFO_DIRS}",
                           "--disable-db-install", env=ctx.env())]

    def smoke(self, ctx: Context) -> list[Command]:
        return [Command.of("test", "-e", f"{ctx.prefix}/lib/libncursesw.a", cwd="/")]
