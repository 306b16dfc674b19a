"""mypy over buildkit (issue 19 item 8): --strict for kmod/, sources/ and catalog/, plain for the rest.

Every option is on the command lines below. Third-party packages without type hints (asn1crypto) are
handled where they are imported: a ``# type: ignore[import-untyped]`` with its reason.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STRICT = ("buildkit/kmod", "buildkit/sources", "buildkit/catalog")
# Not clean in plain mode yet: left out of the plain run, their modules still read (silently) where the rest
# imports them. Empty this as each one passes.
NOT_YET_CLEAN = ("pybuild", "container", "cli")


def _start(options: list[str], cache: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mypy", f"--cache-dir={cache}", *options], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_mypy_strict_packages_and_plain_rest(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.fail(f"mypy is not installed for {sys.executable}: {sys.executable} -m pip install mypy "
                    "(it belongs in the test extra, which CI installs)")
    plain = ["buildkit"]
    if NOT_YET_CLEAN:
        plain[:0] = [f"--exclude=^buildkit/({'|'.join(NOT_YET_CLEAN)})/", "--follow-imports=silent"]
    runs = {  # both at once (each a few seconds, cold: the cache is this test's own)
        "mypy --strict " + " ".join(STRICT): _start(["--strict", *STRICT], tmp_path / "strict"),
        "mypy " + " ".join(plain): _start(plain, tmp_path / "plain"),
    }
    failed = []
    try:
        for command, proc in runs.items():
            out, _ = proc.communicate(timeout=600)
            if proc.returncode != 0:
                failed.append(f"$ {command}  (exit {proc.returncode})\n{out}")
    finally:
        for proc in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert not failed, "\n".join(failed)
