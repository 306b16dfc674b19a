"""relocate.py, the script that makes a container build relocatable: runpaths rewritten in place to
$ORIGIN, the OpenSSL directory replaced by a same-length path, shebangs turned into sh launchers, and an
end-to-end run on a miniature install (a program and two libraries built here with gcc) unpacked elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from buildkit.pybuild import relocate

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("readelf") is None,
                               reason="gcc and readelf (build-essential, binutils) are needed")


def readelf_runpath(path: Path) -> str:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if "(RUNPATH)" in line or "(RPATH)" in line:
            return line.split("[", 1)[1].rsplit("]", 1)[0]
    return ""


def test_new_runpath():
    mapping = [("/opt/p.buildkit/deps/openssl-3.0.20-abc/lib", "/out/n/lib"), ("/opt/p.buildkit/builds/id", "/out/n"),
               ("/opt/p.buildkit/deps/openssl-3.0.20-abc", "/out/n/lib")]
    mapping.sort(key=lambda m: -len(m[0]))
    old = "/opt/p.buildkit/deps/openssl-3.0.20-abc/lib:/usr/lib/x86_64-linux-gnu:$ORIGIN/x"
    assert relocate.new_runpath(old, "/out/n/lib/python3.13/lib-dynload", mapping) == \
        "$ORIGIN/../..:/usr/lib/x86_64-linux-gnu:$ORIGIN/x"
    assert relocate.new_runpath("/opt/p.buildkit/deps/openssl-3.0.20-abc/lib", "/out/n/lib", mapping) == "$ORIGIN"
    assert relocate.new_runpath("/opt/p.buildkit/builds/id/lib", "/out/n/bin", mapping) == "$ORIGIN/../lib"
    # Two entries that land on one directory are kept once.
    twice = "/opt/p.buildkit/deps/openssl-3.0.20-abc/lib:/opt/p.buildkit/deps/openssl-3.0.20-abc"
    assert relocate.new_runpath(twice, "/out/n/bin", mapping) == "$ORIGIN/../lib"


def test_same_length_path():
    assert relocate.same_length_path("/etc/ssl", "/opt/x/ssl1") == "////etc/ssl"
    assert len(relocate.same_length_path("/etc/pki/tls", "/" + "a" * 40)) == 41
    with pytest.raises(relocate.RelocateError):
        relocate.same_length_path("/etc/ssl", "/a/b")
    with pytest.raises(relocate.RelocateError):
        relocate.same_length_path("etc/ssl", "/a/b/c/d/e/f")


def test_shebang_becomes_a_launcher(tmp_path):
    install = tmp_path / "inst"
    (install / "bin").mkdir(parents=True)
    python = install / "bin" / "python3.13"
    python.write_text('#!/bin/sh\necho "interpreter $*"\n')
    python.chmod(0o755)
    script = install / "bin" / "pip3"
    script.write_text(f"#!{python}\n# -*- coding: utf-8 -*-\nimport sys\n")
    script.chmod(0o755)
    other = install / "bin" / "tool"
    other.write_text("#!/usr/bin/env python3\nprint(1)\n")
    assert relocate.rewrite_shebang(str(script), str(install)) is True
    assert relocate.rewrite_shebang(str(other), str(install)) is False
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n'''exec' ") and text.endswith("# -*- coding: utf-8 -*-\nimport sys\n")
    # Moved elsewhere, it runs the interpreter beside it, with itself and the arguments.
    moved = tmp_path / "elsewhere"
    shutil.copytree(install, moved)
    out = subprocess.run([str(moved / "bin" / "pip3"), "install", "x"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"interpreter {moved / 'bin' / 'pip3'} install x"


def _gcc(*args: str) -> None:
    subprocess.run(["gcc", "-O0", *args], check=True, capture_output=True)


@pytest.fixture()
def mini_install(tmp_path):
    """PREFIX.buildkit/builds/<id> with bin/prog (runpath to the private libraries, like CPython's
    _ssl) and deps/openssl-.../lib/libcrypto.so.3 whose OPENSSLDIR string is compiled in."""
    state = tmp_path / "opt" / "python.buildkit"
    install = state / "builds" / "3.13.5-0123456789"
    openssl = state / "deps" / "openssl-3.0.20-abcdef0123"
    sqlite = state / "deps" / "sqlite-3.40.1-abcdef0123"
    for d in (install / "bin", install / "lib" / "python3.13" / "lib-dynload", openssl / "lib",
              openssl / "include" / "openssl", sqlite / "lib"):
        d.mkdir(parents=True)
    src = tmp_path / "src"
    src.mkdir()
    (src / "crypto.c").write_text(
        f'static const char dir[] = "{openssl}/ssl";\n'
        f'static const char version[] = "OPENSSLDIR: \\"{openssl}/ssl\\"";\n'
        'const char *openssldir(void) { return dir; }\nconst char *opensslversion(void) { return version; }\n')
    (src / "sql.c").write_text("int sqlite_answer(void) { return 42; }\n")
    (src / "prog.c").write_text(
        '#include <stdio.h>\nconst char *openssldir(void); const char *opensslversion(void); int sqlite_answer(void);\n'
        'int main(void) { printf("%s|%s|%d\\n", openssldir(), opensslversion(), sqlite_answer()); return 0; }\n')
    (openssl / "include" / "openssl" / "opensslv.h").write_text("/* headers */\n")
    _gcc("-shared", "-fPIC", "-o", str(openssl / "lib" / "libcrypto.so.3"), "-Wl,-soname,libcrypto.so.3",
         f"-Wl,-rpath,{openssl}/lib", str(src / "crypto.c"))
    os.symlink("libcrypto.so.3", openssl / "lib" / "libcrypto.so")
    _gcc("-shared", "-fPIC", "-o", str(sqlite / "lib" / "libsqlite3.so.0"), "-Wl,-soname,libsqlite3.so.0",
         str(src / "sql.c"))
    os.symlink("libsqlite3.so.0", sqlite / "lib" / "libsqlite3.so")
    _gcc("-o", str(install / "bin" / "prog"), str(src / "prog.c"), f"-L{openssl}/lib", f"-L{sqlite}/lib",
         "-lcrypto", "-lsqlite3", f"-Wl,-rpath,{openssl}/lib:{sqlite}/lib", "-Wl,--enable-new-dtags")
    # A 'lib-dynload' module with its own runpath, two levels below lib/.
    _gcc("-shared", "-fPIC", "-o", str(install / "lib" / "python3.13" / "lib-dynload" / "_ssl.so"),
         str(src / "sql.c"), f"-Wl,-rpath,{openssl}/lib")
    (install / "BUILDKIT.json").write_text(json.dumps({"build_id": "3.13.5-0123456789", "verified": True}))
    (install / "lib" / "python3.13" / "test").mkdir()
    (install / "lib" / "python3.13" / "test" / "test_big.py").write_text("# CPython's own tests\n")
    return state, install, openssl, sqlite


@needs_gcc
def test_relocate_end_to_end(tmp_path, mini_install):
    state, install, openssl, sqlite = mini_install
    assert subprocess.run([str(install / "bin" / "prog")], capture_output=True, text=True).stdout.startswith(str(openssl))
    out = tmp_path / "out"
    name = "python-3.13.5-openssl-3.0.20-sqlite-3.40.1-debian12-x86_64"
    run = subprocess.run([sys.executable, "-I", relocate.__file__, "--install", str(install), "--name", name,
                          "--out", str(out), "--dep", str(openssl), "--dep", str(sqlite),
                          "--openssl-prefix", str(openssl), "--openssldir", "/etc/ssl",
                          "--exclude", "lib/python3.13/test", "--exclude", "lib/not-there"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().split(relocate.MARK, 1)[1])
    archive = out / f"{name}.tar.gz"
    assert result["archive"] == str(archive) and archive.is_file() and not (out / name).exists()
    assert result["openssldir"]["replaced"] == 2
    assert result["excluded"] == ["lib/python3.13/test"]
    assert {r["file"] for r in result["runpaths"]} == {"bin/prog", "lib/libcrypto.so.3",
                                                       "lib/python3.13/lib-dynload/_ssl.so"}

    # Unpacked somewhere else, with the build prefix gone, it still finds its libraries.
    shutil.rmtree(state)
    dest = tmp_path / "elsewhere" / "deeper"
    dest.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert all(n == name or n.startswith(name + "/") for n in names)
        assert all(m.uid == 0 and m.gid == 0 for m in tar.getmembers())
        tar.extractall(dest)
    root = dest / name
    assert readelf_runpath(root / "bin" / "prog") == "$ORIGIN/../lib"
    assert readelf_runpath(root / "lib" / "libcrypto.so.3") == "$ORIGIN"
    assert readelf_runpath(root / "lib" / "python3.13" / "lib-dynload" / "_ssl.so") == "$ORIGIN/../.."
    assert os.path.islink(root / "lib" / "libcrypto.so") and (root / "include" / "openssl" / "opensslv.h").is_file()
    assert not (root / "lib" / "python3.13" / "test").exists()
    env = {"PATH": "/usr/bin:/bin"}
    got = subprocess.run([str(root / "bin" / "prog")], capture_output=True, text=True, env=env)
    assert got.returncode == 0, got.stderr
    ssl_dir, version, answer = got.stdout.strip().split("|")
    assert ssl_dir.endswith("/etc/ssl") and set(ssl_dir[: -len("/etc/ssl")]) == {"/"}
    assert len(ssl_dir) == len(f"{openssl}/ssl") and os.path.realpath(ssl_dir) == "/etc/ssl"
    assert version == f'OPENSSLDIR: "{ssl_dir}"' and answer == "42"
    record = json.loads((root / "BUILDKIT.json").read_text())
    assert record["build_id"] == "3.13.5-0123456789" and record["relocated"]["name"] == name


@needs_gcc
def test_relocate_refuses_a_longer_runpath(tmp_path):
    lib = tmp_path / "l" / "libx.so"
    lib.parent.mkdir()
    (tmp_path / "x.c").write_text("int x(void) { return 1; }\n")
    _gcc("-shared", "-fPIC", "-o", str(lib), str(tmp_path / "x.c"), "-Wl,-rpath,/a")
    with pytest.raises(relocate.RelocateError, match="longer"):
        relocate.patch_runpaths(str(lib), str(tmp_path / "deep" / "er" / "still" / "deeper"), [("/a", str(tmp_path / "lib"))])
    assert readelf_runpath(lib) == "/a"  # untouched


def test_relocate_bad_arguments(capsys, tmp_path):
    assert relocate.main(["--install"]) == 2
    assert relocate.main(["--frob", "x"]) == 2
    assert relocate.main(["--install", "/x"]) == 2
    assert relocate.main(["--install", "/nonexistent/x", "--name", "n", "--out", "/nonexistent/out"]) == 1
    with pytest.raises(relocate.RelocateError, match="not inside"):
        (tmp_path / "inst" / "bin").mkdir(parents=True)
        relocate.relocate(str(tmp_path / "inst"), [], "", "/etc/ssl", "n", str(tmp_path / "out"), exclude=["../../etc"])
    assert "relocate.py: error:" in capsys.readouterr().err


def test_non_elf_and_elf_without_dynamic_are_left_alone(tmp_path):
    text = tmp_path / "t"
    text.write_bytes(b"hello")
    assert relocate.elf_runpaths(b"hello") == []
    assert relocate.patch_runpaths(str(text), str(tmp_path), []) == []
    assert relocate.elf_runpaths(b"\x7fELF" + b"\0" * 60) == []
