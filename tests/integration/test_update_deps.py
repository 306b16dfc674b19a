"""``buildkit python --update-deps`` and ``--rollback`` for real: the session's CPython 3.11.2 build (OpenSSL
3.0.20, SQLite 3.40.1; test_python_build's ``good``) taken to trixie's OpenSSL 3.5.7 and SQLite 3.46.1
without recompiling it, then rolled back; an update to OpenSSL 1.1.1w (another soname) refused.

The shared prefix is never touched: its verified build and both libraries are copied to a prefix of the same
length (``up311`` beside ``py311``) and the old path replaced by the new one byte for byte in every file (the
same length, so ELF string tables and marshalled code stay valid), and the copy is verified before the test
starts: no CPython build, no OpenSSL 3.0.20 build. The update itself costs one OpenSSL 3.5.7 build and one
SQLite 3.46.1 build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_python_build import BUILDS, buildkit, clean_python

pytestmark = pytest.mark.integration

NEW_OPENSSL = "3.5.7"
NEW_SQLITE = "3.46.1"
PROBE = "import ssl, sqlite3, sys; print(ssl.OPENSSL_VERSION); print(sqlite3.sqlite_version); print(sys.version)"


def seed_copy(source_prefix: Path, prefix: Path) -> dict:
    """Copy the build ``source_prefix`` links to, with its private libraries, to ``prefix`` (a path of the same
    length), replacing the old path in every file; returns the copy's BUILDKIT.json."""
    old, new = str(source_prefix), str(prefix)
    assert len(old) == len(new), (old, new)
    install = os.path.realpath(source_prefix)
    record = json.loads(Path(install, "BUILDKIT.json").read_text())
    shutil.rmtree(new + ".buildkit", ignore_errors=True)
    if os.path.lexists(new):
        os.unlink(new)
    for tree in (install, record["openssl"]["prefix"], record["sqlite"]["prefix"]):
        dest = tree.replace(old + ".buildkit/", new + ".buildkit/", 1)
        assert dest != tree
        shutil.copytree(tree, dest, symlinks=True)
        for parent, _dirs, files in os.walk(dest):
            for name in files:
                path = os.path.join(parent, name)
                if os.path.islink(path):
                    target = os.readlink(path)
                    if target.startswith(old + ".buildkit/"):
                        os.unlink(path)
                        os.symlink(new + target[len(old):], path)
                    continue
                data = Path(path).read_bytes()
                if old.encode() in data:
                    mode = os.stat(path).st_mode
                    os.chmod(path, mode | 0o200)
                    Path(path).write_bytes(data.replace(old.encode(), new.encode()))
                    os.chmod(path, mode)
    os.symlink(install.replace(old, new, 1), new)
    return json.loads(Path(new, "BUILDKIT.json").read_text())


def versions(python: str) -> list[str]:
    out = clean_python(python, PROBE)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split("\n", 2)


@pytest.fixture(scope="session")
def seeded(request) -> dict:
    """Our own prefix with a verified copy of the session's 3.0.20/3.40.1 build."""
    request.getfixturevalue("good")  # the shared build, made (or found verified) first
    prefix = BUILDS / "up311"
    record = seed_copy(BUILDS / "py311", prefix)
    state = str(prefix) + ".buildkit"
    check = buildkit("verify", str(prefix / "bin" / "python3"), "--expect-openssl", "3.0.20", "--expect-sqlite",
                     "3.40.1", "--private-prefix", record["openssl"]["prefix"], "--private-prefix",
                     record["sqlite"]["prefix"], "--json")
    assert check.returncode == 0, check.stdout[-3000:]
    assert all(p.startswith(state) for p in (record["openssl"]["prefix"], record["sqlite"]["prefix"]))
    return {"prefix": prefix, "record": record, "install": os.path.realpath(prefix),
            "versions": versions(str(prefix / "bin" / "python3"))}


@pytest.fixture(scope="session")
def updated(seeded, sources) -> dict:
    prefix = seeded["prefix"]
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "buildkit", "python",
                          "--prefix", str(prefix), "--update-deps", f"--with-openssl={NEW_OPENSSL}",
                          f"--with-sqlite={NEW_SQLITE}", "--source-dir", str(sources), "--cache",
                          str(BUILDS / "cache"), "--json"], capture_output=True, text=True, timeout=3600)
    seconds = time.monotonic() - started
    assert run.returncode == 0, run.stderr[-3000:]
    print(f"\nupdate-deps took {seconds:.0f} s (record: {json.loads(run.stdout)['seconds']} s)", file=sys.stderr)
    return {"run": run, "record": json.loads(run.stdout), "seconds": seconds}


def test_seed_is_the_shared_build_in_our_own_prefix(seeded):
    openssl, sqlite, _version = seeded["versions"]
    assert openssl.startswith("OpenSSL 3.0.20 ") and sqlite == "3.40.1"
    assert seeded["install"].startswith(str(seeded["prefix"]) + ".buildkit/builds/")


def test_update_without_recompiling(seeded, updated):
    prefix, record = seeded["prefix"], updated["record"]
    install = os.path.realpath(prefix)
    assert install == record["python"].rsplit("/bin/", 1)[0] and install != seeded["install"]
    openssl, sqlite, version = versions(str(prefix / "bin" / "python3"))
    assert openssl.startswith(f"OpenSSL {NEW_OPENSSL} ") and sqlite == NEW_SQLITE
    assert version == seeded["versions"][2]  # sys.version, build date and compiler included
    assert record["update"]["sys_version_unchanged"] is True and record["update"]["sys_version"] == version
    assert record["verified"] is True
    checks = {c["name"]: c for c in record["verification"]["checks"]}
    assert all(c["ok"] for c in checks.values() if c["required"]), checks
    assert f"runs {NEW_OPENSSL}" in checks["OpenSSL headers vs runtime"]["detail"]
    # the new libraries, built into their own prefixes, are the ones mapped, whatever LD_LIBRARY_PATH says
    libraries = record["verification"]["libraries"]  # module -> the files /proc/self/maps showed
    for package, module in (("openssl", "_ssl"), ("openssl", "_hashlib"), ("sqlite", "_sqlite3")):
        assert record[package]["version"] in (NEW_OPENSSL, NEW_SQLITE)
        assert libraries[module] and all(p.startswith(record[package]["prefix"] + "/lib/")
                                         for p in libraries[module]), libraries
    # the interpreter's code was not rebuilt: only its runpath differs from the previous build's binary
    old_bin = Path(seeded["install"], "bin", "python3.11").read_bytes()
    new_bin = Path(install, "bin", "python3.11").read_bytes()
    assert old_bin != new_bin and record["update"]["repointed"]["rpath"]
    rpath = subprocess.run(["patchelf", "--print-rpath", f"{install}/lib/python3.11/lib-dynload/"
                            "_ssl.cpython-311-x86_64-linux-gnu.so"], capture_output=True, text=True).stdout
    assert record["openssl"]["prefix"] + "/lib" in rpath and seeded["record"]["openssl"]["prefix"] not in rpath
    dyn = subprocess.run(["readelf", "-d", f"{install}/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so"],
                         capture_output=True, text=True).stdout
    assert "(RPATH)" in dyn and "(RUNPATH)" not in dyn
    # pip's script runs the new build, not the old one
    assert Path(install, "bin", "pip3").read_text().splitlines()[0] == f"#!{install}/bin/python3.11"


def test_previous_install_kept_and_rollback(seeded, updated):
    prefix = seeded["prefix"]
    assert os.path.isdir(seeded["install"])
    assert versions(seeded["install"] + "/bin/python3")[:2] == seeded["versions"][:2]  # untouched
    back = buildkit("python", "--prefix", str(prefix), "--rollback")
    assert back.returncode == 0, back.stderr
    assert os.path.realpath(prefix) == seeded["install"]
    assert seeded["install"] in back.stdout and "openssl 3.0.20" in back.stdout, back.stdout
    assert versions(str(prefix / "bin" / "python3")) == seeded["versions"]
    # the seed replaced nothing that still exists: a second rollback is refused, one line, nothing switched
    twice = buildkit("python", "--prefix", str(prefix), "--rollback")
    assert twice.returncode == 2 and twice.stderr.count("\n") == 1 and "--rollback: " in twice.stderr, twice.stderr
    assert os.path.realpath(prefix) == seeded["install"]
    # and forward again: the libraries are reused, only the copy is made again
    again = buildkit("python", "--prefix", str(prefix), "--update-deps", f"--with-openssl={NEW_OPENSSL}",
                     f"--with-sqlite={NEW_SQLITE}", "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "reusing" in again.stderr and "configure" not in again.stderr
    assert versions(str(prefix / "bin" / "python3"))[:2][1] == NEW_SQLITE
    # the same update once more: the installed build is verified again, nothing else happens
    same = buildkit("python", "--prefix", str(prefix), "--update-deps", f"--with-openssl={NEW_OPENSSL}",
                    f"--with-sqlite={NEW_SQLITE}")
    assert same.returncode == 0 and "nothing to do" in same.stdout, same.stderr[-2000:]
    assert "_ssl libraries" in same.stdout  # the fresh report's table


def test_cross_abi_update_is_refused_and_nothing_switched(seeded, updated, sources):
    prefix = seeded["prefix"]
    before = os.readlink(prefix)
    builds = sorted(os.listdir(str(prefix) + ".buildkit/builds"))
    run = buildkit("python", "--prefix", str(prefix), "--update-deps", "--with-openssl=1.1.1w", "--source-dir",
                   str(sources))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "another ABI" in lines[0] and "libssl.so.1.1" in lines[0] and "libssl.so.3" in lines[0], lines[0]
    assert "buildkit python 3.11.2 --prefix" in lines[0] and "--with-openssl=1.1.1w" in lines[0], lines[0]
    assert os.readlink(prefix) == before
    assert sorted(os.listdir(str(prefix) + ".buildkit/builds")) == builds


def test_rollback_without_a_previous_build_is_one_line(tmp_path):
    run = buildkit("python", "--prefix", str(tmp_path / "nothing"), "--rollback")
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "no build made by buildkit" in run.stderr
