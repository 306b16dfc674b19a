"""``buildkit python 3.11.2 --optimize`` against the distribution's own interpreter: Debian 12's
``/usr/bin/python3.11`` (3.11.2, which Debian builds with PGO and LTO), on bench_optimize.py's workload.

The buildkit leg is built here (private OpenSSL 3.0.20 and SQLite 3.40.1, the full regrtest profile run, as
``--optimize`` does by default) unless a verified build of the same command is already at ``--dir``
(buildkit's no-op, said). Then pyperformance's 16 pure-Python benchmarks (pyperf ``--fast``), in a venv of
each interpreter, alternating Debian and buildkit benchmark by benchmark, ``--rounds`` times; per benchmark
the median of the rounds, and the geometric mean of Debian time / buildkit time (target >= 1.0x: buildkit's
no slower than Debian's).

Usage: python3 bench/bench_optimize_debian.py [--dir DIR] [--rounds N] [--benchmarks a,b,...]
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

DEBIAN = "/usr/bin/python3.11"
CPYTHON, OPENSSL, SQLITE = "3.11.2", "3.0.20", "3.40.1"
TARGET = 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/bk-bench-optimize-debian"))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--benchmarks", default=",".join(BENCHMARKS))
    args = parser.parse_args()
    names = [n for n in args.benchmarks.split(",") if n]
    base = args.dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    version = subprocess.run([DEBIAN, "-c", "import sys, sysconfig; print(sys.version.split()[0]); "
                              "print(sysconfig.get_config_var('CONFIG_ARGS'))"], capture_output=True, text=True)
    if version.returncode != 0:
        sys.exit(f"bench: no {DEBIAN} here (Debian 12's python3.11 package)")
    debian_version, debian_args = version.stdout.splitlines()[:2]
    lock = open(LOCK, "a")
    print(f"bench: waiting for {LOCK}", file=sys.stderr, flush=True)
    fcntl.flock(lock, fcntl.LOCK_EX)
    cmd = [*buildkit_cmd(), "python", CPYTHON, "--optimize", f"--with-openssl={OPENSSL}", f"--with-sqlite={SQLITE}",
           "--prefix", str(base / "optimized"), "--source-dir", str(FIXTURES / "sources"), "--cache",
           str(base / "cache"), "--json"]
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    started = time.perf_counter()
    run = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if run.returncode != 0:
        sys.exit(f"bench: the build failed (exit {run.returncode})")
    record = json.loads(run.stdout)
    built = (record.get("component_seconds") or {}).get("cpython")
    how = (f"built in this run, CPython's part {built:.0f} s" if wall > 60 and built
           else f"a verified earlier build, reused ({wall:.0f} s)")
    wheels = wheels_in(base / "wheels")
    pythons = {"debian": venv(DEBIAN, base / "venv-debian", wheels),
               "buildkit": venv(record["python"], base / "venv-buildkit", wheels)}
    means: dict[str, dict[str, list[float]]] = {"debian": {n: [] for n in names}, "buildkit": {n: [] for n in names}}
    for _ in range(args.rounds):
        for name in names:
            for label in ("debian", "buildkit"):
                means[label][name].append(run_benchmark(pythons[label], name, base / f"{label}-{name}.json"))
            d, b = statistics.median(means["debian"][name]), statistics.median(means["buildkit"][name])
            print(f"  {name:<16} debian {d * 1e3:9.3f} ms   buildkit {b * 1e3:9.3f} ms   {d / b:5.2f}x", flush=True)
    lock.close()
    ratios = [statistics.median(means["debian"][n]) / statistics.median(means["buildkit"][n]) for n in names]
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"\nDebian's {DEBIAN} {debian_version} (configured: {debian_args[:160]}...) against buildkit python "
          f"{CPYTHON} --optimize (OpenSSL {OPENSSL}, SQLite {SQLITE}; {how}); "
          f"pyperformance {PYPERFORMANCE}, {len(names)} benchmarks, pyperf --fast, {args.rounds} round(s)")
    print(f"buildkit's speed / Debian's, geometric mean: {geomean:.3f}x (min {min(ratios):.2f}x "
          f"{names[ratios.index(min(ratios))]}, max {max(ratios):.2f}x {names[ratios.index(max(ratios))]}); "
          f"target >= {TARGET:.2f}x: {'ok' if geomean >= TARGET else 'MISSED'}")
    return 0 if geomean >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
