"""``buildkit symvers``: kernel-module symbols (:mod:`buildkit.kmod`): show, check, diagnose, deps, who-exports;
load and diff (:mod:`buildkit.cli.kabi`)."""

from __future__ import annotations

import os

import click

from buildkit.cli.output import (
    CONTEXT,
    error,
    parse_kbuild_args,
    print_json,
    problems_found,
    say,
    stdin_text,
    warn,
)
from buildkit.errors import InputError


@click.group(context_settings=CONTEXT)
def symvers() -> None:
    """Kernel-module symbols: read Module.symvers and .ko files, explain modpost errors.

    \b
    Typical use, after 'make M=drivers/foo' failed with  modpost: "bar" [...] undefined!:
      buildkit symvers check M=drivers/foo
      make 2>&1 | buildkit symvers diagnose
    """


def _lost_in_layout(entries, layout: str) -> str:
    """What an older layout cannot say: namespaces (before 5.4), export types such as _GPL (3col)."""
    lost = []
    namespaced = sum(1 for e in entries if e.namespace)
    if namespaced and layout in ("3col", "4col"):
        lost.append(f"the namespaces of {namespaced} symbols")
    typed = sum(1 for e in entries if e.type != "EXPORT_SYMBOL")
    if typed and layout == "3col":
        lost.append(f"the export type (GPL-only etc.) of {typed} symbols")
    return " and ".join(lost)


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
    for t in tables:
        if not t.entries:
            warn(f"{t.path}: no exports in it (an empty Module.symvers: was the build run?)")
    if layout:
        for table in tables:
            lost = _lost_in_layout(table.entries, layout)
            if lost:
                warn(f"{table.path}: layout {layout} has no column for {lost}; they are not written")
            click.echo(format_symvers(table.entries, layout), nl=False)
    elif as_json:
        print_json(
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
@click.option("--search", multiple=True, type=click.Path(file_okay=False, exists=True), metavar="DIR",
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
    from buildkit.cli.checkrun import run_check

    if run_check(kbuild_args, search, no_default_search, system_map, as_json):
        problems_found()


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
        lines = stdin_text(fix="pipe a build log in (make ... 2>&1 | buildkit symvers diagnose) or name the file"
                           ).splitlines()
    else:
        lines = read_log(log)
    messages = parse_log(lines)
    explained = explain(messages, log_context(lines, messages), resolver=resolver)
    if as_json:
        print_json({"messages": [e.to_json() for e in explained]})
    else:
        for e in explained:
            click.echo(f"line {e.message.line}: {e.message.text}")
            click.echo(f"  fix: {e.fix}")
        if not explained:
            click.echo("no modpost problems in the log")
    if explained:
        problems_found()


def _m_dirs(args: tuple[str, ...]) -> list[str]:
    """``M=DIR`` arguments, any number of them (``symvers deps``)."""
    dirs = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if key != "M" or not sep or not value:
            raise InputError(f"unexpected argument {arg!r}",
                             fix="after TREE pass only M=DIR (a folder of built .ko files)")
        dirs.append(value)
    return dirs


@symvers.command("deps", context_settings=CONTEXT)
@click.argument("tree", metavar="TREE")
@click.argument("m_args", nargs=-1, metavar="[M=DIR ...]")
@click.option("--format", "fmt", type=click.Choice(["modules.dep", "json", "dot"]), default="modules.dep",
              show_default=True,
              help="modules.dep: exactly what 'depmod -n' prints first; json: every module with its direct and "
              "full dependencies and load order, duplicate exports, cycles; dot: a Graphviz graph.")
@click.option("--kernel-release", metavar="VER",
              help="The release under TREE/lib/modules to use when TREE is a root (dpkg -x folder, depmod -b); "
              "also what depmod.d 'override'/'external' lines are matched against (default: TREE's name).")
@click.option("--config", "config_paths", multiple=True, metavar="PATH", type=click.Path(exists=True),
              help="depmod.d file or directory to read instead of /run/depmod.d, /etc/depmod.d and "
              "/lib/depmod.d (repeatable, like depmod -C; --config /dev/null reads none).")
@click.option("--json", "as_json", is_flag=True, help="The same as --format json (the flag every other command takes).")
def symvers_deps(tree: str, m_args: tuple[str, ...], fmt: str, kernel_release: str | None,
                 config_paths: tuple[str, ...], as_json: bool) -> None:
    """Work out module dependencies for TREE the way depmod does, without writing anything.

    TREE is /lib/modules/VER, a root with lib/modules/VER under it, or any folder of modules. Every
    *.ko, *.ko.xz, *.ko.zst and *.ko.gz below it counts (not under build/ or source/); modules.order
    sets the order, depmod.d 'search'/'override' pick between two files of one module name. Each
    M=DIR adds a folder of built modules (out-of-tree ones are printed with absolute paths); they
    win over same-named modules of TREE, the first M= first. When two modules export one symbol, the
    later one in the order wins, as with depmod; --format json lists every such symbol.

    \b
    A .ko that cannot be read is named in a warning and listed with no dependencies (so does depmod).
    Modules that need each other are reported in depmod's words, "Cycle detected: a -> b -> a", and
    modules.dep is then not printed (json and dot still are).

    \b
    Exit status: 0 done, 1 dependency cycles, 2 bad input.

    \b
    Examples:
      buildkit symvers deps /lib/modules/$(uname -r) > /tmp/modules.dep
      diff <(buildkit symvers deps /lib/modules/$(uname -r)) /lib/modules/$(uname -r)/modules.dep
      buildkit symvers deps /lib/modules/$(uname -r) M=$PWD --format json
      buildkit symvers deps ./unpacked-debs --kernel-release 6.1.0-50-amd64 --format dot | dot -Tsvg > deps.svg
    """
    from buildkit.kmod.deps import (
        DependencyCycle,
        collect,
        cycle_lines,
        format_dot,
        format_modules_dep,
        graph_json,
        stderr_progress,
    )

    if as_json:
        if click.get_current_context().get_parameter_source("fmt") == click.core.ParameterSource.COMMANDLINE \
                and fmt != "json":
            raise InputError(f"--json and --format {fmt} together", fix="drop one of them")
        fmt = "json"
    graph = collect(tree, _m_dirs(m_args), kernel_release, config_paths or None, progress=stderr_progress())
    for warning in graph.warnings:
        warn(warning)
    if graph.cycles:
        for line in cycle_lines(graph)[:-1]:
            error(line)
    if fmt == "json":
        print_json(graph_json(graph))
    elif fmt == "dot":
        click.echo(format_dot(graph), nl=False)
    else:
        click.echo(format_modules_dep(graph), nl=False)  # raises DependencyCycle when there are cycles
    if graph.cycles:
        raise DependencyCycle(graph.cycles, len(graph.cyclic))


@symvers.command("who-exports", context_settings=CONTEXT)
@click.argument("args", nargs=-1, required=True, metavar="SYM... [KERNELDIR=DIR]")
@click.option("--tree", metavar="TREE",
              help="Module tree to search: /lib/modules/VER, a root holding lib/modules/VER, or a folder of "
              "modules (default: /lib/modules/$(uname -r) unless KERNELDIR= or --symvers is given).")
@click.option("--symvers", "symvers_files", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Also search this Module.symvers (repeatable; KERNELDIR=DIR means DIR/Module.symvers).")
@click.option("--kernel-release", metavar="VER", help="The release to use when --tree is a root with several.")
@click.option("--json", "as_json", is_flag=True, help="Print {\"symbols\": [...]} as JSON.")
def symvers_who_exports(args: tuple[str, ...], tree: str | None, symvers_files: tuple[str, ...],
                        kernel_release: str | None, as_json: bool) -> None:
    """Say which module exports each SYM: its path, export type and namespace.

    Searches the modules of a tree (read as 'symvers deps' reads them) and Module.symvers files. A
    symbol exported by two modules is listed twice, the one depmod resolves it to marked.

    \b
    Exit status: 0 every SYM found, 1 some not exported anywhere searched, 2 bad input.

    \b
    Examples:
      buildkit symvers who-exports usb_serial_register_drivers
      buildkit symvers who-exports snd_pcm_new snd_card_new --tree /lib/modules/6.1.0-50-amd64
      buildkit symvers who-exports kmalloc_caches KERNELDIR=/lib/modules/$(uname -r)/build --json
    """
    from buildkit.kmod.deps import collect, stderr_progress, who_exports
    from buildkit.kmod.kernel import at_modules_dir
    from buildkit.kmod.symvers import read_symvers

    names = [a for a in args if "=" not in a]
    kbuild = parse_kbuild_args(tuple(a for a in args if "=" in a), ("KERNELDIR", "KDIR"))
    if not names:
        raise InputError("no symbol given", fix="name at least one symbol, e.g. buildkit symvers who-exports kmalloc")
    files = list(symvers_files)
    kerneldir = kbuild.get("KERNELDIR") or kbuild.get("KDIR")
    if kerneldir:
        path = os.path.join(kerneldir, "Module.symvers")
        if not os.path.isfile(path):
            raise InputError(f"{path}: no such file",
                             fix="point KERNELDIR= at a built kernel or its headers, or pass --symvers FILE")
        files.append(path)
    if tree is None and not files:
        tree = f"/lib/modules/{os.uname().release}"
        if not os.path.isdir(tree):
            raise InputError(f"{tree}: no such directory", fix="pass --tree TREE, KERNELDIR=DIR or --symvers FILE")
    tables = [read_symvers(f) for f in files]
    graph = None
    if tree is not None:
        graph = collect(tree, kernel_release=kernel_release, progress=stderr_progress())
        for warning in graph.warnings:
            warn(warning)
        kernel = at_modules_dir(graph.dirname).symvers_path if not files else None
        if kernel is not None:  # vmlinux's own exports: no .ko in the tree has them
            tables.append(_vmlinux_only(read_symvers(kernel)))
    found = who_exports(names, graph, tables)
    missing = [name for name, hits in found.items() if not hits]
    if as_json:
        print_json({"symbols": [{"symbol": name, "exporters": [e.to_json() for e in hits]}
                                 for name, hits in found.items()]})
    else:
        width = max(len(name) for name in found)
        for name, hits in found.items():
            several = sum(1 for e in hits if e.source == "tree") > 1
            for e in hits:
                where = e.path if e.source == "tree" else f"{e.module}  ({e.path})"
                ns = f"  [{e.namespace}]" if e.namespace else ""
                mark = "  <- depmod uses this one" if several and e.depmod_owner else ""
                click.echo(f"{name:<{width}}  {e.type:<24}  {where}{ns}{mark}")
    if missing:
        searched = " and ".join(([graph.dirname] if graph is not None else []) + files)
        for name in missing:
            say(f"buildkit: {name}: not exported by {searched}")
        problems_found()



def _vmlinux_only(table):
    from buildkit.kmod.symvers import Symvers

    return Symvers(table.path, table.layout, [e for e in table.entries if e.in_vmlinux])


def _add_kabi_commands() -> None:
    from buildkit.cli.kabi import symvers_diff, symvers_load

    symvers.add_command(symvers_load)
    symvers.add_command(symvers_diff)


_add_kabi_commands()
