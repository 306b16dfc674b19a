"""bzip2's libbz2, static and position-independent. Its Makefile has no configure and no .pc file: the
compiler and flags are make variables, and CPython is told where it is (BZIP2_CFLAGS/BZIP2_LIBS)."""

from __future__ import annotations

from buildkit.pybuild.recipe import Command, Context, Recipe


class Bzip2(Recipe):
    package = "bzip2"

    def _vars(self, ctx: Context) -> list[str]:
        env = ctx.env({"CFLAGS": "-D_FILE_OFFSET_BITS=64"})
        return [f"CC={env.get('CC', 'cc')}", f"CFLAGS={env.get('CFLAGS', '-O2')}", f"PREFIX={ctx.prefix}"]

    def configure(self, ctx: Context) -> list[Command]:
        return []

    def build(self, ctx: Context) -> list[Command]:
        return [Command.of("make", f"-j{ctx.jobs}", "libbz2.a", "bzip2", "bzip2recover", *self._vars(ctx))]

    def install(self, ctx: Context) -> list[Command]:
        return [Command.of("make", "install", *self._vars(ctx))]

    def smoke(self, ctx: Context) -> list[Command]:
        return [Command.of("test", "-e", f"{ctx.prefix}/lib/libbz2.a", cwd="/")]
