"""Options that ``buildkit python`` and ``buildkit ci python`` share beyond the source options (cli/fetch.py)."""

from __future__ import annotations

import re

import click

from buildkit.errors import InputError

__all__ = ["profile_tests_option", "profile_tests"]

profile_tests_option = click.option(
    "--profile-tests", "profile_tests_text", metavar="TEST[,TEST...]",
    help="With --optimize: the regrtest files the profile run trains on (e.g. test_json,test_re), instead of "
         "CPython's PGO set (about 45 files): a shorter build, a less trained interpreter. The check that the run "
         "went through every file still applies.")


def profile_tests(text: str | None, optimize: bool) -> tuple[str, ...]:
    """``--profile-tests`` as regrtest's test names; only with ``--optimize``."""
    if text is None:
        return ()
    if not optimize:
        raise InputError("--profile-tests is an option of --optimize", fix="add --optimize, or drop --profile-tests")
    names = tuple(n for n in re.split(r"[\s,]+", text) if n)
    bad = next((n for n in names if not re.fullmatch(r"test_\w+", n)), None)
    if not names or bad is not None:
        raise InputError(f"--profile-tests {text!r}: {bad or 'no test'} is not a regrtest file name",
                         fix="name test files of CPython's Lib/test, e.g. --profile-tests test_json,test_re")
    return names
