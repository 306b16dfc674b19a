"""``buildkit ci``: how soon a run with a cached builder image starts building, and what the container costs.

  (default)  With the debian:12 builder image cached (built first if missing, reported apart), launch
             ``buildkit ci python`` REPEAT times and stop it (SIGTERM) as soon as the emitted build script
             prints its first step inside the container; the time from launch to that line. Target < 5 s.
  --full     Also the same build, in the same run: the plan's emitted script (OpenSSL 3.0.20, SQLite 3.40.1,
             CPython 3.13.5, all cores) once inside the container by ``buildkit ci python`` and once here by
             ``sh build.sh``; the two build phases compared. Target: the container adds <= 10 %. This
             compiles for ~15 minutes: run it under ``flock /var/tmp/bk-compile.lock``.

The engine is $DOCKER_HOST (default unix:///run/bk-docker.sock, started by tests/fixtures/dockerd.sh);
the base image buildkit-base:debian-bookworm comes from tests/fixtures/images.sh, the tarballs from
tests/fixtures/sources.sh. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import FIXTURES, ROOT, buildkit_cmd

IMAGE = "debian:12=buildkit-base:debian-bookworm"
CPYTHON, OPENSSL, SQLITE = "3.13.5", "3.0.20", "3.40.1"
REPEAT = 3
BUILD_STARTED = "| ==> [1/3]"  # build.sh's first step, streamed from the container
BUILD_DONE = "    relocatable archive"  # buildkit's next phase: build.sh finished


def setup() -> tuple[str, Path]:
    host = os.environ.setdefault("DOCKER_HOST", "unix:///run/bk-docker.sock")
    subprocess.run(["sh", str(ROOT / "tests" / "fixtures" / "dockerd.sh"), "start"], check=True,
                   stderr=subprocess.DEVNULL)
    subprocess.run(["sh", str(ROOT / "tests" / "fixtures" / "images.sh"), "bookworm"], check=True)
    sources = FIXTURES / "sources"
    subprocess.run(["sh", str(ROOT / "tests" / "fixtures" / "sources.sh"), str(sources)], check=True,
                   stdout=subprocess.DEVNULL)
    return host, sources


def ensure_builder() -> float:
    """Build the builder image if it is not cached; seconds spent (0 when cached)."""
    sys.path.insert(0, str(ROOT))
    from buildkit.container.engine import connect
    from buildkit.container.images import parse_image
    from buildkit.container.python import prepare_image, render_options

    image = parse_image(IMAGE)
    started = time.monotonic()
    prep = prepare_image(connect(), image, render_options(image, "python"), Path(tempfile.mkdtemp()), lambda s: None)
    return time.monotonic() - started if prep.built else 0.0


class Watched:
    """A command whose stderr lines are timestamped as they arrive."""

    def __init__(self, cmd: list[str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.lines: list[tuple[float, str]] = []
        self.done = False
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> float | None:
        """Seconds after launch when a line containing ``text`` arrived; None if it never did."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for at, line in self.lines:
                    if text in line:
                        return at
                left = deadline - time.monotonic()
                if self.done or left <= 0:
                    return None
                self.cond.wait(min(left, 0.5))

    def tail(self, n: int = 15) -> str:
        return "\n".join(line for _, line in self.lines[-n:])


def ci_command(sources: Path, out: Path) -> list[str]:
    return buildkit_cmd() + ["ci", "python", CPYTHON, f"--with-openssl={OPENSSL}", f"--with-sqlite={SQLITE}",
                             "--image", IMAGE, "--source-dir", str(sources), "--out", str(out)]


def cached_start(sources: Path) -> list[float]:
    times = []
    for _ in range(REPEAT):
        out = Path(tempfile.mkdtemp(prefix="bk-bench-ci-"))
        run = Watched(ci_command(sources, out))
        at = run.wait_for(BUILD_STARTED, 120)
        os.killpg(run.proc.pid, signal.SIGTERM)  # buildkit removes the container and exits 130
        code = run.proc.wait(60)
        shutil.rmtree(out, ignore_errors=True)
        if at is None:
            sys.exit(f"bench: the build did not start (exit {code}):\n{run.tail()}")
        if code != 130:
            sys.exit(f"bench: SIGTERM should end the run with 130, got {code}:\n{run.tail()}")
        times.append(at)
    return times


def full(sources: Path) -> tuple[float, float, float]:
    """(host build.sh seconds, container build.sh seconds, whole container run seconds)."""
    work = Path(tempfile.mkdtemp(prefix="bk-bench-ci-full-"))
    try:
        out = work / "out"
        run = Watched(ci_command(sources, out))
        code = run.proc.wait()
        total = time.monotonic() - run.started
        start, done = run.wait_for(BUILD_STARTED, 10), run.wait_for(BUILD_DONE, 10)
        if code != 0 or start is None or done is None:
            sys.exit(f"bench: buildkit ci python failed (exit {code}):\n{run.tail()}")
        container = done - start

        script = work / "build.sh"
        prefix = work / "host-prefix"
        plan = subprocess.run(buildkit_cmd() + ["python", CPYTHON, f"--with-openssl={OPENSSL}",
                                                f"--with-sqlite={SQLITE}", "--prefix", str(prefix),
                                                "--source-dir", str(sources), "--emit-script", str(script)],
                              capture_output=True, text=True)
        if plan.returncode != 0:
            sys.exit(f"bench: --emit-script failed: {plan.stderr}")
        started = time.monotonic()
        host = subprocess.run(["sh", str(script), str(sources)], capture_output=True, text=True)
        seconds = time.monotonic() - started
        if host.returncode != 0:
            sys.exit(f"bench: sh build.sh failed here:\n{host.stderr[-3000:]}")
        return seconds, container, total
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also the whole build, in the container and here")
    args = parser.parse_args()
    _host, sources = setup()
    ok = True
    image_build = ensure_builder()
    if image_build:
        print(f"builder image for {IMAGE} built first: {image_build:.0f} s (once; later runs find it by hash)")
    times = cached_start(sources)
    median = statistics.median(times)
    ok &= median < 5
    print(f"cached image, launch -> build running in the container: {', '.join(f'{t:.2f}' for t in times)} s "
          f"(median {median:.2f} s)   target < 5 s: {'ok' if median < 5 else 'MISSED'}")
    if args.full:
        host, container, total = full(sources)
        overhead = (container - host) / host * 100
        ok &= overhead <= 10
        jobs = len(os.sched_getaffinity(0))
        print(f"same build (OpenSSL {OPENSSL} + SQLite {SQLITE} + CPython {CPYTHON}, {jobs} jobs), one run each:")
        print(f"  {'here':<10} sh build.sh                          {host:7.1f} s")
        print(f"  {'container':<10} sh build.sh in {IMAGE.split('=')[0]:<21} {container:7.1f} s   "
              f"overhead {overhead:+.1f} %   target <= 10 %: {'ok' if overhead <= 10 else 'MISSED'}")
        print(f"  {'container':<10} whole 'buildkit ci python' run       {total:7.1f} s   "
              "(+ fetch check, relocation, packing, second verification)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
