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
import time
from pathlib import Path
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
        _print_module_reports(reports)
    if any(r.problems for r in reports):
        sys.exit(1)


def _print_module_reports(reports) -> None:
    """A module a line, its problems below it with their fixes (symvers check, ci symvers)."""
    for r in reports:
        status = "ok" if not r.problems else f"{len(r.problems)} problem(s)"
        deps = ", ".join(r.depends) or "-"
        click.echo(f"{r.name}: {status}  ({r.path}; depends: {deps})")
        for p in r.problems:
            click.echo(f"  {p.kind}: {p.message}")
            click.echo(f"    fix: {p.fix}")


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
@click.option("--config", "config_paths", multiple=True, metavar="PATH",
              help="depmod.d file or directory to read instead of /run/depmod.d, /etc/depmod.d and "
              "/lib/depmod.d (repeatable, like depmod -C; --config /dev/null reads none).")
def symvers_deps(tree: str, m_args: tuple[str, ...], fmt: str, kernel_release: str | None,
                 config_paths: tuple[str, ...]) -> None:
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

    graph = collect(tree, _m_dirs(m_args), kernel_release, config_paths or None, progress=stderr_progress())
    for warning in graph.warnings:
        click.echo(f"buildkit: warning: {warning}", err=True)
    if graph.cycles:
        for line in cycle_lines(graph)[:-1]:
            click.echo(f"buildkit: error: {line}", err=True)
    if fmt == "json":
        _print_json(graph_json(graph))
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
    from buildkit.kmod.symvers import read_symvers

    names = [a for a in args if "=" not in a]
    kbuild = _kbuild_args(tuple(a for a in args if "=" in a), ("KERNELDIR", "KDIR"))
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
            click.echo(f"buildkit: warning: {warning}", err=True)
    found = who_exports(names, graph, tables)
    missing = [name for name, hits in found.items() if not hits]
    if as_json:
        _print_json({"symbols": [{"symbol": name, "exporters": [e.to_json() for e in hits]}
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
            click.echo(f"buildkit: {name}: not exported by {searched}", err=True)
        sys.exit(1)


def _default_cache() -> str:
    return os.environ.get("BUILDKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "buildkit", "sources")


@cli.command("python", context_settings=CONTEXT)
@click.argument("version", required=False)
@click.option("--prefix", type=click.Path(file_okay=False),
              help="Where the Python goes (made a symlink to a verified build).")
@click.option("--with-openssl", "with_openssl", is_flag=False, flag_value="private", default=None,
              metavar="[V|PREFIX|system]",
              help="Build a private OpenSSL (default version, or V), use one installed at PREFIX, or the system's. "
                   "Without it: the system's when new enough for this CPython, else a private one.")
@click.option("--with-sqlite", "with_sqlite", is_flag=False, flag_value="private", default=None,
              metavar="[V|PREFIX|system]",
              help="The same for SQLite (3.8.3+ is needed for deterministic=True and Django).")
@click.option("--jobs", "-j", type=click.IntRange(1), help="Parallel make jobs (default: the CPUs available).")
@click.option("--clean", is_flag=True, help="Rebuild everything from pristine sources, private OpenSSL and SQLite too.")
@click.option("--keep", is_flag=True, help="Keep the work trees after a successful build.")
@click.option("--dry-run", is_flag=True, help="Print the plan (what would be built, every command) and stop.")
@click.option("--json", "as_json", is_flag=True, help="Print the result (or with --dry-run the plan) as JSON.")
@click.option("--source-dir", "source_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="Offline tarballs, matched by sha256 whatever their names (upstream or Debian's *.orig.tar.*).")
@click.option("--mirror", "mirrors", multiple=True, metavar="URL",
              help="A mirror: <URL>/<file name> or pyenv's <URL>/<sha256> layout.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False),
              help="Download cache (default ~/.cache/buildkit/sources).")
@click.option("--no-debian", is_flag=True,
              help="Do not fall back to Debian's source packages when upstream is unreachable.")
@click.option("--emit-script", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write the plan as a POSIX sh script for a host without buildkit, and stop.")
@click.option("--list", "list_versions", is_flag=True, help="List the versions buildkit knows and exit.")
def python_cmd(version, prefix, with_openssl, with_sqlite, jobs, clean, keep, dry_run, as_json, source_dirs,
               mirrors, cache_dir, no_debian, emit_script, list_versions) -> None:
    """Build CPython VERSION from source with a private OpenSSL and SQLite, verify it, install it.

    \b
    The host decides: its OpenSSL and SQLite are probed (headers, libraries, versions; EPEL's openssl11
    too) and, when too old for this CPython or when asked with --with-openssl/--with-sqlite, private ones
    are built under the prefix and wired by rpath, so the result runs without LD_LIBRARY_PATH. The new
    build is verified in place (ssl, _ssl, _hashlib, SMTP_SSL, sqlite3 version, deterministic=True, CA
    certificates, pip, and that the libraries loaded are the private ones), and only then does PREFIX
    switch to it: a failed or interrupted build leaves the previous install as it was.
    Running the same command again on a verified prefix does nothing.

    \b
    Sources come from the cache, --source-dir, --mirror, upstream, then Debian's source packages, and
    are checked against the catalog's sha256 and size either way.

    \b
    Exit status: 0 built and verified, 1 build or verification failed, 2 bad input.

    \b
    Examples:
      buildkit python 3.11.2 --with-openssl --with-sqlite --prefix /opt/python-3.11
      buildkit python 3.12 --with-openssl=3.0 --prefix ~/py312 --source-dir ~/tarballs
      buildkit python 3.11.2 --with-openssl --prefix /opt/py --dry-run
      buildkit python 3.11.2 --with-openssl --prefix /opt/py --emit-script build.sh
    """
    from buildkit.pybuild.plan import DEFAULTS, Request

    if list_versions:
        from buildkit import catalog

        for package in catalog.PACKAGES:
            versions = sorted({s.version for s in catalog.sources(package)},
                              key=lambda v: catalog.parse_version(package, v))
            click.echo(f"{package}: {' '.join(versions)}")
        return
    if not prefix:
        raise InputError("--prefix DIR is required", fix="e.g. --prefix /opt/python-3.11")
    from buildkit.pybuild.build import FetchOptions, build_python, with_jobs
    from buildkit.pybuild.build import dry_run as plan_only

    salt = str(time.time_ns()) if clean else ""
    req = with_jobs(Request(version or DEFAULTS["cpython"], prefix, with_openssl, with_sqlite, clean=clean, salt=salt),
                    jobs)
    fetch = FetchOptions(Path(cache_dir or _default_cache()), tuple(Path(d) for d in source_dirs), tuple(mirrors),
                         debian=not no_debian)
    if dry_run or emit_script:
        # With --source-dir, the tarballs that are really there decide (e.g. SQLite's full tree).
        plan = plan_only(req, fetch if source_dirs else None)
        if emit_script:
            from buildkit.pybuild.script import write_script

            write_script(plan, emit_script)
            click.echo(f"wrote {emit_script}: sh {emit_script} [SOURCES_DIR]", err=True)
        elif as_json:
            _print_json(plan.to_json())
        else:
            _print_plan(plan)
        return
    import signal

    def terminate(signum, frame):  # SIGTERM stops the build like Ctrl-C: make's process group is killed too
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    result = build_python(req, fetch, keep=keep, say=lambda line: click.echo(line, err=True))
    if as_json:
        _print_json(result.record)
        return
    if result.noop:
        click.echo(f"{prefix}: already built and verified ({result.plan.build_id}); nothing to do")
    else:
        click.echo(f"{prefix} -> {result.plan.install_dir}  ({result.seconds:.0f} s)")
    _print_verification(result.record.get("verification") or {})


def _print_plan(plan) -> None:
    click.echo(f"CPython {plan.request.cpython} -> {plan.request.prefix} (build {plan.build_id})")
    for choice in (plan.openssl, plan.sqlite):
        where = f" at {choice.prefix}" if choice.prefix else ""
        click.echo(f"  {choice.package}: {choice.how} {choice.version}{where}  ({choice.reason})")
    for comp in plan.components:
        click.echo(f"{comp.package} {comp.version}  [{comp.source.filename}, sha256 {comp.source.sha256[:16]}...]")
        for step in comp.steps:
            run = step.run
            text = " ".join(run.argv) if hasattr(run, "argv") else f"({run.name} {' '.join(run.args)})"
            env = " ".join(f"{k}={v!r}" for k, v in getattr(run, "env", ()))
            click.echo(f"  {step.phase:<9} {env + ' ' if env else ''}{text}")


def _print_verification(report: dict) -> None:
    checks = report.get("checks") or []
    if not checks:
        return
    width = max(len(c["name"]) for c in checks)
    click.echo("")
    for c in checks:
        mark = "ok" if c["ok"] else ("FAIL" if c.get("required", True) else "warn")
        click.echo(f"  {c['name']:<{width}}  {mark:<4}  {c.get('detail', '')}")
    missing = [m for m in report.get("optional") or [] if not m.get("present")]
    if missing:
        click.echo("\n  optional modules missing (install, then rebuild with --clean):")
        for m in missing:
            click.echo(f"    {m['name']:<10} Debian: {m.get('debian', '?'):<18} RHEL: {m.get('rhel', '?')}")


@cli.command("fetch", context_settings=CONTEXT)
@click.argument("specs", nargs=-1, required=True, metavar="PACKAGE@VERSION...")
@click.option("--cache", metavar="DIR", type=click.Path(file_okay=False),
              help="Where verified tarballs are kept (default: $BUILDKIT_CACHE, else ~/.cache/buildkit/sources).")
@click.option("--source-dir", "source_dirs", multiple=True, metavar="DIR", type=click.Path(file_okay=False),
              help="Take a file directly in DIR whose sha256 matches, whatever its name, e.g. Debian's "
              "python3.11_3.11.2.orig.tar.gz (repeatable; hashes are remembered in the cache).")
@click.option("--mirror", "mirrors", multiple=True, metavar="URL",
              help="Try URL/<sha256> (pyenv's mirror layout), then URL/<filename> (repeatable; http(s)://, "
              "ftp://, file:// or a folder).")
@click.option("--debian", is_flag=True,
              help="Last resort: 'apt-get source --download-only' of the Debian source package whose "
              "*.orig.tar.* is the file, with a private apt configuration under the cache (mirrors read from "
              "/etc/apt/sources.list.d/debian.sources).")
@click.option("--dest", metavar="DIR", type=click.Path(file_okay=False),
              help="Also copy the verified files into DIR (a file already there with the right sha256 is kept).")
@click.option("--json", "as_json", is_flag=True, help="Print {\"sources\": [...]} as JSON.")
def fetch_command(specs: tuple[str, ...], cache: str | None, source_dirs: tuple[str, ...], mirrors: tuple[str, ...],
                  debian: bool, dest: str | None, as_json: bool) -> None:
    """Download and verify the source tarballs of the catalog (CPython, OpenSSL, SQLite).

    Each PACKAGE@VERSION (cpython@3.11 means the newest 3.11 the catalog knows) is looked for, in order, in
    the cache, the --source-dir folders, the --mirror URLs, its upstream URL and, with --debian, Debian's
    archive. Every file is streamed through the catalog's sha256 and size before it is kept; a file with
    other bytes is deleted and reported, and no other route is tried for it. When the catalog knows two
    tarballs of a version (sqlite 3.40.1: upstream's amalgamation and Debian's full tree) the first one any
    route can supply is taken. Prints each file's path, size, sha256 and where it came from.

    \b
    Exit status: 0 all fetched, 2 bad input, a checksum mismatch, or a tarball no route could supply.

    \b
    Examples:
      buildkit fetch cpython@3.11.2 openssl@3.0.20 sqlite@3.40.1
      buildkit fetch cpython@3.11.2 --source-dir /var/tmp/debian-sources
      buildkit fetch openssl@3.0.20 --mirror file:///srv/tarballs --mirror https://HOST/pyenv-cache
      buildkit fetch --debian --dest ./src cpython@3.11.2 openssl@1.1.1w sqlite@3.40.1 --json
    """
    from pathlib import Path

    from buildkit.fetch import copy_to_dest, default_cache_dir, fetch_spec, stderr_progress

    cache_dir = Path(cache) if cache else default_cache_dir()
    tty = sys.stderr.isatty()
    results: list[tuple[Any, Any]] = []
    errors: list[BuildkitError] = []
    for spec in specs:
        try:
            got = fetch_spec(spec, cache_dir=cache_dir, mirrors=mirrors, source_dirs=[Path(d) for d in source_dirs],
                             debian=debian, progress=stderr_progress(spec),
                             warn=lambda m: click.echo(f"buildkit: warning: {m}", err=True),
                             note=(lambda m: click.echo(f"buildkit: {m}", err=True)) if tty else (lambda m: None))
            results.append((got, copy_to_dest(got, Path(dest)) if dest else None))
        except BuildkitError as err:
            errors.append(err)
    if as_json:
        _print_json({"sources": [{**got.to_json(), "copied_to": str(copied) if copied else None}
                                 for got, copied in results]})
    else:
        for got, copied in results:
            click.echo(f"{got.source}: {copied or got.path}")
            click.echo(f"  {got.size} bytes  sha256 {got.sha256}  from {got.origin}")
            if copied:
                click.echo(f"  cached as {got.path}")
    for err in errors:
        click.echo(f"buildkit: error: {err}", err=True)
    if errors:
        sys.exit(max(err.exit_code for err in errors))


@cli.command("verify", context_settings=CONTEXT)
@click.argument("python", metavar="PYTHON")
@click.option("--expect-openssl", metavar="V",
              help="The OpenSSL version ssl.OPENSSL_VERSION must show (3.0.20, 1.1.1w).")
@click.option("--expect-sqlite", metavar="V", help="The SQLite version sqlite3.sqlite_version must show (3.46.1).")
@click.option("--private-prefix", "private_prefixes", multiple=True, metavar="DIR",
              help="libssl, libcrypto and libsqlite3 must be loaded from under DIR (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_cmd(python: str, expect_openssl: str | None, expect_sqlite: str | None, private_prefixes: tuple[str, ...],
               as_json: bool) -> None:
    """Check that the interpreter PYTHON has a working ssl, hashlib, sqlite3 and pip, and which libraries it loads.

    One probe runs with PYTHON under 'env -i PATH=/usr/bin:/bin LANG=C.UTF-8', in isolated mode (-I), pip
    with PIP_CONFIG_FILE=/dev/null: SSL_CERT_FILE, LD_LIBRARY_PATH, PIP_* and /etc/pip.conf of this shell
    cannot hide a broken build. It imports ssl, _ssl, _hashlib, smtplib.SMTP_SSL and sqlite3, compares the
    OpenSSL headers the module was compiled against with the library it runs, calls
    create_function(deterministic=True), counts the CA certificates of ssl.create_default_context(), runs
    'python -m pip --version' (or finds ensurepip), and reads /proc/self/maps for the libssl, libcrypto and
    libsqlite3 actually loaded. Optional modules (_ctypes, _bz2, _lzma, zlib, readline, _uuid, _dbm, _gdbm,
    _tkinter, _curses) are listed with the Debian and RHEL packages that bring them.

    \b
    Exit status: 0 every required check passed, 1 some failed, 2 bad input (PYTHON cannot run).

    \b
    Examples:
      buildkit verify /opt/python-3.11/bin/python3.11
      buildkit verify /opt/py/bin/python3 --expect-openssl 3.0.20 --expect-sqlite 3.46.1 \\
          --private-prefix /opt/py/openssl --private-prefix /opt/py/sqlite
      buildkit verify python3 --json
    """
    from buildkit.pybuild.verify import verify

    report = verify(python, expect_openssl=expect_openssl, expect_sqlite=expect_sqlite,
                    private_prefixes=private_prefixes)
    if as_json:
        _print_json(report.to_json())
    else:
        click.echo(f"{report.executable} (Python {report.python_version})")
        width = max(len(c.name) for c in report.checks)
        for c in report.checks:
            mark = "ok" if c.ok else ("FAIL" if c.required else "warn")
            click.echo(f"  {c.name:<{width}}  {mark:<4}  {c.detail}")
        click.echo("\noptional modules:")
        for m in report.optional:
            state = "present" if m.present else "MISSING"
            click.echo(f"  {m.name:<9} {state:<7}  {m.description:<32} Debian: {m.debian:<34} RHEL: {m.rhel}")
        failed = report.failed
        click.echo("\n" + ("all required checks passed" if not failed else
                           f"{len(failed)} required check(s) failed: {', '.join(c.name for c in failed)}"))
    if not report.ok:
        sys.exit(1)


@cli.command("doctor", context_settings=CONTEXT)
@click.argument("target", required=False, default="python3", metavar="[PYTHON | BUILD_DIR | LOG]")
@click.option("--json", "as_json", is_flag=True, help="Print {\"target\": ..., \"findings\": [...]} as JSON.")
def doctor_cmd(target: str, as_json: bool) -> None:
    """Explain why a Python lacks ssl, _hashlib or a usable sqlite3, and print the command that fixes it.

    TARGET is an interpreter (default: python3 on PATH; it runs the probe of 'buildkit verify'), a prefix
    holding bin/python3, a CPython build directory (config.log, Makefile, build/lib.*/_ssl_failed*.so), or
    a log: configure or make output, or the errors met afterwards (No module named '_ssl', cannot import
    name 'SMTP_SSL', deterministic=True requires SQLite 3.8.3 or higher, CERTIFICATE_VERIFY_FAILED). Use -
    to read the log from stdin. Understands the make summaries of CPython 3.8-3.11 (setup.py) and 3.12+
    (check_extension_modules.py): modules missing, failed, and "built successfully but removed because
    they could not be imported" with the loader's reason (no rpath, lib64, OpenSSL 3 headers with a 1.1
    library).

    \b
    Exit status: 0 nothing wrong, 1 problems found, 2 bad input.

    \b
    Examples:
      buildkit doctor
      buildkit doctor /opt/python-3.11/bin/python3.11
      buildkit doctor ~/src/Python-3.11.2
      make 2>&1 | tee build.log; buildkit doctor build.log
    """
    from buildkit.pybuild.doctor import doctor, doctor_text

    if target == "-":
        stdin = click.get_binary_stream("stdin")
        if stdin.isatty():
            raise InputError("no log given and stdin is a terminal", fix="pipe a build log in or name the file")
        findings = doctor_text(stdin.read().decode("utf-8", errors="replace"), source="stdin")
    else:
        findings = doctor(target)
    problems = [f for f in findings if f.problem]
    if as_json:
        _print_json({"target": target, "ok": not problems, "findings": [f.to_json() for f in findings]})
    else:
        for f in findings:
            click.echo(f"{'PROBLEM' if f.problem else 'ok'}: {f.title}")
            for line in f.detail.splitlines():
                click.echo(f"    {line}")
            if f.fix:
                click.echo(f"  fix: {f.fix}")
        if not findings:
            click.echo(f"{target}: nothing to report")
        elif not problems:
            click.echo("no problems found")
    if problems:
        sys.exit(1)


@cli.group("ci", context_settings=CONTEXT)
def ci() -> None:
    """Build and check inside throwaway containers of the target distribution (Docker, via $DOCKER_HOST).

    \b
    buildkit ci render IMAGE            print the builder image's Dockerfile
    buildkit ci python VERSION ...      build, verify and package CPython per image (a matrix)
    buildkit ci symvers M=DIR ...       build modules against the image's kernel headers, then check them
    buildkit ci matrix --format ...     the same matrix as a GitHub Actions or GitLab CI workflow

    \b
    IMAGE is DISTRO:RELEASE, optionally =BASE to build from another (pinned) base image:
      debian:11 debian:12 debian:13 ubuntu:20.04 ubuntu:22.04 ubuntu:24.04
      centos:7 rocky:8 rocky:9 alma:8 alma:9 alinux:2 alinux:3 (alinux needs =BASE)
      e.g. debian:12=buildkit-base:debian-bookworm (a local debootstrap image)
    """


def _ci_render_opts(image, purpose: str, apt_mirror: str | None, yum_mirror: str | None, kernel: str = ""):
    from buildkit.container.python import render_options

    return render_options(image, purpose, apt_mirror=apt_mirror, yum_mirror=yum_mirror or "", kernel=kernel)


_APT_MIRROR_HELP = ("apt mirror URI for the image (default for Debian images: the mirrors of this machine's "
                    "/etc/apt/sources.list.d/debian.sources, read at run time; else the image's own sources).")
_YUM_MIRROR_HELP = "Base URL that replaces the scheme://host/ of the image's yum/dnf repositories (e.g. for CentOS 7)."


@ci.command("render", context_settings=CONTEXT)
@click.argument("image", metavar="IMAGE[=BASE]")
@click.option("--purpose", type=click.Choice(["python", "kmod"]), default="python", show_default=True,
              help="python: the recipes' toolchain; kmod: the distribution's kernel headers too.")
@click.option("--kernel", metavar="VERSION", default="", help="kmod: the kernel release whose headers to install "
              "(as uname -r prints it, e.g. 6.1.0-50-amd64); default the newest.")
@click.option("--apt-mirror", metavar="URI", help=_APT_MIRROR_HELP)
@click.option("--yum-mirror", metavar="URL", help=_YUM_MIRROR_HELP)
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the Dockerfile to FILE, only when its content changed, instead of printing it.")
def ci_render(image: str, purpose: str, kernel: str, apt_mirror: str | None, yum_mirror: str | None,
              output: str | None) -> None:
    """Print the Dockerfile of IMAGE's builder (rendered from containers/<family>.Dockerfile.j2).

    \b
    Its sha256 is the builder image's cache key (label org.buildkit.template-hash): the image is built
    once and reused until the rendered text changes. No Docker engine is needed.

    \b
    Examples:
      buildkit ci render debian:12
      buildkit ci render centos:7 --yum-mirror http://HOST/centos-vault
      buildkit ci render debian:12=buildkit-base:debian-bookworm --purpose kmod --kernel 6.1.0-50-amd64
    """
    from buildkit.container.images import parse_image, render, write_if_changed

    ref = parse_image(image)
    rendered = render(ref, _ci_render_opts(ref, purpose, apt_mirror, yum_mirror, kernel))
    if output:
        changed = write_if_changed(output, rendered.dockerfile)
        click.echo(f"{output}: {'written' if changed else 'unchanged'} (template hash {rendered.hash[:12]}, "
                   f"image {rendered.tag})", err=True)
    else:
        click.echo(rendered.dockerfile, nl=False)


def _ci_matrix_spec(versions, images, openssls, sqlites, matrix_file):
    from buildkit.container.matrix import MatrixSpec, expand, load_matrix_file

    spec = MatrixSpec(tuple(images), tuple(versions), tuple(openssls), tuple(sqlites))
    if matrix_file:
        spec = load_matrix_file(matrix_file).merged(spec)
    return expand(spec)


@ci.command("python", context_settings=CONTEXT)
@click.argument("versions", nargs=-1, metavar="VERSION...")
@click.option("--image", "images", multiple=True, metavar="IMAGE[=BASE]", help="An image of the matrix (repeatable).")
@click.option("--with-openssl", "openssls", multiple=True, is_flag=False, flag_value="private", metavar="[V|system]",
              help="OpenSSL version(s) to build privately (repeatable; default and bare flag: buildkit's default "
                   "version), or system for the image's own.")
@click.option("--with-sqlite", "sqlites", multiple=True, is_flag=False, flag_value="private", metavar="[V|system]",
              help="The same for SQLite.")
@click.option("--matrix", "matrix_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="A TOML or JSON matrix: image, python, openssl, sqlite lists, [[include]] cells. Options given "
                   "on the command line replace the file's axis.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Where artifacts, JSON reports and logs/ go. An artifact already there is never overwritten.")
@click.option("--jobs", "-j", type=click.IntRange(1), help="Parallel make jobs inside (default: the engine's CPUs).")
@click.option("--source-dir", "source_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="Offline tarballs on this machine, matched by sha256 (repeatable).")
@click.option("--mirror", "mirrors", multiple=True, metavar="URL", help="A source mirror (as for buildkit python).")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), help="Download cache on this machine.")
@click.option("--no-debian", is_flag=True, help="Do not fall back to Debian's source packages.")
@click.option("--apt-mirror", metavar="URI", help=_APT_MIRROR_HELP)
@click.option("--yum-mirror", metavar="URL", help=_YUM_MIRROR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (the table goes to stderr).")
def ci_python(versions, images, openssls, sqlites, matrix_file, out_dir, jobs, source_dirs, mirrors, cache_dir,
              no_debian, apt_mirror, yum_mirror, as_json) -> None:
    """Build CPython with a private OpenSSL and SQLite in a container of each IMAGE; verify; package.

    \b
    For each image its builder (the template's toolchain, a non-root user; no libssl-dev/libsqlite3-dev)
    is built once and then found by template hash. Sources are fetched and checked on this machine,
    copied in, and the plan's sh script (as 'buildkit python --emit-script' writes it) runs inside with
    no network, as the build user, verifying the interpreter in place. The tree is then made relocatable
    ($ORIGIN runpaths, the private libraries inside, the distribution's CA directory), unpacked elsewhere
    with the build prefix deleted and verified again, and copied out as
      OUT/python-<v>-openssl-<v>-sqlite-<v>-<distro>-<arch>.tar.gz   and   OUT/<same>.json
    A summary table ends the run; a failed cell keeps its logs in OUT/logs/<name>/ and shows their tail.

    \b
    Exit status: 0 every cell built and verified, 1 a build or verification failed inside, 2 bad input
    (unknown image, no engine, an artifact that already exists, an image without a shell, a container
    stopped from outside).

    \b
    Examples:
      buildkit ci python 3.13 --with-openssl --with-sqlite --image debian:12 --image rocky:9 --out dist
      buildkit ci python 3.12 3.11.2 --with-openssl=3.0 --with-openssl=1.1.1w --image centos:7 --out dist
      buildkit ci python --matrix ci-matrix.toml --out dist --source-dir ~/tarballs
    """
    import signal

    from buildkit.container.engine import connect
    from buildkit.container.python import CiOptions, format_table, overall_error, results_json, run_cells, summary_rows
    from buildkit.pybuild.build import FetchOptions

    started = time.monotonic()
    cells = _ci_matrix_spec(versions, images, openssls, sqlites, matrix_file)
    engine = connect()

    def terminate(signum, frame):  # SIGTERM stops the build like Ctrl-C: the container is removed
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    fetch = FetchOptions(Path(cache_dir or _default_cache()), tuple(Path(d) for d in source_dirs), tuple(mirrors),
                         debian=not no_debian)
    opts = CiOptions(Path(out_dir), fetch, jobs, apt_mirror, yum_mirror or "")
    say = lambda line: click.echo(line, err=True)  # noqa: E731
    try:
        results = run_cells(cells, opts, engine, say, started)
    except KeyboardInterrupt:
        from buildkit.errors import Interrupted

        raise Interrupted("interrupted; the container was removed and no artifact was written",
                          fix=f"logs kept in {Path(out_dir) / 'logs'}") from None
    for r in results:
        if not r.ok and r.tail:
            click.echo(f"\n--- {r.name}: last lines of {r.logs}/build.log", err=True)
            for line in r.tail[-25:]:
                click.echo(f"  {line}", err=True)
    table = format_table(summary_rows(results))
    if as_json:
        click.echo("\n" + table, err=True)
        _print_json(results_json(results))
    else:
        click.echo("\n" + table)
    err = overall_error(results)
    if err is not None:
        raise err


@ci.command("symvers", context_settings=CONTEXT)
@click.argument("kbuild_args", nargs=-1, metavar='M=DIR... [KBUILD_EXTRA_SYMBOLS="F ..."]')
@click.option("--image", required=True, metavar="IMAGE[=BASE]", help="The distribution whose kernel headers to use.")
@click.option("--kernel", metavar="VERSION", default="",
              help="The kernel release (uname -r form, e.g. 6.1.0-50-amd64); default the newest the image offers.")
@click.option("--out", type=click.Path(file_okay=False), metavar="DIR",
              help="Keep the built trees, the headers' Module.symvers and the logs here (default: a temporary "
                   "folder, kept only when problems are found).")
@click.option("--apt-mirror", metavar="URI", help=_APT_MIRROR_HELP)
@click.option("--yum-mirror", metavar="URL", help=_YUM_MIRROR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print {\"modules\": [...], ...} as JSON.")
def ci_symvers(kbuild_args, image, kernel, out, apt_mirror, yum_mirror, as_json) -> None:
    """Build external modules against IMAGE's kernel headers in a container, then 'buildkit symvers check' them.

    \b
    Each M=DIR is copied in and built with 'make -C <headers> M=... modules' in the order given (a
    provider before its consumers), as the build user with no network; KBUILD_EXTRA_SYMBOLS files
    inside an M= folder refer to its copy. A failed modpost is not the end: the check explains it and
    gives the fix, with paths naming your folders.

    \b
    Exit status: 0 clean, 1 problems found (or a build failed with nothing to check), 2 bad input.

    \b
    Examples:
      buildkit ci symvers M=./mydriver --image debian:12 --kernel 6.1.0-50-amd64
      buildkit ci symvers M=prov M=cons KBUILD_EXTRA_SYMBOLS=prov/Module.symvers --image rocky:9
    """
    from buildkit.container.engine import connect
    from buildkit.container.images import parse_image
    from buildkit.container.symvers import SymversJob, run_symvers

    m_dirs: list[Path] = []
    extra: tuple[str, ...] = ()
    for arg in kbuild_args:
        key, sep, value = arg.partition("=")
        if sep and key == "M" and value:
            m_dirs.append(Path(value))
        elif sep and key == "KBUILD_EXTRA_SYMBOLS":
            extra += tuple(value.split())
        else:
            raise InputError(f"unexpected argument {arg!r}",
                             fix="pass M=DIR (repeatable) and KBUILD_EXTRA_SYMBOLS=\"F ...\"")
    if not m_dirs:
        raise InputError("M=DIR is required", fix="pass the folder of the external module, e.g. M=$PWD")
    ref = parse_image(image)
    engine = connect()
    job = SymversJob(ref, tuple(m_dirs), extra, kernel, Path(out) if out else None, apt_mirror, yum_mirror or "")
    result = run_symvers(job, engine, lambda line: click.echo(line, err=True))
    if as_json:
        _print_json(result.to_json())
    else:
        for b in result.builds:
            click.echo(f"make M={b.m_dir}: {'ok' if b.ok else 'failed'}  (log {b.log})")
        _print_module_reports(result.reports)
        if result.kept:
            click.echo(f"built trees and logs kept in {result.work}", err=True)
    if result.problems:
        sys.exit(1)


@ci.command("matrix", context_settings=CONTEXT)
@click.option("--format", "fmt", type=click.Choice(["github-actions", "gitlab", "json"]), required=True,
              help="github-actions: a workflow whose matrix.include lists every cell; gitlab: one job per cell; "
                   "json: the cells.")
@click.option("--image", "images", multiple=True, metavar="IMAGE[=BASE]", help="An image (repeatable).")
@click.option("--python", "pythons", multiple=True, metavar="VERSION", help="A CPython version (repeatable).")
@click.option("--with-openssl", "openssls", multiple=True, is_flag=False, flag_value="private", metavar="[V|system]",
              help="OpenSSL version(s) (repeatable; default buildkit's default).")
@click.option("--with-sqlite", "sqlites", multiple=True, is_flag=False, flag_value="private", metavar="[V|system]",
              help="SQLite version(s) (repeatable).")
@click.option("--matrix", "matrix_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="A TOML or JSON matrix file, as for 'buildkit ci python'.")
@click.option("--pip", "pip_spec", metavar="SPEC",
              help="How the jobs install buildkit (default buildkit==<this version>).")
def ci_matrix(fmt, images, pythons, openssls, sqlites, matrix_file, pip_spec) -> None:
    """Print the cross product IMAGE x VERSION x OpenSSL x SQLite as a CI workflow, one job per cell.

    \b
    Each job installs buildkit and runs 'buildkit ci python' for its cell on the runner's Docker engine,
    uploading the artifact and its report, so the matrix fans out on the CI system you already have.
    Versions are resolved and checked here (3.12 -> the newest 3.12 buildkit knows).

    \b
    Examples:
      buildkit ci matrix --format github-actions --image debian:12 --image centos:7 --python 3.13 --python 3.11 \\
          > .github/workflows/python-builds.yml
      buildkit ci matrix --format gitlab --image rocky:9 --python 3.12 --with-openssl 3.0 --with-openssl 3.5
    """
    from buildkit.container.matrix import cells_json, github_actions, gitlab

    cells = _ci_matrix_spec(pythons, images, openssls, sqlites, matrix_file)
    if fmt == "json":
        _print_json({"cells": cells_json(cells)})
    elif fmt == "gitlab":
        click.echo(gitlab(cells, pip_spec=pip_spec), nl=False)
    else:
        click.echo(github_actions(cells, pip_spec=pip_spec), nl=False)


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
