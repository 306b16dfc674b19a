"""verify's CA store and binary floor on the real build (CPython 3.11.2, private OpenSSL 3.0.20 and SQLite
3.40.1; the no-op `buildkit python` of test_python_build reuses the verified prefix).

* the binary floor's facts are those of binutils' readelf, file by file, over every ELF file of the install;
* the CA store: on this Debian host, and in a chroot that looks like a RHEL-family host: the host's real
  bundle copied to /etc/pki/tls/cert.pem and no other CA store. The build links its OPENSSLDIR's cert.pem to
  Debian's bundle, so there it loads nothing and the check must say so, naming the path and the fix; the
  fix it prints is then run in the chroot, and the check passes with the bundle's count.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import readelf
from test_python_build import BUILDS, buildkit

from buildkit.pybuild.verify import PROBE_MARK, PROBE_SOURCE, report_from_probe

pytestmark = pytest.mark.integration

DEBIAN_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@pytest.fixture(scope="module")
def verified(good) -> dict:
    run = buildkit("verify", good["python"], "--expect-openssl", good["openssl"]["version"],
                   "--private-prefix", good["openssl"]["prefix"], "--private-prefix", good["sqlite"]["prefix"], "--json")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(run.stdout)


def test_floor_is_what_readelf_says_of_every_file(good, verified) -> None:
    binaries = verified["binaries"]
    install = str(Path(good["python"]).resolve().parents[1])
    assert binaries["roots"] == [install, good["openssl"]["prefix"], good["sqlite"]["prefix"]]
    # every ELF file under the roots (site-packages aside), found here by find + the magic number
    found = subprocess.run(["find", *binaries["roots"], "-type", "f", "-not", "-path", "*/site-packages/*"],
                           capture_output=True, text=True, check=True).stdout.split()
    elves = sorted(p for p in found if open(p, "rb").read(4) == b"\x7fELF"
                   and not p.endswith(".o"))  # config-3.11-*/python.o: ET_REL, no dynamic section
    files = {f["path"]: f for f in binaries["files"]}
    assert sorted(files) == elves and len(elves) > 80
    assert any(p.endswith("/bin/python3.11") for p in files) and any(p.endswith("/bin/openssl") for p in files)
    assert any(p.endswith("/lib/libsqlite3.so.0.8.6") for p in files)
    for path, ours in files.items():
        theirs = readelf(path)
        assert {k: ours[k] for k in theirs} == theirs, path
    top = max((f["glibc"] for f in files.values() if f["glibc"]), key=lambda v: tuple(map(int, v.split("."))))
    assert binaries["glibc"] == top
    checks = {c["name"]: c for c in verified["checks"]}
    assert checks["glibc floor"]["ok"] and f"runs on hosts with glibc >= {top}:" in checks["glibc floor"]["detail"]
    linked = checks["linked libraries (DT_NEEDED)"]
    assert linked["ok"] and linked["required"], linked
    needed = {lib for f in files.values() for lib in f["needed"]}
    assert set(binaries["needed"]) == needed and all(binaries["needed"].values())
    assert {"libssl.so.3", "libcrypto.so.3", "libsqlite3.so.0"} <= needed
    for lib in ("libssl.so.3", "libcrypto.so.3", "libsqlite3.so.0"):
        assert binaries["needed"][lib].startswith("the install's own (" + good[
            "sqlite" if "sqlite" in lib else "openssl"]["prefix"] + "/lib/"), binaries["needed"][lib]
    assert checks["hardening"]["required"] is False


def test_ca_store_on_this_host(verified) -> None:
    ca = next(c for c in verified["checks"] if c["name"] == "CA store")
    certs = DEBIAN_BUNDLE.read_text().count("-----BEGIN CERTIFICATE-----")
    assert ca["ok"] and ca["detail"].startswith(f"{certs} CA certificates loaded from ")
    assert f"/ssl/cert.pem -> {DEBIAN_BUNDLE}" in ca["detail"]
    stores = {s["path"]: s for s in verified["ca_stores"]}
    assert stores[str(DEBIAN_BUNDLE)]["certs"] == certs and stores["/etc/ssl/certs"]["kind"] == "dir"


def _chroot_probe(root: Path, python: str, prefixes: list[str], before: str = "") -> dict:
    """The probe run by ``python`` in a chroot at ``root``: /usr read-only from this host (libc, the system's
    libraries), the builds read-only at their own path, /etc of the chroot only; a private mount namespace."""
    mounts = f"""set -e
mount --bind -o ro /usr {root}/usr
mount --bind /dev {root}/dev
mount -t proc proc {root}/proc
mount -t tmpfs tmpfs {root}/tmp
mount --bind -o ro {BUILDS} {root}{BUILDS}
{before}
exec chroot {root} env -i PATH=/usr/bin:/bin LANG=C.UTF-8 {python} -I - --json \
    {" ".join("--private-prefix " + p for p in prefixes)}
"""
    run = subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", mounts], input=PROBE_SOURCE,
                         capture_output=True, text=True, timeout=600)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith(PROBE_MARK)), None)
    assert line is not None, run.stdout[-2000:] + run.stderr[-2000:]
    return json.loads(line[len(PROBE_MARK):])


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_ca_store_where_only_rhel_cert_pem_exists(good, tmp_path) -> None:
    root = tmp_path / "rhel"
    for folder in ("usr", "dev", "proc", "tmp", "etc/pki/tls", str(BUILDS)[1:]):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for link in ("bin", "lib", "lib64", "sbin"):
        os.symlink(f"usr/{link}", root / link)
    shutil.copy(DEBIAN_BUNDLE, root / "etc/pki/tls/cert.pem")  # a real file with the real certificates
    certs = DEBIAN_BUNDLE.read_text().count("-----BEGIN CERTIFICATE-----")
    openssl = good["openssl"]["prefix"]
    prefixes = [openssl, good["sqlite"]["prefix"]]

    payload = _chroot_probe(root, good["python"], prefixes)
    report = report_from_probe(good["python"], payload)
    assert [s["path"] for s in report.probe["ca"]["host_stores"]] == ["/etc/pki/tls/cert.pem"]
    ca = report.check("CA store")
    assert not ca.ok and report.failed == (ca,), report.failed
    assert ca.detail.startswith(f"create_default_context() loaded 0 CA certificates: OpenSSL looked at cafile "
                                f"{openssl}/ssl/cert.pem -> {DEBIAN_BUNDLE} (missing)")
    assert f"this host's CA store: /etc/pki/tls/cert.pem ({certs} certificates)" in ca.detail
    fix = re.search(r"fix: (.*) \(or run it with SSL_CERT_FILE=/etc/pki/tls/cert\.pem\)$", ca.detail)
    assert fix and fix[1] == f"mkdir -p {openssl}/ssl && ln -sfn /etc/pki/tls/cert.pem {openssl}/ssl/cert.pem"

    # The fix, as printed, run in the chroot (over a scratch copy of the OPENSSLDIR: the build stays as it is).
    fixed = _chroot_probe(root, good["python"], prefixes,
                          before=f"mount -t tmpfs tmpfs {root}{openssl}/ssl\nchroot {root} sh -c '{fix[1]}'")
    report = report_from_probe(good["python"], fixed)
    assert report.ok, report.failed
    assert report.check("CA store").detail.startswith(
        f"{certs} CA certificates loaded from {openssl}/ssl/cert.pem -> /etc/pki/tls/cert.pem;")
    assert os.readlink(Path(openssl) / "ssl" / "cert.pem") == str(DEBIAN_BUNDLE)  # the real build untouched
    assert not any(s["path"].startswith("/etc/ssl") for s in report.probe["ca"]["host_stores"])
