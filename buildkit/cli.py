"""The ``buildkit`` command line: the only module that imports click or exits.

Each command parses its arguments, calls the library, and prints; every failure the library knows about is
a :class:`~buildkit.errors.BuildkitError`, shown as one line on stderr with its exit code (2 bad input,
1 problems found or a failed build). Heavy imports stay inside the commands so that
``buildkit symvers check`` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

import click

from buildkit import __version__
from buildkit.errors import BuildkitError, InputError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(err: BuildkitError) -> NoReturn:
    click.echo(f"buildkit: error: {err}", err=True)
    sys.exit(err.exit_code)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def _kbuild_args(args: tuple[str, ...], allowed: tuple[str, ...]) -> dict[str, str]:
    """``KEY=VALUE`` arguments in kbuild's style (``M=drivers/foo KERNELDIR=...``)."""
    found: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key not in allowed:
            raise InputError(
                f"unexpected argument {arg!r}",
                fix=f"use KEY=VALUE with KEY one of {', '.join(allowed)}",
            )
        found[key] = value
    return found


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="buildkit")
def cli() -> None:
    """Build tooling for old or locked-down Linux hosts.

    \b
    buildkit symvers ...   kernel-module symbols: Module.symvers, .ko files, modpost errors, modules.dep
    """


@cli.group(context_settings=CONTEXT)
def symvers() -> None:
    """Kernel-module symbols: read Module.symvers and .ko files, explain modpost errors.

    \b
    Typical use, after 'make M=drivers/foo' failed with  modpost: "bar" [...] undefined!:
      buildkit symvers check M=drivers/foo
      make 2>&1 | buildkit symvers diagnose
    """


@symvers.command("show", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--format",
    "layout",
    type=click.Choice(["3col", "4col", "5.4", "5.6"]),
    help="Write the entries back as a Module.symvers of this layout (3col <= 2.6.17, 4col <= 5.3, "
    "5.4 namespace in the middle, 5.6 namespace last).",
)
def symvers_show(files: tuple[str, ...], as_json: bool, layout: str | None) -> None:
    """Show the exports listed in Module.symvers FILES (any layout, gzip too).

    \b
    Examples:
      buildkit symvers show /lib/modules/$(uname -r)/build/Module.symvers
      buildkit symvers show /boot/symvers-$(uname -r).gz --json
      buildkit symvers show old/Module.symvers --format 5.6 > Module.symvers
    """
    from buildkit.kmod.symvers import format_symvers, read_symvers

    tables = [read_symvers(path) for path in files]
    if layout:
        for table in tables:
            click.echo(format_symvers(table.entries, layout), nl=False)
    elif as_json:
        _print_json(
            [
                {
                    "path": t.path,
                    "layout": t.layout,
                    "symbols": [
                        {"crc": f"0x{e.crc:08x}", "symbol": e.symbol, "module": e.module, "type": e.type,
                         "namespace": e.namespace}
                        for e in t.entries
                    ],
                }
                for t in tables
            ]
        )
    else:
        for t in tables:
            click.echo(f"# {t.path}: {len(t.entries)} symbols, layout {t.layout}")
            width = max((len(e.symbol) for e in t.entries), default=6)
            for e in t.entries:
                ns = f"  [{e.namespace}]" if e.namespace else ""
                click.echo(f"0x{e.crc:08x}  {e.symbol:<{width}}  {e.type:<24}  {e.module}{ns}")


@symvers.command("check", context_settings=CONTEXT)
@click.argument("kbuild_args", nargs=-1, metavar="M=DIR [KERNELDIR=DIR] [KBUILD_EXTRA_SYMBOLS=\"F ...\"]")
@click.option("--search", multiple=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Also look for the providers of unresolved symbols under DIR (repeatable).")
@click.option("--no-default-search", is_flag=True,
              help="Do not search M='s sibling directories and the kernel's module tree.")
@click.option("--system-map", type=click.Path(dir_okay=False), metavar="FILE",
              help="System.map (or /proc/kallsyms) to tell 'defined but not exported' apart from 'unknown'.")
@click.option("--json", "as_json", is_flag=True, help="Print {\"modules\": [...]} as JSON.")
def symvers_check(kbuild_args: tuple[str, ...], search: tuple[str, ...], no_default_search: bool,
                  system_map: str | None, as_json: bool) -> None:
    """Check the modules built in M=DIR the way modpost does, and say how to fix each problem.

    Every undefined symbol is resolved against KERNELDIR/Module.symvers, the KBUILD_EXTRA_SYMBOLS files
    and the other modules of DIR; problems are those modpost reports (undefined, GPL-only symbol in a
    non-GPL module, namespace not imported, missing MODULE_LICENSE, exported twice) plus CRCs that
    disagree. Works on a failed build too: kbuild then leaves <mod>.o and no .ko.

    \b
    KERNELDIR defaults to /lib/modules/$(uname -r)/build. For an unresolved symbol buildkit looks in
    M's sibling directories, the kernel's module tree and --search DIRs for a Module.symvers, a built
    module or a source file that exports it, then in System.map, then for a near-miss name.

    \b
    Exit status: 0 clean, 1 problems found, 2 bad input.

    \b
    Examples:
      buildkit symvers check M=$PWD
      buildkit symvers check M=drivers/cons KERNELDIR=/usr/src/linux-headers-6.1.0-50-amd64
      buildkit symvers check M=cons KBUILD_EXTRA_SYMBOLS="$PWD/prov/Module.symvers" --json
    """
    from buildkit.kmod.resolve import CheckOptions, check, default_kerneldir

    args = _kbuild_args(kbuild_args, ("M", "KERNELDIR", "KDIR", "KBUILD_EXTRA_SYMBOLS"))
    if "M" not in args:
        raise InputError("M=DIR is required", fix="pass the directory of the external module, e.g. M=$PWD")
    kerneldir = args.get("KERNELDIR") or args.get("KDIR") or default_kerneldir()
    opts = CheckOptions(
        m_dir=os.path.abspath(args["M"]),
        kerneldir=kerneldir,
        extra_symbols=tuple(args.get("KBUILD_EXTRA_SYMBOLS", "").split()),
        search=search,
        system_map=system_map,
        default_search=not no_default_search,
    )
    reports = check(opts)
    if as_json:
        _print_json({"modules": [r.to_json() for r in reports]})
    else:
        for r in reports:
            status = "ok" if not r.problems else f"{len(r.problems)} problem(s)"
            deps = ", ".join(r.depends) or "-"
            click.echo(f"{r.name}: {status}  ({r.path}; depends: {deps})")
            for p in r.problems:
                click.echo(f"  {p.kind}: {p.message}")
                click.echo(f"    fix: {p.fix}")
    if any(r.problems for r in reports):
        sys.exit(1)


@symvers.command("diagnose", context_settings=CONTEXT)
@click.argument("log", required=False, default="-", metavar="[LOG]")
@click.option("--json", "as_json", is_flag=True, help="Print {\"messages\": [...]} as JSON.")
def symvers_diagnose(log: str, as_json: bool) -> None:
    """Explain the modpost messages of a kbuild log (LOG, or stdin when LOG is omitted or -).

    Finds each modpost problem of kernels 5.x-6.x (undefined symbol, GPL-only symbol, namespace not
    imported, missing MODULE_LICENSE, exported twice, missing CRC, missing Module.symvers, suppressed
    warnings), prints it with a one-line fix, and ignores the rest of the log. KERNELDIR, M= and the
    kernel version are read from the log ('make -C', 'Entering directory', 'MODPOST').

    \b
    Exit status: 0 no modpost problem in the log, 1 problems explained, 2 bad input.

    \b
    Examples:
      make -C /lib/modules/$(uname -r)/build M=$PWD modules 2>&1 | buildkit symvers diagnose
      buildkit symvers diagnose build.log
      buildkit symvers diagnose build.log --json
    """
    from buildkit.kmod.diagnose import explain, index_reports, log_context, parse_log, read_log
    from buildkit.kmod.resolve import CheckOptions, check, default_kerneldir

    def resolver(m_dir: str, kerneldir: str | None) -> dict:
        """The exact fixes of ``symvers check`` for the module directory the log names."""
        return index_reports(check(CheckOptions(m_dir=m_dir, kerneldir=kerneldir or default_kerneldir())))

    if log == "-":
        stdin = click.get_binary_stream("stdin")
        if stdin.isatty():
            raise InputError("no log given and stdin is a terminal",
                             fix="pipe a build log in (make ... 2>&1 | buildkit symvers diagnose) or name the file")
        lines = stdin.read().decode("utf-8", errors="replace").splitlines()
    else:
        lines = read_log(log)
    messages = parse_log(lines)
    explained = explain(messages, log_context(lines, messages), resolver=resolver)
    if as_json:
        _print_json({"messages": [e.to_json() for e in explained]})
    else:
        for e in explained:
            click.echo(f"line {e.message.line}: {e.message.text}")
            click.echo(f"  fix: {e.fix}")
        if not explained:
            click.echo("no modpost problems in the log")
    if explained:
        sys.exit(1)


def main() -> None:
    try:
        cli.main(standalone_mode=False, prog_name="buildkit")
    except BuildkitError as err:
        _fail(err)
    except click.exceptions.Abort:
        click.echo("buildkit: interrupted", err=True)
        sys.exit(130)
    except click.UsageError as err:
        hint = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
        click.echo(f"buildkit: error: {err.format_message()}{hint}", err=True)
        sys.exit(err.exit_code)
    except click.ClickException as err:
        click.echo(f"buildkit: error: {err.format_message()}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("buildkit: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # `buildkit ... | head`: the reader went away; nothing left to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
