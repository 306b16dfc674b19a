"""``buildkit python``: fetch, build in a work tree, verify in place, then switch the prefix atomically.

The prefix is a symlink to ``PREFIX.buildkit/builds/<id>``; a build happens beside the current one and
the link moves only after verification passed, so a failed, interrupted or full-disk run leaves the
previous install exactly as it was. Private OpenSSL and SQLite builds are kept under ``deps/`` and reused
while their sources, arguments and compiler are the same.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from buildkit import __version__, catalog
from buildkit.errors import BuildFailed, CheckFailed, InputError, Interrupted
from buildkit.pybuild.host import HostInfo, probe_host, require_compiler, require_optimizer, require_tools
from buildkit.pybuild.plan import Choice, Component, Plan, Request, Step, make_plan
from buildkit.pybuild.recipe import Action
from buildkit.pybuild.record import (
    BuildRecord,
    ComponentRecord,
    Host,
    Library,
    Modules,
    Optimization,
    Portable,
    RecordError,
    Relocatable,
    SourceRecord,
    StepRecord,
    Verification,
)
from buildkit.pybuild.runner import LocalRunner, tail

__all__ = ["BuildResult", "FetchOptions", "build_python", "plan_for", "current_install"]

MARKER = ".buildkit-complete"


@dataclass(frozen=True)
class FetchOptions:
    cache_dir: Path
    source_dirs: tuple[Path, ...] = ()
    mirrors: tuple[str, ...] = ()
    debian: bool = True


@dataclass(frozen=True)
class BuildResult:
    plan: Plan
    noop: bool
    verification: object | None  # buildkit.pybuild.verify.VerifyReport
    record: BuildRecord
    seconds: float
    summary: Modules


def current_install(prefix: str) -> str | None:
    """The build directory the prefix links to, if buildkit made it."""
    prefix = os.path.abspath(prefix)
    if os.path.islink(prefix):
        target = os.path.realpath(prefix)
        if target.startswith(os.path.realpath(prefix + ".buildkit") + os.sep):
            return target
    return None


def _check_prefix(prefix: str) -> None:
    prefix = os.path.abspath(prefix)
    if os.path.islink(prefix):
        if current_install(prefix) is None:
            raise InputError(f"--prefix {prefix} is a symlink buildkit did not make", fix="choose another --prefix")
    elif os.path.isdir(prefix):
        if os.listdir(prefix):
            raise InputError(
                f"--prefix {prefix} exists and was not made by buildkit",
                fix="choose a new --prefix (buildkit makes it a symlink to a verified build) or remove it",
            )
    elif os.path.exists(prefix):
        raise InputError(f"--prefix {prefix} exists and is not a directory", fix="choose another --prefix")
    parent = os.path.dirname(prefix)
    if not os.path.isdir(parent):
        # the first part of the path that exists: a file there cannot hold the prefix, whatever mkdir -p does
        blocker = next((a for a in _ancestors(parent) if os.path.exists(a) and not os.path.isdir(a)), None)
        if blocker is not None:
            raise InputError(f"--prefix {prefix}: {blocker} is a file, not a directory",
                             fix="choose a --prefix under a directory")
        raise InputError(f"--prefix {prefix}: {parent} does not exist", fix=f"mkdir -p {parent}")
    if not os.access(parent, os.W_OK):
        raise InputError(f"--prefix {prefix}: {parent} is not writable", fix="choose a prefix you can write to")


def _ancestors(path: str) -> list[str]:
    """``/a/b/c`` -> ``["/a", "/a/b", "/a/b/c"]``."""
    parts, out = path.rstrip("/").split("/"), []
    for i in range(2, len(parts) + 1):
        out.append("/".join(parts[:i]))
    return out


def _resolve_prefix_choice(value: str | None, package: str) -> str | None:
    if value and "/" in value:
        marker = "include/openssl/opensslv.h" if package == "openssl" else "include/sqlite3.h"
        if not os.path.isfile(os.path.join(value, marker)):
            raise InputError(f"--with-{package}={value}: no {marker} there",
                             fix=f"pass the prefix a {package} was installed to")
    return value


def plan_for(req: Request, host: HostInfo | None = None, fetch: FetchOptions | None = None,
             say: Callable[[str], None] = lambda s: None) -> tuple[Plan, dict[str, Path]]:
    """The plan, and (when ``fetch`` is given) the verified tarball of every component it builds."""
    host = host or probe_host()
    _resolve_prefix_choice(req.with_openssl, "openssl")
    _resolve_prefix_choice(req.with_sqlite, "sqlite")
    plan = make_plan(req, host)
    if fetch is None:
        return plan, {}
    from buildkit.sources import fetch_first

    files: dict[str, Path] = {}
    chosen = {}
    for comp in plan.components:
        got = fetch_first(catalog.candidates(comp.package, comp.version), cache_dir=fetch.cache_dir,
                          mirrors=fetch.mirrors, source_dirs=fetch.source_dirs, debian=fetch.debian, warn=say)
        files[comp.package], chosen[comp.package] = got.path, got.source
        say(f"    source: {got.source.filename} ({got.source.sha256[:12]}..., {got.origin}) checked")
    if any(chosen[c.package] != c.source for c in plan.components):
        plan = make_plan(req, host, chosen)
    return plan, files


def now() -> str:
    """A record's ``created``: now, UTC, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def library_record(choice: Choice) -> Library:
    return Library(choice.how, choice.version, choice.prefix, choice.reason)


def source_record(comp: Component) -> SourceRecord:
    s = comp.source
    return SourceRecord(comp.package, comp.version, s.filename, s.url, s.sha256, s.license, s.checksum_from)


def _step_record(step: Step) -> StepRecord:
    if isinstance(step.run, Action):
        return StepRecord(step.phase, step.run.name, step.run.args)
    return StepRecord(step.phase, argv=step.run.argv, env=dict(step.run.env), cwd=step.run.cwd)


def _record(plan: Plan, verification, summary: Modules, seconds: float, optimization: dict | None = None, *,
            request_id: str = "", component_seconds: dict[str, float] | None = None,
            relocatable: dict | None = None, previous: str = "") -> BuildRecord:
    """The record of a build of ``plan`` (``verification``: its VerifyReport)."""
    tc = plan.request.toolchain
    return BuildRecord(
        buildkit=__version__, created=now(), build_id=plan.build_id, prefix=plan.request.prefix, python=plan.python,
        host=Host(plan.host.os, plan.host.compiler, plan.host.glibc, plan.host.ca_file, plan.host.ca_dir),
        openssl=library_record(plan.openssl), sqlite=library_record(plan.sqlite),
        sources=tuple(source_record(c) for c in plan.components),
        steps=tuple(ComponentRecord(c.package, c.version, c.source.sha256, c.source.filename, c.prefix,
                                    tuple(_step_record(s) for s in c.steps)) for c in plan.components),
        optimize=plan.request.optimize,
        # None, or the glibc floor targeted and the toolchain
        portable=Portable(tc.glibc, tc.spec.glibc, tc.spec.spec, tc.root) if tc is not None else None,
        optimization=Optimization(**optimization) if optimization is not None else None,
        modules=summary,
        verification=Verification.from_json(verification.to_json()) if verification is not None else None,
        verified=bool(verification is not None and verification.ok), seconds=round(seconds, 1),
        request_id=request_id, component_seconds=dict(component_seconds or {}),
        relocatable=Relocatable.from_json(relocatable) if relocatable is not None else None, previous=previous,
    )


def _read_record(install_dir: str) -> BuildRecord | None:
    """The record of ``install_dir``; None when it has none or one buildkit cannot read (so not this build)."""
    try:
        return BuildRecord.load(install_dir)
    except RecordError:
        return None


def _action_args(step: Step) -> tuple[str, ...]:
    """The arguments of an action step: the runner hands an action's handler only that action's steps."""
    assert isinstance(step.run, Action)
    return step.run.args


class _Actions:
    """The runner's implementation of the plan's non-command steps."""

    def __init__(self, plan: Plan | None) -> None:  # None: --update-deps (no action reads the plan)
        self.plan = plan
        self.summary = Modules()
        self.optimization: dict | None = None  # --optimize: what the build log and the tree show
        self.relocated: dict | None = None  # --portable: what was made to follow the tree

    def link_ca_store(self, step: Step, comp: Component, runner: LocalRunner) -> None:
        ssl_dir, ca_file, ca_dir = _action_args(step)
        if not ca_file and not ca_dir:
            raise BuildFailed("this host has no CA certificates for the private OpenSSL to use",
                              fix="install ca-certificates (Debian and RHEL)")
        os.makedirs(ssl_dir, exist_ok=True)
        for name, target in (("cert.pem", ca_file), ("certs", ca_dir)):
            link = os.path.join(ssl_dir, name)
            if target and not os.path.lexists(link):
                os.symlink(target, link)

    def check_modules(self, step: Step, comp: Component, runner: LocalRunner) -> None:
        from buildkit.pybuild.doctor import parse_make_summary

        text = "".join(tail(runner.log_path(s), 400) for s in comp.steps if s.phase in ("build", "install"))
        summary = parse_make_summary(text)
        self.summary = Modules(tuple(summary.missing), tuple(summary.failed), tuple(summary.removed))
        if summary.ssl_message:  # setup.py's two lines: "Could not build the ssl module!" and the reason
            lines = text.splitlines()
            at = next(i for i, line in enumerate(lines) if "Could not build the ssl module!" in line)
            why = " ".join(line.strip() for line in lines[at : at + 2] if line.strip())
            log = next(runner.log_path(s) for s in comp.steps if s.phase == "build")
            raise BuildFailed(f"_ssl was not built: {why}", fix=f"full log kept: {log}")
        for module in _action_args(step):
            for label, names in (("not found", summary.missing), ("failed to build", summary.failed),
                                 ("built but removed because it could not be imported", summary.removed)):
                if module in names:
                    raise BuildFailed(f"required module {module} {label}",
                                      fix="run 'buildkit doctor' on the work tree kept under " + comp.srcdir)

    def check_test_suite(self, step: Step, comp: Component, runner: LocalRunner) -> None:
        (srcdir,) = _action_args(step)
        if not os.path.isdir(os.path.join(srcdir, "Lib", "test", "libregrtest")):
            raise InputError(f"{comp.source.filename} has no Lib/test/libregrtest: --optimize profiles CPython "
                             "with its own test suite", fix="use upstream's full tarball, or drop --optimize")

    def check_optimized(self, step: Step, comp: Component, runner: LocalRunner) -> None:
        (srcdir,) = _action_args(step)
        log = next(runner.log_path(s) for s in comp.steps if s.phase == "build")
        self.optimization = optimization_evidence(srcdir, log)
        ran, _, total = self.optimization["profile_tests"].partition("/")
        missing = [what for what, ok in (("complete profile run (regrtest got to "
                                          f"{self.optimization['profile_tests']} test files)",
                                          int(ran) == int(total) > 0),
                                         ("profile data (.gcda or code.profclangd) in " + srcdir,
                                          self.optimization["profile_files"] > 0),
                                         ("compiles with -fprofile-use", self.optimization["pgo"]),
                                         ("compiles with -flto", self.optimization["lto"])) if not ok]
        if missing:
            raise BuildFailed(f"--optimize: the build shows no {', no '.join(missing)}",
                              fix=f"read the profile run in {log}")

    def make_relocatable(self, step: Step, comp: Component, runner: LocalRunner) -> None:
        from buildkit.pybuild.relocate import relocate_in_place

        prefix, *deps = _action_args(step)
        self.relocated = relocate_in_place(prefix, deps)

    def table(self) -> dict:
        return {"link-ca-store": self.link_ca_store, "check-modules": self.check_modules,
                "check-test-suite": self.check_test_suite, "check-optimized": self.check_optimized,
                "make-relocatable": self.make_relocatable}


def optimization_evidence(srcdir: str, build_log: str) -> dict:
    """What proves a PGO + LTO build: profile data left in the tree by the profile run (gcc: one .gcda per
    object; clang: the merged code.profclangd), the final compiles with -fprofile-use and -flto, and how many
    tests the profile run went through ("[ 12/44] test_x" lines)."""
    files = 0
    for _root, _dirs, names in os.walk(srcdir):
        files += sum(1 for n in names if n.endswith(".gcda") or n == "code.profclangd")
    pgo = lto = False
    ran, total = 0, 0
    with open(build_log, encoding="utf-8", errors="replace") as f:
        for line in f:
            if " -c " in line or line.startswith(("gcc ", "cc ", "clang ")):
                pgo = pgo or ("-fprofile-use" in line or "-fprofile-instr-use" in line)
                lto = lto or "-flto" in line
            found = _PROGRESS.search(line)
            if found:
                ran, total = max(ran, int(found[1])), max(total, int(found[2]))
    return {"pgo": pgo, "lto": lto, "profile_files": files, "profile_tests": f"{ran}/{total}"}


_PROGRESS = re.compile(r"\[\s*(\d+)/(\d+)\]\s+test_")


def _extract(archive: Path, dest: str) -> None:
    from buildkit.sources import safe_extract

    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    top = safe_extract(archive, Path(parent) / (os.path.basename(dest) + ".extract"))
    os.rename(top, dest)
    shutil.rmtree(Path(parent) / (os.path.basename(dest) + ".extract"), ignore_errors=True)


def _switch(prefix: str, target: str) -> None:
    """Point ``prefix`` at ``target`` in one rename."""
    prefix = os.path.abspath(prefix)
    tmp = f"{prefix}.tmp-{os.getpid()}"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    if os.path.isdir(prefix) and not os.path.islink(prefix):
        os.rmdir(prefix)  # empty, checked before the build
    os.replace(tmp, prefix)


def _collect_garbage(state_dir: str, install_dir: str, previous: str | None) -> None:
    """Remove the builds other than the new one and the one it replaced (kept for --rollback), and the
    private libraries neither uses."""
    keep = {install_dir, previous}
    builds = os.path.join(state_dir, "builds")
    used: set[str] = set()
    for name in os.listdir(builds):
        path = os.path.join(builds, name)
        if path not in keep:
            shutil.rmtree(path, ignore_errors=True)
            continue
        record = _read_record(path)
        if record is None:
            continue
        used.update(lib.prefix for lib in (record.openssl, record.sqlite) if lib is not None)
        # every library the build was made from (a portable build's zlib, libffi, ...): reused by the next one
        used.update(c.prefix for c in record.steps if c.package != "cpython")
    deps = os.path.join(state_dir, "deps")
    for name in os.listdir(deps) if os.path.isdir(deps) else ():
        path = os.path.join(deps, name)
        if path not in used:
            shutil.rmtree(path, ignore_errors=True)


def _run_components(plan: Plan, req: Request, files: dict[str, Path], runner: LocalRunner) -> dict[str, float]:
    """Build each component (a private library already built is reused); the seconds each one took."""
    took: dict[str, float] = {}
    total = len(plan.components)
    for number, comp in enumerate(plan.components, 1):
        if comp.package != "cpython" and not req.clean and os.path.exists(os.path.join(comp.prefix, MARKER)):
            runner.say(f"==> [{number}/{total}] {comp.package} {comp.version}: reusing {comp.prefix}")
            continue
        shutil.rmtree(comp.prefix, ignore_errors=True)  # an earlier incomplete or --clean build
        _extract(files[comp.package], comp.srcdir)
        took[comp.package] = round(runner.run_component(comp, number, total), 1)
        if comp.package != "cpython":
            Path(comp.prefix, MARKER).write_text(comp.source.sha256 + "\n")
    return took


@contextmanager
def prefix_left_as_it_was(prefix: str, log_dir: str, state_dir: str) -> Iterator[None]:
    """Ctrl-C or a full disk while building beside ``prefix``: one line saying the install was not touched."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {prefix} was left as it was", fix=f"logs kept in {log_dir}") from None
    except OSError as e:
        if e.errno == 28:  # ENOSPC
            raise BuildFailed(f"disk full ({e.filename or state_dir}); {prefix} was left as it was",
                              fix="free some space and run the same command again") from None
        raise


def lock_state(state_dir: str, prefix: str):
    """The prefix's lock (one buildkit at a time per prefix); released when the returned file is closed."""
    os.makedirs(state_dir, exist_ok=True)
    lock = open(os.path.join(state_dir, "lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise InputError(f"another buildkit is building {prefix}", fix="wait for it to finish") from None
    return lock


def _verify(plan: Plan, req: Request):
    from buildkit.pybuild.verify import verify

    tc = req.toolchain
    return verify(plan.python, expect_openssl=plan.openssl.version or None, expect_sqlite=plan.sqlite.version or None,
                  private_prefixes=plan.private_prefixes, expect_optimized=req.optimize,
                  glibc_max=tc.glibc if tc else None, self_contained=tc is not None)


def current_id(install_dir: str) -> str:
    """The id of a build from its folder name (``builds/<id>``): the record of an emitted script's build holds
    only its verification."""
    return os.path.basename(install_dir)


def _request_id(record: BuildRecord) -> str:
    """The build id the same command without --clean plans: a --clean build (salted, in new directories)
    answers that command as well."""
    return record.request_id or record.build_id


def verify_again(prefix: str, install_dir: str, record: BuildRecord, fix: str) -> BuildRecord:
    """The installed build ``install_dir`` verified again against what its record says it is (a second or so):
    the record only says what was true when it was built; a private library deleted since, or a file
    changed, fails here with one line naming the failed checks. Returns the record with the new report."""
    from buildkit.pybuild.verify import verify

    ssl, sql = record.openssl, record.sqlite
    report = verify(os.path.join(install_dir, "bin", "python3"), expect_openssl=(ssl.version or None) if ssl else None,
                    expect_sqlite=(sql.version or None) if sql else None,
                    private_prefixes=tuple(d.prefix for d in (ssl, sql) if d is not None and d.how != "system"),
                    expect_optimized=record.optimize, glibc_max=record.portable.glibc if record.portable else None,
                    self_contained=record.portable is not None)
    if not report.ok:
        failed = ", ".join(c.name for c in report.failed)
        raise CheckFailed(f"{prefix} runs build {record.build_id or None}, which no longer passes its verification "
                          f"({failed}); nothing was changed", fix=fix)
    return replace(record, verification=Verification.from_json(report.to_json()), verified=True)


def _unchanged(plan: Plan, req: Request, current: str, record: BuildRecord, started: float) -> BuildResult:
    """The prefix already runs this build (made by this command, with or without --clean): verified again."""
    record = verify_again(req.prefix, current, record,
                          fix="rebuild it into a new folder: the same command with --clean")
    plan = replace(plan, build_id=current_id(current), install_dir=current)  # a --clean build's own folder
    return BuildResult(plan, True, None, record, time.monotonic() - started, record.modules)


def build_python(req: Request, fetch: FetchOptions, *, keep: bool = False,
                 say: Callable[[str], None] | None = None) -> BuildResult:
    started = time.monotonic()
    say = say or (lambda s: None)
    _check_prefix(req.prefix)
    host = probe_host()
    first = plan_for(req, host)[0]  # before fetching anything: the tools every such build needs
    require_tools(["cc", "make"] + (["perl", "perl-ipc-cmd"] if first.openssl.how == "private" else [])
                  + (["gcc"] if req.portable else []))
    require_compiler(first.components[-1].version, host.compiler, say)
    if req.optimize:
        require_optimizer(host.compiler)
    plan, files = plan_for(req, host, fetch, say)
    current = current_install(req.prefix)
    record = _read_record(current) if current else None
    if (current is not None and not req.clean and record is not None and record.verified
            and plan.build_id in (current_id(current), _request_id(record))):  # the same build: verified again
        return _unchanged(plan, req, current, record, started)

    if any(c.package == "sqlite" and c.source.kind == "full" for c in plan.components):
        require_tools(["tclsh"])

    lock = lock_state(plan.state_dir, req.prefix)  # noqa: F841  (held while this build runs)
    for path in (plan.work_dir, plan.log_dir):
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
    actions = _Actions(plan)
    runner = LocalRunner(plan.log_dir, say, actions.table())
    with prefix_left_as_it_was(req.prefix, plan.log_dir, plan.state_dir):
        component_seconds = _run_components(plan, req, files, runner)

    say("==> verify (env -i, no LD_LIBRARY_PATH)")
    report = _verify(plan, req)
    seconds = time.monotonic() - started
    request_id = plan.build_id  # a --clean build: the id of the same command without --clean
    if req.salt:
        unsalted = replace(req, clean=False, salt="")
        request_id = make_plan(unsalted, plan.host, {c.package: c.source for c in plan.components}).build_id
    record = _record(plan, report, actions.summary, seconds, actions.optimization, request_id=request_id,
                     component_seconds=component_seconds,  # built here, not reused: e.g. {"cpython": 1490.2}
                     relocatable=actions.relocated,  # --portable: the scripts and configuration made to follow it
                     # what --rollback goes back to: not this folder when it was rebuilt in place (it kept no other)
                     previous=current if current and current != plan.install_dir else "")
    record.save(plan.install_dir)
    if not report.ok:
        failed = ", ".join(c.name for c in report.failed)
        floor_failed = [c for c in report.failed if c.name == "glibc floor"]
        if floor_failed:  # the file and the symbol, in the one line
            failed += f" ({floor_failed[0].detail})"
        raise CheckFailed(f"verification failed: {failed}; {req.prefix} was left as it was",
                          fix=f"the new build is kept for inspection in {plan.install_dir}")
    _switch(req.prefix, plan.install_dir)
    _collect_garbage(plan.state_dir, plan.install_dir, current)
    if not keep:
        shutil.rmtree(plan.work_dir, ignore_errors=True)
    return BuildResult(plan, False, report, record, seconds, actions.summary)


def dry_run(req: Request, fetch: FetchOptions | None = None) -> Plan:
    _check_prefix(req.prefix)
    return plan_for(req, fetch=fetch)[0]


def with_jobs(req: Request, jobs: int | None) -> Request:
    return replace(req, jobs=jobs or len(os.sched_getaffinity(0)))

