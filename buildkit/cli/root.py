"""The ``buildkit`` click group and its error handling (:func:`run`); :func:`buildkit.cli.main` calls it.

The command line is the only package that imports click or exits.

Each command parses its arguments, calls the library, and prints through :mod:`buildkit.cli.output`; every
failure the library knows about is a :class:`~buildkit.errors.BuildkitError`, shown by :func:`main` as one
line on stderr with its exit code (2 bad input, 1 problems found or a failed build, 130 interrupted).

A command group lives in its own module (``symvers``, ``python``: python, verify and doctor, ``fetch``,
``ci``), imported only when one of its commands runs (:class:`~buildkit.cli.lazy.LazyGroup`); heavy
imports stay inside the commands, so that ``buildkit symvers check`` starts fast.
"""

from __future__ import annotations

import errno
import os
import sys

import click

from buildkit import __version__
from buildkit.cli.lazy import LazyGroup
from buildkit.cli.output import CONTEXT, error, fail, say
from buildkit.errors import BuildkitError, Interrupted

__all__ = ["cli", "run", "COMMANDS"]

#: every command of ``buildkit`` and where it lives
COMMANDS = {
    "symvers": "buildkit.cli.symvers:symvers",
    "python": "buildkit.cli.python:python_cmd",
    "verify": "buildkit.cli.python:verify_cmd",
    "doctor": "buildkit.cli.python:doctor_cmd",
    "fetch": "buildkit.cli.fetch:fetch_command",
    "ci": "buildkit.cli.ci:ci",
    "bundle": "buildkit.cli.bundle:bundle_cmd",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="buildkit")
def cli() -> None:
    """Build tooling for old or locked-down Linux hosts.

    \b
    symvers  kernel-module symbols: Module.symvers, .ko files, modpost errors, modules.dep
               buildkit symvers check M=drivers/cons KERNELDIR=/usr/src/linux-headers-6.1.0-50-amd64
    python   build CPython with a private OpenSSL and SQLite; verify it, install it atomically
               buildkit python 3.11.2 --with-openssl --with-sqlite --prefix /opt/python-3.11
               buildkit python --portable --prefix /opt/py-portable   (runs on glibc >= 2.17)
    verify   check an interpreter's ssl, hashlib, sqlite3, pip and the libraries it loads
               buildkit verify /opt/python-3.11/bin/python3.11
    doctor   explain a Python, build tree or log lacking ssl or sqlite3, and print the fix
               make 2>&1 | tee build.log; buildkit doctor build.log
    fetch    download and verify the catalog's tarballs (cache, folders, mirrors, upstream, Debian)
               buildkit fetch cpython@3.11.2 openssl@3.0.20 sqlite@3.40.1
    ci       python and symvers inside throwaway containers of the target distribution (Docker)
               buildkit ci python 3.13 --with-openssl --with-sqlite --image debian:12 --out dist
    bundle   buildkit with a portable Python of its own, for hosts without Python 3.9 (CentOS 7)
               buildkit bundle --python /opt/py-portable --out dist

    \b
    'buildkit COMMAND --help' gives each command's options, examples and exit status.
    Exit status: 0 done, 1 problems found or a failed build, 2 bad input, 130 interrupted.
    """


# click 8.2+ raises it for a bare group; older clicks print the help and exit 0 themselves
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())
# what click puts in place of stdout after a broken pipe: _PacifyFlushWrapper from click 8.5, where the
# public PacifyFlushWrapper only warns that it is deprecated (gone in 9.0); PacifyFlushWrapper before 8.5
_PACIFIED = (getattr(click.utils, "_PacifyFlushWrapper", None) or getattr(click.utils, "PacifyFlushWrapper", None)
             or ())


def run() -> None:
    try:
        cli.main(standalone_mode=False, prog_name="buildkit")
    except BuildkitError as err:
        fail(err)
    except (click.exceptions.Abort, KeyboardInterrupt):
        say("buildkit: interrupted")
        sys.exit(Interrupted.exit_code)
    except _NO_ARGS_IS_HELP as err:
        # bare `buildkit` (or `buildkit ci`): the help it asks for, on stdout, not as an error
        click.echo(err.ctx.get_help())
        sys.exit(0)
    except click.UsageError as err:
        hint = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
        error(f"{err.format_message()}{hint}")
        sys.exit(err.exit_code)
    except click.ClickException as err:
        error(err.format_message())
        sys.exit(err.exit_code)
    except BrokenPipeError:
        # `buildkit ... | head`: the reader went away; nothing left to say.
        _quiet_stdout()
        sys.exit(0)
    except SystemExit:
        # click meets the same broken pipe first, swaps stdout for its PacifyFlushWrapper and exits 1, which
        # would read as "problems found": the same quiet exit 0 as above.
        if isinstance(sys.stdout, _PACIFIED):
            _quiet_stdout()
            sys.exit(0)
        raise
    except OSError as err:
        # `buildkit ... > /dev/full`, or a full disk under the redirect: one line, not a traceback.
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
            raise
        _quiet_stdout()
        error(f"cannot write the output: {err.strerror or err}")
        sys.exit(2)


def _quiet_stdout() -> None:
    """stdout to /dev/null, so the interpreter's final flush does not fail (and print) again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
