"""``buildkit python --optimize`` (PGO + LTO) against the plain build of the same CPython, in one run.

The two legs: CPython 3.13.5 built by ``buildkit python`` without ``--optimize`` (private OpenSSL 3.0.20 and
SQLite 3.40.1, which it builds), and the same CPython built with ``--optimize``, pointed at the plain build's
very OpenSSL and SQLite prefixes; the same workload on both.

Build time: both builds are made and timed in this run (both prefixes deleted first), plain then optimized,
``--build-rounds`` times (default 1); the figure is CPython's own part (``component_seconds.cpython`` of
each BUILDKIT.json: the shared libraries are not counted), per leg min / median / mean / max and the ratio
optimized / plain by medians. ``--reuse`` keeps builds already at ``--dir`` (buildkit's no-op) and takes the
seconds their records kept from when they were built: not timed in this run, and the output says so.

Speed: pyperf_legs.py's workload (pyperformance's pure-Python benchmarks in a venv of each interpreter,
``--rounds`` rounds (default 3) of every benchmark on plain, then on optimized; pyperf's normal mode unless
``--fast``): per benchmark the median of each leg and the speedup (plain / optimized) by medians, their
geometric mean (target >= 1.10x) and the geometric mean of each round by itself.

Usage: python3 bench/bench_optimize.py [--dir DIR] [--reuse | --build-rounds N] [--jobs N] [--rounds N]
       [--fast] [--benchmarks a,b,...]
The whole run holds /var/tmp/bk-compile.lock (shared with anyone else compiling on this machine): the builds
are compilations, and no one else's compilation may disturb the workload's timings.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from common import FIXTURES, buildkit_json, compile_lock, spread
from pyperf_legs import add_workload_arguments, announce, legs_of, report, run_rounds, workload

CPYTHON, OPENSSL, SQLITE = "3.13.5", "3.0.20", "3.40.1"
TARGET = 1.10
LEGS = ("plain", "optimized")
WHAT = {"plain": f"CPython {CPYTHON} by buildkit python, no --optimize (private OpenSSL {OPENSSL}, SQLite {SQLITE})",
        "optimized": "the same CPython with --optimize (PGO + LTO), on the plain build's very OpenSSL and SQLite"}
# One build round as README's last run took it: OpenSSL and SQLite ~225 s (rebuilt: the plain prefix is
# deleted), plain CPython ~240 s, optimized ~1210 s. For the estimate printed at the start only.
BUILD_ROUND_SECONDS = 1675.0


@dataclass(frozen=True)
class Builds:
    records: dict[str, dict]  # the last round's record of each leg
    seconds: dict[str, list[float]]  # CPython's build seconds of each leg, one per round
    timed_here: dict[str, bool]  # False: a no-op here (--reuse), the seconds its record kept from before


def build(prefix: Path, extra: list[str], jobs: int | None) -> tuple[dict, float]:
    """One ``buildkit python`` run; its --json record and wall seconds."""
    return buildkit_json(["python", CPYTHON, "--prefix", str(prefix), "--source-dir", str(FIXTURES / "sources"),
                          "--cache", str(prefix.parent / "cache"), *extra, *(["--jobs", str(jobs)] if jobs else [])])


def cpython_seconds(record: dict, label: str) -> float:
    seconds = (record.get("component_seconds") or {}).get("cpython")
    if seconds is None:
        sys.exit(f"bench: the {label} build's BUILDKIT.json has no component_seconds.cpython "
                 "(made by an older buildkit): run without --reuse")
    return float(seconds)


def builds(base: Path, rounds: int, reuse: bool, jobs: int | None) -> Builds:
    """Plain then optimized, ``rounds`` times, each pair from scratch (one pair kept as it is with ``reuse``)."""
    prefixes = {label: base / label for label in LEGS}
    seconds: dict[str, list[float]] = {label: [] for label in LEGS}
    timed: dict[str, bool] = {}
    records: dict[str, dict] = {}
    for _ in range(1 if reuse else rounds):
        if not reuse:
            for prefix in prefixes.values():
                shutil.rmtree(str(prefix) + ".buildkit", ignore_errors=True)
                if prefix.is_symlink():
                    prefix.unlink()
        plain, plain_wall = build(prefixes["plain"], [f"--with-openssl={OPENSSL}", f"--with-sqlite={SQLITE}"], jobs)
        # The very same OpenSSL and SQLite for the optimized build: the plain build's private prefixes.
        opt, opt_wall = build(prefixes["optimized"], [f"--with-openssl={plain['openssl']['prefix']}",
                                                      f"--with-sqlite={plain['sqlite']['prefix']}", "--optimize"], jobs)
        for label, record, wall in (("plain", plain, plain_wall), ("optimized", opt, opt_wall)):
            records[label] = record
            seconds[label].append(cpython_seconds(record, label))
            timed[label] = not reuse or wall >= seconds[label][-1]  # a no-op takes seconds, a build longer
            how = "timed here" if timed[label] else "RECORDED EARLIER: a no-op here"
            print(f"  build {label:<9} CPython {seconds[label][-1]:.0f} s ({how})", file=sys.stderr, flush=True)
    if records["optimized"].get("optimize") is not True or records["plain"].get("optimize") is not False:
        sys.exit("bench: the records do not say plain/optimized as asked (optimize: "
                 f"{records['plain'].get('optimize')!r}/{records['optimized'].get('optimize')!r})")
    return Builds(records, seconds, timed)


def report_builds(b: Builds) -> None:
    print(f"\nbuild of CPython {CPYTHON}, its own part (component_seconds.cpython; OpenSSL and SQLite are the plain "
          f"build's, not counted), plain then optimized, {len(b.seconds['plain'])} round(s):")
    for label in LEGS:
        how = ("timed in this run" if b.timed_here[label]
               else "NOT TIMED IN THIS RUN (--reuse): the seconds its BUILDKIT.json kept from an earlier run")
        print(f"  {label:<10} {spread(b.seconds[label], 1.0, 's')}; {how}")
    ratio = statistics.median(b.seconds["optimized"]) / statistics.median(b.seconds["plain"])
    print(f"  optimized / plain by medians: {ratio:.2f}x the time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/bk-bench-optimize"))
    parser.add_argument("--reuse", action="store_true",
                        help="Keep builds already at --dir and take their recorded build times (not timed here).")
    parser.add_argument("--rebuild", action="store_true", help="The default now (kept for old command lines).")
    parser.add_argument("--build-rounds", metavar="N", type=int, default=1,
                        help="Plain+optimized build pairs, each from scratch (default 1).")
    parser.add_argument("--jobs", type=int)
    add_workload_arguments(parser, rounds=3)
    args = parser.parse_args()
    if args.reuse and args.rebuild:
        sys.exit("bench: --reuse and --rebuild together")
    if args.build_rounds < 1:
        sys.exit("bench: --build-rounds takes 1 or more")
    work = workload(args)
    base = args.dir.resolve()
    rounds = 1 if args.reuse else args.build_rounds
    announce(WHAT, work, 0.0 if args.reuse else rounds * BUILD_ROUND_SECONDS,
             "--reuse: none if both are there; build times NOT TIMED IN THIS RUN" if args.reuse
             else f"{rounds} round(s) of plain then optimized, ~{BUILD_ROUND_SECONDS / 60:.0f} min each")
    base.mkdir(parents=True, exist_ok=True)
    with compile_lock():  # held until the end: builds, then the workload
        made = builds(base, rounds, args.reuse, args.jobs)
        legs = legs_of(WHAT, {label: made.records[label]["python"] for label in LEGS})
        times = run_rounds(legs, work, base)

    summary = report(times, legs, work)
    report_builds(made)
    print(f"speedup {summary.geomean:.3f}x (geometric mean by medians); target >= {TARGET:.2f}x: "
          f"{'ok' if summary.geomean >= TARGET else 'MISSED'}")
    return 0 if summary.geomean >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
