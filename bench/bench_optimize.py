"""``buildkit python --optimize`` (PGO + LTO) against the plain build of the same CPython, in one run.

Two builds of CPython 3.13.5 with the very same private OpenSSL 3.0.20 and SQLite 3.40.1 (the plain build
makes them; the optimized one is pointed at those prefixes), then the same workload on both interpreters:
pyperformance's pure-Python benchmarks (PyPI's pyperformance and pyperf, installed into a venv made by each
built interpreter; they need nothing else), run with pyperf --fast, alternating plain and optimized
benchmark by benchmark so that a change of machine load hits both. Prints per-benchmark means and
speedups (plain / optimized), their geometric mean (target >= 1.10x), and the build-time ratio
(optimized / plain, CPython's own build only: the shared libraries are built once).

A build that is already there and verified is not repeated (buildkit's no-op); its build time is then the
one recorded in its BUILDKIT.json (``component_seconds``), and the output says so. ``--rebuild`` deletes
both prefixes first and measures both builds in this run.

Wheels: the pyperformance and pyperf wheels are downloaded once into DIR/wheels (pip download, from the
package index) and installed from there (--no-index), so later runs need no network.

Usage: python3 bench/bench_optimize.py [--dir DIR] [--rebuild] [--jobs N] [--benchmarks a,b,...]
The whole run holds /var/tmp/bk-compile.lock (shared with anyone else compiling on this machine): the builds
are compilations, and no one else's compilation may disturb the workload's timings.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import FIXTURES, buildkit_cmd

CPYTHON, OPENSSL, SQLITE = "3.13.5", "3.0.20", "3.40.1"
PYPERFORMANCE = "1.14.0"
# Pure-Python benchmarks of pyperformance (dependencies = ["pyperf"] only): arithmetic, objects, closures,
# generators, strings, regular expressions, json, sqlite, logging.
BENCHMARKS = ("nbody", "float", "richards", "fannkuch", "chaos", "deltablue", "go", "hexiom", "nqueens",
              "raytrace", "spectral_norm", "json_loads", "regex_v8", "logging", "generators", "sqlite_synth")
TARGET = 1.10
LOCK = "/var/tmp/bk-compile.lock"


def build(prefix: Path, extra: list[str], jobs: int | None) -> dict:
    """One ``buildkit python`` run; its --json record."""
    sources = FIXTURES / "sources"
    cmd = [*buildkit_cmd(), "python", CPYTHON, "--prefix", str(prefix), "--source-dir", str(sources),
           "--cache", str(prefix.parent / "cache"), "--json", *extra] + (["--jobs", str(jobs)] if jobs else [])
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    started = time.perf_counter()
    run = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if run.returncode != 0:
        sys.exit(f"bench: the build failed (exit {run.returncode}): {' '.join(cmd)}")
    record = json.loads(run.stdout)
    record["_wall"] = time.perf_counter() - started
    return record


def cpython_seconds(record: dict, label: str) -> float:
    seconds = (record.get("component_seconds") or {}).get("cpython")
    if seconds is None:
        sys.exit(f"bench: the {label} build's BUILDKIT.json has no component_seconds.cpython "
                 "(made by an older buildkit): run with --rebuild")
    return float(seconds)


def venv(python: str, where: Path, wheels: Path) -> Path:
    """A venv of ``python`` with pyperformance and pyperf from the wheel folder; its interpreter."""
    if not (where / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(where)], check=True)
    bin_python = where / "bin" / "python"
    subprocess.run([str(bin_python), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels),
                    f"pyperformance=={PYPERFORMANCE}"], check=True, env={**os.environ, "PIP_CONFIG_FILE": "/dev/null"})
    return bin_python


def wheels_in(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if not list(folder.glob(f"pyperformance-{PYPERFORMANCE}-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(folder),
                        f"pyperformance=={PYPERFORMANCE}"], check=True)
    return folder


def benchmark_script(python: Path, name: str) -> Path:
    where = "import pyperformance, os; print(os.path.dirname(pyperformance.__file__))"
    out = subprocess.run([str(python), "-c", where], capture_output=True, text=True, check=True).stdout.strip()
    script = Path(out) / "data-files" / "benchmarks" / f"bm_{name}" / "run_benchmark.py"
    if not script.is_file():
        sys.exit(f"bench: pyperformance {PYPERFORMANCE} has no benchmark {name!r} ({script})")
    return script


def run_benchmark(python: Path, name: str, out: Path) -> float:
    """Mean seconds of one pyperf benchmark (--fast: fewer processes and values), as pyperf computes it."""
    out.unlink(missing_ok=True)
    script = benchmark_script(python, name)
    subprocess.run([str(python), str(script), "--fast", "--quiet", "-o", str(out)], check=True, cwd=script.parent,
                   env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root")})
    mean = subprocess.run([str(python), "-c", "import pyperf, sys; print(pyperf.BenchmarkSuite.load(sys.argv[1])"
                           ".get_benchmarks()[0].mean())", str(out)], capture_output=True, text=True, check=True)
    return float(mean.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/bk-bench-optimize"))
    parser.add_argument("--rebuild", action="store_true", help="Delete both builds first and time them here.")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--benchmarks", default=",".join(BENCHMARKS))
    args = parser.parse_args()
    names = [n for n in args.benchmarks.split(",") if n]
    base = args.dir.resolve()
    plain_prefix, opt_prefix = base / "plain", base / "optimized"
    if args.rebuild:
        for prefix in (opt_prefix, plain_prefix):
            shutil.rmtree(str(prefix) + ".buildkit", ignore_errors=True)
            if prefix.is_symlink():
                prefix.unlink()
    base.mkdir(parents=True, exist_ok=True)
    lock = open(LOCK, "a")  # held until the end: builds, then the workload
    print(f"bench: waiting for {LOCK}", file=sys.stderr, flush=True)
    fcntl.flock(lock, fcntl.LOCK_EX)

    plain = build(plain_prefix, [f"--with-openssl={OPENSSL}", f"--with-sqlite={SQLITE}"], args.jobs)
    # The very same OpenSSL and SQLite for the optimized build: the plain build's private prefixes.
    opt = build(opt_prefix, [f"--with-openssl={plain['openssl']['prefix']}",
                             f"--with-sqlite={plain['sqlite']['prefix']}", "--optimize"], args.jobs)
    if opt.get("optimize") is not True or plain.get("optimize") is not False:
        sys.exit("bench: the records do not say plain/optimized as asked (optimize: "
                 f"{plain.get('optimize')!r}/{opt.get('optimize')!r})")
    t_plain, t_opt = cpython_seconds(plain, "plain"), cpython_seconds(opt, "optimized")
    how = "built in this run" if args.rebuild else "as recorded in each BUILDKIT.json"

    wheels = wheels_in(base / "wheels")
    pythons = {"plain": venv(plain["python"], base / "venv-plain", wheels),
               "optimized": venv(opt["python"], base / "venv-optimized", wheels)}
    means: dict[str, dict[str, float]] = {"plain": {}, "optimized": {}}
    for name in names:
        for label in ("plain", "optimized"):
            means[label][name] = run_benchmark(pythons[label], name, base / f"{label}-{name}.json")
        ratio = means["plain"][name] / means["optimized"][name]
        print(f"  {name:<16} plain {means['plain'][name] * 1e3:9.3f} ms   optimized "
              f"{means['optimized'][name] * 1e3:9.3f} ms   {ratio:5.2f}x", flush=True)
    lock.close()

    speedups = [means["plain"][n] / means["optimized"][n] for n in names]
    geomean = math.exp(sum(math.log(s) for s in speedups) / len(speedups))
    print(f"\nCPython {CPYTHON}, OpenSSL {OPENSSL}, SQLite {SQLITE} (the same prefixes for both); "
          f"pyperformance {PYPERFORMANCE}, {len(names)} benchmarks, pyperf --fast")
    print(f"build (CPython only, {how}): plain {t_plain:.0f} s, optimized {t_opt:.0f} s: "
          f"{t_opt / t_plain:.2f}x the time")
    print(f"speedup, geometric mean: {geomean:.3f}x (min {min(speedups):.2f}x {names[speedups.index(min(speedups))]}, "
          f"max {max(speedups):.2f}x {names[speedups.index(max(speedups))]}); target >= {TARGET:.2f}x: "
          f"{'ok' if geomean >= TARGET else 'MISSED'}")
    return 0 if geomean >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
