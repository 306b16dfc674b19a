"""The part of the command line that needs no click: printing results, one-line errors, kbuild-style
``KEY=VALUE`` arguments. :mod:`buildkit.cli.output` re-exports all of it; the fast path of
``buildkit symvers check`` (:mod:`buildkit.cli.checkrun`) uses it without importing click at all.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from buildkit.errors import InputError


def echo(line: str = "", *, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(line + "\n")


def error(message: object) -> None:
    echo(f"buildkit: error: {message}", err=True)


def print_json(data: Any) -> None:
    import json

    echo(json.dumps(data, indent=2, sort_keys=False))


def print_module_reports(reports: Iterable[Any]) -> None:
    """A module a line, its problems below it with their fixes (symvers check, ci symvers)."""
    for r in reports:
        status = "ok" if not r.problems else f"{len(r.problems)} problem(s)"
        deps = ", ".join(r.depends) or "-"
        echo(f"{r.name}: {status}  ({r.path}; depends: {deps})")
        for p in r.problems:
            echo(f"  {p.kind}: {p.message}")
            echo(f"    fix: {p.fix}")


def parse_kbuild_args(args: tuple[str, ...], allowed: tuple[str, ...]) -> dict[str, str]:
    """``KEY=VALUE`` arguments in kbuild's style (``M=drivers/foo KERNELDIR=...``)."""
    found: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key not in allowed:
            raise InputError(
                f"unexpected argument {arg!r}",
                fix=f"use KEY=VALUE with KEY one of {', '.join(allowed)}",
            )
        if key in found:
            # make keeps the last of two; a second M= is more likely a wish to check both, said instead
            raise InputError(f"{key}= given twice ({key}={found[key]} and {arg})",
                             fix=f"give one {key}= (check one module folder at a time)")
        if not value.strip() and key != "KBUILD_EXTRA_SYMBOLS":  # an empty list is kbuild's default too
            raise InputError(f"{key}= is empty", fix=f"give {key}=DIR, e.g. M=$PWD" if key == "M" else
                             f"give {key}=VALUE or leave it out")
        found[key] = value
    return found
