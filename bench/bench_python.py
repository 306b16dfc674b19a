"""``buildkit python`` vs the same commands by hand (the floor) vs pyenv's python-build, in one run.

Builds OpenSSL 3.0.20 + SQLite 3.40.1 + CPython 3.11.2 from the same tarballs three times, one after the
other (never two compilations at once), and prints wall times and ratios:
  floor     the configure/make/install commands of buildkit's own plan (--dry-run --json), run in
            sequence by this script: what a careful person types by hand
  buildkit  buildkit python ... (fetch from --source-dir, checks, logs, verification, atomic switch)
  pyenv     python-build from Debian's pyenv package, with a definition written here that adds the
            OpenSSL (its mac_openssl step; python-build has no Linux one) and SQLite steps
Also: the same buildkit command again on the verified prefix (no-op), and what OpenSSL's full
'make install' costs over 'install_sw' (the docs). Targets: overhead <= 5 % over the floor, no-op < 2 s.

buildkit's overhead is also measured directly, from each build's BUILDKIT.json: the seconds of its own steps
outside the three compilers (``step_seconds``: plan, fetch, extract, verify, switch; buildkit/pybuild/clock.py
says what each holds), printed per run and as medians, their sum judged against a target of <= 10 s; beside it
the record's total less the components' configure..install (``component_seconds``), and what is in neither
(other). The extraction step's path depends on the interpreter running buildkit (buildkit/sources/extract.py):
tarfile's data filter with buildkit's checks where tarfile has it (3.12+ and the 3.8-3.11 security releases
that backported it), buildkit's own checks only where not; the report names the path and the interpreter.

Each leg runs --repeat times (default 3), the legs taking turns, each leg first once; medians and ratios.
python-build comes from Debian's pyenv package (tests/fixtures/sources.sh fetches it); without it the
benchmark stops with the command that fetches it: a leg that cannot run is an error, never a silent skip.

Usage: python3 bench/bench_python.py [--skip-pyenv] [--repeat N] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from common import FIXTURES, ROOT, buildkit_cmd

sys.path.insert(0, str(ROOT))
from buildkit.pybuild.clock import STEPS  # noqa: E402
from buildkit.pybuild.record import BuildRecord  # noqa: E402
from buildkit.pybuild.runner import clean_env  # noqa: E402

CPYTHON, OPENSSL, SQLITE = "3.11.2", "3.0.20", "3.40.1"
KEEP = Path("/var/tmp/bk-bench-python-logs")
OUTSIDE_TARGET = 10.0  # seconds of buildkit's own steps per build, outside the compilers (issue 20)


def sources() -> Path:
    dest = FIXTURES / "sources"
    subprocess.run(["sh", str(ROOT / "tests" / "fixtures" / "sources.sh"), str(dest)], check=True,
                   stdout=subprocess.DEVNULL)
    return dest


def wall(fn, *args, **kwargs) -> float:
    """Seconds ``fn(*args, **kwargs)`` took (said on stderr as it ends)."""
    start = time.perf_counter()
    fn(*args, **kwargs)
    took = time.perf_counter() - start
    print(f"  ... {took:.1f} s", file=sys.stderr, flush=True)
    return took


def run_floor(plan: dict, cache: Path, work: Path, parts: dict[str, float]) -> None:
    """Every command of the plan, in order, nothing else: extract, configure, make, install. ``parts`` gets each
    component's seconds from configure to install (what buildkit records as component_seconds)."""
    for comp in plan["components"]:
        tarball = cache / comp["file"]  # verified there by the --dry-run's fetch
        srcdir = work / comp["package"]
        unpack = work / (comp["package"] + ".x")
        unpack.mkdir(parents=True)
        subprocess.run(["tar", "-xf", str(tarball), "-C", str(unpack)], check=True)
        (next(unpack.iterdir())).rename(srcdir)
        start = time.perf_counter()
        for step in comp["steps"]:
            if "action" in step:
                if step["action"] == "link-ca-store":
                    ssl_dir, ca_file, ca_dir = step["args"]
                    os.makedirs(ssl_dir, exist_ok=True)
                    os.symlink(ca_file, os.path.join(ssl_dir, "cert.pem"))
                    os.symlink(ca_dir, os.path.join(ssl_dir, "certs"))
                continue
            if step["phase"] == "smoke":
                continue
            cwd = step["cwd"] if step["cwd"].startswith("/") else str(srcdir)
            env = clean_env(tuple(step["env"].items()))
            subprocess.run(step["argv"], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        parts[comp["package"]] = time.perf_counter() - start


class Figures(NamedTuple):
    """A build's overhead, in seconds."""

    outside: float  # measured directly: buildkit's own steps, summed (what OUTSIDE_TARGET judges)
    total_less_compilers: float  # measured by difference: the record's total less the components'
    other: float  # in no step and no component (the lock, the work folders cleared and made; rounding)
    wall_less_compilers: float  # the same with the interpreter's start-up and buildkit's imports


@dataclass(frozen=True)
class Overhead:
    """One buildkit build's time outside the three compilers, as its BUILDKIT.json has it."""

    steps: Mapping[str, float]  # step_seconds: buildkit's own steps, each summed over the components
    compilers: float  # the components' configure..install (component_seconds), summed
    total: float  # the record's seconds: the whole build, interpreter start-up aside
    wall: float  # the command's, as this script timed it

    @classmethod
    def of(cls, record: BuildRecord, wall: float) -> Overhead:
        missing = [step for step in STEPS if step not in record.step_seconds]
        if missing:
            raise ValueError(f"the record of build {record.build_id} has no step_seconds for {', '.join(missing)} "
                             "(written by a buildkit older than its step clock?)")
        return cls(dict(record.step_seconds), sum(record.component_seconds.values()), record.seconds, wall)

    def figures(self) -> Figures:
        outside = sum(self.steps[step] for step in STEPS)
        less = self.total - self.compilers
        return Figures(outside, less, less - outside, self.wall - self.compilers)


def _overhead_line(label: str, steps: Mapping[str, float], f: Figures) -> str:
    each = ", ".join(f"{step} {steps[step]:.2f}" for step in STEPS)
    return (f"  {label:<7} {each} s: {f.outside:5.2f} s; total - compilers {f.total_less_compilers:5.1f} s "
            f"(other {f.other:+.1f} s); wall - compilers {f.wall_less_compilers:5.1f} s")


def overhead_report(runs: Sequence[Overhead]) -> tuple[list[str], bool]:
    """Lines on buildkit's own steps per run and as medians (each figure's median over the runs), and whether
    the median of their sum meets OUTSIDE_TARGET."""
    lines = ["buildkit's own steps outside the compilers (seconds, from each build's BUILDKIT.json):"]
    lines += [_overhead_line(f"run {n}", r.steps, r.figures()) for n, r in enumerate(runs, 1)]
    medians = Figures(*(statistics.median(column) for column in zip(*(r.figures() for r in runs))))
    lines.append(_overhead_line("median", {step: statistics.median(r.steps[step] for r in runs) for step in STEPS},
                                medians))
    ok = medians.outside <= OUTSIDE_TARGET
    lines.append(f"buildkit's overhead outside the compilers (its steps summed, median): {medians.outside:.2f} s "
                 f"(target <= {OUTSIDE_TARGET:.0f} s: {'ok' if ok else 'over'})")
    return lines, ok


def extraction_path() -> str:
    """The path buildkit/sources/extract.py takes on this interpreter, which runs buildkit here (buildkit_cmd:
    the console script beside it, or -m buildkit)."""
    where = f"Python {platform.python_version()} ({sys.executable})"
    if hasattr(tarfile, "data_filter"):  # extract.py's _HAS_DATA_FILTER
        return f"extraction: tarfile's data filter and buildkit's own checks, on {where}"
    return f"extraction: buildkit's own checks only (no tarfile data filter), on {where}"


# python-build has no Linux OpenSSL step (its mac_openssl one ends with macOS's `security`), so this
# definition adds one in python-build's own terms: build_package_standard with OpenSSL's ./config into
# PREFIX/openssl, and CPython pointed at it. SQLite goes into PREFIX, which python-build already puts
# in CPPFLAGS/LDFLAGS with an rpath.
PYENV_DEFINITION = """\
build_package_linux_openssl() {{
  OPENSSL_PREFIX_PATH="${{PREFIX_PATH}}/openssl"
  OPENSSL_CONFIGURE=./config
  package_option python configure --with-openssl="${{OPENSSL_PREFIX_PATH}}" --with-openssl-rpath=auto
  package_option openssl configure --openssldir="${{OPENSSL_PREFIX_PATH}}/ssl" --libdir=lib shared no-tests
  build_package_standard "$@"
}}
package_option sqlite3 configure --disable-tcl --disable-static
install_package "openssl-{openssl}" "file://{src}/openssl-{openssl}.tar.gz#{openssl_sha}" linux_openssl
install_package "sqlite3-{sqlite}" "file://{src}/sqlite3-{sqlite}.tar.xz#{sqlite_sha}" standard
install_package "Python-{cpython}" "file://{src}/Python-{cpython}.tgz#{cpython_sha}" standard verify_py311 ensurepip
"""


def pyenv_build(pyenv_root: Path, cache: Path, work: Path, jobs: int) -> float:
    from buildkit import catalog

    definition = work / "definition"
    sqlite = next(s for s in catalog.candidates("sqlite", SQLITE) if s.kind == "full")
    staged = work / "tarballs"
    staged.mkdir()
    for name, source in ((f"openssl-{OPENSSL}.tar.gz", catalog.find("openssl", OPENSSL)),
                         (f"sqlite3-{SQLITE}.tar.xz", sqlite),  # python-build cds into the top dir: sqlite3-V
                         (f"Python-{CPYTHON}.tgz", catalog.find("cpython", CPYTHON))):
        shutil.copy(cache / source.filename, staged / name)
    definition.write_text(PYENV_DEFINITION.format(
        openssl=OPENSSL, sqlite=SQLITE, cpython=CPYTHON, src=staged,
        openssl_sha=catalog.find("openssl", OPENSSL).sha256, sqlite_sha=sqlite.sha256,
        cpython_sha=catalog.find("cpython", CPYTHON).sha256))
    env = dict(clean_env(), MAKE_OPTS=f"-j{jobs}", PYTHON_BUILD_SKIP_MIRROR="1", TMPDIR=str(work))
    build = pyenv_root / "plugins" / "python-build" / "bin" / "python-build"
    return wall(subprocess.run, [str(build), str(definition), str(work / "prefix")], env=env, check=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pyenv_tree() -> Path:
    """python-build from Debian's pyenv package (source or binary, as tests/fixtures/sources.sh fetched it),
    unpacked once under $BUILDKIT_FIXTURES/pyenv-src. Missing: an error, never a skipped leg."""
    dest = FIXTURES / "pyenv-src"
    root = dest / "usr" / "share" / "pyenv"
    if (root / "plugins" / "python-build" / "bin" / "python-build").exists():
        return root
    debian = FIXTURES / "sources" / "debian"
    debs = sorted(debian.glob("pyenv_*_all.deb"))
    origs = sorted(debian.glob("pyenv_*.orig.tar.*"))
    if debs:
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(dest)], check=True)
    elif origs:  # the source package: upstream's tree, laid out as the binary package installs it
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "-xf", str(origs[-1]), "-C", str(root), "--strip-components=1"], check=True)
    if not (root / "plugins" / "python-build" / "bin" / "python-build").exists():
        sys.exit(f"bench_python: no pyenv package in {debian} to take python-build from: run "
                 f"tests/fixtures/sources.sh {FIXTURES / 'sources'} (or pass --skip-pyenv to leave that leg out)")
    return root


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-pyenv", action="store_true", help="leave pyenv's leg out (said in the report)")
    ap.add_argument("--repeat", type=int, default=3, help="builds per leg, legs taking turns (default 3)")
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    opts = ap.parse_args()
    src = sources()
    pyenv_root = None if opts.skip_pyenv else pyenv_tree()
    bk = buildkit_cmd()
    legs = ([] if pyenv_root is None else ["pyenv"]) + ["floor", "buildkit"]  # pyenv's first: it fails early
    times: dict[str, list[float]] = {leg: [] for leg in legs}
    parts: dict[str, list[dict[str, float]]] = {"floor": [], "buildkit": []}  # per component, to explain a gap
    overheads: list[Overhead] = []  # buildkit's own steps, from each build's record
    extras: dict[str, float] = {}
    for rep in range(opts.repeat):
        base = Path(tempfile.mkdtemp(prefix="bk-bench-python-", dir="/var/tmp"))
        common = [f"--with-openssl={OPENSSL}", f"--with-sqlite={SQLITE}", "--source-dir", str(src), "--jobs",
                  str(opts.jobs), "--cache", str(base / "cache")]
        # The plan by hand, and the tarballs checked into base/cache, which every leg takes them from.
        floor_prefix = base / "floor" / "py"
        floor_prefix.parent.mkdir()
        plan = json.loads(subprocess.run(bk + ["python", CPYTHON, "--prefix", str(floor_prefix), "--dry-run",
                                               "--json", *common], capture_output=True, text=True, check=True).stdout)
        for leg in legs[rep % len(legs):] + legs[: rep % len(legs)]:  # each leg goes first once: drift spreads
            print(f"run {rep + 1}/{opts.repeat}: {leg}", file=sys.stderr, flush=True)
            if leg == "floor":
                parts[leg].append({})
                times[leg].append(wall(run_floor, plan, base / "cache", base / "floor" / "work", parts[leg][-1]))
                if rep == 0:
                    openssl_tree = base / "floor" / "work" / "openssl"
                    extras["openssl make install_docs (what install adds over install_sw)"] = wall(
                        subprocess.run, ["make", "install_docs", f"DESTDIR={base / 'docs'}"], cwd=openssl_tree,
                        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elif leg == "buildkit":
                (base / "bk").mkdir()
                prefix = base / "bk" / "py"
                cmd = bk + ["python", CPYTHON, "--prefix", str(prefix), *common]
                times[leg].append(wall(subprocess.run, cmd, check=True, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL))
                record = BuildRecord.load(str(prefix))
                parts[leg].append(dict(record.component_seconds))
                try:
                    overheads.append(Overhead.of(record, times[leg][-1]))
                except ValueError as e:
                    sys.exit(f"bench_python: {prefix}: {e}")
                if rep == 0:
                    noop = [wall(subprocess.run, cmd, check=True, capture_output=True) for _ in range(5)]
                    extras["buildkit python again (no-op, median of 5)"] = statistics.median(noop)
            else:
                (base / "pyenv").mkdir()
                try:
                    times[leg].append(pyenv_build(pyenv_root, base / "cache", base / "pyenv", opts.jobs))
                except subprocess.CalledProcessError:
                    log = next((base / "pyenv").glob("python-build.*.log"), None)
                    sys.exit(f"bench_python: pyenv's python-build failed; its log: {log}")
        kept = KEEP / f"run-{rep + 1}"  # each leg's step logs, to explain an outlier afterwards
        shutil.rmtree(kept, ignore_errors=True)
        for leg_dir, logs in (("buildkit", base / "bk" / "py.buildkit" / "logs"), ("pyenv", base / "pyenv")):
            if logs.is_dir():
                shutil.copytree(logs, kept / leg_dir, ignore=shutil.ignore_patterns("*.tar.*", "prefix", "tarballs",
                                                                                   "python-build.*[0-9]"))
        shutil.rmtree(base, ignore_errors=True)

    med = {leg: statistics.median(t) for leg, t in times.items()}
    names = {"floor": "floor (the plan's commands by hand)", "buildkit": "buildkit python",
             "pyenv": "pyenv python-build"}
    print(f"OpenSSL {OPENSSL} + SQLite {SQLITE} + CPython {CPYTHON}, make -j{opts.jobs}, {os.cpu_count()} CPUs, "
          f"{opts.repeat} run(s) per leg, legs taking turns")
    for leg in legs:
        runs = ", ".join(f"{t:.1f}" for t in times[leg])
        print(f"{names[leg]:<40} median {med[leg]:7.1f} s  ({runs})  {med[leg] / med['floor']:6.3f}x floor")
    for leg in ("floor", "buildkit"):  # configure..install of each component: where a gap between the legs is
        comps = ", ".join(f"{c} {statistics.median(run.get(c, 0) for run in parts[leg]):.0f} s"
                          for c in ("openssl", "sqlite", "cpython"))
        print(f"  {names[leg]:<38} by component (medians): {comps}")
    for name, seconds in extras.items():
        print(f"{name:<64} {seconds:8.2f} s")
    if pyenv_root is None:
        print("pyenv leg: left out (--skip-pyenv)")
    overhead = med["buildkit"] / med["floor"] - 1
    noop = extras["buildkit python again (no-op, median of 5)"]
    print(f"buildkit overhead over the floor (medians): {overhead * 100:+.1f} % (target <= 5 %); "
          f"no-op {noop:.2f} s (target < 2 s)")
    lines, outside_ok = overhead_report(overheads)
    print("\n".join(lines))
    print(extraction_path())
    if "pyenv" in med:
        print(f"pyenv / buildkit (medians): {med['pyenv'] / med['buildkit']:.2f}x")
    print(f"step logs of each run kept in {KEEP}")
    return 0 if overhead <= 0.05 and noop < 2 and outside_ok else 1


if __name__ == "__main__":
    sys.exit(main())
