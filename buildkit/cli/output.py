"""What every command shares: how it prints, how it exits, and the kbuild-style arguments.

Results go to stdout (a table, or ``--json``); progress, warnings and errors go to stderr as
``buildkit: warning: ...`` / ``buildkit: error: ...``, one line each. Exit codes come from the error
hierarchy (:mod:`buildkit.errors`): 0 done, 1 problems found or a failed build, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

import click

from buildkit.cli.plain import error, parse_kbuild_args, print_json, print_module_reports
from buildkit.errors import BuildkitError, CheckFailed, InputError

if TYPE_CHECKING:
    from buildkit.pybuild.record import Verification

__all__ = ["CONTEXT", "say", "warn", "error", "fail", "fail_all", "problems_found", "print_json",
           "print_module_reports", "print_checks", "print_verification", "parse_kbuild_args", "stdin_text"]

#: click settings of every group and command: -h too, and help text up to 100 columns
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# --- stderr and exit codes ----------------------------------------------------------------------------------


def say(line: str) -> None:
    """A progress line, on stderr (stdout stays for the result)."""
    click.echo(line, err=True)


def warn(message: object) -> None:
    click.echo(f"buildkit: warning: {message}", err=True)


def fail(err: BuildkitError) -> NoReturn:
    """One line on stderr and the error's exit code."""
    error(err)
    sys.exit(err.exit_code)


def fail_all(errors: Sequence[BuildkitError]) -> None:
    """Each error on its line; then, if there were any, exit with the gravest code."""
    for err in errors:
        error(err)
    if errors:
        sys.exit(max(err.exit_code for err in errors))


def problems_found() -> NoReturn:
    """Exit 1: the command ran and found problems (it has printed them)."""
    sys.exit(CheckFailed.exit_code)


# --- stdout -------------------------------------------------------------------------------------------------


def print_checks(checks: Sequence[tuple[str, bool, bool, str]]) -> None:
    """The verification table, a check ``(name, ok, required, detail)`` a line: ok, FAIL or warn (optional)."""
    width = max(len(name) for name, _, _, _ in checks)
    for name, ok, required, detail in checks:
        mark = "ok" if ok else ("FAIL" if required else "warn")
        click.echo(f"  {name:<{width}}  {mark:<4}  {detail}")


# What a portable build (--portable) leaves out, and why: said instead of the -dev packages to install.
PORTABLE_LEFT_OUT = {"_dbm": "no ndbm library is built", "_gdbm": "GNU gdbm (GPL) is not built",
                     "_tkinter": "Tcl/Tk and X11 are not built"}


def print_verification(report: Verification | None, portable: bool = False) -> None:
    """The verification of a build record (``BUILDKIT.json``): its checks, then the optional modules missing
    (for a portable build: those it leaves out, and why)."""
    if report is None or not report.checks:
        return
    click.echo("")
    print_checks([(c.name, c.ok, c.required, c.detail) for c in report.checks])
    missing = [m for m in report.optional if not m.present]
    left_out = [m for m in missing if portable and m.name in PORTABLE_LEFT_OUT]
    if left_out:
        click.echo("\n  left out of portable builds:")
        for m in left_out:
            click.echo(f"    {m.name:<10} {PORTABLE_LEFT_OUT[m.name]}")
    missing = [m for m in missing if m not in left_out]
    if missing:
        click.echo("\n  optional modules missing (install, then rebuild with --clean):")
        for m in missing:
            click.echo(f"    {m.name:<10} Debian: {m.debian:<18} RHEL: {m.rhel}")


# --- input ----------------------------------------------------------------------------------------------------


def stdin_text(fix: str) -> str:
    """All of stdin (a piped log), decoded leniently; a terminal there is bad input: ``fix`` says what to do."""
    stdin = click.open_file("-", "rb")  # click's binary stdin (get_binary_stream is deprecated from click 8.5)
    if stdin.isatty():
        raise InputError("no log given and stdin is a terminal", fix=fix)
    return stdin.read().decode("utf-8", errors="replace")
