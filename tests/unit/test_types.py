"""mypy over buildkit (issue 19 item 8): --strict for kmod/, sources/, catalog/, the build record
(pybuild/record.py and its reader jsonread.py, issue 19 item 1), the install (pybuild/install.py, issue 19
item 3), --with-openssl/--with-sqlite's parsed value (pybuild/choice.py, issue 19 item 2), the build's step clock
(pybuild/clock.py, issue 20) and the modules they import that are strict already (errors.py, _input.py, _term.py,
the packages' __init__.py); plain for the rest.

Every option is on the command lines below. The strict run follows imports silently (``--follow-imports=silent``,
mypy's way to check part of a code base): install.py imports modules that are not strict yet (plan.py; verify.py,
for verify-again), whose types it is checked against while their errors are left to the plain run; so a module
is strict only if STRICT names it. Third-party packages without type hints (asn1crypto) are handled where they
are imported: a ``# type: ignore[import-untyped]`` with its reason. The docker SDK's hints come from
types-docker (in the test extra, beside mypy).

recipes/ and containers/ install as buildkit.recipes and buildkit.containers (pyproject's package-dir; in a
checkout buildkit/__init__.py adds the checkout to the package's ``__path__``). mypy follows neither, so the
two import sites say so (``# type: ignore[import-not-found]``) and the plain run names both folders: they are
checked as the packages ``recipes`` and ``containers`` (their own imports are relative or of buildkit.*).
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STRICT = ("buildkit/kmod", "buildkit/sources", "buildkit/catalog", "buildkit/jsonread.py",
          "buildkit/pybuild/record.py", "buildkit/pybuild/install.py", "buildkit/pybuild/layout.py",
          "buildkit/pybuild/choice.py", "buildkit/pybuild/clock.py",
          "buildkit/pybuild/__init__.py", "buildkit/__init__.py", "buildkit/errors.py", "buildkit/_input.py",
          "buildkit/_term.py")
PLAIN = ("buildkit", "recipes", "containers")


def _start(options: list[str], cache: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mypy", f"--cache-dir={cache}", *options], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _installed(package: str) -> bool:
    try:
        metadata.version(package)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_mypy_strict_packages_and_plain_rest(tmp_path: Path) -> None:
    for package in ("mypy", "types-docker"):
        if not _installed(package):
            pytest.fail(f"{package} is not installed for {sys.executable}: {sys.executable} -m pip install "
                        f"{package} (it belongs in the test extra, which CI installs)")
    runs = {  # both at once (each a few seconds, cold: the cache is this test's own)
        "mypy --strict --follow-imports=silent " + " ".join(STRICT): _start(["--strict", "--follow-imports=silent",
                                                                              *STRICT], tmp_path / "strict"),
        "mypy " + " ".join(PLAIN): _start(list(PLAIN), tmp_path / "plain"),
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
