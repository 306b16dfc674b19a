"""The ELF and module readers on tiny objects compiled here, including layouts of kernels we hold no
headers for (6.5+ ``.export_symbol``), written with the same assembler directives the kernel uses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from buildkit.kmod.elf import ElfError, ElfFile
from buildkit.kmod.modfile import quick_symbols, read_module

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")

# A 6.5+ object: .export_symbol entries (licence, namespace, then a reference), as <linux/export.h> emits.
EXPORT_6_5 = r"""
int foo(void) { return 1; }
int bar(void) { return 2; }
extern int used_elsewhere(void);
extern int maybe(void) __attribute__((weak));
int call(void) { return used_elsewhere() + (maybe ? maybe() : 0); }
asm(".section .export_symbol,\"a\"\n__export_symbol_foo:\n.asciz \"\"\n.asciz \"\"\n.balign 8\n.quad foo\n.previous\n");
asm(".section .export_symbol,\"a\"\n__export_symbol_bar:\n.asciz \"GPL\"\n.asciz \"MY_NS\"\n.balign 8\n.quad bar\n.previous\n");
static const char modinfo[] __attribute__((section(".modinfo"), used)) =
    "license=GPL\0import_ns=OTHER_NS\0depends=a,b\0vermagic=6.8.0 SMP mod_unload\0";
"""


def compile_c(tmp_path: Path, source: str, name: str = "m") -> Path:
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    obj = tmp_path / f"{name}.o"
    subprocess.run(["gcc", "-c", "-O1", "-fno-pic", "-o", str(obj), str(src)], check=True)
    return obj


@needs_gcc
def test_export_symbol_section_of_6_5_objects(tmp_path):
    info = read_module(str(compile_c(tmp_path, EXPORT_6_5)))
    exports = {e.name: (e.type, e.namespace) for e in info.exports}
    assert exports == {"foo": ("EXPORT_SYMBOL", ""), "bar": ("EXPORT_SYMBOL_GPL", "MY_NS")}
    assert set(info.undefined) == {"used_elsewhere", "maybe"} and info.weak == {"maybe"}
    assert info.license == "GPL" and info.import_ns == ("OTHER_NS",) and info.depends == ("a", "b")
    assert info.vermagic.startswith("6.8.0") and info.name == "m"


@needs_gcc
def test_quick_symbols_agrees_on_undefined(tmp_path):
    obj = str(compile_c(tmp_path, EXPORT_6_5))
    quick = quick_symbols(obj)
    assert sorted(quick.undefined) == sorted(read_module(obj).undefined)
    assert quick.weak == {"maybe"}


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "not an ELF file"),
        (b"hello world, this is not an object file at all......" * 2, "not an ELF file"),
        (b"\x7fELF\x03\x01" + b"\0" * 100, "unknown ELF class 3"),
    ],
)
def test_garbage_is_one_line_error(data, message):
    with pytest.raises(ElfError) as err:
        ElfFile(data, "bad.ko")
    assert str(err.value).startswith(f"bad.ko: {message}")


@needs_gcc
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_object(tmp_path, keep):
    data = compile_c(tmp_path, EXPORT_6_5).read_bytes()
    cut = tmp_path / "cut.o"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ElfError, match="cut.o: truncated ELF file"):
        read_module(str(cut))
