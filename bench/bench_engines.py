"""``buildkit ci python``: the same two cells on one 1-core host, on two, and on one engine with both cores.

Two cells (CPython 3.13.5 and 3.11.2, each with OpenSSL 3.0.20 and SQLite 3.40.1, debian:12), three legs:

* one-host: one engine, ``--cpus 1 --jobs 1``, the cells one after the other. Models one single-core host.
* two-hosts: two engines (two private dockerds side by side: tests/fixtures/dockerd.sh with its own socket
  and state; the second gets the bookworm base image by docker save | docker load), each ``--cpus 1
  --jobs 1``, a cell on each. Models one more host of the same size.
* one-engine-two-cores: one engine, no ``--cpus``, ``--jobs 2``, the cells one after the other. Models the
  same machine given to one engine.

``--cpus 1`` holds each build container to one CPU (a CFS quota), so an engine stands for a 1-core host on
this 2-core machine. The legs take turns, A B C A B C ..., ``--repeat`` rounds (default 3), so a machine that
gets busier slows every leg alike. Builder images are made before the clock starts on both engines. Each
run's cells must all be verified (and on two-hosts, one built on each engine), else the bench stops. Prints
each leg's wall times (min / median / mean / max, spread) with what it models, and the ratios of the medians
two-hosts / one-host and two-hosts / one-engine-two-cores. ``--dry-run`` prints the commands of each round
and runs nothing.

Six CPython builds a round: ~50 minutes here (one-host ~23 and two-hosts ~12.5, as the earlier one-engine and
two-engine legs took; one-engine-two-cores ~14, bench_ci --full's 7.3 min per -j2 cell), so the default 3 rounds
take ~2.5 hours.
Run it alone: flock /var/tmp/bk-compile.lock python3 bench/bench_engines.py [--repeat N] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import FIXTURES, ROOT, buildkit_cmd, spread

IMAGE = "debian:12=buildkit-base:debian-bookworm"
FIRST = "unix:///run/bk-docker.sock"
SECOND_ENV = {"BK_DOCKER_SOCK": "/run/bk-docker2.sock", "BK_DOCKER_ROOT": "/var/lib/bk-docker2",
              "BK_DOCKER_EXEC_ROOT": "/run/bk-docker2", "BK_DOCKER_PIDFILE": "/run/bk-dockerd2.pid",
              "BK_DOCKER_LOG": "/var/log/bk-dockerd2.log"}
SECOND = "unix://" + SECOND_ENV["BK_DOCKER_SOCK"]
CELLS = ["3.13.5", "3.11.2"]
OPENSSL, SQLITE = "3.0.20", "3.40.1"


@dataclass(frozen=True)
class Leg:
    name: str
    hosts: tuple[str, ...]  # the --engine of the run
    args: tuple[str, ...]  # its --cpus and --jobs
    models: str


ONE_HOST = Leg("one-host", (FIRST,), ("--cpus", "1", "--jobs", "1"),
               "one single-core host (one engine held to one CPU, the cells one after the other)")
TWO_HOSTS = Leg("two-hosts", (FIRST, SECOND), ("--cpus", "1", "--jobs", "1"),
                "one more host of the same size (two engines each held to one CPU, a cell on each)")
ONE_ENGINE_TWO_CORES = Leg("one-engine-two-cores", (FIRST,), ("--jobs", "2"),
                           "the same machine given to one engine (no CPU limit, make -j2, the cells one after the "
                           "other)")
LEGS = (ONE_HOST, TWO_HOSTS, ONE_ENGINE_TWO_CORES)


def engines() -> None:
    """Both private engines up, the base image on both, and both builder images made (before the clock)."""
    dockerd = ["sh", str(ROOT / "tests" / "fixtures" / "dockerd.sh"), "start"]
    subprocess.run(dockerd, check=True)
    subprocess.run(dockerd, check=True, env={**os.environ, **SECOND_ENV})
    subprocess.run(["sh", str(ROOT / "tests" / "fixtures" / "images.sh"), "bookworm"], check=True,
                   env={**os.environ, "DOCKER_HOST": FIRST})
    if subprocess.run(["docker", "-H", SECOND, "image", "inspect", "buildkit-base:debian-bookworm"],
                      capture_output=True).returncode:
        subprocess.run(f"docker -H {FIRST} save buildkit-base:debian-bookworm | docker -H {SECOND} load",
                       shell=True, check=True)
    sys.path.insert(0, str(ROOT))
    from buildkit.container.engine import connect
    from buildkit.container.images import parse_image
    from buildkit.container.python import prepare_image, render_options

    image = parse_image(IMAGE)
    for host in (FIRST, SECOND):
        prepare_image(connect(host), image, render_options(image, "python"), Path(tempfile.mkdtemp()), print)


def command(leg: Leg, sources: Path, out: Path) -> list[str]:
    cmd = [*buildkit_cmd(), "ci", "python", *CELLS, f"--with-openssl={OPENSSL}", f"--with-sqlite={SQLITE}",
           "--image", IMAGE, "--source-dir", str(sources), "--out", str(out), *leg.args, "--json"]
    for host in leg.hosts:
        cmd += ["--engine", host]
    return cmd


def run(leg: Leg, sources: Path) -> float:
    """Wall seconds of one run of ``leg``, whose cells must all be verified (on two engines: one on each);
    its artifacts are removed after, its folder kept when it failed."""
    out = Path(tempfile.mkdtemp(prefix=f"bk-bench-engines-{leg.name}-", dir="/var/tmp"))
    started = time.perf_counter()
    done = subprocess.run(command(leg, sources, out), capture_output=True, text=True)
    took = time.perf_counter() - started
    cells = json.loads(done.stdout)["cells"] if done.stdout.strip() else []
    on = {c["engine"] for c in cells}
    if done.returncode != 0 or len(cells) != len(CELLS) or not all(c["ok"] for c in cells) or len(on) != len(leg.hosts):
        sys.exit(f"bench_engines: the {leg.name} run failed (exit {done.returncode}, cells on {sorted(on)}; "
                 f"kept {out}): {done.stderr[-2000:]}")
    shutil.rmtree(out)
    return took


def report(walls: dict[str, list[float]]) -> None:
    med = {name: statistics.median(w) for name, w in walls.items()}
    print(f"{len(CELLS)} cells ({', '.join(CELLS)}; OpenSSL {OPENSSL}, SQLite {SQLITE}; {IMAGE.split('=')[0]}), "
          f"{os.cpu_count()} CPUs here, legs taking turns")
    for leg in LEGS:
        print(f"  {leg.name:<21} {spread(walls[leg.name], 1 / 60, 'min')}")
        print(f"  {'':<21} {' '.join(leg.args)}; models {leg.models}")
    for other in (ONE_HOST, ONE_ENGINE_TWO_CORES):
        print(f"  ratio {TWO_HOSTS.name} / {other.name} {med[TWO_HOSTS.name] / med[other.name]:.2f}x (medians)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="rounds, each leg once a round (default 3: ~2.5 hours here)")
    parser.add_argument("--dry-run", action="store_true", help="print each round's commands; run nothing")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    sources = FIXTURES / "sources"
    if args.dry_run:
        for number in range(1, args.repeat + 1):
            for leg in LEGS:
                print(f"round {number} {leg.name}: {shlex.join(command(leg, sources, Path('OUT')))}")
        return 0
    subprocess.run(["sh", str(ROOT / "tests" / "fixtures" / "sources.sh"), str(sources)], check=True,
                   stdout=subprocess.DEVNULL)
    engines()
    # common.interleaved discards the output: here each run's cells are read back and must be verified.
    walls: dict[str, list[float]] = {leg.name: [] for leg in LEGS}
    for number in range(1, args.repeat + 1):
        for leg in LEGS:
            walls[leg.name].append(run(leg, sources))
            print(f"round {number} {leg.name}: {walls[leg.name][-1] / 60:.1f} min", file=sys.stderr)
    report(walls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
