"""``buildkit python --portable`` against the plain build of the same versions, both legs in one run.

Build time: CPython 3.13.5 with OpenSSL 3.0.20 and SQLite 3.40.1, plain (this host's gcc and glibc, the
private libraries shared) and portable (the same gcc on the glibc 2.17 sysroot, those two and the seven
portable libraries static), each with ``--clean`` so every component is built in the run, interleaved
plain, portable, plain, portable, ... ``--rounds`` times; the medians of the whole commands' wall times and
their spread (min-max), and the ratio portable / plain (target <= 1.5x: the seven extra libraries are the
price). The per-component seconds of the last round come from each BUILDKIT.json.

Speed: the same workload as bench_optimize.py (pyperformance's pure-Python benchmarks under pyperf --fast,
in a venv of each interpreter, alternating plain and portable benchmark by benchmark): the speed of the
portable interpreter relative to the plain one (plain mean / portable mean; target >= 0.95x).

Usage: python3 bench/bench_portable.py [--dir DIR] [--rounds N] [--jobs N] [--benchmarks a,b,...]
Holds /var/tmp/bk-compile.lock for the whole run (the builds are compilations; the workload must not share
the machine with one).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_optimize import BENCHMARKS, LOCK, PYPERFORMANCE, run_benchmark, venv, wheels_in
from common import FIXTURES, buildkit_cmd

CPYTHON, OPENSSL, SQLITE = "3.13.5", "3.0.20", "3.40.1"
BUILD_TARGET, SPEED_TARGET = 1.5, 0.95


def build(prefix: Path, extra: list[str], jobs: int | None) -> dict:
    """One ``buildkit python --clean`` run (every component built here); its --json record and wall time."""
    cmd = [*buildkit_cmd(), "python", CPYTHON, "--prefix", str(prefix), "--source-dir", str(FIXTURES / "sources"),
           "--cache", str(prefix.parent / "cache"), "--json", "--clean", f"--with-openssl={OPENSSL}",
           f"--with-sqlite={SQLITE}", *extra] + (["--jobs", str(jobs)] if jobs else [])
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    started = time.perf_counter()
    run = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if run.returncode != 0:
        sys.exit(f"bench: the build failed (exit {run.returncode}): {' '.join(cmd)}")
    record = json.loads(run.stdout)
    record["_wall"] = time.perf_counter() - started
    return record


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.0f} s (min {min(values):.0f}, max {max(values):.0f}, n={len(values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/bk-bench-portable"))
    parser.add_argument("--rounds", type=int, default=2, help="Plain+portable build pairs (default 2).")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--benchmarks", default=",".join(BENCHMARKS))
    args = parser.parse_args()
    names = [n for n in args.benchmarks.split(",") if n]
    base = args.dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    toolchain = FIXTURES / "portable" / "cache" / "toolchains" / "glibc2.17-x86_64-1.0.0.tgz"
    portable_args = ["--portable"] + (["--toolchain", str(toolchain)] if toolchain.is_file() else [])
    lock = open(LOCK, "a")
    print(f"bench: waiting for {LOCK}", file=sys.stderr, flush=True)
    fcntl.flock(lock, fcntl.LOCK_EX)

    walls: dict[str, list[float]] = {"plain": [], "portable": []}
    records: dict[str, dict] = {}
    for _ in range(args.rounds):
        for label, extra in (("plain", []), ("portable", portable_args)):
            records[label] = build(base / label, extra, args.jobs)
            walls[label].append(records[label]["_wall"])
            print(f"  {label:<9} {records[label]['_wall']:.0f} s", file=sys.stderr, flush=True)
    if not records["portable"].get("portable") or records["plain"].get("portable"):
        sys.exit("bench: the records do not say plain/portable as asked")

    wheels = wheels_in(base / "wheels")
    pythons = {label: venv(records[label]["python"], base / f"venv-{label}", wheels) for label in records}
    means: dict[str, dict[str, float]] = {"plain": {}, "portable": {}}
    for name in names:
        for label in ("plain", "portable"):
            means[label][name] = run_benchmark(pythons[label], name, base / f"{label}-{name}.json")
        print(f"  {name:<16} plain {means['plain'][name] * 1e3:9.3f} ms   portable "
              f"{means['portable'][name] * 1e3:9.3f} ms   {means['plain'][name] / means['portable'][name]:5.2f}x",
              flush=True)
    lock.close()

    ratio = statistics.median(walls["portable"]) / statistics.median(walls["plain"])
    speeds = [means["plain"][n] / means["portable"][n] for n in names]
    geomean = math.exp(sum(math.log(s) for s in speeds) / len(speeds))
    print(f"\nCPython {CPYTHON}, OpenSSL {OPENSSL}, SQLite {SQLITE}; every component built in each run (--clean), "
          f"plain and portable interleaved, {args.rounds} rounds")
    for label in ("plain", "portable"):
        parts = ", ".join(f"{k} {v:.0f}" for k, v in (records[label].get("component_seconds") or {}).items())
        print(f"build {label:<9}: {spread(walls[label])}; last round's components (s): {parts}")
    print(f"build time portable / plain: {ratio:.2f}x; target <= {BUILD_TARGET:.1f}x: "
          f"{'ok' if ratio <= BUILD_TARGET else 'MISSED'}")
    print(f"speed portable vs plain (plain time / portable time), geometric mean over {len(names)} pyperformance "
          f"{PYPERFORMANCE} benchmarks: {geomean:.3f}x (min {min(speeds):.2f}x {names[speeds.index(min(speeds))]}, "
          f"max {max(speeds):.2f}x {names[speeds.index(max(speeds))]}); target >= {SPEED_TARGET:.2f}x: "
          f"{'ok' if geomean >= SPEED_TARGET else 'MISSED'}")
    return 0 if ratio <= BUILD_TARGET and geomean >= SPEED_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
