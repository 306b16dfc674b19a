"""SQLite: the autoconf amalgamation, or the full source tree (which needs tclsh to make sqlite3.c)."""

from __future__ import annotations

from buildkit.pybuild.recipe import Command, Context, Recipe

# What CPython's sqlite3 module and Django use beyond the defaults.
CFLAGS = "-O2 -DSQLITE_ENABLE_COLUMN_METADATA -DSQLITE_ENABLE_FTS5 -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_MATH_FUNCTIONS"


class SQLite(Recipe):
    package = "sqlite"

    def configure(self, ctx: Context) -> list[Command]:
        args = ["./configure", f"--prefix={ctx.prefix}", "--disable-static"]
        if ctx.source.kind == "full":
            # Without --disable-tcl, 'make install' puts the Tcl extension into the system's Tcl tree.
            args.append("--disable-tcl")
        return [Command.of(*args, env={"CFLAGS": CFLAGS})]

    def smoke(self, ctx: Context) -> list[Command]:
        return [Command.of("test", "-e", f"{ctx.prefix}/lib/libsqlite3.so", cwd="/")]
