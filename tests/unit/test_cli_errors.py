"""Bad input: one line on stderr naming the file or value and the fix, exit 2, never a traceback."""

from __future__ import annotations

import os
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


@pytest.fixture
def symvers_gz(tmp_path):
    """A gzipped Module.symvers of 6,000 exports (larger than a pipe's buffer when printed)."""
    import gzip

    text = "".join(f"0x{i:08x}\tsym_{i}\tdrivers/x/m{i % 40}\tEXPORT_SYMBOL\t\n" for i in range(6000))
    path = tmp_path / "Module.symvers.gz"
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_a_gzip_cut_short_or_damaged_names_the_file(symvers_gz, tmp_path):
    data = symvers_gz.read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.gz"
    flipped.write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:])  # the CRC32 trailer
    for args in (["symvers", "show", str(cut)], ["symvers", "diff", str(cut), str(symvers_gz)],
                 ["symvers", "who-exports", "sym_1", "--symvers", str(cut)]):
        one_line_error(buildkit(*args), f"{cut}: a gzip file cut short", "copy or download it again")
    one_line_error(buildkit("symvers", "show", str(flipped)), f"{flipped}: a damaged gzip file")


def test_output_errors_are_one_line_and_a_closed_pipe_is_quiet(symvers_gz):
    full = subprocess.run(f"{sys.executable} -m buildkit symvers show {symvers_gz} > /dev/full", shell=True,
                          capture_output=True, text=True)
    one_line_error(full, "cannot write the output: No space left on device")
    proc = subprocess.Popen([sys.executable, "-m", "buildkit", "symvers", "show", str(symvers_gz)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().startswith(b"# ")
    proc.stdout.close()  # `| head -1`: the reader goes away
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err == b"", (proc.returncode, err)  # not 1, "problems found"


@pytest.mark.parametrize(("args", "needles"), [
    (["3.99.1"], ["cpython 3.99.1 is not in the catalog", "the newest in the catalog is 3.14."]),  # not 3.9.25
    (["2.7.18"], ["the oldest buildkit builds is 3.8."]),
    (["latest"], ["cpython version 'latest' is not a version", "e.g. 3.13.5"]),
    ([""], ["VERSION is empty"]),
    (["--with-openssl=1.0.2"], ["the oldest buildkit builds is 1.1.1w", "PEP 644"]),
    (["--with-sqlite=3.7.17"], ["sqlite 3.7.17 is not in the catalog", "the oldest buildkit builds is 3.40"]),
    (["3.11.99"], ["nearest known: 3.11."]),
])
def test_versions_are_suggested_by_version_not_by_spelling(tmp_path, args, needles):
    """Issue 17 item 4: 3.99.1 is not 'near' 3.9.25; 1.0.2 is refused with why; 'latest' and '' are not versions."""
    one_line_error(buildkit("python", *args, "--prefix", str(tmp_path / "py"), "--dry-run"), *needles)


def test_an_option_that_ate_the_version_says_so(tmp_path):
    """Issue 17 item 3: --with-sqlite's value is optional, so it takes the next word; 3.11.2 is CPython's."""
    one_line_error(buildkit("python", "--prefix", str(tmp_path / "py"), "--with-openssl", "--with-sqlite", "3.11.2",
                            "--dry-run"),
                   "--with-sqlite 3.11.2: 3.11.2 was read as sqlite's version", "buildkit python 3.11.2 --with-sqlite",
                   "--with-sqlite=3.11.2")
    one_line_error(buildkit("python", "verify"), "verify is a command of its own", "buildkit verify --help")
    fine = buildkit("python", "--prefix", str(tmp_path / "py"), "--with-sqlite", "3.46.1", "--dry-run")
    assert fine.returncode == 0 and "sqlite: private 3.46.1" in fine.stdout, fine.stderr


def test_the_advice_fits_the_case(tmp_path):
    """Issue 17 item 5: a file where a folder should be is not 'mkdir -p'; /usr/bin is not '/usr/bin/bin/python3';
    a file in the current folder named without ./ is that file, not a missing command."""
    (tmp_path / "afile").write_text("")
    one_line_error(buildkit("python", "--prefix", str(tmp_path / "afile" / "py"), "--dry-run"),
                   f"{tmp_path / 'afile'} is a file, not a directory")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").write_text("#!/bin/sh\n")
    (bindir / "python3").chmod(0o755)
    one_line_error(buildkit("verify", str(bindir)), "is a directory", f"e.g. {bindir / 'python3'}")
    import os
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[2])  # run from tmp_path, this checkout's buildkit all the same
    here = subprocess.run([sys.executable, "-m", "buildkit", "verify", "afile"], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": repo})
    one_line_error(here, "afile: not executable")


@pytest.mark.parametrize("args", [
    ["symvers", "check", "M=/tmp", "--search", "/no/such/dir"],
    ["symvers", "deps", "/tmp", "--config", "/no/such/dir"],
    ["fetch", "cpython@3.11.2", "--source-dir", "/no/such/dir"],
])
def test_a_folder_that_is_not_there_is_not_accepted_silently(args):
    """Issue 17 item 6 (part): --search, --config and fetch's --source-dir named nothing and were ignored."""
    one_line_error(buildkit(*args), "/no/such/dir", "does not exist")


def test_list_takes_its_arguments():
    """Issue 17 item 6 (part): --list 3.11 and --list --json were ignored."""
    import json

    series = buildkit("python", "--list", "3.11")
    assert series.returncode == 0 and series.stdout.startswith("cpython: 3.11.") and "openssl" not in series.stdout
    table = json.loads(buildkit("python", "--list", "--json").stdout)
    assert {"cpython", "openssl", "sqlite", "zlib"} <= set(table) and "3.13.5" in table["cpython"]
    one_line_error(buildkit("python", "--list", "3.7"), "no CPython 3.7 in the catalog", "oldest buildkit builds")


def test_show_warns_of_what_it_cannot_say(tmp_path):
    """Issue 17 item 6 (part): an empty Module.symvers, and --format 3col/4col dropping namespaces and GPL-ness."""
    symvers = tmp_path / "Module.symvers"
    symvers.write_text("0x1\tfoo\tdrivers/x\tEXPORT_SYMBOL_GPL\tNS1\n0x2\tbar\tdrivers/x\tEXPORT_SYMBOL\t\n")
    old = buildkit("symvers", "show", str(symvers), "--format", "4col")
    assert old.returncode == 0 and old.stdout == "0x00000001\tfoo\tdrivers/x\tEXPORT_SYMBOL_GPL\n" \
        "0x00000002\tbar\tdrivers/x\tEXPORT_SYMBOL\n"
    assert "layout 4col has no column for the namespaces of 1 symbols" in old.stderr
    oldest = buildkit("symvers", "show", str(symvers), "--format", "3col")
    assert "the export type (GPL-only etc.) of 1 symbols" in oldest.stderr
    same = buildkit("symvers", "show", str(symvers), "--format", "5.6")
    assert same.returncode == 0 and same.stderr == ""
    empty = tmp_path / "empty.symvers"
    empty.write_text("")
    run = buildkit("symvers", "show", str(empty))
    assert run.returncode == 0 and "no exports in it" in run.stderr
    diff = buildkit("symvers", "diff", str(empty), str(symvers))  # every symbol would read as added
    assert diff.returncode == 0 and f"buildkit: warning: {empty}: no exports in it" in diff.stderr


def test_kbuild_arguments_twice_or_empty_are_said(tmp_path):
    """Issue 18: check M=a M=b checked only b, silently; issue 17 item 6: M= empty was accepted."""
    one_line_error(buildkit("symvers", "check", f"M={tmp_path}", "M=/var"), "M= given twice", "M=/var")
    one_line_error(buildkit("symvers", "check", "M="), "M= is empty", "M=$PWD")


def test_kerneldir_of_the_modules_folder_points_at_its_build_link(tmp_path, kdir):
    """Issue 18: KERNELDIR=/lib/modules/VER (no /build) was told to 'run make modules'."""
    modules = tmp_path / "lib-modules-ver"
    modules.mkdir()
    (modules / "build").symlink_to(kdir)
    m = tmp_path / "m"
    m.mkdir()
    (m / "x.ko").write_bytes(b"\x7fELF")
    one_line_error(buildkit("symvers", "check", f"M={m}", f"KERNELDIR={modules}"),
                   "the modules folder of a kernel, not its headers", f"KERNELDIR={modules}/build")


def test_more_advice_fits_the_case(tmp_path, kdir):
    """Issue 17 item 5, the rest: M= naming a file; doctor's rebuild at buildkit's default versions (not the
    newest SQLite, which no Debian-only host reaches, when SQLite was not the problem)."""
    (tmp_path / "afile").write_text("")
    one_line_error(buildkit("symvers", "check", f"M={tmp_path / 'afile'}", f"KERNELDIR={kdir}"),
                   "afile: a file, not a directory")
    log = tmp_path / "nossl.log"
    log.write_text("The necessary bits to build these optional modules were not found:\n_ssl   _hashlib\n"
                   "Could not build the ssl module!\nPython requires a OpenSSL 1.1.1 or newer\n")
    run = buildkit("doctor", str(log))
    assert run.returncode == 1, run.stderr
    assert "fix: buildkit python X.Y.Z --with-openssl --with-sqlite --prefix /opt/python;" in run.stdout, run.stdout


@pytest.mark.skipif(not os.path.exists("/usr/lib/python3/dist-packages"), reason="a Debian host's own python3")
def test_the_distributions_own_python_gets_its_own_advice():
    """Debian's /usr/bin/python3: no DT_RUNPATH to blame when its _ssl loads the system's libssl (it has none),
    and modules it lacks come as packages (python3-gdbm, python3-tk), not by rebuilding it."""
    run = buildkit("verify", "/usr/bin/python3", "--private-prefix", "/nonexistent")
    hostile = [line for line in run.stdout.splitlines() if "LD_LIBRARY_PATH set  " in line]
    assert hostile and all("DT_RUNPATH" not in line and "as it is without LD_LIBRARY_PATH" in line
                           for line in hostile), run.stdout
    doctor = buildkit("doctor", "/usr/bin/python3")
    optional = [line for line in doctor.stdout.splitlines() if "if you need them" in line]
    assert all("rebuild" not in line and "python3-" in line for line in optional), doctor.stdout


def test_one_name_one_meaning_and_the_old_spellings_still_work(tmp_path):
    """Issue 17 item 11: a kernel release is --kernel-release everywhere (ci render/ci symvers keep --kernel as
    the older spelling; symvers load's --kernel is a kernel to load into); deps takes --json like every other
    command; fetch tries Debian's archive by default as python does (--no-debian), its --debian kept."""
    new = buildkit("ci", "render", "debian:12", "--purpose", "kmod", "--kernel-release", "6.1.0-50-amd64")
    old = buildkit("ci", "render", "debian:12", "--purpose", "kmod", "--kernel", "6.1.0-50-amd64")
    assert new.returncode == 0 and new.stdout == old.stdout and "linux-headers-6.1.0-50-amd64" in new.stdout
    one_line_error(buildkit("symvers", "deps", str(tmp_path), "--json", "--format", "dot"),
                   "--json and --format dot together")
    one_line_error(buildkit("fetch", "cpython@3.13.5", "--debian", "--no-debian"), "--debian and --no-debian")
    assert "--no-debian" in buildkit("fetch", "--help").stdout
