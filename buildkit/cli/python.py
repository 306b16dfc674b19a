"""``buildkit python``, ``verify`` and ``doctor``: CPython with a private OpenSSL and SQLite
(:mod:`buildkit.pybuild`), built, checked and explained."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

import click

from buildkit.cli.fetch import fetch_options
from buildkit.cli.options import profile_tests, profile_tests_option
from buildkit.cli.output import (
    CONTEXT,
    print_checks,
    print_json,
    print_verification,
    problems_found,
    say,
    stdin_text,
)
from buildkit.errors import InputError

if TYPE_CHECKING:
    from buildkit.pybuild.choice import LibraryChoice


@click.command("python", context_settings=CONTEXT)
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
@click.option("--optimize", is_flag=True,
              help="PGO + LTO (--enable-optimizations --with-lto), the profile run (CPython's test suite) on "
                   "--jobs workers: a faster interpreter, a several times longer build. A build of its own: "
                   "the plain one of the same version is not reused.")
@profile_tests_option
@click.option("--portable", is_flag=True,
              help="A tree that runs on every x86-64 Linux with glibc --glibc or newer (CentOS 7, Alibaba Cloud "
                   "Linux 2/3, Debian, Ubuntu, SUSE), wherever it is copied: built with this host's gcc on an old "
                   "glibc's sysroot (an npm package, fetched with npm and checked), OpenSSL, SQLite, zlib, bzip2, "
                   "xz and libffi built from checked sources and linked statically. CPython 3.12 and newer.")
@click.option("--glibc", "glibc", metavar="V", default=None,
              help="--portable's floor: no file of the build may need a newer glibc (default 2.17, CentOS 7).")
@click.option("--toolchain", "toolchain_dir", type=click.Path(exists=True), metavar="DIR|TGZ",
              help="--portable's toolchain already at hand: the npm package's .tgz, or its tree unpacked.")
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
@click.option("--update-deps", is_flag=True,
              help="Security update of the installed build's private OpenSSL/SQLite (--with-openssl=V, "
                   "--with-sqlite=V) without recompiling CPython: build the library, repoint a copy, verify, switch.")
@click.option("--rollback", is_flag=True, help="Switch PREFIX back to the verified build the current one replaced.")
@click.option("--list", "list_versions", is_flag=True, help="List the versions buildkit knows and exit.")
def python_cmd(version, prefix, with_openssl, with_sqlite, jobs, optimize, profile_tests_text, portable, glibc,
               toolchain_dir, clean, keep, dry_run, as_json, source_dirs, mirrors, cache_dir, no_debian, emit_script,
               update_deps, rollback, list_versions) -> None:
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
    VERSION 3.13.5, or a series (3.13: its newest release in the catalog, 3.13.15). Without VERSION the
    default is 3.13.5, the newest whose tarball Debian's archive carries: it builds on a host that reaches
    only Debian's mirrors. The same for --with-openssl/--with-sqlite (bare: 3.0.20, 3.40.1).

    \b
    Sources come from the cache, --source-dir, --mirror, upstream, then Debian's source packages, and
    are checked against the catalog's sha256 and size either way.

    \b
    Security updates without a rebuild: --update-deps --with-openssl=V [--with-sqlite=V] builds only the
    new private library, copies the installed build with its rpaths (DT_RPATH, by patchelf) pointed at it,
    verifies the copy and switches to it; CPython is not recompiled (sys.version is compared). An update
    to another ABI (OpenSSL 1.1.1 against 3.x: another soname) is refused with the rebuild command.
    --rollback goes back to the build the current one replaced (kept until the next build or update).

    \b
    Exit status: 0 built and verified, 1 build or verification failed, 2 bad input.

    \b
    Examples:
      buildkit python 3.11.2 --with-openssl --with-sqlite --prefix /opt/python-3.11
      buildkit python 3.12 --with-openssl=3.0 --prefix ~/py312 --source-dir ~/tarballs
      buildkit python 3.13.5 --with-openssl --with-sqlite --optimize --prefix /opt/python-3.13
      buildkit python 3.13.5 --portable --prefix /opt/python-3.13-portable
      buildkit python 3.11.2 --with-openssl --prefix /opt/py --dry-run
      buildkit python 3.11.2 --with-openssl --prefix /opt/py --emit-script build.sh
      buildkit python --prefix /opt/python-3.11 --update-deps --with-openssl=3.5.7 --with-sqlite=3.46.1
      buildkit python --prefix /opt/python-3.11 --rollback
    """
    from buildkit import catalog
    from buildkit.pybuild.choice import LibraryChoice
    from buildkit.pybuild.plan import Request

    if list_versions:
        _list_versions(version, as_json)
        return
    if version is not None and not version.strip():
        raise InputError("VERSION is empty", fix="give a CPython version (e.g. 3.13.5), or none for the default")
    if version in ("verify", "doctor", "fetch", "bundle"):
        raise InputError(f"'buildkit python {version}': {version} is a command of its own, not a Python version",
                         fix=f"buildkit {version} --help")
    with_openssl = LibraryChoice.parse("openssl", with_openssl)
    with_sqlite = LibraryChoice.parse("sqlite", with_sqlite)
    _check_eaten_version(version, with_openssl, with_sqlite)
    if not prefix:
        raise InputError("--prefix DIR is required", fix="e.g. --prefix /opt/python-3.11")
    if (update_deps or rollback) and optimize:
        raise InputError(f"{'--update-deps' if update_deps else '--rollback'} does not take --optimize",
                         fix="drop --optimize: the installed interpreter is kept as it was built")
    if (glibc or toolchain_dir) and not portable:
        raise InputError(f"{'--glibc' if glibc else '--toolchain'} is an option of --portable", fix="add --portable")
    if portable and update_deps:
        raise InputError("--portable with --update-deps: not supported yet",
                         fix="build again with --portable (the private libraries are linked in statically)")
    if toolchain_dir and emit_script:
        raise InputError("--toolchain with --emit-script: the script is given its toolchain where it runs",
                         fix="drop --toolchain; run the script as: sh SCRIPT SOURCES_DIR TOOLCHAIN(.tgz or folder)")
    if update_deps or rollback:
        _update_or_rollback(version, prefix, with_openssl, with_sqlite, jobs, clean, keep, dry_run, as_json,
                            fetch_options(cache_dir, source_dirs, mirrors, no_debian), emit_script, update_deps,
                            rollback)
        return
    from buildkit.pybuild.build import build_python, with_jobs
    from buildkit.pybuild.build import dry_run as plan_only

    salt = str(time.time_ns()) if clean else ""
    trained_on = profile_tests(profile_tests_text, optimize)
    fetch = fetch_options(cache_dir, source_dirs, mirrors, no_debian)
    toolchain = None
    if portable:
        from buildkit.pybuild.plan import check_portable
        from buildkit.pybuild.toolchain import DEFAULT_GLIBC, ensure_toolchain, script_toolchain, spec_for

        check_portable(catalog.find("cpython", version or catalog.default("cpython")).version, with_openssl,
                       with_sqlite)
        spec_for(glibc or DEFAULT_GLIBC)  # a --glibc no toolchain reaches: said before anything is fetched
        if emit_script:  # the script checks and unpacks the toolchain it is given where it runs
            toolchain = script_toolchain(glibc or DEFAULT_GLIBC)
        else:
            toolchain = ensure_toolchain(glibc or DEFAULT_GLIBC, fetch.cache_dir, toolchain_dir, say)
    req = with_jobs(Request(version or catalog.default("cpython"), prefix, with_openssl, with_sqlite, clean=clean,
                            optimize=optimize, salt=salt, toolchain=toolchain, profile_tests=trained_on), jobs)
    if dry_run or emit_script:
        # With --source-dir, the tarballs that are really there decide (e.g. SQLite's full tree).
        plan = plan_only(req, fetch if source_dirs else None)
        if emit_script:
            from buildkit.pybuild.script import write_script

            write_script(plan, emit_script)
            tail = (f"SOURCES_DIR TOOLCHAIN  (TOOLCHAIN: npm pack {toolchain.spec.spec}, or the folder it was "
                    "unpacked into)" if toolchain else "[SOURCES_DIR]")
            say(f"wrote {emit_script}: sh {emit_script} {tail}")
        elif as_json:
            print_json(plan.to_json())
        else:
            _print_plan(plan)
        return
    import signal

    def terminate(signum, frame):  # SIGTERM stops the build like Ctrl-C: make's process group is killed too
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    result = build_python(req, fetch, keep=keep, say=say)
    if as_json:
        print_json(result.record.to_json())
        return
    if result.noop:
        click.echo(f"{prefix}: already built and verified ({result.plan.build_id}); nothing to do")
    else:
        click.echo(f"{prefix} -> {result.plan.install_dir}  ({result.seconds:.0f} s)")
    print_verification(result.record.verification, result.record.portable is not None)


def _update_or_rollback(version, prefix, with_openssl, with_sqlite, jobs, clean, keep, dry_run, as_json, fetch,
                        emit_script, update_deps, rollback) -> None:
    import os

    from buildkit.pybuild.choice import AUTO

    if update_deps and rollback:
        raise InputError("--update-deps and --rollback together", fix="run one, then the other")
    flag = "--update-deps" if update_deps else "--rollback"
    for name, given in (("--clean", clean), ("--emit-script", emit_script)):
        if given:
            raise InputError(f"{flag} does not take {name}",
                             fix=f"drop {name}" + (" (the emitted script does full builds only)"
                                                   if name == "--emit-script" else ""))
    if rollback:
        if with_openssl.kind != AUTO or with_sqlite.kind != AUTO or version or dry_run:
            raise InputError("--rollback takes only --prefix (and --json)",
                             fix=f"buildkit python --prefix {prefix} --rollback")
        from buildkit.pybuild.update import rollback as do_rollback

        was, now, record = do_rollback(prefix)
        libs = {k: record.library(k) for k in ("openssl", "sqlite")}
        if as_json:
            print_json({"prefix": prefix, "from": was, "to": now,
                        **{k: lib.to_json() if lib else None for k, lib in libs.items()},
                        "build_id": record.build_id or None})
        else:
            versions = ", ".join(f"{k} {(lib.version if lib else '') or '?'}" for k, lib in libs.items())
            click.echo(f"{prefix} -> {now}  (rolled back from {os.path.basename(was)}; {versions})")
        return
    from buildkit.pybuild.build import with_jobs
    from buildkit.pybuild.install import current_install
    from buildkit.pybuild.plan import Request
    from buildkit.pybuild.update import plan_update, update_versions
    from buildkit.pybuild.update import update_deps as do_update

    wanted = (with_openssl, with_sqlite)
    update_versions(wanted)  # a version for each library named, and at least one: said before anything is read
    jobs = with_jobs(Request("", prefix), jobs).jobs
    if version:
        installed = os.path.basename(current_install(prefix) or "").split("-")[0]
        if installed and version != installed:
            raise InputError(f"--update-deps keeps the installed CPython {installed}, not {version}",
                             fix=f"to change CPython, build it: buildkit python {version} --prefix {prefix} ...")
    if dry_run:
        plan, _ = plan_update(prefix, wanted, None, jobs)
        if as_json:
            print_json(plan.to_json())
        else:
            click.echo(f"update {plan.current} -> {plan.install_dir} (CPython {plan.cpython} not recompiled)")
            for comp in plan.components:
                click.echo(f"  build {comp.package} {comp.version} -> {comp.prefix}")
                for step in comp.steps:
                    run = step.run
                    click.echo(f"    {step.phase:<9} " + (" ".join(run.argv) if hasattr(run, "argv") else run.name))
            for old, new in plan.mapping:
                click.echo(f"  repoint {old} -> {new}")
        return
    import signal

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    result = do_update(prefix, wanted, fetch, jobs=jobs, keep=keep, say=say)
    if as_json:
        print_json(result.record.to_json())
        return
    libs = {k: result.record.library(k) for k in ("openssl", "sqlite")}
    versions = ", ".join(f"{k} {lib.version if lib else None}" for k, lib in libs.items())
    if result.noop:
        click.echo(f"{prefix}: already at {versions} and verified again; nothing to do")
        print_verification(result.record.verification)
        return
    assert result.plan is not None  # only a no-op update has no plan
    click.echo(f"{prefix} -> {result.plan.install_dir}  ({result.seconds:.0f} s; {versions}; "
               f"CPython not recompiled; previous build kept: {result.plan.current})")
    print_verification(result.record.verification, result.record.portable is not None)


def _list_versions(series: str | None, as_json: bool) -> None:
    """--list [VERSION] [--json]: the catalog's versions of every package, or CPython's of one series."""
    from buildkit import catalog

    table = {}
    for package in catalog.PACKAGES if series is None else ("cpython",):
        versions = sorted({s.version for s in catalog.sources(package)},
                          key=functools.partial(catalog.parse_version, package))
        if series is not None:
            versions = [v for v in versions if v == series or v.startswith(series + ".")]
            if not versions:
                raise InputError(f"--list {series}: no CPython {series} in the catalog",
                                 fix=catalog.suggest("cpython", series))
        table[package] = versions
    if as_json:
        print_json(table)
        return
    for package, versions in table.items():
        click.echo(f"{package}: {' '.join(versions)}")


def _check_eaten_version(version: str | None, *wanted: LibraryChoice) -> None:
    """``--with-sqlite 3.11.2`` with no VERSION: the option took the word meant as CPython's version (its value
    is optional, so click gives it the next word). Said, with both readings' spelling, instead of failing on
    "sqlite 3.11.2 is not in the catalog"."""
    from buildkit import catalog
    from buildkit.pybuild.choice import VERSION

    if version is not None:
        return
    for choice in wanted:
        if choice.kind != VERSION:
            continue
        package, value = choice.package, choice.value
        known = {s.version for s in catalog.sources(package)}
        pythons = {s.version for s in catalog.sources("cpython")}
        if value not in known and (value in pythons or any(p.startswith(value + ".") for p in pythons)):
            raise InputError(f"--with-{package} {value}: {value} was read as {package}'s version, and it is a CPython "
                             f"version", fix=f"for CPython write it first: buildkit python {value} --with-{package} "
                                             f"...; for {package} write --with-{package}={value}")


def _print_plan(plan) -> None:
    """Every decision and command, as a shell would read them (quoted with shlex: an audit before running as
    root must not read ``PROFILE_TASK=-m test ... || true`` as make's failure being ignored), full checksums,
    and the steps after the builds."""
    import shlex

    optimized = ", PGO + LTO" if plan.request.optimize else ""
    portable = f", portable: glibc >= {plan.request.toolchain.glibc}" if plan.request.toolchain else ""
    click.echo(f"CPython {plan.request.cpython} -> {plan.request.prefix} (build {plan.build_id}{optimized}{portable})")
    for choice in (plan.openssl, plan.sqlite):
        where = f" at {choice.prefix}" if choice.prefix else ""
        click.echo(f"  {choice.package}: {choice.how} {choice.version}{where}  ({choice.reason})")
    for comp in plan.components:
        click.echo(f"{comp.package} {comp.version}  [{comp.source.filename}, sha256 {comp.source.sha256}]")
        for step in comp.steps:
            run = step.run
            if hasattr(run, "argv"):
                cd = f"cd {shlex.quote(run.cwd)} && " if run.cwd else ""
                env = " ".join(f"{k}={shlex.quote(v)}" for k, v in run.env)
                text = f"{cd}{env + ' ' if env else ''}{shlex.join(run.argv)}"
            else:
                text = f"(buildkit: {run.name} {shlex.join(run.args)})"
            click.echo(f"  {step.phase:<9} {text}")
    click.echo(f"then      verify {plan.python} (env -i; the checks of 'buildkit verify'); only if it passes, "
               f"switch {plan.request.prefix} -> {plan.install_dir} (one rename)")


@click.command("verify", context_settings=CONTEXT)
@click.argument("python", metavar="PYTHON")
@click.option("--expect-openssl", metavar="V",
              help="The OpenSSL version ssl.OPENSSL_VERSION must show (3.0.20, 1.1.1w).")
@click.option("--expect-sqlite", metavar="V", help="The SQLite version sqlite3.sqlite_version must show (3.46.1).")
@click.option("--private-prefix", "private_prefixes", multiple=True, metavar="DIR",
              help="libssl, libcrypto and libsqlite3 must be loaded from under DIR (repeatable).")
@click.option("--expect-optimized", is_flag=True,
              help="Require PGO + LTO (configured --enable-optimizations --with-lto, objects compiled with -flto).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_cmd(python: str, expect_openssl: str | None, expect_sqlite: str | None, private_prefixes: tuple[str, ...],
               expect_optimized: bool, as_json: bool) -> None:
    """Check that the interpreter PYTHON has a working ssl, hashlib, sqlite3 and pip, and which libraries it loads.

    One probe runs with PYTHON under 'env -i PATH=/usr/bin:/bin LANG=C.UTF-8', in isolated mode (-I), pip
    with PIP_CONFIG_FILE=/dev/null: SSL_CERT_FILE, LD_LIBRARY_PATH, PIP_* and /etc/pip.conf of this shell
    cannot hide a broken build. It imports ssl, _ssl, _hashlib, smtplib.SMTP_SSL and sqlite3, compares the
    OpenSSL headers the module was compiled against with the library it runs, calls
    create_function(deterministic=True), uses SQLite's JSON functions, FTS5, R*Tree and window functions,
    counts the CA certificates of ssl.create_default_context() and names the file or directory they came
    from (and the host's CA store and the fix when there are none), makes a TLS 1.2 and a TLS 1.3 handshake
    over loopback (CA and certificate made for it by the OpenSSL in use), runs 'python -m pip --version'
    (or finds ensurepip), and reads /proc/self/maps for the libssl, libcrypto and libsqlite3 actually
    loaded; with --private-prefix, also with LD_LIBRARY_PATH naming the system's library directories
    (a DT_RUNPATH gives way to it, a DT_RPATH does not). Optional modules (_ctypes, _bz2, _lzma, zlib,
    readline, _uuid, _dbm, _gdbm, _tkinter, _curses) are listed with the Debian and RHEL packages that
    bring them. How it was built is read from its sysconfig: "PGO + LTO" (required with --expect-optimized).
    Then, on this side, every ELF file of the install (site-packages aside) is read: the highest GLIBC_
    version needed (the oldest glibc it runs on), DT_NEEDED against an allow-list, and RELRO, stack and text
    relocations (reported).

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
                    private_prefixes=private_prefixes, expect_optimized=expect_optimized, say=say)
    if as_json:
        print_json(report.to_json())
    else:
        click.echo(f"{report.executable} (Python {report.python_version})")
        print_checks([(c.name, c.ok, c.required, c.detail) for c in report.checks])
        click.echo("\noptional modules:")
        for m in report.optional:
            state = "present" if m.present else "MISSING"
            click.echo(f"  {m.name:<9} {state:<7}  {m.description:<32} Debian: {m.debian:<34} RHEL: {m.rhel}")
        failed = report.failed
        click.echo("\n" + ("all required checks passed" if not failed else
                           f"{len(failed)} required check(s) failed: {', '.join(c.name for c in failed)}"))
    if not report.ok:
        problems_found()


@click.command("doctor", context_settings=CONTEXT)
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
        findings = doctor_text(stdin_text(fix="pipe a build log in or name the file"), source="stdin")
    else:
        findings = doctor(target)
    problems = [f for f in findings if f.problem]
    if as_json:
        print_json({"target": target, "ok": not problems, "findings": [f.to_json() for f in findings]})
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
        problems_found()

