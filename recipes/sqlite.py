"""SQLite: the autoconf amalgamation, or the full source tree (which needs tclsh to make sqlite3.c)."""

from __future__ import annotations

from buildkit.pybuild.recipe import Command, Context, Recipe

# What CPython's sqlite3 module and Django use beyond the defaults.
CFLAGS = "-O2 -DSQLITE_ENABLE_COLUMN_METADATA -DSQLITE_ENABLE_FTS5 -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_MATH_FUNCTIONS"


class SQLite(Recipe):
    package = "sqlite"

    def configure(self, ctx: Context) -> list[Command]:
        args = ["./configure", f"--prefix={ctx.prefix}"]
        if ctx.portable:  # static, for _sqlite3; no shell, so no readline of the host
            args += ["--disable-shared", "--enable-static", "--disable-readline", "--disable-editline"]
        else:
            args.append("--disable-static")
        if ctx.source.kind == "full":
            # Without --disable-tcl, 'make install' puts the Tcl extension into the system's Tcl tree.
            args.append("--disable-tcl")
        return [Command.of(*args, env=ctx.env({"CFLAGS": CFLAGS}))]

    def smoke(self, ctx: Context) -> list[Command]:
        library = "libsqlite3.a" if ctx.portable else "libsqlite3.so"
        return [Command.of("test", "-e", f"{ctx.prefix}/lib/{library}", cwd="/")]
