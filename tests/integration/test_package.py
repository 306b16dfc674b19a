"""buildkit as a package: ``python -m build`` makes a wheel and an sdist that carry the catalog, the
templates, the recipes and the container files, and the wheel installed into a plain virtual environment
gives a working ``buildkit`` on a machine without the source tree (run from a folder far from it).

Real tools: PyPA's ``build`` (with its isolated build environment from the package index) and pip.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# What the installed tool reads at run time (beside its modules): the repository's recipes/ and containers/
# install inside buildkit's namespace, as buildkit/recipes and buildkit/containers.
DATA = ["buildkit/catalog/sources.toml", "buildkit/templates/build-python.sh.j2", "buildkit/py.typed",
        "containers/debian.Dockerfile.j2", "containers/rhel.Dockerfile.j2", "containers/include/apt-python.j2",
        "containers/include/yum-python.j2", "recipes/openssl.py", "recipes/sqlite.py", "recipes/cpython.py"]
IN_WHEEL = [name if name.startswith("buildkit/") else f"buildkit/{name}" for name in DATA]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_wheel_and_sdist_carry_the_data(dist):
    from buildkit import __version__

    (wheel,) = dist.glob(f"buildkit-{__version__}-py3-none-any.whl")
    (sdist,) = dist.glob(f"buildkit-{__version__}.tar.gz")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for name, installed in zip(DATA, IN_WHEEL):
        assert installed in in_wheel, f"{installed} missing from {wheel.name}"
        assert name in in_sdist, f"{name} missing from {sdist.name}"
    # nothing but buildkit and its metadata at the top of site-packages: no package named recipes or containers
    assert {n.split("/", 1)[0] for n in in_wheel} == {"buildkit", f"buildkit-{__version__}.dist-info"}
    for name in ("pyproject.toml", "README.md", "quickstart", "tests/conftest.py", "tests/fixtures/kernel.sh"):
        assert name in in_sdist, f"{name} missing from {sdist.name}"
    entry = next(n for n in in_wheel if n.endswith(".dist-info/entry_points.txt"))
    assert "buildkit = buildkit.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
    assert not any(n.startswith(("tests/", "bench/")) for n in in_wheel)


def test_the_installed_wheel_works_without_the_source_tree(dist, tmp_path, kernel_tree):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (wheel,) = dist.glob("*.whl")
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          str(wheel)], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-3000:]
    away = tmp_path / "elsewhere"
    away.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        # cwd far from the checkout and no PYTHONPATH: only the installed files can answer.
        return subprocess.run([str(venv / "bin" / "buildkit"), *args], cwd=away, capture_output=True, text=True,
                              env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(tmp_path)})

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import buildkit.recipes, buildkit.containers; "
                            "print(buildkit.__file__, buildkit.recipes.__file__, buildkit.containers.__file__)"],
                           cwd=away, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(str(venv)) for path in where.stdout.split())
    assert len(where.stdout.split()) == 3

    from buildkit import __version__

    assert run("--version").stdout.strip() == f"buildkit, version {__version__}"
    listing = run("python", "--list")  # the catalog
    assert listing.returncode == 0 and "openssl: " in listing.stdout and "3.0.20" in listing.stdout
    dockerfile = run("ci", "render", "debian:12")  # containers/*.j2
    assert dockerfile.returncode == 0, dockerfile.stderr
    assert "zlib1g-dev" in dockerfile.stdout and "useradd" in dockerfile.stdout
    script = away / "build.sh"  # the recipes and buildkit/templates/build-python.sh.j2
    emitted = run("python", "3.11.2", "--with-openssl", "--with-sqlite", "--prefix", str(away / "py"),
                  "--emit-script", str(script))
    assert emitted.returncode == 0, emitted.stderr
    text = script.read_text()
    assert text.startswith("#!/bin/sh") and "openssl-3.0.20.tar.gz" in text and "Python-3.11.2" in text
    shown = run("symvers", "show", str(kernel_tree.build / "Module.symvers"))
    assert shown.returncode == 0 and shown.stdout.startswith("# ")
