"""The ``buildkit`` command line (:mod:`buildkit.cli.root` has the click group).

``main`` is the console script. ``buildkit symvers check`` (run by build scripts after every ``make``)
takes a path that imports no click (:mod:`buildkit.cli.checkrun`) when its arguments are plain; anything
else (``--help``, a misspelt option) goes through click, which gives the usual help and errors.
"""

from __future__ import annotations

import io
import sys

__all__ = ["cli", "main"]


def main() -> None:
    # A file name that is not UTF-8 (Linux allows any bytes) is written back as the bytes it is, as ls and
    # cat do, in results and in error lines alike; not as Python's \udcXX escapes, nor as a traceback.
    for stream in (sys.stdout, sys.stderr):
        if not isinstance(stream, io.TextIOWrapper):  # not a text stream of io's (a test's capture)
            continue
        try:
            stream.reconfigure(errors="surrogateescape")
        except ValueError:
            pass
    argv = sys.argv[1:]
    if argv[:2] == ["symvers", "check"]:
        from buildkit.cli.checkrun import fast_main

        code = fast_main(argv[2:])
        if code is not None:
            sys.exit(code)
    from buildkit.cli.root import run

    run()


def __getattr__(name: str):
    if name in ("cli", "COMMANDS"):
        from buildkit.cli import root

        return getattr(root, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
