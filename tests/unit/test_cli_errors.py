"""Bad input: one line on stderr naming the file or value and the fix, exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


def buildkit(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buildkit", *args], input=stdin, capture_output=True, text=True)


def one_line_error(run: subprocess.CompletedProcess, *needles: str) -> None:
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def kdir(tmp_path):
    """A headers dir with a tiny Module.symvers, enough for check's argument handling."""
    k = tmp_path / "headers"
    k.mkdir()
    (k / "Module.symvers").write_text("0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n")
    return k


def test_missing_kerneldir(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x.ko").write_bytes(b"\x7fELF")
    one_line_error(buildkit("symvers", "check", f"M={tmp_path / 'm'}", f"KERNELDIR={tmp_path / 'nope'}"),
                   "KERNELDIR=", "no such directory", "linux-headers")


def test_kerneldir_without_module_symvers(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x.ko").write_bytes(b"\x7fELF")
    one_line_error(buildkit("symvers", "check", f"M={tmp_path / 'm'}", f"KERNELDIR={tmp_path}"),
                   "Module.symvers: missing")


def test_m_with_nothing_built(tmp_path, kdir):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.c").write_text("int x;\n")
    one_line_error(buildkit("symvers", "check", f"M={tmp_path / 'src'}", f"KERNELDIR={kdir}"),
                   "no modules built there", "make -C")


def test_m_missing_and_unknown_argument(tmp_path, kdir):
    one_line_error(buildkit("symvers", "check", f"M={tmp_path / 'gone'}", f"KERNELDIR={kdir}"), "no such directory")
    one_line_error(buildkit("symvers", "check", "FOO=1"), "unexpected argument 'FOO=1'", "KEY=VALUE")
    one_line_error(buildkit("symvers", "check", f"KERNELDIR={kdir}"), "M=DIR is required")


def test_garbage_module_in_m(tmp_path, kdir):
    m = tmp_path / "m"
    m.mkdir()
    (m / "junk.ko").write_bytes(b"this is not ELF at all" * 10)
    one_line_error(buildkit("symvers", "check", f"M={m}", f"KERNELDIR={kdir}"), "junk.ko: not an ELF file")


def test_extra_symbols_broken_or_unreadable(tmp_path, kdir):
    m = tmp_path / "m"
    m.mkdir()
    (m / "junk.ko").write_bytes(b"x")
    bad = tmp_path / "bad.symvers"
    bad.write_text("0x1\tfoo\tmod\tEXPORT_SYMBOL\t\nnot a line\n")
    one_line_error(buildkit("symvers", "check", f"M={m}", f"KERNELDIR={kdir}", f"KBUILD_EXTRA_SYMBOLS={bad}"),
                   "bad.symvers:2:")
    one_line_error(buildkit("symvers", "show", str(tmp_path)), str(tmp_path))
    one_line_error(buildkit("symvers", "diagnose", str(tmp_path / "missing.log")), "missing.log")


def test_python_without_a_compiler_names_the_package(tmp_path):
    run = subprocess.run([sys.executable, "-m", "buildkit", "python", "3.11.2", "--with-openssl", "--prefix",
                          str(tmp_path / "py")], capture_output=True, text=True, env={"PATH": "/nonexistent"})
    one_line_error(run, "C compiler is not installed", "build-essential")
    assert not (tmp_path / "py").exists()


def test_python_unknown_version_and_bad_prefix(tmp_path):
    one_line_error(buildkit("python", "3.11.99", "--prefix", str(tmp_path / "py"), "--dry-run"),
                   "cpython 3.11.99 is not in the catalog", "nearest known: 3.11")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    one_line_error(buildkit("python", "3.11.2", "--prefix", str(tmp_path / "taken"), "--dry-run"),
                   "exists and was not made by buildkit")
    one_line_error(buildkit("python", "3.11.2", "--with-openssl", str(tmp_path / "nowhere"), "--prefix",
                            str(tmp_path / "py"), "--dry-run"), "no include/openssl/opensslv.h")
