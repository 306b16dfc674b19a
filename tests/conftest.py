"""Shared fixtures. Real inputs live under $BUILDKIT_FIXTURES (default /var/tmp/bk-fixtures), made by the
scripts in tests/fixtures/ (``.ci/run`` runs them first; a test that needs one runs it if missing)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIXTURES = Path(os.environ.get("BUILDKIT_FIXTURES", "/var/tmp/bk-fixtures"))


@dataclass(frozen=True)
class KernelTree:
    root: Path  # the dpkg -x root
    release: str  # e.g. 6.1.0-50-amd64

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.release

    @property
    def build(self) -> Path:
        return self.modules / "build"


@pytest.fixture(scope="session")
def kernel_tree() -> KernelTree:
    dest = FIXTURES / "kernel"
    if not (dest / ".done").exists():
        subprocess.run(["sh", str(HERE / "fixtures" / "kernel.sh"), str(dest)], check=True)
    return KernelTree(dest / "root", (dest / "abi").read_text().strip())
