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
    from buildkit.kmod.deps import DependencyCycle, collect, cycle_lines, format_dot, format_modules_dep, graph_json
    from buildkit.kmod.deps import stderr_progress

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
@click.option("--prefix", type=click.Path(file_okay=False), help="Where the Python goes (made a symlink to a verified build).")
@click.option("--with-openssl", "with_openssl", is_flag=False, flag_value="private", default=None, metavar="[V|PREFIX|system]",
              help="Build a private OpenSSL (default version, or V), use one installed at PREFIX, or the system's. "
                   "Without it: the system's when new enough for this CPython, else a private one.")
@click.option("--with-sqlite", "with_sqlite", is_flag=False, flag_value="private", default=None, metavar="[V|PREFIX|system]",
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
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), help="Download cache (default ~/.cache/buildkit/sources).")
@click.option("--no-debian", is_flag=True, help="Do not fall back to Debian's source packages when upstream is unreachable.")
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
            versions = sorted({s.version for s in catalog.sources(package)}, key=lambda v: catalog.parse_version(package, v))
            click.echo(f"{package}: {' '.join(versions)}")
        return
    if not prefix:
        raise InputError("--prefix DIR is required", fix="e.g. --prefix /opt/python-3.11")
    from buildkit.pybuild.build import FetchOptions, build_python, dry_run as plan_only, with_jobs

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
@click.option("--expect-openssl", metavar="V", help="The OpenSSL version ssl.OPENSSL_VERSION must show (3.0.20, 1.1.1w).")
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
