"""``buildkit ci python``: build, verify and package CPython in throwaway containers, one per matrix cell.

For each image: its builder image is built once (or found by template hash), and probed from inside for
what ``buildkit python`` would probe on a host. For each cell: the plan is made for that image (pure),
the sources are fetched and checked on this machine, and before anything is built every artifact path is
checked (one that exists is an error: nothing is overwritten). Then, in a fresh container with no network,
as the non-root build user:

1. ``sh build.sh SOURCES``: the plan's emitted script (``buildkit python --emit-script``) builds OpenSSL,
   SQLite and CPython and verifies the result in place with the new interpreter;
2. ``relocate.py`` (run by that interpreter) makes the tree relocatable and packs
   ``python-<v>-openssl-<v>-sqlite-<v>-<distro>-<arch>.tar.gz``;
3. the build prefix is deleted, the archive unpacked elsewhere and verified again, so the artifact is
   proven to work on its own;
4. the archive and a JSON report are copied out.

A failed cell keeps its logs in ``OUT/logs/<name>/`` and shows their tail; the other cells still run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from buildkit import __version__
from buildkit.container import probe
from buildkit.container.engine import Container, ContainerGone, Engine, copy_file_noclobber, safe_extract_tar
from buildkit.container.images import (
    BUILD_UID,
    ImageRef,
    Rendered,
    RenderOptions,
    apt_sources_for,
    host_debian_archive,
    render,
)
from buildkit.container.matrix import SYSTEM, Cell, artifact_name
from buildkit.container.spread import EngineSlot, EngineUnfit, Spread, first_answering
from buildkit.errors import BuildFailed, BuildkitError, CheckFailed, InputError

__all__ = ["CellResult", "CiOptions", "Prepared", "build_container", "cpus_beyond", "default_jobs", "prepare_image",
           "run_cells", "render_options"]

if TYPE_CHECKING:
    from buildkit.pybuild.build import FetchOptions
    from buildkit.pybuild.plan import Plan
    from buildkit.pybuild.verify import VerifyReport

Say = Callable[[str], None]
HOME = "/home/build"
CI = f"{HOME}/ci"
PREFIX_ROOT = "/opt/buildkit"
RELOCATE = Path(__file__).resolve().parent.parent / "pybuild" / "relocate.py"  # copied into the container
RELOCATE_MARK = "BUILDKIT-RELOCATE: "


@dataclass(frozen=True)
class CiOptions:
    out_dir: Path
    fetch: FetchOptions
    jobs: int | None = None  # None: as many as the container may use (default_jobs)
    cpus: int | None = None  # --cpus: each build container held to this many of its engine's CPUs
    apt_mirror: str | None = None  # None: the host's Debian mirrors for Debian images
    yum_mirror: str = ""
    optimize: bool = False  # PGO + LTO in every cell
    profile_tests: tuple[str, ...] = ()  # --profile-tests: the profile run's regrtest files
    glibc: str = ""  # --portable: the glibc floor every cell is built for (on the npm toolchain's sysroot)
    toolchain: Path | None = None  # --portable: the toolchain's npm package, copied into each container

    @property
    def portable(self) -> bool:
        return bool(self.glibc)

    def label(self, image: ImageRef) -> str:
        """The artifact's platform part: the distribution built on, or a portable build's floor."""
        return f"glibc{self.glibc}" if self.glibc else image.spec.label


def default_jobs(cpus: int | None, engine_cpus: int) -> int:
    """make -j when --jobs is not given: the CPUs a build container may use (``--cpus``, at most the engine's)."""
    return min(cpus, engine_cpus) if cpus else engine_cpus


def build_container(engine: Engine, image_id: str, name: str, opts: CiOptions) -> Container:
    """The container cell ``name`` is built in (enter it to start it): no network, the build user, at most
    ``opts.cpus`` of the engine's CPUs."""
    return engine.container(image_id, what=name, cpus=opts.cpus)


def cpus_beyond(cpus: int | None, engine: Engine) -> str:
    """Why ``engine`` cannot give a build container ``cpus`` CPUs ('' when it can): it has fewer."""
    if cpus is None or cpus <= engine.cpus:
        return ""
    return f"--cpus {cpus}: the engine at {engine.host} has {engine.cpus} CPU{'s' if engine.cpus > 1 else ''}"


@dataclass
class Prepared:
    """A builder image ready to run: built or found, and probed."""

    image: ImageRef
    rendered: Rendered
    image_id: str
    built: bool
    host: probe.ContainerHost
    seconds: float


@dataclass
class CellResult:
    cell: Cell
    name: str
    ok: bool
    exit_code: int
    message: str
    seconds: float = 0.0
    artifact: Path | None = None
    report: Path | None = None
    logs: Path | None = None
    verification: dict | None = None
    build_started: float | None = None  # seconds after the run began that build.sh started
    tail: list[str] = field(default_factory=list)
    engine: str = ""  # the engine that built it (as named on the command line)


def render_options(image: ImageRef, purpose: str, *, apt_mirror: str | None = None, yum_mirror: str = "",
                   kernel: str = "") -> RenderOptions:
    archive = host_debian_archive() if (image.spec.distro == "debian" and not apt_mirror) else None
    return RenderOptions(purpose, kernel, apt_sources_for(image.spec, mirror=apt_mirror, archive=archive), yum_mirror)


def prepare_image(engine: Engine, image: ImageRef, options: RenderOptions, logs: Path, say: Say) -> Prepared:
    """Build (or find) the builder image and probe it; the base must be the distribution it claims to be."""
    started = time.monotonic()
    rendered = render(image, options)
    log = logs / f"image-{image.spec.distro}-{image.spec.release}-{options.purpose}.log"
    image_id, built = engine.builder_image(rendered, log=log, say=say)
    if not built:
        say(f"==> {image.name}: reusing {rendered.tag} ({image_id.split(':')[-1][:12]}, template {rendered.hash[:12]})")
    out = engine.run_once(image_id, probe.script(), what=f"the probe of {image.name}")
    host = probe.parse(out, image.name)
    spec = image.spec
    if host.os_id and host.os_id != spec.os_id:
        raise InputError(f"{image.arg}: the base image is {host.info.os or host.os_id}, not {spec.pretty}",
                         fix=f"pass {spec.name}=BASE with a {spec.pretty} image")
    if host.version_id and not (host.version_id == spec.release or host.version_id.startswith(spec.release + ".")):
        raise InputError(f"{image.arg}: the base image is {host.info.os or host.version_id}, not {spec.pretty}",
                         fix=f"pass {spec.name}=BASE with a {spec.pretty} image")
    return Prepared(image, rendered, image_id, built, host, time.monotonic() - started)


@dataclass
class _CellPlan:
    cell: Cell
    prepared: Prepared
    plan: Plan
    files: dict[str, Path]
    name: str

    def paths(self, out: Path) -> tuple[Path, Path]:
        return out / f"{self.name}.tar.gz", out / f"{self.name}.json"


def _predicted_paths(cells: Sequence[Cell], out: Path, arch: str, opts: CiOptions) -> list[Path]:
    """Artifact paths known before any image runs: cells whose OpenSSL and SQLite are private versions."""
    found = []
    for cell in cells:
        if SYSTEM in (cell.openssl, cell.sqlite):
            continue
        name = artifact_name(cell.cpython, cell.openssl, cell.sqlite, opts.label(cell.image), arch, opts.optimize)
        found += [p for p in (out / f"{name}.tar.gz", out / f"{name}.json") if os.path.lexists(p)]
    return found


def _refuse_existing(paths: list[Path]) -> None:
    if paths:
        more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
        raise InputError(f"{paths[0]} already exists{more}; nothing was built and it was left as it was",
                         fix="remove it or choose another --out")


def run_cells(cells: Sequence[Cell], opts: CiOptions, engines: Engine | Sequence[EngineSlot], say: Say,
              started: float | None = None) -> list[CellResult]:
    """Every cell, one container each; bad input (an existing artifact, an unknown version, a base of the
    wrong distribution) raises before anything is built. With several engines (:class:`EngineSlot`), the
    images are probed and the cells planned on the first that answers, and the cells spread over all."""
    slots = [EngineSlot(engines.host, lambda: engines)] if isinstance(engines, Engine) else list(engines)
    engine = first_answering(slots)
    for slot in slots:
        if slot.dead:
            say(f"[{slot.name}] does not answer; it leaves the run: {slot.dead}")
    beyond = cpus_beyond(opts.cpus, engine)
    if beyond:
        raise InputError(beyond, fix=f"pass --cpus {engine.cpus} or fewer, or leave --cpus out (no limit)")
    from buildkit.pybuild.build import plan_for
    from buildkit.pybuild.plan import Request

    started = time.monotonic() if started is None else started
    out = opts.out_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out {out}: cannot create it: {e.strerror}",
                         fix="choose a folder you can write to") from None
    if not os.access(out, os.W_OK):
        raise InputError(f"--out {out}: not writable", fix="choose a folder you can write to")
    logs = out / "logs"
    _refuse_existing(_predicted_paths(cells, out, engine.arch, opts))

    results: list[CellResult] = []
    prepared: dict[str, Prepared | BuildkitError] = {}
    for cell in cells:
        if cell.image.arg in prepared:
            continue
        try:
            options = render_options(cell.image, "python", apt_mirror=opts.apt_mirror, yum_mirror=opts.yum_mirror)
            prepared[cell.image.arg] = prepare_image(engine, cell.image, options, logs, say)
        except BuildFailed as e:  # apt/yum failed: that image's cells fail, the others go on
            prepared[cell.image.arg] = e

    plans: list[_CellPlan] = []
    for cell in cells:
        prep = prepared[cell.image.arg]
        if isinstance(prep, BuildkitError):
            results.append(CellResult(cell, cell.key, False, prep.exit_code, str(prep), logs=logs))
            continue
        jobs = opts.jobs or default_jobs(opts.cpus, engine.cpus)
        toolchain = None
        if opts.portable:
            from buildkit.pybuild.plan import check_portable
            from buildkit.pybuild.toolchain import script_toolchain

            try:
                check_portable(cell.cpython, cell.choice("openssl"), cell.choice("sqlite"))
            except InputError as e:
                raise InputError(f"{cell.key}: {e.message}", fix=e.fix) from None
            toolchain = script_toolchain(opts.glibc)
        req = Request(cell.cpython, f"{PREFIX_ROOT}/python-{cell.cpython}", cell.choice("openssl"),
                      cell.choice("sqlite"), jobs=jobs, optimize=opts.optimize, profile_tests=opts.profile_tests,
                      toolchain=toolchain)
        try:
            plan, files = plan_for(req, prep.host.info, opts.fetch, say)
        except InputError as e:
            raise InputError(f"{cell.key}: {e.message}", fix=e.fix) from None
        py = plan.components[-1].version
        name = artifact_name(py, plan.openssl.version, plan.sqlite.version, opts.label(cell.image), prep.host.arch,
                             opts.optimize)
        if opts.toolchain is not None:
            files = {**files, "toolchain": opts.toolchain}
        plans.append(_CellPlan(cell, prep, plan, files, name))
    names = [p.name for p in plans]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise InputError(f"two cells would make the same artifact {dup}", fix="split the matrix over two --out folders")
    _refuse_existing([p for cp in plans for p in cp.paths(out) if os.path.lexists(p)])

    total = len(plans)
    if len(slots) > 1:
        results += _run_spread(plans, slots, opts, out, logs, say, started)
    else:
        for number, cp in enumerate(plans, 1):
            say(f"==> [{number}/{total}] {cp.name} in {cp.cell.image.arg}")
            try:
                result = _build_cell(engine, cp, out, logs / cp.name, say, started, opts)
            except KeyboardInterrupt:
                raise
            except (ContainerGone, BuildkitError) as e:
                result = CellResult(cp.cell, cp.name, False, e.exit_code, str(e), logs=logs / cp.name)
            result.engine = slots[0].name
            results.append(result)
    order = {id(c): i for i, c in enumerate(cells)}
    results.sort(key=lambda r: order.get(id(r.cell), 0))
    return results


def _run_spread(plans: Sequence[_CellPlan], slots: Sequence[EngineSlot], opts: CiOptions, out: Path, logs: Path,
                say: Say, started: float) -> list[CellResult]:
    """The cells over the engines (:class:`Spread`), one cell per engine at a time, each engine with its own
    builder image, prepared the first time it meets the cell's image."""
    builders: dict[tuple[str, str], Prepared] = {}  # (engine, image) -> its builder

    def build(slot: EngineSlot, cp: _CellPlan, say_here: Say) -> CellResult:
        engine = slot.get()
        beyond = cpus_beyond(opts.cpus, engine)
        if beyond:
            raise EngineUnfit(beyond, fix="give engines with that many CPUs, or a smaller --cpus")
        prep = builders.get((slot.name, cp.cell.image.arg))
        if prep is None:
            prep = builders[slot.name, cp.cell.image.arg] = prepare_image(engine, cp.cell.image, _options(cp, opts),
                                                                          logs, say_here)
            if prep.host.arch != cp.prepared.host.arch:
                raise EngineUnfit(f"the engine at {slot.name} runs {prep.host.arch}; the matrix was planned for "
                                  f"{cp.prepared.host.arch}", fix="give engines of one architecture")
        result = _build_cell(engine, _CellPlan(cp.cell, prep, cp.plan, cp.files, cp.name), out, logs / cp.name,
                             say_here, started, opts)
        result.engine = slot.name
        return result

    def failed(cp: _CellPlan, e: BuildkitError, slot: EngineSlot) -> CellResult:
        result = CellResult(cp.cell, cp.name, False, e.exit_code, str(e), logs=logs / cp.name)
        result.engine = slot.name
        return result

    def stranded(cp: _CellPlan, reasons: str) -> CellResult:
        return CellResult(cp.cell, cp.name, False, 2, f"{cp.name}: no engine left to build it ({reasons})",
                          logs=logs / cp.name)

    return Spread(slots, say, name=lambda cp: cp.name, title=lambda cp: f"{cp.name} in {cp.cell.image.arg}",
                  build=build, failed=failed, stranded=stranded).run(plans)


def _options(cp: _CellPlan, opts: CiOptions) -> RenderOptions:
    return render_options(cp.cell.image, "python", apt_mirror=opts.apt_mirror, yum_mirror=opts.yum_mirror)


def _mark_line(lines: Sequence[str], mark: str) -> dict | None:
    for line in reversed(lines):
        if line.startswith(mark):
            try:
                return json.loads(line[len(mark):])
            except ValueError:
                return None
    return None


def _read_mark(log: Path, mark: str) -> dict | None:
    try:
        return _mark_line(log.read_text(encoding="utf-8", errors="replace").splitlines(), mark)
    except OSError:
        return None


def _write_noclobber(text: str, final: Path, tmpdir: Path) -> None:
    tmp = tmpdir / (final.name + ".new")
    tmp.write_text(text, encoding="utf-8")
    copy_file_noclobber(tmp, final)


def _build_cell(engine: Engine, cp: _CellPlan, out: Path, logs: Path, say: Say, run_started: float,
                opts: CiOptions) -> CellResult:
    from buildkit.catalog import django_sqlite_min
    from buildkit.pybuild.record import BuildRecord
    from buildkit.pybuild.script import render_script
    from buildkit.pybuild.verify import PROBE_MARK, PROBE_SOURCE, report_from_probe

    plan, cell, prep = cp.plan, cp.cell, cp.prepared
    started = time.monotonic()
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    artifact, report_path = cp.paths(out)
    tmpdir = Path(tempfile.mkdtemp(prefix=".buildkit-ci-", dir=out))
    try:
        (tmpdir / "build.sh").write_text(render_script(plan), encoding="utf-8")
        (tmpdir / "probe.py").write_text(PROBE_SOURCE, encoding="utf-8")
        with build_container(engine, prep.image_id, cp.name, opts) as c:
            c.call(["mkdir", "-p", f"{CI}/sources", f"{CI}/out", f"{CI}/check"])
            c.copy_into([(tmpdir / "build.sh", "build.sh"), (tmpdir / "probe.py", "probe.py"),
                         (RELOCATE, "relocate.py")], CI, owner=(BUILD_UID, BUILD_UID))
            sources = {key: path for key, path in cp.files.items() if key != "toolchain"}
            c.copy_into([(path, path.name) for path in sources.values()], f"{CI}/sources",
                        owner=(BUILD_UID, BUILD_UID))
            argv = ["sh", f"{CI}/build.sh", f"{CI}/sources"]
            if "toolchain" in cp.files:  # --portable: the script checks the npm package and unpacks it
                c.copy_into([(cp.files["toolchain"], "toolchain.tgz")], CI, owner=(BUILD_UID, BUILD_UID))
                argv.append(f"{CI}/toolchain.tgz")
            build_started = time.monotonic() - run_started
            held = f", {opts.cpus} of the engine's CPUs" if opts.cpus else ""
            say(f"    sh build.sh (network none, user build, {plan.request.jobs} jobs{held}; log {logs / 'build.log'})")
            run = c.call(argv, log=logs / "build.log", check=False,
                         on_line=lambda line: None if line.startswith(PROBE_MARK) else say(f"    | {line}"),
                         doing="the build")
            if run.exit_code != 0:
                try:
                    c.copy_out(plan.log_dir, logs)
                except BuildkitError:
                    pass
                died = next((ln for ln in reversed(run.tail) if "build.sh: error:" in ln), "")
                why = died.split("build.sh: error:", 1)[1].strip() if died else f"build.sh exited with {run.exit_code}"
                code = 2 if run.exit_code == 2 else 1
                return CellResult(cell, cp.name, False, code, f"{cp.name}: {why}", time.monotonic() - started,
                                  logs=logs, build_started=build_started, tail=run.tail)
            record = BuildRecord.parse(c.read_text(f"{plan.install_dir}/BUILDKIT.json"),
                                       f"{cp.name}: {plan.install_dir}/BUILDKIT.json")

            say("    relocatable archive")
            private = [ch for ch in (plan.openssl, plan.sqlite) if ch.how == "private"]
            args = [plan.python, "-I", f"{CI}/relocate.py", "--install", plan.install_dir, "--name", cp.name,
                    "--out", f"{CI}/out"]
            if opts.portable:  # made relocatable during the build (its libraries are linked in): packed as it is
                args.append("--portable")
            else:
                args += ["--openssldir", cell.image.spec.openssldir]
                for ch in private:
                    args += ["--dep", ch.prefix]
                if plan.openssl.how == "private":
                    args += ["--openssl-prefix", plan.openssl.prefix]
            # CPython's own test suite (140 MB for 3.13) is not part of an artifact to deploy.
            xy = ".".join(plan.components[-1].version.split(".")[:2])
            args += ["--exclude", f"lib/python{xy}/test", "--exclude", f"lib/python{xy}/idlelib/idle_test"]
            rel = c.call(args, log=logs / "relocate.log", check=False, doing="relocate.py")
            relocated = _read_mark(logs / "relocate.log", RELOCATE_MARK)
            if rel.exit_code != 0 or relocated is None:
                why = (rel.tail or ["no output"])[-1]
                return CellResult(cell, cp.name, False, 1, f"{cp.name}: making the artifact relocatable failed: {why}",
                                  time.monotonic() - started, logs=logs, tail=rel.tail, build_started=build_started)

            say("    verify the archive unpacked elsewhere, with the build prefix deleted")
            check_root = f"{CI}/check/{cp.name}"
            c.call(["rm", "-rf", plan.state_dir], doing="deleting the build prefix")
            c.call(["tar", "-xzf", f"{CI}/out/{cp.name}.tar.gz", "-C", f"{CI}/check"], doing="unpacking the archive")
            probe_args = ["env", "-i", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "PIP_CONFIG_FILE=/dev/null",
                          f"{check_root}/bin/python3", "-I", f"{CI}/probe.py", "--json",
                          "--django-sqlite-min", django_sqlite_min(),
                          "--expect-openssl", plan.openssl.version, "--expect-sqlite", plan.sqlite.version]
            if private:
                probe_args += ["--private-prefix", check_root]
            if plan.request.optimize:
                probe_args.append("--expect-optimized")
            ver = c.call(probe_args, cwd="/", log=logs / "verify.log", check=False, doing="the verification")
            payload = _read_mark(logs / "verify.log", PROBE_MARK)
            if payload is None:
                why = (ver.tail or ["no output"])[-1]
                return CellResult(cell, cp.name, False, 1, f"{cp.name}: the unpacked artifact does not run: {why}",
                                  time.monotonic() - started, logs=logs, tail=ver.tail, build_started=build_started)
            got = c.copy_out(f"{CI}/out/{cp.name}.tar.gz", tmpdir)
            say("    binary floor of the archive (glibc, linked libraries, hardening)")
            report = _with_floor(report_from_probe(f"{check_root}/bin/python3", payload), got, tmpdir / "floor",
                                 bool(private), opts.glibc or None)
            verification = report.to_json()
            if not report.ok:
                failed = ", ".join(ch.name for ch in report.failed)
                return CellResult(cell, cp.name, False, 1,
                                  f"{cp.name}: the unpacked artifact failed verification: {failed}",
                                  time.monotonic() - started, logs=logs, verification=verification,
                                  tail=ver.tail, build_started=build_started)
        seconds = time.monotonic() - started
        doc = {
            "buildkit": __version__,
            "artifact": artifact.name,
            "sha256": relocated.get("sha256"),
            "size": relocated.get("size"),
            "cell": cell.to_json(),
            "engine": engine.host,
            "image": {"name": cell.image.name, "base": cell.image.base, "builder": prep.rendered.tag,
                      "builder_id": prep.image_id, "template_hash": prep.rendered.hash},
            "container": prep.host.to_json(),
            "seconds": round(seconds, 1),
            "plan": plan.to_json(),
            "build": record.to_json(),
            "relocated": {k: v for k, v in relocated.items() if k not in ("archive",)},
            "verification": verification,
            "verified": True,
        }
        copy_file_noclobber(got, artifact)
        try:
            _write_noclobber(json.dumps(doc, indent=2) + "\n", report_path, tmpdir)
        except InputError:
            pass  # the archive is there; the report appeared meanwhile (another run): leave it
        return CellResult(cell, cp.name, True, 0, "built and verified", seconds, artifact, report_path, logs,
                          verification, build_started)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _with_floor(report: VerifyReport, archive: Path, dest: Path, private: bool,
                glibc_max: str | None = None) -> VerifyReport:
    """``report`` with the binary floor's checks, read here from the artifact's ELF files (pyelftools is on
    this side, not in the image): the archive is unpacked into ``dest``, which the caller removes. A portable
    artifact (``glibc_max``) must keep its promises: that floor at most, nothing linked beyond the C runtime."""
    import tarfile

    from buildkit.pybuild.verify import add_floor

    with tarfile.open(archive) as tar:
        safe_extract_tar(tar, dest)
    report = add_floor(report, [str(top) for top in sorted(dest.iterdir())], private, glibc_max, bool(glibc_max))
    here = str(dest) + "/"

    def in_archive(value: object) -> object:  # paths as members of the archive, not of a deleted folder
        if isinstance(value, str):
            return value[len(here):] if value.startswith(here) else value
        if isinstance(value, list):
            return [in_archive(v) for v in value]
        if isinstance(value, dict):
            return {k: in_archive(v) for k, v in value.items()}
        return value

    if not report.binaries:
        return report
    binaries = in_archive(report.binaries)
    assert isinstance(binaries, Mapping)  # a mapping stays one
    return dataclasses.replace(report, binaries=binaries)


def summary_rows(results: Sequence[CellResult]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("image", "python", "openssl", "sqlite", "engine", "result", "time",
                                    "artifact / logs")]
    for r in results:
        minutes, secs = divmod(int(r.seconds), 60)
        took = f"{minutes}m{secs:02d}s" if r.seconds else "-"
        if r.ok:
            checks = (r.verification or {}).get("checks") or []
            passed = sum(1 for c in checks if c["ok"] and c.get("required", True))
            required = sum(1 for c in checks if c.get("required", True))
            result = f"ok ({passed}/{required})"
            where = str(r.artifact)
        else:
            result = "FAILED"
            where = str(r.logs) if r.logs else "-"
        rows.append((r.cell.image.arg, r.cell.cpython, r.cell.openssl, r.cell.sqlite, r.engine or "-", result, took,
                     where))
    return rows


def format_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def results_json(results: Sequence[CellResult]) -> dict:
    return {"cells": [{"name": r.name, **r.cell.to_json(), "ok": r.ok, "exit_code": r.exit_code,
                       "message": r.message, "seconds": round(r.seconds, 1), "engine": r.engine,
                       "artifact": str(r.artifact) if r.artifact else None,
                       "report": str(r.report) if r.report else None, "logs": str(r.logs) if r.logs else None,
                       "build_started_after": round(r.build_started, 2) if r.build_started is not None else None}
                      for r in results]}


def overall_error(results: Sequence[CellResult]) -> BuildkitError | None:
    failed = [r for r in results if not r.ok]
    if not failed:
        return None
    code = max(r.exit_code for r in failed)
    first = failed[0].message
    text = first if len(results) == 1 else f"{len(failed)} of {len(results)} cells failed; first: {first}"
    cls = CheckFailed if code == 1 else BuildkitError
    err = cls(text)
    err.exit_code = code
    return err
