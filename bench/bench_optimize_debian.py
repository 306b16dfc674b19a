"""``buildkit python 3.11.2 --optimize`` against the distribution's own interpreter: Debian 12's
``/usr/bin/python3.11`` (3.11.2, which Debian builds with PGO and LTO), on bench_optimize.py's workload.

The buildkit leg is built here (private OpenSSL 3.0.20 and SQLite 3.40.1, the full regrtest profile run, as
``--optimize`` does by default) unless a verified build of the same command is already at ``--dir``
(buildkit's no-op, said). Then pyperf_legs.py's workload: pyperformance's pure-Python benchmarks in a venv
of each interpreter, ``--rounds`` rounds (default 3) of every benchmark on Debian's, then on buildkit's
(pyperf's normal mode unless ``--fast``); per benchmark each leg's median and spread across rounds and the
ratio Debian time / buildkit time by medians, their geometric mean (target >= 1.0x: buildkit's no slower
than Debian's) and the geometric mean of each round by itself.

Usage: python3 bench/bench_optimize_debian.py [--dir DIR] [--rounds N] [--fast] [--benchmarks a,b,...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from common import FIXTURES, buildkit_json, compile_lock
from pyperf_legs import Leg, add_workload_arguments, announce, report, run_rounds, workload

DEBIAN = "/usr/bin/python3.11"
CPYTHON, OPENSSL, SQLITE = "3.11.2", "3.0.20", "3.40.1"
TARGET = 1.0
# README's last run: OpenSSL and SQLite ~225 s, CPython --optimize ~1007 s. For the estimate at the start only.
BUILD_SECONDS = 1230.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/bk-bench-optimize-debian"))
    add_workload_arguments(parser, rounds=3)
    args = parser.parse_args()
    work = workload(args)
    base = args.dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    version = subprocess.run([DEBIAN, "-c", "import sys, sysconfig; print(sys.version.split()[0]); "
                              "print(sysconfig.get_config_var('CONFIG_ARGS'))"], capture_output=True, text=True)
    if version.returncode != 0:
        sys.exit(f"bench: no {DEBIAN} here (Debian 12's python3.11 package)")
    debian_version, debian_args = version.stdout.splitlines()[:2]
    what = {"debian": f"Debian 12's {DEBIAN} {debian_version} (PGO + LTO by Debian; configured: "
                      f"{debian_args[:160]}...)",
            "buildkit": f"buildkit python {CPYTHON} --optimize (private OpenSSL {OPENSSL}, SQLite {SQLITE})"}
    announce(what, work, BUILD_SECONDS, "none if a verified build is already at --dir")
    with compile_lock():
        record, wall = buildkit_json(["python", CPYTHON, "--optimize", f"--with-openssl={OPENSSL}",
                                      f"--with-sqlite={SQLITE}", "--prefix", str(base / "optimized"), "--source-dir",
                                      str(FIXTURES / "sources"), "--cache", str(base / "cache")])
        built = (record.get("component_seconds") or {}).get("cpython")
        how = (f"built in this run, CPython's part {built:.0f} s" if wall > 60 and built
               else f"a verified earlier build, reused ({wall:.0f} s)")
        legs = (Leg("debian", DEBIAN, what["debian"]), Leg("buildkit", record["python"], f"{what['buildkit']}; {how}"))
        times = run_rounds(legs, work, base)
    summary = report(times, legs, work)
    print(f"buildkit's speed / Debian's {summary.geomean:.3f}x (geometric mean by medians); target >= {TARGET:.2f}x: "
          f"{'ok' if summary.geomean >= TARGET else 'MISSED'}")
    return 0 if summary.geomean >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
