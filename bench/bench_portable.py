"""``buildkit python --portable`` against the plain build of the same versions, both legs in one run.

Build time: CPython 3.13.5 with OpenSSL 3.0.20 and SQLite 3.40.1, plain (this host's gcc and glibc, the
private libraries shared) and portable (the same gcc on the glibc 2.17 sysroot, those two and the seven
portable libraries static), each with ``--clean`` so every component is built in the run, interleaved
plain, portable, plain, portable, ... ``--rounds`` times; per leg min / median / mean / max of the whole
commands' wall times and their spread, and the ratio portable / plain by medians (target <= 1.5x: the seven
extra libraries are the price). The per-component seconds of the last round come from each BUILDKIT.json.

Speed: bench_optimize.py's workload (pyperf_legs.py: pyperformance's pure-Python benchmarks in a venv of each
interpreter, ``--speed-rounds`` rounds (default 3) of every benchmark on plain, then on portable; pyperf's
normal mode unless ``--fast``): the speed of the portable interpreter relative to the plain one (plain time /
portable time by medians, geometric mean; target >= 0.95x) and the geometric mean of each round by itself.

Usage: python3 bench/bench_portable.py [--dir DIR] [--rounds N] [--jobs N] [--speed-rounds N] [--fast]
       [--benchmarks a,b,...]
Holds /var/tmp/bk-compile.lock for the whole run (the builds are compilations; the workload must not share
the machine with one).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from common import FIXTURES, buildkit_json, compile_lock, spread
from pyperf_legs import add_workload_arguments, announce, legs_of, report, run_rounds, workload

CPYTHON, OPENSSL, SQLITE = "3.13.5", "3.0.20", "3.40.1"
BUILD_TARGET, SPEED_TARGET = 1.5, 0.95
WHAT = {"plain": f"CPython {CPYTHON} by buildkit python (this host's gcc and glibc; private OpenSSL {OPENSSL}, "
                 f"SQLite {SQLITE}, shared), built with --clean",
        "portable": "the same with --portable (the same gcc on the glibc 2.17 sysroot; those two and seven more "
                    "libraries static), built with --clean"}
# A plain+portable pair as README's last run took it (324 s + 343 s). For the estimate at the start only.
BUILD_ROUND_SECONDS = 670.0


def build(prefix: Path, extra: list[str], jobs: int | None) -> tuple[dict, float]:
    """One ``buildkit python --clean`` run (every component built here); its --json record and wall time."""
    return buildkit_json(["python", CPYTHON, "--prefix", str(prefix), "--source-dir", str(FIXTURES / "sources"),
                          "--cache", str(prefix.parent / "cache"), "--clean", f"--with-openssl={OPENSSL}",
                          f"--with-sqlite={SQLITE}", *extra, *(["--jobs", str(jobs)] if jobs else [])])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/bk-bench-portable"))
    parser.add_argument("--rounds", type=int, default=2, help="Plain+portable build pairs (default 2).")
    parser.add_argument("--jobs", type=int)
    add_workload_arguments(parser, rounds=3, rounds_flag="--speed-rounds")
    args = parser.parse_args()
    work = workload(args)
    base = args.dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    toolchain = FIXTURES / "portable" / "cache" / "toolchains" / "glibc2.17-x86_64-1.0.0.tgz"
    portable_args = ["--portable"] + (["--toolchain", str(toolchain)] if toolchain.is_file() else [])
    announce(WHAT, work, args.rounds * BUILD_ROUND_SECONDS,
             f"{args.rounds} round(s) of plain then portable, ~{BUILD_ROUND_SECONDS / 60:.0f} min each")
    with compile_lock():
        walls: dict[str, list[float]] = {"plain": [], "portable": []}
        records: dict[str, dict] = {}
        for _ in range(args.rounds):
            for label, extra in (("plain", []), ("portable", portable_args)):
                records[label], wall = build(base / label, extra, args.jobs)
                walls[label].append(wall)
                print(f"  {label:<9} {wall:.0f} s", file=sys.stderr, flush=True)
        if not records["portable"].get("portable") or records["plain"].get("portable"):
            sys.exit("bench: the records do not say plain/portable as asked")
        legs = legs_of(WHAT, {label: records[label]["python"] for label in WHAT})
        times = run_rounds(legs, work, base)

    summary = report(times, legs, work)
    ratio = statistics.median(walls["portable"]) / statistics.median(walls["plain"])
    print(f"\nbuild: CPython {CPYTHON}, OpenSSL {OPENSSL}, SQLite {SQLITE}; every component built in each run "
          f"(--clean), plain and portable interleaved, {args.rounds} rounds; whole commands' wall time:")
    for label in ("plain", "portable"):
        parts = ", ".join(f"{k} {v:.0f}" for k, v in (records[label].get("component_seconds") or {}).items())
        print(f"  {label:<9} {spread(walls[label], 1.0, 's')}; last round's components (s): {parts}")
    print(f"build time portable / plain by medians: {ratio:.2f}x; target <= {BUILD_TARGET:.1f}x: "
          f"{'ok' if ratio <= BUILD_TARGET else 'MISSED'}")
    print(f"speed portable / plain {summary.geomean:.3f}x (geometric mean by medians); target >= {SPEED_TARGET:.2f}x: "
          f"{'ok' if summary.geomean >= SPEED_TARGET else 'MISSED'}")
    return 0 if ratio <= BUILD_TARGET and summary.geomean >= SPEED_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
