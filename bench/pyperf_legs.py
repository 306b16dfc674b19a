"""The speed workload of bench_optimize.py, bench_optimize_debian.py and bench_portable.py, and its summary.

Two interpreters (legs A and B), each in a venv of its own with the same pyperformance and pyperf wheels
(PyPI's, downloaded once into DIR/wheels and installed from there with --no-index: later runs need no
network). ``--rounds`` rounds; a round runs every benchmark on A, then on B, benchmark by benchmark
(A B A B ...), so that a change of machine load hits both legs alike. pyperf runs in its normal mode (20
worker processes x 3 values) unless ``--fast`` (10 x 2) is given; the output says which. A leg's figure for
a benchmark in a round is pyperf's mean of that run's values.

Summary: per benchmark, each leg's min / median / mean / max across rounds and their spread, and the ratio
by medians (A's time / B's time: B's speed relative to A's); the geometric mean of those ratios is the
headline, and the geometric mean of each round by itself shows how far it moves from round to round.

Run directly, it compares two interpreters that are already there (a check of this code without a build):
    python3 bench/pyperf_legs.py --dir DIR [--benchmarks a,b] [--rounds N] [--fast] A=PYTHON B=PYTHON
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from common import compile_lock, spread

PYPERFORMANCE = "1.14.0"
# Pure-Python benchmarks of pyperformance (dependencies = ["pyperf"] only): arithmetic, objects, closures,
# generators, strings, regular expressions, json, sqlite, logging. ``logging`` is three pyperf benchmarks
# (logging_format, logging_silent, logging_simple), each a figure of its own.
BENCHMARKS = ("nbody", "float", "richards", "fannkuch", "chaos", "deltablue", "go", "hexiom", "nqueens",
              "raytrace", "spectral_norm", "json_loads", "regex_v8", "logging", "generators", "sqlite_synth")
# Seconds of one pyperf run of one benchmark, worker processes included, averaged over the 16 above: one run
# of each on pyenv's CPython 3.13.0 on this 2-core machine took 437 s in all, 177 s with --fast (2026-12-07;
# from 5 s deltablue --fast to 71 s fannkuch). For the estimate printed at the start only.
RUN_SECONDS = {False: 27.0, True: 11.0}

Times = dict[str, dict[str, list[float]]]  # leg label -> pyperf benchmark name -> seconds, one per round


@dataclass(frozen=True)
class Leg:
    label: str  # one word: plain, optimized, debian, ...
    python: str  # the interpreter its venv is made from
    what: str  # what this leg is, said in the output


@dataclass(frozen=True)
class Workload:
    names: tuple[str, ...]  # pyperformance benchmarks
    rounds: int
    fast: bool

    @property
    def mode(self) -> str:
        return ("pyperf --fast (10 worker processes x 2 values: asked for with --fast)" if self.fast
                else "pyperf's normal mode (20 worker processes x 3 values)")

    def seconds(self) -> float:
        """Estimated wall time of the whole workload: benchmarks x rounds x 2 legs pyperf runs."""
        return len(self.names) * self.rounds * 2 * RUN_SECONDS[self.fast]

    def estimate(self) -> str:
        runs = len(self.names) * self.rounds * 2
        return (f"{len(self.names)} benchmarks x {self.rounds} rounds x 2 legs = {runs} pyperf runs x "
                f"~{RUN_SECONDS[self.fast]:.0f} s = ~{self.seconds() / 60:.0f} min")


def add_workload_arguments(parser: argparse.ArgumentParser, rounds: int, rounds_flag: str = "--rounds") -> None:
    parser.add_argument("--benchmarks", metavar="A,B,...", default=",".join(BENCHMARKS),
                        help=f"pyperformance {PYPERFORMANCE} benchmarks, comma-separated (default: 16, pure Python).")
    parser.add_argument(rounds_flag, dest="workload_rounds", metavar="N", type=int, default=rounds,
                        help=f"Rounds of the workload, each every benchmark on both legs in turn (default {rounds}).")
    parser.add_argument("--fast", action="store_true",
                        help="pyperf --fast (fewer processes and values; the output says so).")


def workload(args: argparse.Namespace) -> Workload:
    names = tuple(n for n in args.benchmarks.split(",") if n)
    if not names or args.workload_rounds < 1:
        sys.exit("bench: the workload needs at least one benchmark and one round")
    return Workload(names, args.workload_rounds, args.fast)


def announce(what: dict[str, str], work: Workload, build_seconds: float, builds: str) -> None:
    """What the two legs are (label: what) and how long the run should take (the builds as the caller says)."""
    print("bench: legs " + "; ".join(f"{label} = {it}" for label, it in what.items()))
    total = build_seconds + work.seconds()
    print(f"bench: estimated duration ~{total / 60:.0f} min: builds ~{build_seconds / 60:.0f} min ({builds}), "
          f"workload {work.estimate()}", flush=True)


def legs_of(what: dict[str, str], pythons: dict[str, str]) -> tuple[Leg, Leg]:
    """Leg A, then leg B, in the order of ``what`` (label: what it is); ``pythons``: label: interpreter."""
    if len(what) != 2:
        raise ValueError(f"two legs, not {len(what)}: {', '.join(what)}")
    a, b = (Leg(label, pythons[label], it) for label, it in what.items())
    return a, b


def wheels_in(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if not list(folder.glob(f"pyperformance-{PYPERFORMANCE}-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(folder),
                        f"pyperformance=={PYPERFORMANCE}"], check=True)
    return folder


def venv(python: str, where: Path, wheels: Path) -> Path:
    """A venv of ``python`` with pyperformance and pyperf from the wheel folder; its interpreter."""
    if not (where / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(where)], check=True)
    bin_python = where / "bin" / "python"
    subprocess.run([str(bin_python), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels),
                    f"pyperformance=={PYPERFORMANCE}"], check=True, env={**os.environ, "PIP_CONFIG_FILE": "/dev/null"})
    return bin_python


def benchmark_script(python: Path, name: str) -> Path:
    where = "import pyperformance, os; print(os.path.dirname(pyperformance.__file__))"
    out = subprocess.run([str(python), "-c", where], capture_output=True, text=True, check=True).stdout.strip()
    script = Path(out) / "data-files" / "benchmarks" / f"bm_{name}" / "run_benchmark.py"
    if not script.is_file():
        sys.exit(f"bench: pyperformance {PYPERFORMANCE} has no benchmark {name!r} ({script})")
    return script


def pyperf_means(path: Path) -> dict[str, float]:
    """pyperf's mean of each benchmark in a file written by ``-o`` (what ``Benchmark.mean()`` gives: the mean of
    every value of every run; warmups and calibration runs have none), by benchmark name."""
    suite = json.loads(path.read_text())
    if suite["version"] != "1.0":
        raise ValueError(f"{path}: pyperf file format {suite['version']!r}, read here: 1.0")
    means = {}
    for bench in suite["benchmarks"]:
        metadata = {**suite["metadata"], **bench.get("metadata", {})}
        if metadata["unit"] != "second":
            raise ValueError(f"{path}: {metadata['name']} is in {metadata['unit']!r}, not seconds")
        means[metadata["name"]] = statistics.fmean(v for run in bench["runs"] for v in run.get("values", ()))
    return means


def run_benchmark(python: Path, name: str, out: Path, fast: bool) -> dict[str, float]:
    """One pyperf run of one pyperformance benchmark (the file it writes kept as ``out``); its means by name."""
    out.unlink(missing_ok=True)
    script = benchmark_script(python, name)
    run = subprocess.run([str(python), str(script), *(["--fast"] if fast else []), "--quiet", "-o", str(out)],
                         cwd=script.parent, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root")})
    if run.returncode != 0:
        sys.exit(f"bench: {name} failed on {python} (exit {run.returncode}):\n{run.stderr[-2000:]}")
    return pyperf_means(out)


def run_rounds(legs: tuple[Leg, Leg], work: Workload, base: Path) -> Times:
    """The workload, a line printed as each benchmark's round ends; the times of every leg and round."""
    wheels = wheels_in(base / "wheels")
    pythons = {leg.label: venv(leg.python, base / f"venv-{leg.label}", wheels) for leg in legs}
    (base / "runs").mkdir(exist_ok=True)
    times: Times = {leg.label: {} for leg in legs}
    a, b = (leg.label for leg in legs)
    for round_ in range(1, work.rounds + 1):
        for name in work.names:
            got = {leg.label: run_benchmark(pythons[leg.label], name,
                                            base / "runs" / f"{leg.label}-{name}-{round_}.json", work.fast)
                   for leg in legs}
            if set(got[a]) != set(got[b]):
                sys.exit(f"bench: {name} gave {sorted(got[a])} on {a}, {sorted(got[b])} on {b}")
            for bench, ta in got[a].items():
                tb = got[b][bench]
                times[a].setdefault(bench, []).append(ta)
                times[b].setdefault(bench, []).append(tb)
                print(f"  round {round_}/{work.rounds}  {bench:<16} {a} {_seconds(ta)}   {b} {_seconds(tb)}   "
                      f"{ta / tb:5.2f}x", flush=True)
    return times


def _unit(seconds: float) -> tuple[float, str]:
    """The factor and name of the unit that shows ``seconds`` as 1 or more: ms, us or ns."""
    return next((factor, name) for factor, name in ((1e3, "ms"), (1e6, "us"), (1e9, "ns")) if seconds * factor >= 1
                or name == "ns")


def _seconds(value: float) -> str:
    factor, name = _unit(value)
    return f"{value * factor:9.3f} {name}"


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


@dataclass(frozen=True)
class Summary:
    """Per pyperf benchmark the ratio of the medians across rounds (A's time / B's time) and the ratio of each
    round; the geometric mean over benchmarks of each round; the headline, the geometric mean of the ratios."""
    names: tuple[str, ...]
    ratios: tuple[float, ...]
    round_ratios: tuple[tuple[float, ...], ...]  # one tuple per benchmark, one ratio per round
    round_geomeans: tuple[float, ...]
    geomean: float


def summarise(times: Times, a: str, b: str) -> Summary:
    names = tuple(times[a])
    if set(times[b]) != set(names) or any(len(times[a][n]) != len(times[b][n]) for n in names):
        raise ValueError(f"the legs ran different benchmarks or rounds: {a} "
                         + ", ".join(f"{n} x{len(v)}" for n, v in times[a].items()) + f"; {b} "
                         + ", ".join(f"{n} x{len(v)}" for n, v in times[b].items()))
    ratios = tuple(statistics.median(times[a][n]) / statistics.median(times[b][n]) for n in names)
    round_ratios = tuple(tuple(ta / tb for ta, tb in zip(times[a][n], times[b][n])) for n in names)
    rounds = len(round_ratios[0])
    round_geomeans = tuple(geomean([r[i] for r in round_ratios]) for i in range(rounds))
    return Summary(names, ratios, round_ratios, round_geomeans, geomean(list(ratios)))


def report(times: Times, legs: tuple[Leg, Leg], work: Workload) -> Summary:
    """Print what ran, each benchmark's legs across rounds and their ratio, and the geometric means."""
    a, b = (leg.label for leg in legs)
    s = summarise(times, a, b)
    print(f"\nworkload: pyperformance {PYPERFORMANCE}, {len(work.names)} benchmarks ({len(s.names)} pyperf figures), "
          f"{work.mode}, {work.rounds} rounds; each round runs every benchmark on {a}, then on {b}, benchmark by "
          f"benchmark; a leg's figure in a round is pyperf's mean of that run's values")
    for leg in legs:
        print(f"  {leg.label}: {leg.what} ({leg.python})")
    print(f"per benchmark across rounds (ratio = {a} time / {b} time: {b}'s speed relative to {a}'s):")
    for name, ratio, per_round in zip(s.names, s.ratios, s.round_ratios):
        factor, unit = _unit(statistics.median(times[a][name]))
        print(f"  {name:<16} {a:<10} {spread(times[a][name], factor, unit)}")
        print(f"  {'':<16} {b:<10} {spread(times[b][name], factor, unit)}")
        print(f"  {'':<16} ratio {ratio:.3f}x by medians; per round " + " ".join(f"{r:.3f}x" for r in per_round))
    low, high = s.ratios.index(min(s.ratios)), s.ratios.index(max(s.ratios))
    print(f"{b}'s speed relative to {a}'s, geometric mean of the {len(s.names)} ratios by medians: {s.geomean:.3f}x "
          f"(min {s.ratios[low]:.2f}x {s.names[low]}, max {s.ratios[high]:.2f}x {s.names[high]})")
    g = s.round_geomeans
    print(f"  geometric mean of each round by itself: min {min(g):.3f}x  median {statistics.median(g):.3f}x  "
          f"max {max(g):.3f}x  (" + ", ".join(f"{x:.3f}x" for x in g) + ")")
    return s


def main() -> int:
    parser = argparse.ArgumentParser(description="The bench_optimize workload on two interpreters already here.")
    parser.add_argument("--dir", type=Path, required=True, help="Wheels, venvs and pyperf files go here.")
    parser.add_argument("legs", nargs=2, metavar="LABEL=PYTHON", help="Leg A, then leg B (ratio: A time / B time).")
    add_workload_arguments(parser, rounds=3)
    args = parser.parse_args()
    work = workload(args)
    pythons = dict(leg.partition("=")[::2] for leg in args.legs)
    if len(pythons) != 2 or not all(label and python for label, python in pythons.items()):
        sys.exit("bench: legs are LABEL=PYTHON, two labels")
    what = {label: "an interpreter already here" for label in pythons}
    legs = legs_of(what, pythons)
    announce(what, work, 0.0, "none: interpreters already here")
    base = args.dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    with compile_lock():
        times = run_rounds(legs, work, base)
    report(times, legs, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
