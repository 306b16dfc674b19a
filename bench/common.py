"""Helpers shared by the benchmarks: the real inputs, timing of whole commands, peak RSS of children."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("BUILDKIT_FIXTURES", "/var/tmp/bk-fixtures"))
COMPILE_LOCK = "/var/tmp/bk-compile.lock"


def kernel() -> tuple[Path, str]:
    """(dpkg root, release) of the unpacked Debian kernel packages; fetched if missing."""
    dest = FIXTURES / "kernel"
    if not (dest / ".done").exists():
        subprocess.run(["sh", str(ROOT / "tests" / "fixtures" / "kernel.sh"), str(dest)], check=True)
    return dest / "root", (dest / "abi").read_text().strip()


def buildkit_cmd() -> list[str]:
    """The installed console script next to this interpreter (what users run), else ``python -m``."""
    script = Path(sys.executable).parent / "buildkit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "buildkit"]


def interleaved(legs: dict[str, list[str]], repeat: int, **kw) -> dict[str, list[float]]:
    """Wall seconds of each leg's command, run in turns (A B A B ...) ``repeat`` times, output discarded: a
    machine that gets busier slows every leg alike."""
    walls: dict[str, list[float]] = {name: [] for name in legs}
    for _ in range(repeat):
        for name, cmd in legs.items():
            start = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
            walls[name].append(time.perf_counter() - start)
    return walls


def spread(walls: list[float], unit: float = 1000.0, label: str = "ms") -> str:
    """min / median / mean / max of ``walls`` (seconds) in ``label`` units, and the spread (max-min over the
    median): what every leg of a bench prints."""
    med = statistics.median(walls)
    rel = (max(walls) - min(walls)) / med * 100
    return (f"min {min(walls) * unit:.1f}  median {med * unit:.1f}  mean {statistics.mean(walls) * unit:.1f}  "
            f"max {max(walls) * unit:.1f} {label}  (spread {rel:.0f}%, n={len(walls)})")


def peak_rss_mb(cmd: list[str], **kw) -> float:
    """Peak RSS of one run of ``cmd``, in MB, measured by a fresh child's rusage."""
    probe = (
        "import resource, subprocess, sys;"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True, **kw)
    return int(out.stdout) / 1024


def buildkit_json(args: list[str]) -> tuple[dict, float]:
    """One ``buildkit ARGS --json`` run, echoed as ``+ cmd`` on stderr: its JSON record and its wall seconds."""
    cmd = [*buildkit_cmd(), *args, "--json"]
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    started = time.perf_counter()
    run = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if run.returncode != 0:
        sys.exit(f"bench: buildkit failed (exit {run.returncode}): {' '.join(cmd)}")
    return json.loads(run.stdout), time.perf_counter() - started


@contextlib.contextmanager
def compile_lock() -> Iterator[None]:
    """Hold /var/tmp/bk-compile.lock (shared with anyone compiling on this machine) for the block: a bench's
    builds are compilations, and no one else's compilation may disturb its timings."""
    with open(COMPILE_LOCK, "a") as lock:
        print(f"bench: waiting for {COMPILE_LOCK}", file=sys.stderr, flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"bench: {tool} is not installed (see ./quickstart)")
    return path


__all__ = ["ROOT", "FIXTURES", "COMPILE_LOCK", "kernel", "buildkit_cmd", "buildkit_json", "compile_lock",
           "interleaved", "spread", "peak_rss_mb", "need", "resource"]
