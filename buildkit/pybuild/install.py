"""The install of a prefix: where its builds live, the lock, the one-rename switch, garbage collection, its
record, and verifying it again. ``buildkit python`` (:mod:`buildkit.pybuild.build`), ``--update-deps`` and
``--rollback`` (:mod:`buildkit.pybuild.update`) all go through here.

Where those live is :mod:`buildkit.pybuild.layout`.

A build happens beside the current one and the link moves only after verification passed, so a failed,
interrupted or full-disk run leaves the previous install exactly as it was.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from buildkit import __version__
from buildkit.errors import BuildFailed, CheckFailed, InputError, Interrupted
from buildkit.pybuild.layout import Layout
from buildkit.pybuild.recipe import Action
from buildkit.pybuild.record import (
    BuildRecord,
    ComponentRecord,
    Host,
    Library,
    MissingRecord,
    Modules,
    Optimization,
    Portable,
    RecordError,
    Relocatable,
    SourceRecord,
    StepRecord,
    Verification,
    private_prefixes,
)

if TYPE_CHECKING:
    from buildkit.pybuild.plan import Choice, Component, Plan, Step
    from buildkit.pybuild.verify import VerifyReport

__all__ = ["MARKER", "build_record", "check_prefix", "collect_garbage", "current_id", "current_install",
           "installed_build", "library_complete", "library_record", "lock_state", "mark_complete", "now",
           "prefix_left_as_it_was", "read_record", "source_record", "switch", "verify_again"]

#: in a private library's prefix once it is completely built: later builds (and updates) reuse it
MARKER = ".buildkit-complete"


def current_install(prefix: str) -> str | None:
    """The build directory the prefix links to, if buildkit made it."""
    prefix = os.path.abspath(prefix)
    if os.path.islink(prefix):
        target = os.path.realpath(prefix)
        if target.startswith(os.path.realpath(Layout.of(prefix).state_dir) + os.sep):
            return target
    return None


def current_id(install_dir: str) -> str:
    """The id of a build from its folder name (``builds/<id>``): the record of an emitted script's build holds
    only its verification."""
    return os.path.basename(install_dir)


def check_prefix(prefix: str) -> None:
    """``prefix`` can take a build: a link buildkit made, an empty folder, or a new name in a writable folder."""
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


def library_complete(prefix: str) -> bool:
    """A private library completely built into ``prefix`` (by any earlier build or update): reused."""
    return os.path.exists(os.path.join(prefix, MARKER))


def mark_complete(prefix: str, sha256: str) -> None:
    Path(prefix, MARKER).write_text(sha256 + "\n")


# --- the lock, the switch, garbage ----------------------------------------------------------------------


def lock_state(state_dir: str, prefix: str) -> TextIO:
    """The prefix's lock (one buildkit at a time per prefix); released when the returned file is closed."""
    os.makedirs(state_dir, exist_ok=True)
    lock = open(os.path.join(state_dir, "lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise InputError(f"another buildkit is building {prefix}", fix="wait for it to finish") from None
    return lock


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


def switch(prefix: str, target: str) -> None:
    """Point ``prefix`` at ``target`` in one rename."""
    prefix = os.path.abspath(prefix)
    tmp = f"{prefix}.tmp-{os.getpid()}"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    if os.path.isdir(prefix) and not os.path.islink(prefix):
        os.rmdir(prefix)  # empty, checked before the build
    os.replace(tmp, prefix)


def collect_garbage(state_dir: str, install_dir: str, previous: str | None) -> None:
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
        record = read_record(path)
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


# --- the record ---------------------------------------------------------------------------------------------


def read_record(install_dir: str) -> BuildRecord | None:
    """The record of ``install_dir``; None when it has none or one buildkit cannot read (so not this build)."""
    try:
        return BuildRecord.load(install_dir)
    except RecordError:
        return None


def installed_build(prefix: str) -> tuple[str, BuildRecord]:
    """The build ``prefix`` links to and its record, which must say it was verified (what --update-deps and
    --rollback start from)."""
    current = current_install(prefix)
    if current is None:
        raise InputError(f"--prefix {prefix}: no build made by buildkit is installed there",
                         fix=f"build one first: buildkit python --prefix {prefix} --with-openssl --with-sqlite")
    try:
        record: BuildRecord | None = BuildRecord.load(current)
    except MissingRecord:
        record = None
    if record is None or not record.verified:
        raise InputError(f"--prefix {prefix}: the installed build {current} has no verified BUILDKIT.json",
                         fix=f"rebuild it: buildkit python --prefix {prefix} ...")
    return current, record


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


def build_record(plan: Plan, verification: VerifyReport | None, summary: Modules, seconds: float,
                 optimization: Mapping[str, Any] | None = None, *, request_id: str = "",
                 component_seconds: Mapping[str, float] | None = None, step_seconds: Mapping[str, float] | None = None,
                 relocatable: Mapping[str, Any] | None = None, previous: str = "") -> BuildRecord:
    """The record of a build of ``plan``."""
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
        request_id=request_id, component_seconds=dict(component_seconds or {}), step_seconds=dict(step_seconds or {}),
        relocatable=Relocatable.from_json(relocatable) if relocatable is not None else None, previous=previous,
    )


# --- verify again -------------------------------------------------------------------------------------------


def verify_again(prefix: str, install_dir: str, record: BuildRecord, fix: str) -> BuildRecord:
    """The installed build ``install_dir`` verified again against what its record says it is (a second or so):
    the record only says what was true when it was built; a private library deleted since, or a file
    changed, fails here with one line naming the failed checks. Returns the record with the new report."""
    from buildkit.pybuild.verify import verify

    ssl, sql = record.openssl, record.sqlite
    report = verify(os.path.join(install_dir, "bin", "python3"), expect_openssl=(ssl.version or None) if ssl else None,
                    expect_sqlite=(sql.version or None) if sql else None,
                    private_prefixes=private_prefixes((ssl, sql)),
                    expect_optimized=record.optimize, glibc_max=record.portable.glibc if record.portable else None,
                    self_contained=record.portable is not None)
    if not report.ok:
        failed = ", ".join(c.name for c in report.failed)
        raise CheckFailed(f"{prefix} runs build {record.build_id or None}, which no longer passes its verification "
                          f"({failed}); nothing was changed", fix=fix)
    return replace(record, verification=Verification.from_json(report.to_json()), verified=True)
