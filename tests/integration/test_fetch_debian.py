"""``buildkit fetch`` for real through its last resort, Debian's archive: the catalog's OpenSSL 3.0.20
(openssl/bookworm's ``openssl_3.0.20.orig.tar.gz`` is upstream's tarball byte for byte), through a private apt
configuration built from this host's /etc/apt/sources.list.d/debian.sources, checked against the catalog's
sha256 and size."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from buildkit.catalog import find
from buildkit.sources import fetch, fetch_source, safe_extract

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get not found (Debian/Ubuntu hosts only)"),
]

OPENSSL = find("openssl", "3.0.20")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One cache for the module, so that apt-get update runs once."""
    return tmp_path_factory.mktemp("fetch-debian-cache")


def test_catalog_entry_is_the_debian_orig_tarball():
    assert OPENSSL.debian == "openssl/bookworm" and OPENSSL.size == 15292815
    assert OPENSSL.sha256 == "c80a01dfc70ece4dc21168932c37739042d404d46ccc81a5986dd75314ecda6f"


def test_library_takes_the_orig_tarball_from_debian(cache):
    source = replace(OPENSSL, url="")  # no upstream URL: Debian's archive is the only route left
    got = fetch_source(source, cache_dir=cache, debian=True)
    assert got.origin == "debian openssl/bookworm (openssl_3.0.20.orig.tar.gz)"
    assert got.path == cache / "openssl-3.0.20.tar.gz"
    assert got.path.stat().st_size == OPENSSL.size and sha256(got.path) == OPENSSL.sha256
    assert (cache / "apt" / "sources.list.d" / "buildkit.sources").read_text().startswith("Types: deb-src\n")
    assert [p.name for p in cache.iterdir() if ".part-" in p.name or p.name.startswith(".debian-")] == []


def test_command_fetches_openssl_from_debian_and_copies_it(cache, tmp_path):
    (cache / "openssl-3.0.20.tar.gz").unlink(missing_ok=True)  # keep the apt indexes, fetch the file again
    dest = tmp_path / "dest"
    run = subprocess.run([sys.executable, "-m", "buildkit", "fetch", "openssl@3.0.20",
                          "--cache", str(cache), "--dest", str(dest), "--json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    [entry] = json.loads(run.stdout)["sources"]
    # A host that reaches upstream takes it first; this one reaches only Debian's archive.
    assert entry["origin"].startswith(("debian openssl/bookworm", "upstream ")), entry["origin"]
    assert entry["sha256"] == OPENSSL.sha256 and entry["size"] == OPENSSL.size
    for path in (Path(entry["path"]), Path(entry["copied_to"])):
        assert sha256(path) == OPENSSL.sha256


def test_fetched_tarball_extracts_safely(cache, tmp_path):
    path = fetch(OPENSSL, cache_dir=cache, debian=True)  # from the cache by now
    top = safe_extract(path, tmp_path / "src")
    assert top.name == "openssl-3.0.20"
    assert (top / "Configure").is_file() and os.access(top / "config", os.X_OK)
    assert (top / "include" / "openssl" / "opensslv.h.in").is_file()


def test_a_binary_package_comes_through_apt_get_download(cache, tmp_path):
    """The portable build's kernel headers: Debian bullseye's linux-libc-dev, a binary package, through a private
    apt state of binary indexes (apt-get download), checked against the sha256 of bullseye's Packages index."""
    uapi = find("linux-uapi", "5.10.223")
    got = fetch_source(uapi, cache_dir=cache, debian=True)
    assert got.origin == "debian linux-libc-dev/bullseye=5.10.223-1 (linux-libc-dev_5.10.223-1_amd64.deb)"
    assert got.path.stat().st_size == uapi.size and sha256(got.path) == uapi.sha256
    assert (cache / "apt-deb" / "sources.list.d" / "buildkit.sources").read_text().startswith("Types: deb\n")
    top = safe_extract(got.path, tmp_path / "x")
    assert (top / "include" / "linux" / "pidfd.h").is_file()
    assert "__NR_pidfd_open" in (top / "include" / "x86_64-linux-gnu" / "asm" / "unistd_64.h").read_text()
