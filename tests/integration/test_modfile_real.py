"""The ELF reader against the kernel's own bookkeeping: every export of every one of Debian's .ko files
must match the line modpost wrote for it in the headers' Module.symvers (type, namespace, CRC)."""

from __future__ import annotations

import gzip
import lzma
import shutil
import subprocess
import sys

import pytest

from buildkit.kmod.modfile import export_table, quick_symbols, read_module
from buildkit.kmod.symvers import read_symvers

pytestmark = pytest.mark.integration


def test_every_export_matches_module_symvers(kernel_tree):
    table = read_symvers(str(kernel_tree.build / "Module.symvers"))
    expected = {(e.symbol, e.module): e for e in table.entries if e.module != "vmlinux"}
    seen = 0
    for ko in sorted(kernel_tree.modules.glob("kernel/**/*.ko")):
        module = str(ko.relative_to(kernel_tree.modules / "kernel"))[: -len(".ko")]
        info = read_module(str(ko))
        assert sorted(e.name for e in info.exports) == sorted(quick_symbols(str(ko)).exports)
        # the loader's reader (CRC words found through __crc_ symbols) says the same
        assert export_table(str(ko)) == {e.name: (e.crc, e.type, e.namespace) for e in info.exports}, ko
        for e in info.exports:
            want = expected.pop((e.name, module))
            assert (e.type, e.namespace, e.crc) == (want.type, want.namespace, want.crc), (ko, e, want)
            seen += 1
    assert seen > 10_000
    assert not expected, f"{len(expected)} exports in Module.symvers were not read from any .ko"


@pytest.mark.parametrize("suffix", [".ko.gz", ".ko.xz", ".ko.zst"])
def test_compressed_modules_read_like_plain(kernel_tree, tmp_path, suffix):
    ko = kernel_tree.modules / "kernel" / "drivers" / "net" / "mii.ko"
    data = ko.read_bytes()
    target = tmp_path / ("mii" + suffix)
    if suffix == ".ko.gz":
        target.write_bytes(gzip.compress(data))
    elif suffix == ".ko.xz":
        target.write_bytes(lzma.compress(data, check=lzma.CHECK_CRC32))
    else:
        if shutil.which("zstd") is None:
            pytest.fail("zstd is needed: apt-get install zstd")
        subprocess.run(["zstd", "-q", "-o", str(target), str(ko)], check=True)
    plain, packed = read_module(str(ko)), read_module(str(target))
    assert packed.name == "mii"
    assert (packed.exports, packed.undefined, packed.versions) == (plain.exports, plain.undefined, plain.versions)


def test_cli_on_garbage_and_truncated_module(kernel_tree, tmp_path):
    mdir = tmp_path / "m"
    mdir.mkdir()
    ko = (kernel_tree.modules / "kernel" / "drivers" / "net" / "mii.ko").read_bytes()
    (mdir / "trunc.ko").write_bytes(ko[: len(ko) // 2])
    run = subprocess.run(
        [sys.executable, "-m", "buildkit", "symvers", "check", f"M={mdir}", f"KERNELDIR={kernel_tree.build}"],
        capture_output=True, text=True,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "trunc.ko: truncated ELF file" in run.stderr, run.stderr
