"""``buildkit symvers check``'s work, shared by its click command and by a path that does without click.

modpost takes some 60 ms; a checker people run after every build should not be slower, and importing
click is a third of that. So :func:`fast_main` parses the command's own arguments (kbuild's ``KEY=VALUE``,
``--search DIR``, ``--no-default-search``, ``--system-map FILE``, ``--json``) and runs :func:`run_check`;
for anything else (``--help``, an unknown option, a path of the wrong kind) it answers None and the click
command, which calls the same :func:`run_check`, takes over.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from buildkit.cli.plain import echo, error, parse_kbuild_args, print_json, print_module_reports
from buildkit.errors import BuildkitError, CheckFailed, InputError


def run_check(kbuild_args: Sequence[str], search: Sequence[str], no_default_search: bool, system_map: str | None,
              as_json: bool) -> int:
    """Check M=DIR, print the reports; the exit code (0 clean, 1 problems found)."""
    from buildkit.kmod.resolve import CheckOptions, check, default_kerneldir

    args = parse_kbuild_args(tuple(kbuild_args), ("M", "KERNELDIR", "KDIR", "KBUILD_EXTRA_SYMBOLS"))
    if "M" not in args:
        raise InputError("M=DIR is required", fix="pass the directory of the external module, e.g. M=$PWD")
    kerneldir = args.get("KERNELDIR") or args.get("KDIR") or default_kerneldir()
    opts = CheckOptions(
        m_dir=os.path.abspath(args["M"]),
        kerneldir=kerneldir,
        extra_symbols=tuple(args.get("KBUILD_EXTRA_SYMBOLS", "").split()),
        search=tuple(search),
        system_map=system_map,
        default_search=not no_default_search,
    )
    reports = check(opts)
    if as_json:
        print_json({"modules": [r.to_json() for r in reports]})
    else:
        print_module_reports(reports)
    return CheckFailed.exit_code if any(r.problems for r in reports) else 0


def fast_main(argv: Sequence[str]) -> int | None:
    """The exit code, or None when click must handle these arguments."""
    kbuild: list[str] = []
    search: list[str] = []
    system_map: str | None = None
    no_default_search = as_json = False
    rest = iter(argv)
    for arg in rest:
        name, eq, inline = arg.partition("=")
        if arg == "--json":
            as_json = True
        elif arg == "--no-default-search":
            no_default_search = True
        elif name in ("--search", "--system-map"):
            value = inline if eq else next(rest, None)
            if not value or value.startswith("-"):
                return None
            if name == "--search":
                if not os.path.isdir(value):  # click's Path(file_okay=False, exists=True) words that error
                    return None
                search.append(value)
            else:
                if os.path.isdir(value):
                    return None
                system_map = value
        elif arg.startswith("-"):
            return None
        else:
            kbuild.append(arg)
    try:
        code = run_check(kbuild, search, no_default_search, system_map, as_json)
        sys.stdout.flush()
        return code
    except BuildkitError as err:
        error(err)
        return err.exit_code
    except KeyboardInterrupt:
        echo("buildkit: interrupted", err=True)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
