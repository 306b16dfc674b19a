"""``buildkit python``: fetch, build in a work tree, verify in place, then switch the prefix atomically.

The prefix is a symlink to ``PREFIX.buildkit/builds/<id>``; a build happens beside the current one and
the link moves only after verification passed, so a failed, interrupted or full-disk run leaves the
previous install exactly as it was. Private OpenSSL and SQLite builds are kept under ``deps/`` and reused
while their sources, arguments and compiler are the same. The install itself (its folders, the lock, the
switch, garbage, the record, verifying it again) is :mod:`buildkit.pybuild.install`'s.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, TypeVar

from buildkit import catalog
from buildkit.catalog import Source
from buildkit.errors import BuildFailed, CheckFailed, InputError
from buildkit.pybuild.choice import PREFIX, LibraryChoice
from buildkit.pybuild.clock import StepClock
from buildkit.pybuild.host import HostInfo, probe_host, require_compiler, require_optimizer, require_tools
from buildkit.pybuild.install import (
    build_record,
    check_prefix,
    collect_garbage,
    current_id,
    current_install,
    library_complete,
    lock_state,
    mark_complete,
    prefix_left_as_it_was,
    read_record,
    switch,
    verify_again,
)
from buildkit.pybuild.plan import Component, Plan, Request, Step, make_plan
from buildkit.pybuild.recipe import Action
from buildkit.pybuild.record import BuildRecord, Modules
from buildkit.pybuild.runner import LocalRunner, tail

if TYPE_CHECKING:
    from buildkit.pybuild.verify import VerifyReport

__all__ = ["Actions", "BuildResult", "FetchOptions", "build_component", "build_python", "dry_run",
           "optimization_evidence", "plan_and_fetch", "plan_for", "with_jobs"]


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


def _require_installed(wanted: LibraryChoice) -> None:
    """``--with-X=PREFIX``: a library is installed there (its header), said before anything is fetched."""
    if wanted.kind == PREFIX:
        marker = "include/openssl/opensslv.h" if wanted.package == "openssl" else "include/sqlite3.h"
        if not os.path.isfile(os.path.join(wanted.value, marker)):
            raise InputError(f"{wanted}: no {marker} there", fix=f"pass the prefix a {wanted.package} was installed to")


class _Planned(Protocol):
    @property
    def components(self) -> tuple[Component, ...]: ...


P = TypeVar("P", bound=_Planned)


def plan_and_fetch(make: Callable[[dict[str, Source]], P], fetch: FetchOptions | None,
                   say: Callable[[str], None] = lambda s: None,
                   built: Mapping[str, Source] | None = None, planned: P | None = None) -> tuple[P, dict[str, Path]]:
    """Plan (``make``, given the tarball to use per package), fetch the tarball of every component the plan
    builds, checked by sha256, and plan again when a fetch took another tarball than the planned one (e.g.
    SQLite's full tree from a --source-dir). ``built``: libraries built already, neither fetched nor
    returned; ``planned``: what ``make(built)`` returned already (not made again). Returns the plan and
    {package: tarball} (empty without ``fetch``)."""
    known = dict(built or {})
    plan = planned if planned is not None else make(known)
    if fetch is None:
        return plan, {}
    from buildkit.sources import fetch_first

    files: dict[str, Path] = {}
    chosen = dict(known)
    for comp in plan.components:
        if comp.package in known:
            continue
        got = fetch_first(catalog.candidates(comp.package, comp.version), cache_dir=fetch.cache_dir,
                          mirrors=fetch.mirrors, source_dirs=fetch.source_dirs, debian=fetch.debian, warn=say)
        files[comp.package], chosen[comp.package] = got.path, got.source
        say(f"    source: {got.source.filename} ({got.source.sha256[:12]}..., {got.origin}) checked")
    if any(chosen[c.package] != c.source for c in plan.components):
        plan = make(chosen)
    return plan, files


def plan_for(req: Request, host: HostInfo | None = None, fetch: FetchOptions | None = None,
             say: Callable[[str], None] = lambda s: None, planned: Plan | None = None) -> tuple[Plan, dict[str, Path]]:
    """The plan, and (when ``fetch`` is given) the verified tarball of every component it builds. ``planned``:
    this request's plan on this host made already (without ``fetch``), planned again only if a fetch takes
    another tarball."""
    facts = host or probe_host()
    if planned is None:
        _require_installed(req.with_openssl)
        _require_installed(req.with_sqlite)
    return plan_and_fetch(lambda sources: make_plan(req, facts, sources), fetch, say, planned=planned)


def _action_args(step: Step) -> tuple[str, ...]:
    """The arguments of an action step: the runner hands an action's handler only that action's steps."""
    assert isinstance(step.run, Action)
    return step.run.args


class Actions:
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


def build_component(comp: Component, archive: Path, runner: LocalRunner, number: int, total: int,
                    clock: StepClock | None = None) -> float:
    """Unpack ``comp``'s tarball and run its steps into a fresh prefix; a private library is then marked
    complete (later builds reuse it). Returns the seconds its steps took; the unpacking is ``clock``'s
    ``extract``."""
    shutil.rmtree(comp.prefix, ignore_errors=True)  # an earlier incomplete or --clean build
    with (StepClock() if clock is None else clock).step("extract"):
        _extract(archive, comp.srcdir)
    took = runner.run_component(comp, number, total)
    if comp.package != "cpython":
        mark_complete(comp.prefix, comp.source.sha256)
    return took


def _run_components(plan: Plan, req: Request, files: dict[str, Path], runner: LocalRunner,
                    clock: StepClock) -> dict[str, float]:
    """Build each component (a private library already built is reused); the seconds each one's steps took
    (its unpacking is ``clock``'s)."""
    took: dict[str, float] = {}
    total = len(plan.components)
    for number, comp in enumerate(plan.components, 1):
        if comp.package != "cpython" and not req.clean and library_complete(comp.prefix):
            runner.say(f"==> [{number}/{total}] {comp.package} {comp.version}: reusing {comp.prefix}")
            continue
        took[comp.package] = round(build_component(comp, files[comp.package], runner, number, total, clock), 1)
    return took


def _verify(plan: Plan, req: Request) -> VerifyReport:
    from buildkit.pybuild.verify import verify

    tc = req.toolchain
    return verify(plan.python, expect_openssl=plan.openssl.version or None, expect_sqlite=plan.sqlite.version or None,
                  private_prefixes=plan.private_prefixes, expect_optimized=req.optimize,
                  glibc_max=tc.glibc if tc else None, self_contained=tc is not None)


def _request_id(record: BuildRecord) -> str:
    """The build id the same command without --clean plans: a --clean build (salted, in new directories)
    answers that command as well."""
    return record.request_id or record.build_id


def _unchanged(plan: Plan, req: Request, current: str, record: BuildRecord, clock: StepClock) -> BuildResult:
    """The prefix already runs this build (made by this command, with or without --clean): verified again."""
    record = verify_again(req.prefix, current, record,
                          fix="rebuild it into a new folder: the same command with --clean")
    plan = replace(plan, build_id=current_id(current), install_dir=current)  # a --clean build's own folder
    return BuildResult(plan, True, None, record, clock.elapsed(), record.modules)


def _first_plan(req: Request, say: Callable[[str], None]) -> tuple[HostInfo, Plan]:
    """The host and the plan made before fetching anything, once the prefix and the tools every such build
    needs are there."""
    check_prefix(req.prefix)
    host = probe_host()
    first = plan_for(req, host)[0]
    require_tools(["cc", "make"] + (["perl", "perl-ipc-cmd"] if first.openssl.how == "private" else [])
                  + (["gcc"] if req.portable else []))
    require_compiler(first.components[-1].version, host.compiler, say)
    if req.optimize:
        require_optimizer(host.compiler)
    return host, first


def _unsalted_id(plan: Plan, req: Request) -> str:
    """The build id of the same command without --clean (a --clean build's ``request_id``)."""
    if not req.salt:
        return plan.build_id
    unsalted = replace(req, clean=False, salt="")
    return make_plan(unsalted, plan.host, {c.package: c.source for c in plan.components}).build_id


def _require_verified(report: VerifyReport, prefix: str, install_dir: str) -> None:
    """A failed verification stops the build before the switch, in one line naming the failed checks."""
    if report.ok:
        return
    failed = ", ".join(c.name for c in report.failed)
    floor_failed = [c for c in report.failed if c.name == "glibc floor"]
    if floor_failed:  # the file and the symbol, in the one line
        failed += f" ({floor_failed[0].detail})"
    raise CheckFailed(f"verification failed: {failed}; {prefix} was left as it was",
                      fix=f"the new build is kept for inspection in {install_dir}")


def _install(req: Request, plan: Plan, record: BuildRecord, report: VerifyReport, current: str | None, keep: bool,
             clock: StepClock) -> BuildRecord:
    """The step ``switch``: the record written into the build, and once the build passed its verification the
    prefix pointed at it, what no build uses removed, and the work tree unless ``keep``. The record is then
    written once more with that step's time and the whole build's (the link points at it already)."""
    with clock.step("switch"):
        record.save(plan.install_dir)
        _require_verified(report, req.prefix, plan.install_dir)
        switch(req.prefix, plan.install_dir)
        collect_garbage(plan.state_dir, plan.install_dir, current)
        if not keep:
            shutil.rmtree(plan.work_dir, ignore_errors=True)
    record = replace(record, seconds=round(clock.elapsed(), 1), step_seconds=clock.seconds())
    record.save(plan.install_dir)
    return record


def build_python(req: Request, fetch: FetchOptions, *, keep: bool = False,
                 say: Callable[[str], None] | None = None) -> BuildResult:
    clock = StepClock()
    say = say or (lambda s: None)
    with clock.step("plan"):
        host, first = _first_plan(req, say)
    with clock.step("fetch"):
        plan, files = plan_for(req, host, fetch, say, planned=first)
    current = current_install(req.prefix)
    record = read_record(current) if current else None
    if (current is not None and not req.clean and record is not None and record.verified
            and plan.build_id in (current_id(current), _request_id(record))):  # the same build: verified again
        return _unchanged(plan, req, current, record, clock)

    if any(c.package == "sqlite" and c.source.kind == "full" for c in plan.components):
        require_tools(["tclsh"])

    lock = lock_state(plan.state_dir, req.prefix)  # noqa: F841  (held while this build runs)
    for path in (plan.work_dir, plan.log_dir):
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
    actions = Actions(plan)
    runner = LocalRunner(plan.log_dir, say, actions.table())
    with prefix_left_as_it_was(req.prefix, plan.log_dir, plan.state_dir):
        component_seconds = _run_components(plan, req, files, runner, clock)

    say("==> verify (env -i, no LD_LIBRARY_PATH)")
    with clock.step("verify"):
        report = _verify(plan, req)
    # component_seconds: built here, not reused (e.g. {"cpython": 1490.2}); step_seconds: buildkit's own steps
    # so far (pybuild.clock); relocated: --portable's scripts and configuration made to follow it; previous: what
    # --rollback goes back to, not this folder when it was rebuilt in place (it kept no other)
    record = build_record(plan, report, actions.summary, clock.elapsed(), actions.optimization,
                          request_id=_unsalted_id(plan, req), component_seconds=component_seconds,
                          step_seconds=clock.seconds(), relocatable=actions.relocated,
                          previous=current if current and current != plan.install_dir else "")
    record = _install(req, plan, record, report, current, keep, clock)
    return BuildResult(plan, False, report, record, record.seconds, actions.summary)


def dry_run(req: Request, fetch: FetchOptions | None = None) -> Plan:
    check_prefix(req.prefix)
    return plan_for(req, fetch=fetch)[0]


def with_jobs(req: Request, jobs: int | None) -> Request:
    return replace(req, jobs=jobs or len(os.sched_getaffinity(0)))

