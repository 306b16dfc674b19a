"""Hand-written ELF files shaped like kernel modules, for the unit tests of depmod's resolution (test_deps)
and of the loader's gates (test_load_gates): as much of a ``.ko`` as those read, nothing more."""

from __future__ import annotations

import struct
from pathlib import Path

# ----------------------------------------------------------------------------------- ELF writer

_EHDR = {64: "16sHHIQQQIHHHHHH", 32: "16sHHIIIIIHHHHHH"}
_SHDR = {64: "IIQQQQIIQQ", 32: "IIIIIIIIII"}


def _strtab(names: list[str]) -> tuple[bytes, dict[str, int]]:
    blob, offsets = b"\0", {"": 0}
    for name in names:
        if name not in offsets:
            offsets[name] = len(blob)
            blob += name.encode("latin-1") + b"\0"
    return blob, offsets


def make_ko(
    exports: tuple[str, ...] = (),
    undefined: tuple[str, ...] = (),
    weak: tuple[str, ...] = (),
    versions: tuple[str, ...] | None = None,
    kstrtab: tuple[str, ...] = (),
    bits: int = 64,
    order: str = "<",
    raw_versions: bytes | None = None,
    modinfo: dict[str, str] | None = None,
    this_module: int | None = None,
    machine: int = 62,
    crcs: dict[str, int] | None = None,
) -> bytes:
    """A relocatable ELF file shaped like a kernel module, as much as depmod looks at: ``__crc_<sym>`` for
    each export (``__kstrtab_<sym>`` for ``kstrtab``), undefined global symbols (``weak`` ones weak), and
    a ``__versions`` table (one 64-byte CRC + name record per entry; ``crcs`` gives a symbol's CRC, 0x1234
    otherwise). For the loader: ``modinfo`` (a ``.modinfo`` of key=value strings), ``this_module`` (the size of
    ``.gnu.linkonce.this_module``, sizeof(struct module) of the headers it was built with), ``machine``."""
    text_idx = 1
    locals_ = [("m.c", 4, 0xFFF1)] + [(f"__kstrtab_{n}", 1, text_idx) for n in kstrtab]  # STT_FILE, STT_OBJECT
    globals_ = []
    for name in exports:
        globals_ += [(f"__crc_{name}", 0x10, 0xFFF1), (name, 0x12, text_idx)]
    globals_ += [(name, 0x10, 0) for name in undefined] + [(name, 0x20, 0) for name in weak]
    strtab, offs = _strtab([n for n, _i, _s in locals_ + globals_])
    if bits == 64:
        sym = lambda n, info, shndx: struct.pack(order + "IBBHQQ", offs[n], info, 0, shndx, 0, 0)  # noqa: E731
    else:
        sym = lambda n, info, shndx: struct.pack(order + "IIIBBH", offs[n], 0, 0, info, 0, shndx)  # noqa: E731
    symtab = sym("", 0, 0) + b"".join(sym(n, i, s) for n, i, s in locals_ + globals_)
    crc_size = 8 if bits == 64 else 4
    vers = raw_versions
    if vers is None and versions is not None:
        vers = b"".join(
            struct.pack(order + ("Q" if bits == 64 else "I"), (crcs or {}).get(n, 0x1234))
            + n.encode().ljust(64 - crc_size, b"\0")
            for n in versions
        )
    info_blob = b"".join(f"{k}={v}".encode() + b"\0" for k, v in (modinfo or {}).items())
    extra = ([(".modinfo", 1, info_blob, 0, 0, 0)] if modinfo is not None else []) + \
        ([(".gnu.linkonce.this_module", 1, b"\0" * this_module, 0, 0, 0)] if this_module else [])
    names = ["", ".text", "__versions", ".symtab", ".strtab", ".shstrtab"] + [e[0] for e in extra]
    shstrtab, shoffs = _strtab(names[1:])
    ehsize = 64 if bits == 64 else 52
    body = b""
    sections = []  # (name, type, offset, size, link, info, entsize)
    for name, kind, data, link, info, entsize in (
        (".text", 1, b"\0" * 8, 0, 0, 0),
        ("__versions", 1, vers or b"", 0, 0, 0),
        (".symtab", 2, symtab, 4, 1 + len(locals_), 24 if bits == 64 else 16),
        (".strtab", 3, strtab, 0, 0, 0),
        *extra,
        (".shstrtab", 3, shstrtab, 0, 0, 0),  # last: e_shstrndx names it by its index
    ):
        if name == "__versions" and vers is None:
            sections.append(("__versions", 0, 0, 0, 0, 0, 0))  # a SHT_NULL placeholder keeps indexes stable
            continue
        body += b"\0" * (-(ehsize + len(body)) % 8)
        sections.append((name, kind, ehsize + len(body), len(data), link, info, entsize))
        body += data
    body += b"\0" * (-(ehsize + len(body)) % 8)
    shoff = ehsize + len(body)
    shdrs = struct.pack(order + _SHDR[bits], *([0] * 10))
    for name, kind, off, size, link, info, entsize in sections:
        shdrs += struct.pack(order + _SHDR[bits], shoffs[name] if kind else 0, kind, 0, 0, off, size, link, info, 1,
                             entsize)
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if order == "<" else 2, 1]) + b"\0" * 9
    shentsize = struct.calcsize(_SHDR[bits])
    ehdr = struct.pack(order + _EHDR[bits], ident, 1, machine, 1, 0, 0, shoff, 0, ehsize, 0, 0, shentsize,
                       len(sections) + 1, len(sections))
    return ehdr + body + shdrs


def write_ko(path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make_ko(**kw))
    return path
