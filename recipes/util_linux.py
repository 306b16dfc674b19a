"""util-linux's libuuid alone (no programs), static, for a portable build's _uuid module."""

from __future__ import annotations

from buildkit.pybuild.recipe import Command, Context, Recipe


class UtilLinux(Recipe):
    package = "util-linux"

    def configure(self, ctx: Context) -> list[Command]:
        return [Command.of("./configure", f"--prefix={ctx.prefix}", "--disable-all-programs", "--enable-libuuid",
                           "--disable-shared", "--enable-static", "--without-python", "--without-systemd",
                           "--without-udev", "--without-tinfo", "--without-ncurses", "--without-ncursesw",
                           "--without-readline", "--without-selinux", "--without-audit", "--without-cap-ng",
                           "--without-btrfs", "--without-smack", "--without-libmagic", "--disable-nls",
                           "--disable-bash-completion", "--disable-asciidoc", "--disable-makeinstall-chown",
                           "--disable-makeinstall-setuid", "--disable-pylibmount", env=ctx.env())]

    def smoke(self, ctx: Context) -> list[Command]:
        return [Command.of("test", "-e", f"{ctx.prefix}/lib/libuuid.a", cwd="/")]
