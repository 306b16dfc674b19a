"""Read what a kernel module declares: exports, undefined symbols, ``.modinfo`` and ``__versions``.

Works on final modules (``.ko`` and ``.ko.gz``/``.ko.xz``/``.ko.zst``, detected by magic, not by name) and on
the ``<mod>.o`` objects kbuild leaves behind when modpost fails and no ``.ko`` is written. Exports are
found the way the kernel lays them out in each era:

* ``__ksymtab*`` sections: in a ``.o`` one section per export (``___ksymtab_gpl+sym``) holding a
  ``__ksymtab_sym`` label; in a ``.ko`` merged sections whose relocations point at ``__kstrtab_sym``;
* ``__kstrtabns_sym`` (5.5+) or the namespace string of a 6.5+ ``.export_symbol`` entry;
* ``__crc_sym`` for the symbol's CRC (an absolute value, or a 32-bit word in its section).
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple  # not dataclasses: it imports inspect, ~7 ms of a ~60 ms `symvers check`

from buildkit.errors import InputError
from buildkit.kmod.elf import SHN_ABS, SHN_UNDEF, STB_WEAK, ElfError, ElfFile, Symbol, cstring

if TYPE_CHECKING:
    from buildkit.kmod.elf import ElfData

__all__ = [
    "Export",
    "ModuleInfo",
    "QuickSymbols",
    "EXPORT_TYPES",
    "GPL_ONLY_TYPES",
    "MODULE_SUFFIXES",
    "is_module_file",
    "module_name",
    "read_module",
    "read_module_bytes",
    "quick_symbols",
    "quick_symbol_names",
    "export_table",
    "parse_modinfo",
    "parse_versions_blob",
]

# Section stem (without leading underscores or the ``+sym`` suffix) -> the EXPORT_* macro that made it.
_SECTION_TYPES = {
    "ksymtab": "EXPORT_SYMBOL",
    "ksymtab_gpl": "EXPORT_SYMBOL_GPL",
    "ksymtab_gpl_future": "EXPORT_SYMBOL_GPL_FUTURE",
    "ksymtab_unused": "EXPORT_UNUSED_SYMBOL",
    "ksymtab_unused_gpl": "EXPORT_UNUSED_SYMBOL_GPL",
}
EXPORT_TYPES = tuple(_SECTION_TYPES.values())
GPL_ONLY_TYPES = frozenset({"EXPORT_SYMBOL_GPL", "EXPORT_UNUSED_SYMBOL_GPL"})
MODULE_SUFFIXES = (".ko", ".ko.gz", ".ko.xz", ".ko.zst", ".ko.bz2")
_STT_SECTION = 3
_SHT_RELA, _SHT_REL = 4, 9


class Export(NamedTuple):
    name: str
    type: str = "EXPORT_SYMBOL"
    namespace: str = ""
    crc: int | None = None

    @property
    def gpl_only(self) -> bool:
        return self.type in GPL_ONLY_TYPES


class ModuleInfo(NamedTuple):
    path: str
    name: str
    is_object: bool
    exports: tuple[Export, ...]
    undefined: tuple[str, ...]
    weak: frozenset[str]
    modinfo: dict[str, tuple[str, ...]]
    versions: dict[str, int]
    machine: int = 0

    def info(self, key: str) -> str | None:
        values = self.modinfo.get(key)
        return values[0] if values else None

    @property
    def license(self) -> str | None:
        return self.info("license")

    @property
    def import_ns(self) -> tuple[str, ...]:
        return self.modinfo.get("import_ns", ())

    @property
    def depends(self) -> tuple[str, ...]:
        value = self.info("depends")
        return tuple(d for d in value.split(",") if d) if value else ()

    @property
    def vermagic(self) -> str | None:
        return self.info("vermagic")


def is_module_file(filename: str) -> bool:
    return filename.endswith(MODULE_SUFFIXES)


def module_name(path: str) -> str:
    """The kernel's name for a module file: basename, no suffix, ``-`` turned into ``_``."""
    base = os.path.basename(path)
    for suffix in MODULE_SUFFIXES + (".o",):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def read_module_bytes(path: str) -> bytes:
    """The uncompressed ELF image of ``path``, whatever compression its magic says it has."""
    try:
        with open(path, "rb", buffering=0) as f:  # one read() of st_size bytes, no buffer copy
            data = f.readall()
    except OSError as e:
        why = e.strerror or str(e)
        raise InputError(f"{path}: cannot read module: {why}", fix="check the path and its permissions") from None
    if data[:4] == b"\x7fELF":  # the common case: no decompressor is even imported
        return data
    try:
        if data[:2] == b"\x1f\x8b":
            import gzip

            return gzip.decompress(data)
        if data[:6] == b"\xfd7zXZ\x00":
            import lzma

            return lzma.decompress(data)
        if data[:4] == b"\x28\xb5\x2f\xfd":
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
        if data[:3] == b"BZh":
            import bz2

            return bz2.decompress(data)
    except (OSError, EOFError, ValueError) as e:  # lzma.LZMAError is an Exception: below
        raise InputError(f"{path}: corrupt compressed module ({e})", fix="copy or rebuild the module") from None
    except Exception as e:  # zstandard.ZstdError, lzma.LZMAError and zlib.error are not OSErrors
        kind = (type(e).__module__, type(e).__name__)
        if kind[1] in ("ZstdError", "LZMAError") or kind == ("zlib", "error"):
            raise InputError(f"{path}: corrupt compressed module ({e})", fix="copy or rebuild the module") from None
        raise
    return data


def _section_type(section_name: str) -> str | None:
    stem = section_name.lstrip("_").split("+", 1)[0]
    return _SECTION_TYPES.get(stem)


def parse_modinfo(blob: bytes) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for entry in blob.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep:
            found.setdefault(key.decode("latin-1"), []).append(value.decode("utf-8", "replace"))
    return {k: tuple(v) for k, v in found.items()}


def _parse_versions(elf: ElfFile) -> dict[str, int]:
    return parse_versions_blob(elf.section_data("__versions"), elf.is64, elf.order)


def parse_versions_blob(blob: bytes, is64: bool, order: str) -> dict[str, int]:
    """``__versions``: ``struct modversion_info { unsigned long crc; char name[64 - sizeof(long)]; }``."""
    crc_size = 8 if is64 else 4
    fmt = f"{order}{'Q' if is64 else 'I'}{64 - crc_size}s"
    usable = len(blob) - len(blob) % 64
    return {name.split(b"\0", 1)[0].decode("latin-1"): crc & 0xFFFFFFFF
            for crc, name in struct.iter_unpack(fmt, blob[:usable]) if name[:1] != b"\0"}


def _relocations(elf: ElfFile, section_index: int) -> Iterable[tuple[int, int, int]]:
    """(offset, symbol index, addend) of every relocation that applies to ``section_index``."""
    for sec in elf.sections:
        if sec.info != section_index or sec.type not in (_SHT_RELA, _SHT_REL):
            continue
        if elf.is64:
            fmt, shift = ("QQq" if sec.type == _SHT_RELA else "QQ"), 32
        else:
            fmt, shift = ("IIi" if sec.type == _SHT_RELA else "II"), 8
        for rel in struct.iter_unpack(elf.order + fmt, elf.section_data(sec)):
            yield rel[0], rel[1] >> shift, rel[2] if len(rel) == 3 else 0


def read_module(path: str, data: ElfData | None = None) -> ModuleInfo:
    """Everything modpost and depmod read from one module file."""
    elf = ElfFile(read_module_bytes(path) if data is None else data, path)
    strtab, raw = elf.raw_symbols()
    sections = elf.sections

    def string_at(shndx: int, offset: int) -> str:
        if shndx >= len(sections):
            raise ElfError(f"{path}: symbol points at missing section {shndx}")
        return cstring(elf.section_data(sections[shndx]), offset, path)

    types: dict[str, str] = {}
    namespaces: dict[str, str] = {}
    crcs: dict[str, int] = {}
    strtab_names: dict[tuple[int, int], str] = {}
    undefined: list[str] = []
    weak: set[str] = set()
    # Only undefined symbols and "__" names (__ksymtab_, __kstrtab_, __crc_, ...) matter: the hundreds
    # of a module's own functions and locals are skipped without decoding their names.
    for name_off, info, shndx, value, _size in raw[1:]:
        if shndx != SHN_UNDEF and strtab[name_off : name_off + 2] != b"__":
            continue
        sym = Symbol(cstring(strtab, name_off, path), value, _size, info >> 4, info & 0xF, shndx)
        name = sym.name
        if sym.shndx == SHN_UNDEF:
            if name:
                undefined.append(name)
                if sym.bind == STB_WEAK:
                    weak.add(name)
        elif name.startswith("__ksymtab_") and sym.shndx < len(sections):
            kind = _section_type(sections[sym.shndx].name)
            if kind:
                types[name[10:]] = kind
        elif name.startswith("__kstrtabns_"):
            namespaces[name[12:]] = string_at(sym.shndx, sym.value)
        elif name.startswith("__kstrtab_"):
            strtab_names[(sym.shndx, sym.value)] = name[10:]
            types.setdefault(name[10:], "")
        elif name.startswith("__crc_"):
            if sym.shndx == SHN_ABS:
                crcs[name[6:]] = sym.value & 0xFFFFFFFF
            elif sym.shndx < len(sections):
                crcs[name[6:]] = elf.uint(elf.section_data(sections[sym.shndx]), sym.value, 4)
        elif name.startswith("__export_symbol_"):  # 6.5+ objects: license string, then namespace
            blob = elf.section_data(sections[sym.shndx]) if sym.shndx < len(sections) else b""
            licence = cstring(blob, sym.value, path)
            ns = cstring(blob, sym.value + len(licence) + 1, path)
            types[name[16:]] = "EXPORT_SYMBOL_GPL" if licence == "GPL" else "EXPORT_SYMBOL"
            namespaces[name[16:]] = ns
    # Final .ko files keep no __ksymtab_<sym> labels: the merged __ksymtab* sections' relocations say
    # which __kstrtab_<sym> string each entry names.
    if any(not t for t in types.values()):
        for index, sec in enumerate(sections):
            kind = _section_type(sec.name)
            if kind is None or sec.name.startswith(".rel"):
                continue
            for _off, symindex, addend in _relocations(elf, index):
                if symindex == 0 or symindex >= len(raw):
                    continue
                _off, _info, target_shndx, target_value, _sz = raw[symindex]
                exported = strtab_names.get((target_shndx, target_value + addend))
                if exported and not types.get(exported):
                    types[exported] = kind
    for name, ns in list(namespaces.items()):  # 5.4 wrote "ns.sym" labels; normalise both eras
        if not ns:
            namespaces[name] = ""
    exports = tuple(
        Export(name, kind or "EXPORT_SYMBOL", namespaces.get(name, ""), crcs.get(name))
        for name, kind in sorted(types.items())
    )
    modinfo = parse_modinfo(elf.section_data(".modinfo"))
    name = modinfo.get("name", (module_name(path),))[0]
    return ModuleInfo(
        path=path,
        name=name,
        is_object=path.endswith(".o"),
        exports=exports,
        undefined=tuple(undefined),
        weak=frozenset(weak),
        modinfo=modinfo,
        versions=_parse_versions(elf),
        machine=elf.machine,
    )


_KSTRTABNS_NAMES = rb"\0__kstrtabns_([^\0]+)"
_CRC_SECTION_TYPES = {"__kcrctab": "EXPORT_SYMBOL", "__kcrctab_gpl": "EXPORT_SYMBOL_GPL"}


def export_table(path: str, data: ElfData | None = None) -> dict[str, tuple[int | None, str, str]]:
    """``{symbol: (crc, type, namespace)}`` of a module's exports, as :func:`read_module` gives them, read
    the way the kernel finds them in a modversioned ``.ko`` (4.x to 6.x): each ``__crc_sym`` is a word in
    ``__kcrctab`` or ``__kcrctab_gpl`` (the section says the type), each ``__kstrtabns_sym`` a string.

    Only those symbols are looked at, found by name in the string table in C; a module laid out any
    other way (no CRCs, absolute CRCs of older kernels, a ``.o``) is read by :func:`read_module`.
    """
    elf = ElfFile(read_module_bytes(path) if data is None else data, path)
    table = _export_table_fast(elf)
    if table is None:
        table = {e.name: (e.crc, e.type, e.namespace) for e in read_module(path, elf.data).exports}
    return table


def _export_table_fast(elf: ElfFile) -> dict[str, tuple[int | None, str, str]] | None:
    if not (elf.is64 and elf.order == "<" and elf.type == 1):
        return None
    strtab, names, infos, values = elf.symbol_columns()
    crc_at = [(m.start() + 1, m.group(1)) for m in re.finditer(_CRC_NAMES, strtab)]
    if not crc_at:
        return None
    index = dict(zip(names, range(len(names))))  # name offset -> symbol index
    blobs: dict[int, tuple[bytes, str | None]] = {}  # section index -> (bytes, export type of a CRC table)

    def section(shndx: int) -> tuple[bytes, str | None] | None:
        found = blobs.get(shndx)
        if found is None:
            if shndx >= elf.section_count:
                return None
            header = elf.section_header(shndx)
            found = blobs[shndx] = (elf.section_data(header), _CRC_SECTION_TYPES.get(header.name))
        return found

    namespaces: dict[bytes, str] = {}
    for m in re.finditer(_KSTRTABNS_NAMES, strtab):
        i = index.get(m.start() + 1)
        where = None if i is None else section(infos[i] >> 16)
        if i is None or where is None:
            return None
        namespaces[m.group(1)] = cstring(where[0], values[i], elf.origin)
    table: dict[str, tuple[int | None, str, str]] = {}
    for offset, name in crc_at:
        i = index.get(offset)
        where = None if i is None else section(infos[i] >> 16)
        if i is None or where is None or where[1] is None:
            return None  # an absolute CRC (kernels before 5.19) or a layout not known here
        word = where[0][values[i] : values[i] + 4]
        if len(word) != 4:
            return None
        table[name.decode("latin-1")] = (int.from_bytes(word, "little"), where[1], namespaces.get(name, ""))
    return table


class QuickSymbols(NamedTuple):
    """The names depmod needs, read without decoding the whole symbol table."""

    exports: list[str]
    undefined: list[str]
    weak: set[str]


_SHNDX_ONE = 1 << 48  # words from ElfFile.global_symbol_words: name | info << 32 | other << 40 | shndx << 48
_NAME_MASK = 0xFFFFFFFF
_BIND_BITS = 0xF0 << 32
_WEAK_WORD = STB_WEAK << 36
# A __versions record: the CRC (8 or 4 bytes), then the name NUL-padded to 64 bytes in all.
# Compiled on first use (re's own cache): `symvers check` of one module should not pay for them at start.
_VERSION_NAMES_64 = rb"(?s).{8}(?=([^\0]*)).{56}"
_VERSION_NAMES_32 = rb"(?s).{4}(?=([^\0]*)).{60}"
_CRC_NAMES = rb"\0__crc_([^\0]+)"
_KSTRTAB_NAMES = rb"\0__kstrtab_([^\0]+)"


def quick_symbols(path: str, data: ElfData | None = None) -> QuickSymbols:
    """Exports and undefined symbols as depmod reads them.

    Exports are the ``__crc_*`` names (``__kstrtab_*`` without MODVERSIONS); undefined symbols are the
    global symbols with no section, plus ``__versions`` entries no symbol named (``module_layout``).
    """
    exports, undefined, weak = quick_symbol_names(path, data)
    return QuickSymbols(
        [name.decode("latin-1") for name in exports],
        [name.decode("latin-1") for name in undefined],
        {name.decode("latin-1") for name in weak},
    )


def quick_symbol_names(path: str, data: ElfData | None = None) -> tuple[list[bytes], list[bytes], set[bytes]]:
    """:func:`quick_symbols` with the names left as bytes (their latin-1 encoding), for callers that read a
    whole tree (4,000 modules for a distribution kernel) and only look names up.

    Symbols are picked in C (``filter`` over one integer per symbol, regular expressions over whole
    sections); only the undefined names are cut out one by one.
    """
    elf = ElfFile(read_module_bytes(path) if data is None else data, path)
    exports, undefined, weak = symtab_names(elf)
    blob = elf.section_data("__versions")
    if blob:
        start = 8 if elf.is64 else 4
        names = None
        if len(blob) % 64 == 0:  # whole records: their names in one pass, unless one is not terminated
            names = re.findall(_VERSION_NAMES_64 if elf.is64 else _VERSION_NAMES_32, blob)
            if names and max(map(len, names)) >= 64 - start:
                names = None
        if names is None:
            vfind = blob.find
            names = [blob[off : vfind(b"\0", off, off + 64 - start)] for off in range(start, len(blob), 64)]
        extra = set(names).difference(undefined)
        extra.discard(b"")
        if extra:
            undefined.extend([name for name in names if name in extra])
    return exports, undefined, weak


def symtab_names(elf: ElfFile) -> tuple[list[bytes], list[bytes], set[bytes]]:
    """Exported names, undefined names in symbol-table order (the order the module loader resolves them
    in), and the weak ones among them, from the symbol table alone."""
    strtab, words = elf.global_symbol_words()
    exports = re.findall(_CRC_NAMES, strtab) if b"\0__crc_" in strtab else []
    if not exports and b"\0__kstrtab_" in strtab:
        exports = re.findall(_KSTRTAB_NAMES, strtab)
    # st_shndx is the top 16 bits of a word: SHN_UNDEF (0) leaves the word below 1 << 48.
    undef = list(filter(_SHNDX_ONE.__gt__, words))
    find = strtab.find
    undefined = [strtab[off : find(b"\0", off)] for off in map(_NAME_MASK.__and__, undef) if off]
    weak: set[bytes] = set()
    if undef and max(undef) >= _WEAK_WORD:  # any symbol of weak (or higher) binding or any st_other bit
        weak = {
            strtab[off : find(b"\0", off)]
            for off, bind in zip(map(_NAME_MASK.__and__, undef), map(_BIND_BITS.__and__, undef))
            if off and bind == _WEAK_WORD
        }
    return exports, undefined, weak
