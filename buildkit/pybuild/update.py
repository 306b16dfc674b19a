"""``buildkit python --update-deps`` and ``--rollback``: a security release of the private OpenSSL or SQLite
without recompiling CPython.

An update builds only the new library (the same recipes, into the same ``deps/<package>-<version>-<hash>``
a full build would use), copies the installed build to a new ``builds/<id>``, and points the copy at the new
library: every ELF file whose ``DT_RPATH`` names an old library directory gets the new one (``patchelf
--force-rpath --set-rpath``: the tag stays ``DT_RPATH``, so ``LD_LIBRARY_PATH`` still cannot swap the
library, and any length fits), and the text files that name the old directories (the scripts' ``#!``
lines, ``_sysconfigdata``, the ``Makefile`` and ``python3.X-config``, ``.pc`` files) are rewritten. The
interpreter's code is byte for byte the same (``sys.version``, build date included, is compared). The copy
is verified like any build and only then does the prefix switch, in one rename; the previous build and its
libraries stay, for ``--rollback``.

Only an update within one ABI is possible: the modules were linked against ``libssl.so.3`` or
``libsqlite3.so.0``, and a library with another soname (OpenSSL 1.1.1 against 3.x) needs a rebuild, which
is refused with the command that does it, before anything is built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from buildkit import __version__, catalog
from buildkit.catalog import Source, parse_version
from buildkit.errors import BuildFailed, CheckFailed, InputError
from buildkit.pybuild.build import Actions, FetchOptions, build_component, plan_and_fetch
from buildkit.pybuild.choice import AUTO, LIBRARIES, VERSION, LibraryChoice
from buildkit.pybuild.host import HostInfo, find_tool, probe_host, require_tools
from buildkit.pybuild.install import (
    collect_garbage,
    installed_build,
    library_complete,
    library_record,
    lock_state,
    now,
    prefix_left_as_it_was,
    source_record,
    switch,
    verify_again,
)
from buildkit.pybuild.layout import Layout
from buildkit.pybuild.plan import Choice, Component, Step, private_component, short_hash, with_steps
from buildkit.pybuild.recipe import Action
from buildkit.pybuild.record import (
    BuildRecord,
    BuiltLibrary,
    Library,
    MissingRecord,
    Repointed,
    Update,
    Verification,
    private_prefixes,
)

if TYPE_CHECKING:
    from buildkit.pybuild.verify import VerifyReport

__all__ = ["NothingToDo", "UpdatePlan", "UpdateResult", "make_update_plan", "plan_update", "update_deps",
           "update_record", "update_versions", "rollback", "predicted_sonames", "rebuild_command"]

LABEL = LIBRARIES  # package -> its name in prose
#: the libraries of each package that CPython's modules link
LIBS = {"openssl": ("libssl", "libcrypto"), "sqlite": ("libsqlite3",)}


@dataclass(frozen=True)
class UpdatePlan:
    prefix: str
    state_dir: str
    current: str  # the install dir the prefix links to now
    record: BuildRecord  # its BUILDKIT.json
    cpython: str
    build_id: str
    install_dir: str
    work_dir: str
    log_dir: str
    choices: Mapping[str, Choice]  # package -> its Choice after the update (the untouched one as it was)
    components: tuple[Component, ...]  # the private libraries to build (or reuse)
    mapping: tuple[tuple[str, str], ...]  # old path -> new path, longest first
    compiled_against: Mapping[str, str]  # package -> the version CPython's modules were compiled against
    needed: Mapping[str, tuple[str, ...]]  # package -> the sonames the installed modules link (DT_NEEDED)

    @property
    def python(self) -> str:
        return os.path.join(self.install_dir, "bin", "python3")

    @property
    def private_prefixes(self) -> tuple[str, ...]:
        return private_prefixes(self.choices.values())

    def to_json(self) -> dict:
        return {
            "prefix": self.prefix, "from": self.current, "build_id": self.build_id, "install_dir": self.install_dir,
            "cpython": self.cpython, "compiled_against": dict(self.compiled_against),
            "openssl": library_record(self.choices["openssl"]).to_json(),
            "sqlite": library_record(self.choices["sqlite"]).to_json(),
            "build": [{"package": c.package, "version": c.version, "file": c.source.filename,
                       "sha256": c.source.sha256, "prefix": c.prefix} for c in self.components],
            "repoint": [{"from": a, "to": b} for a, b in self.mapping],
        }


# --- planning (pure: a record, a host and the sources in, a plan out) -------------------------------------


def predicted_sonames(package: str, version: str) -> tuple[str, ...]:
    """The sonames a release will have: OpenSSL 3.x and later ``libssl.so.<major>``, 1.1.x ``libssl.so.1.1``,
    1.0.x ``libssl.so.1.0.0``; SQLite 3 ``libsqlite3.so.0``. Checked against the built files afterwards."""
    if package == "sqlite":
        return ("libsqlite3.so.0",)
    major, minor = parse_version("openssl", version).release[:2]
    suffix = f"{major}" if major >= 3 else f"{major}.{minor}" if (major, minor) >= (1, 1) else f"{major}.{minor}.0"
    return tuple(f"{lib}.so.{suffix}" for lib in LIBS["openssl"])


def update_versions(wanted: Sequence[LibraryChoice]) -> dict[str, str]:
    """{package: version} of an update (--with-openssl=V, --with-sqlite=V; one not given is left as it is).
    An update names the version it goes to: private, system or a prefix is refused, and so is nothing."""
    versions = {}
    for choice in wanted:
        if choice.kind == AUTO:
            continue
        if choice.kind != VERSION:
            example = "3.5.7" if choice.package == "openssl" else "3.46.1"
            raise InputError(f"--update-deps {choice}: name the version to update to",
                             fix=f"e.g. {choice.option}={example} (buildkit python --list)")
        versions[choice.package] = choice.value
    if not versions:
        raise InputError("--update-deps: nothing to update", fix="name --with-openssl=V and/or --with-sqlite=V")
    return versions


def rebuild_command(prefix: str, cpython: str, choices: Mapping[str, Choice]) -> str:
    """The full ``buildkit python`` command that builds CPython against ``choices``."""
    args = []
    for package in ("openssl", "sqlite"):
        c = choices[package]
        value = "system" if c.how == "system" else c.prefix if c.how == "prefix" else c.version
        args.append(f"--with-{package}={value}")
    return f"buildkit python {cpython} --prefix {prefix} {' '.join(args)}"


def _choice_from_record(package: str, record: BuildRecord) -> Choice:
    got = record.library(package)
    if got is None:
        return Choice(package, "system", "", "", "")
    return Choice(package, got.how, got.version, got.prefix, got.reason)


def make_update_plan(prefix: str, current: str, record: BuildRecord, wanted: Sequence[LibraryChoice],
                     needed: Mapping[str, tuple[str, ...]], host: HostInfo, sources: Mapping[str, Source] | None = None,
                     jobs: int = 2) -> UpdatePlan:
    """The update of the build ``current`` (its ``record``) to ``wanted`` (versions: :func:`update_versions`).

    ``needed`` is what the installed modules link ({package: (sonames...)}, read from their DT_NEEDED).
    Raises :class:`InputError` (nothing built, nothing switched) for a library the build does not have
    privately, a version older than the one CPython was compiled against, or another ABI.
    """
    prefix = os.path.abspath(prefix)
    layout = Layout.of(prefix)
    state = layout.state_dir
    sources = dict(sources or {})
    cpython = next((s.version for s in record.sources if s.package == "cpython"),
                   os.path.basename(current).split("-")[0])
    old = {p: _choice_from_record(p, record) for p in ("openssl", "sqlite")}
    compiled = dict((record.update.compiled_against if record.update else None) or
                    {p: old[p].version for p in old if old[p].how == "private"})
    choices = dict(old)
    components: list[Component] = []
    mapping: list[tuple[str, str]] = []
    for package, version in update_versions(wanted).items():
        label = LABEL[package]
        minimum = catalog.library_min(package, cpython)
        src: Source = sources.get(package) or catalog.find(package, version)
        after = {**{p: c for p, c in choices.items()}, package: Choice(package, "private", src.version, "", "")}
        rebuild = rebuild_command(prefix, cpython, after)
        if old[package].how != "private":
            where = "the system's" if old[package].how == "system" else f"the one at {old[package].prefix}"
            raise InputError(f"--update-deps: the build in {current} uses {where} {label}, not a private one; "
                             f"only a private library is replaced without a rebuild",
                             fix=f"rebuild with a private one: {rebuild}")
        new_names = predicted_sonames(package, src.version)
        have = tuple(needed.get(package) or ())
        if not have:
            raise InputError(f"--update-deps: no module of the build in {current} links a {label} library "
                             "(no DT_NEEDED on libssl/libsqlite3)", fix=f"rebuild: {rebuild}")
        if set(have) - set(new_names):
            raise InputError(
                f"--update-deps: {label} {src.version} has another ABI ({', '.join(new_names)}) than the "
                f"{label} {old[package].version} CPython {cpython} in {current} is linked against "
                f"({', '.join(sorted(have))}): its modules cannot load it; CPython must be rebuilt, nothing "
                "was switched", fix=f"rebuild: {rebuild}")
        was = compiled.get(package) or old[package].version
        if parse_version(package, src.version).release[:2] < parse_version(package, was).release[:2]:
            raise InputError(f"--update-deps: {label} {src.version} is an older series than the {was} CPython "
                             f"{cpython} was compiled against (a library keeps the ABI of older releases, not of "
                             "newer ones)", fix=f"pick {label} {was} or newer, or rebuild: {rebuild}")
        if parse_version(package, src.version) < parse_version(package, minimum):
            raise InputError(f"--update-deps: {label} {src.version} is older than {minimum}, which "
                             f"CPython {cpython} needs", fix=f"pick {label} {minimum} or newer")
        if src.version == old[package].version and src.sha256 == _source_sha(record, package):
            continue  # already this one
        comp = private_component(src, state, host)
        choices[package] = Choice(package, "private", src.version, comp.prefix, "updated without a rebuild")
        components.append(comp)
        mapping.append((old[package].prefix, comp.prefix))
    if not components:
        raise NothingToDo(current)
    base = record.build_id
    build_id = f"{cpython}-{short_hash('update', base, [c.hash for c in components])}"
    install = layout.build_dir(build_id)
    mapping.insert(0, (current, install))
    work = layout.work_dir(build_id)
    built, index = [], 0
    for comp in components:
        comp, index = with_steps(comp, work, jobs, host, index)
        built.append(comp)
    mapping.sort(key=lambda pair: -len(pair[0]))
    return UpdatePlan(prefix, state, current, record, cpython, build_id, install, work,
                      layout.log_dir(build_id), choices, tuple(built), tuple(mapping),
                      dict(compiled), dict(needed))


def _source_sha(record: BuildRecord, package: str) -> str:
    return next((s.sha256 for s in record.sources if s.package == package), "")


class NothingToDo(Exception):
    """The build already has the libraries asked for: nothing to build (the update verifies it again)."""

    def __init__(self, current: str) -> None:
        super().__init__(current)
        self.current = current


# --- ELF, through patchelf ------------------------------------------------------------------------------


def _patchelf(*args: str) -> str:
    done = subprocess.run([find_tool("patchelf") or "patchelf", *args], capture_output=True, text=True)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise BuildFailed(f"patchelf {' '.join(args)}: {why}")
    return done.stdout.strip()


def needed_sonames(install: str) -> dict[str, tuple[str, ...]]:
    """{package: the libssl/libcrypto/libsqlite3 sonames the interpreter and its modules link (DT_NEEDED)}."""
    found: dict[str, set[str]] = {"openssl": set(), "sqlite": set()}
    for path in _elf_files(install):
        for name in _patchelf("--print-needed", path).split():
            for package, libs in LIBS.items():
                if name.startswith(tuple(lib + ".so" for lib in libs)):
                    found[package].add(name)
    return {p: tuple(sorted(v)) for p, v in found.items()}


def _is_linked_elf(path: str) -> bool:
    """An executable or shared object (ET_EXEC/ET_DYN), not a relocatable .o (no dynamic section)."""
    try:
        with open(path, "rb") as f:
            head = f.read(18)
    except OSError:
        return False
    if len(head) < 18 or head[:4] != b"\x7fELF":
        return False
    return int.from_bytes(head[16:18], "little" if head[5] == 1 else "big") in (2, 3)


def _elf_files(root: str):
    for parent, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(parent, name)
            if not os.path.islink(path) and _is_linked_elf(path):
                yield path


def _provided_sonames(comp: Component) -> tuple[str, ...]:
    lib = os.path.join(comp.prefix, "lib")
    names = []
    for base in LIBS[comp.package]:
        path = os.path.join(lib, base + ".so")
        if not os.path.exists(path):
            raise BuildFailed(f"{comp.package} {comp.version}: no {path} after the build",
                              fix="look at the logs; rebuild with --clean")
        names.append(_patchelf("--print-soname", os.path.realpath(path)))
    return tuple(names)


def _replace_in_path(value: str, mapping) -> str:
    for old, new in mapping:
        if value == old or value.startswith(old.rstrip("/") + "/"):
            return new + value[len(old):]
    return value


def repoint(root: str, mapping) -> dict[str, list[str]]:
    """In the tree ``root`` (a copy), replace every old path of ``mapping`` by its new one: the DT_RPATH
    entries of ELF files (patchelf, kept DT_RPATH), text files (no NUL byte), and absolute symlinks.
    Returns the files changed, by kind."""
    done: dict[str, list[str]] = {"rpath": [], "text": [], "symlink": []}
    olds = [old.encode() for old, _ in mapping]
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(parent, name)
            if os.path.islink(path):
                target = os.readlink(path)
                new = _replace_in_path(target, mapping) if os.path.isabs(target) else target
                if new != target:
                    os.unlink(path)
                    os.symlink(new, path)
                    done["symlink"].append(path)
                continue
            if name in dirs:
                continue
            with open(path, "rb") as f:
                data = f.read()
            if not any(o in data for o in olds):
                continue
            if data[:4] == b"\x7fELF":
                info = _elf(path)
                for entries, force in ((list(info.rpath), True), (list(info.runpath), False)) if info else ():
                    new_entries = [_replace_in_path(e, mapping) for e in entries]
                    if new_entries == entries:
                        continue
                    mode = os.stat(path).st_mode
                    os.chmod(path, mode | 0o200)
                    _patchelf(*(["--force-rpath"] if force else []), "--set-rpath", ":".join(new_entries), path)
                    os.chmod(path, mode)
                    done["rpath"].append(path)
                continue
            if b"\0" in data:
                continue  # other binary files (.pyc: the loader fixes co_filename from the source path)
            for old, new in mapping:
                data = data.replace(old.encode(), new.encode())
            mode = os.stat(path).st_mode
            os.chmod(path, mode | 0o200)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, mode)
            done["text"].append(path)
    return done


def _check_rpaths(files: list[str], mapping) -> None:
    """Read back what patchelf wrote: DT_RPATH, and no old library directory left."""
    olds = [old for old, new in mapping]
    for path in files:
        info = _elf(path)
        if info is None:
            continue
        for entries, tag in ((info.rpath, "DT_RPATH"), (info.runpath, "DT_RUNPATH")):
            stale = [e for e in entries if any(e == o or e.startswith(o + "/") for o in olds)]
            if entries and (tag != "DT_RPATH" or stale):
                raise BuildFailed(f"{path}: runpath {':'.join(entries)!r} ({tag}) after patchelf",
                                  fix="report it; the previous install was left as it was")


def _elf(path: str):
    """floor.read_elf (pyelftools), an unreadable file a failed build naming it."""
    from buildkit.pybuild.floor import FloorError, read_elf

    try:
        return read_elf(path)
    except FloorError as e:
        raise BuildFailed(str(e), fix="report it; the previous install was left as it was") from None


# --- running ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateResult:
    plan: UpdatePlan | None
    noop: bool
    record: BuildRecord
    seconds: float


def _sys_version(python: str) -> str:
    done = subprocess.run([python, "-I", "-c", "import sys; print(sys.version)"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, cwd="/")
    if done.returncode != 0:
        raise CheckFailed(f"{python} does not start: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return done.stdout.strip()


def plan_update(prefix: str, wanted: Sequence[LibraryChoice], fetch: FetchOptions | None = None, jobs: int = 2,
                say: Callable[[str], None] = lambda s: None,
                host: HostInfo | None = None) -> tuple[UpdatePlan, dict[str, Path]]:
    """The plan for this prefix, and (when ``fetch`` is given) the checked tarball of each library to build."""
    current, record = installed_build(prefix)
    require_tools(["patchelf"])
    facts = host or probe_host()
    needed = needed_sonames(current)
    built: dict[str, Source] = {}  # a library this prefix already has (an earlier update): no fetch, no build
    state = Layout.of(prefix).state_dir
    for package, version in update_versions(wanted).items():
        for src in catalog.candidates(package, version):
            if library_complete(private_component(src, state, facts).prefix):
                built[package] = src
                break

    def make(sources: dict[str, Source]) -> UpdatePlan:
        return make_update_plan(prefix, current, record, wanted, needed, facts, sources, jobs=jobs)

    return plan_and_fetch(make, fetch, say, built)


def update_deps(prefix: str, wanted: Sequence[LibraryChoice], fetch: FetchOptions, *, jobs: int = 2, keep: bool = False,
                say: Callable[[str], None] | None = None) -> UpdateResult:
    """Build the new private libraries, a repointed copy of the installed build, verify it, switch."""
    from buildkit.pybuild.runner import LocalRunner
    from buildkit.pybuild.verify import verify

    started = time.monotonic()
    say = say or (lambda s: None)
    versions = update_versions(wanted)
    require_tools(["cc", "make", "patchelf"] + (["perl", "perl-ipc-cmd"] if "openssl" in versions else []))
    try:
        plan, files = plan_update(prefix, wanted, fetch, jobs, say)
    except NothingToDo:
        current, record = installed_build(prefix)
        record = verify_again(prefix, current, record, fix=f"go back to the build before: buildkit python --prefix "
                              f"{prefix} --rollback, or rebuild: buildkit python VERSION --prefix {prefix} --clean ...")
        return UpdateResult(None, True, record, time.monotonic() - started)
    if any(c.package == "sqlite" and c.source.kind == "full" for c in plan.components):
        require_tools(["tclsh"])
    lock = lock_state(plan.state_dir, prefix)
    try:
        before = _sys_version(os.path.join(plan.current, "bin", "python3"))
        for path in (plan.work_dir, plan.log_dir):
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path)
        actions = Actions(None)
        runner = LocalRunner(plan.log_dir, say, actions.table())
        total = len(plan.components) + 1
        with prefix_left_as_it_was(prefix, plan.log_dir, plan.state_dir):
            for number, comp in enumerate(plan.components, 1):
                if library_complete(comp.prefix):
                    say(f"==> [{number}/{total}] {comp.package} {comp.version}: reusing {comp.prefix}")
                else:
                    build_component(comp, files[comp.package], runner, number, total)
                have = _provided_sonames(comp)
                need = plan.needed[comp.package]
                if set(need) - set(have):
                    raise CheckFailed(f"{comp.package} {comp.version} provides {', '.join(have)}, the build links "
                                      f"{', '.join(need)}: another ABI; {prefix} was left as it was",
                                      fix=f"rebuild: {rebuild_command(prefix, plan.cpython, plan.choices)}")
            say(f"==> [{total}/{total}] copy {plan.current} -> {plan.install_dir}, repoint to the new libraries")
            copy_started = time.monotonic()
            shutil.rmtree(plan.install_dir, ignore_errors=True)
            shutil.copytree(plan.current, plan.install_dir, symlinks=True)
            changed = repoint(plan.install_dir, plan.mapping)
            _check_rpaths(changed["rpath"], plan.mapping)
            say(f"    {len(changed['rpath'])} ELF runpaths, {len(changed['text'])} text files, "
                f"{len(changed['symlink'])} symlinks repointed in {time.monotonic() - copy_started:.1f} s")

        say("==> verify (env -i, no LD_LIBRARY_PATH)")
        report = verify(plan.python, expect_openssl=plan.choices["openssl"].version or None,
                        expect_sqlite=plan.choices["sqlite"].version or None, private_prefixes=plan.private_prefixes)
        after = _sys_version(plan.python)
        seconds = time.monotonic() - started
        record = update_record(plan, report, changed, before, after, seconds)
        record.save(plan.install_dir)
        if after != before:
            raise CheckFailed(f"sys.version changed ({before!r} -> {after!r}); {prefix} was left as it was",
                              fix=f"the copy is kept for inspection in {plan.install_dir}")
        if not report.ok:
            failed = ", ".join(c.name for c in report.failed)
            raise CheckFailed(f"verification failed: {failed}; {prefix} was left as it was",
                              fix=f"the new build is kept for inspection in {plan.install_dir}")
        switch(prefix, plan.install_dir)
        collect_garbage(plan.state_dir, plan.install_dir, plan.current)
        if not keep:
            shutil.rmtree(plan.work_dir, ignore_errors=True)
        return UpdateResult(plan, False, record, seconds)
    finally:
        lock.close()


def update_record(plan: UpdatePlan, report: VerifyReport, changed: Mapping[str, list[str]], before: str, after: str,
                  seconds: float) -> BuildRecord:
    """The record of the updated copy: the installed build's, with the new libraries, verification and ids."""
    base = plan.record
    updated = {c.package for c in plan.components}

    def lib(package: str) -> Library | None:
        return library_record(plan.choices[package]) if package in updated else base.library(package)

    return replace(
        base, buildkit=__version__, created=now(), build_id=plan.build_id, python=plan.python, previous=plan.current,
        verification=Verification.from_json(report.to_json()), verified=bool(report.ok and before == after),
        seconds=round(seconds, 1), step_seconds={},  # the base build's steps are not this update's (not timed)
        openssl=lib("openssl"), sqlite=lib("sqlite"),
        sources=tuple(s for s in base.sources if s.package not in updated) + tuple(
            source_record(c) for c in plan.components),
        update=Update(
            from_dir=plan.current, base_build=(base.update.base_build if base.update else "") or base.build_id,
            compiled_against=dict(plan.compiled_against), sys_version=after, sys_version_unchanged=before == after,
            repointed=Repointed(tuple(os.path.relpath(p, plan.install_dir) for p in changed["rpath"]),
                                len(changed["text"]), len(changed["symlink"])),
            built=tuple(BuiltLibrary(c.package, c.version, c.prefix, tuple(_step_line(s) for s in c.steps))
                        for c in plan.components)),
    )


def _step_line(step: Step) -> str:
    """``phase: command`` (or the action's name)."""
    return step.phase + ": " + (step.run.name if isinstance(step.run, Action) else " ".join(step.run.argv))


def rollback(prefix: str) -> tuple[str, str, BuildRecord]:
    """Switch ``prefix`` back to the build the current one replaced; returns (from, to, its record)."""
    current, record = installed_build(prefix)
    previous = record.previous
    if not previous:
        raise InputError(f"--rollback: {prefix} -> {current} records no previous build",
                         fix="nothing to go back to (a first build, or one made before buildkit kept the previous)")
    if os.path.realpath(previous) == os.path.realpath(current):
        raise InputError(f"--rollback: {prefix} -> {current} records itself as the previous build",
                         fix="nothing to go back to (it was rebuilt in place)")
    try:
        old = BuildRecord.load(previous) if os.path.isdir(previous) else None
    except MissingRecord:
        old = None
    if old is None:
        raise InputError(f"--rollback: the previous build {previous} is gone",
                         fix=f"rebuild what you need: buildkit python --prefix {prefix} ...")
    if not old.verified:
        raise InputError(f"--rollback: the previous build {previous} was not verified",
                         fix=f"check it: buildkit verify {previous}/bin/python3")
    for package in ("openssl", "sqlite"):
        dep = old.library(package)
        if dep is not None and dep.how == "private" and not os.path.isdir(dep.prefix):
            raise InputError(f"--rollback: the {LABEL[package]} of {previous} ({dep.prefix}) is gone",
                             fix=f"rebuild what you need: buildkit python --prefix {prefix} ...")
    lock = lock_state(Layout.of(prefix).state_dir, prefix)
    try:
        switch(prefix, previous)
    finally:
        lock.close()
    return current, previous, old
