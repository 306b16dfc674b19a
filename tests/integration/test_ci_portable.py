"""``buildkit ci python --portable`` on a real Docker engine: the emitted script's portable build (the npm
toolchain's glibc 2.17 sysroot, given to the script as its .tgz, checked and unpacked inside the container)
in the bookworm builder, with no network, as the build user; the artifact named by its floor, its uv
catalog, and then what has the final word on the floor: the glibc 2.17 root (CentOS 7's C library and
nothing else), where the real uv (PyPI's manylinux2014 binary) installs the artifact from that catalog and
the installed interpreter runs.

One build a session (CPython 3.13.5, OpenSSL 3.0.20, SQLite 3.40.1, and the portable libraries).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

IMAGE = "debian:12=buildkit-base:debian-bookworm"
CPYTHON, OPENSSL, SQLITE = "3.13.5", "3.0.20", "3.40.1"
NAME = f"python-{CPYTHON}-openssl-{OPENSSL}-sqlite-{SQLITE}-glibc2.17-x86_64"


@pytest.fixture(scope="session")
def ci_portable(docker_host, sources, portable_build, tmp_path_factory):
    """The one real build of this module; the toolchain's .tgz is the one the portable_build fixture fetched."""
    out = tmp_path_factory.mktemp("ci-portable")
    tgz = Path(portable_build["_toolchain"] + ".tgz")
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "buildkit", "ci", "python", CPYTHON, f"--with-openssl={OPENSSL}",
                          f"--with-sqlite={SQLITE}", "--portable", "--toolchain", str(tgz), "--image", IMAGE,
                          "--source-dir", str(sources), "--out", str(out), "--json"],
                         capture_output=True, text=True, env={**os.environ, "DOCKER_HOST": docker_host}, timeout=3600)
    print(f"\nbuildkit ci python {CPYTHON} --portable: {time.monotonic() - started:.0f} s")
    return run, out


def test_portable_artifact_is_named_by_its_floor_and_verified(ci_portable):
    run, out = ci_portable
    assert run.returncode == 0, run.stderr[-4000:]
    artifact = out / f"{NAME}.tar.gz"
    report = json.loads((out / f"{NAME}.json").read_text())
    assert report["verified"] and report["sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    checks = {c["name"]: c for c in report["verification"]["checks"]}
    assert all(c["ok"] for c in checks.values() if c.get("required", True)), checks
    assert "(target <= 2.17)" in checks["glibc floor"]["detail"], checks["glibc floor"]
    assert report["plan"]["portable"]["glibc"] == "2.17"
    assert report["relocated"]["portable"] is True
    # The script's own floor check (readelf, inside the container) ran and passed before the switch.
    log = (out / "logs" / NAME / "build.log").read_text()
    assert "every ELF file asks for glibc 2.17 at most and links only the C runtime" in log
    assert "toolchain: unpacking" in log
    assert [Path(p).name for p in json.loads(run.stdout)["uv_catalogs"]] == [
        "download-metadata.json", "download-metadata-glibc2.17.json"]


def test_uv_installs_it_on_glibc_217_and_it_runs_there(ci_portable, glibc217_root, tmp_path):
    """In the root whose only C library is glibc 2.17: PyPI's uv (a manylinux2014 binary) installs the artifact
    from the run's catalog (a file:// URL into the root, offline), and the interpreter it installed runs there
    with ssl (the RHEL CA path), sqlite3's deterministic functions, zlib, ctypes, lzma, bz2, uuid and readline."""
    run, out = ci_portable
    assert run.returncode == 0, run.stderr[-2000:]
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        pytest.fail(f"no uv beside {sys.executable}: the test extras install it (pip install -e .[test])")
    root = glibc217_root.root
    inside = Path("/opt/uv-test")
    shutil.rmtree(root / inside.relative_to("/"), ignore_errors=True)
    (root / inside.relative_to("/")).mkdir(parents=True)
    shutil.copy(uv, root / inside.relative_to("/") / "uv")
    shutil.copy(out / f"{NAME}.tar.gz", root / inside.relative_to("/") / f"{NAME}.tar.gz")
    entries = json.loads((out / "download-metadata-glibc2.17.json").read_text())
    key = "cpython-3.13.5-linux-x86_64-gnu"
    entries[key]["url"] = (inside / f"{NAME}.tar.gz").as_uri()  # where the artifact is inside the root
    (root / inside.relative_to("/") / "catalog.json").write_text(json.dumps(entries))
    env = {"UV_PYTHON_INSTALL_DIR": f"{inside}/pythons", "UV_CACHE_DIR": f"{inside}/cache", "UV_NO_CONFIG": "1",
           "UV_OFFLINE": "1", "UV_PYTHON_BIN_DIR": f"{inside}/bin"}
    install = glibc217_root.run([f"{inside}/uv", "python", "install", "3.13.5", "--python-downloads-json-url",
                                 f"{inside}/catalog.json"], env=env)
    assert install.returncode == 0, install.stdout + install.stderr
    found = glibc217_root.run([f"{inside}/uv", "python", "find", "3.13.5", "--no-python-downloads"], env=env)
    assert found.returncode == 0 and found.stdout.strip().startswith(f"{inside}/pythons/"), found
    code = ("import platform, ssl, sqlite3, zlib, ctypes, lzma, bz2, uuid, readline, decimal;"
            "c = sqlite3.connect(':memory:'); c.create_function('f', 1, lambda x: x, deterministic=True);"
            "print(platform.libc_ver()[1], ssl.OPENSSL_VERSION.split()[1], sqlite3.sqlite_version,"
            " ssl.get_default_verify_paths().openssl_cafile, c.execute('select f(7)').fetchone()[0])")
    ran = glibc217_root.run([found.stdout.strip(), "-I", "-c", code])
    assert ran.returncode == 0, ran.stderr
    libc, openssl, sqlite, cafile, seven = ran.stdout.split()
    assert (libc, openssl, sqlite, seven) == ("2.17", OPENSSL, SQLITE, "7")
    assert cafile == "/etc/pki/tls/cert.pem"  # the RHEL fallback compiled in: the only bundle in that root
