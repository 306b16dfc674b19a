"""``buildkit ci python --engine A --engine B``: the same cells on one engine and on two, in one run.

Two cells (CPython 3.13.5 and 3.11.2, each with OpenSSL 3.0.20 and SQLite 3.40.1, ``--jobs 1``: this
machine has 2 cores, so two cells at once use them as one cell with -j2 would) are built first with one
engine, then with two (two private dockerds side by side: tests/fixtures/dockerd.sh with its own socket
and state; the second gets the bookworm base image by docker save | docker load). Builder images are
made before the clock starts on both engines. Prints both wall times and their ratio (two / one); each
run's cells must all be verified.

Four CPython builds: ~40 minutes here. Run it alone: flock /var/tmp/bk-compile.lock python3 bench/bench_engines.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import FIXTURES, ROOT, buildkit_cmd

IMAGE = "debian:12=buildkit-base:debian-bookworm"
FIRST = "unix:///run/bk-docker.sock"
SECOND_ENV = {"BK_DOCKER_SOCK": "/run/bk-docker2.sock", "BK_DOCKER_ROOT": "/var/lib/bk-docker2",
              "BK_DOCKER_EXEC_ROOT": "/run/bk-docker2", "BK_DOCKER_PIDFILE": "/run/bk-dockerd2.pid",
              "BK_DOCKER_LOG": "/var/log/bk-dockerd2.log"}
SECOND = "unix://" + SECOND_ENV["BK_DOCKER_SOCK"]
CELLS = ["3.13.5", "3.11.2"]


def engines() -> None:
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
    for host in (FIRST, SECOND):  # builder images before the clock starts
        prepare_image(connect(host), image, render_options(image, "python"), Path(tempfile.mkdtemp()), print)


def run(hosts: list[str], sources: Path) -> tuple[float, list[dict]]:
    out = Path(tempfile.mkdtemp(prefix="bk-bench-engines-", dir="/var/tmp"))
    cmd = buildkit_cmd() + ["ci", "python", *CELLS, "--with-openssl=3.0.20", "--with-sqlite=3.40.1", "--image",
                            IMAGE, "--source-dir", str(sources), "--out", str(out), "--jobs", "1", "--json"]
    for host in hosts:
        cmd += ["--engine", host]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - started
    cells = json.loads(done.stdout)["cells"] if done.stdout.strip() else []
    if done.returncode != 0 or len(cells) != len(CELLS) or not all(c["ok"] for c in cells):
        sys.exit(f"bench_engines: the run on {hosts} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return took, cells


def main() -> int:
    sources = FIXTURES / "sources"
    subprocess.run(["sh", str(ROOT / "tests" / "fixtures" / "sources.sh"), str(sources)], check=True,
                   stdout=subprocess.DEVNULL)
    engines()
    one, _ = run([FIRST], sources)
    two, cells = run([FIRST, SECOND], sources)
    where = {c["python"]: c["engine"] for c in cells}
    print(f"{len(CELLS)} cells ({', '.join(CELLS)}; OpenSSL 3.0.20, SQLite 3.40.1; --jobs 1), {os.cpu_count()} CPUs")
    print(f"  one engine   {one / 60:6.1f} min")
    print(f"  two engines  {two / 60:6.1f} min   (cells on: {where})")
    print(f"  ratio two/one {two / one:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
