"""A small read-only ELF reader: sections, their bytes, and the symbol table.

Kernel modules are relocatable ELF files (``ET_REL``), so symbol values are offsets into their section.
Only what module tooling needs is read; every offset is bounds-checked, so a truncated or garbage file
raises :class:`ElfError` naming the file instead of an ``IndexError`` deep inside.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple

from buildkit.errors import InputError

if TYPE_CHECKING:
    from mmap import mmap
    from typing import Union

    #: A whole ELF file: read into memory, or mapped (only the pages looked at are read).
    ElfData = Union[bytes, mmap]

__all__ = ["ElfError", "ElfFile", "Section", "Symbol", "SHN_UNDEF", "SHN_ABS", "STB_WEAK"]

SHN_UNDEF = 0
SHN_ABS = 0xFFF1
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
SHT_SYMTAB = 2
SHT_NOBITS = 8

# (header, section header, symbol) layouts per (class, byte order); field order differs for symbols.
_HEADER = {1: "16xHHIIIIIHHHHHH", 2: "16xHHIQQQIHHHHHH"}
_SHDR = {1: "IIIIIIIIII", 2: "IIQQQQIIQQ"}
_SYM = {1: "IIIBBH", 2: "IBBHQQ"}
_NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"


class ElfError(InputError):
    """The file is not a usable ELF object; the message names the file and what is wrong."""


class Section(NamedTuple):
    name: str
    type: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int


class Symbol(NamedTuple):
    name: str
    value: int
    size: int
    bind: int
    type: int
    shndx: int


class ElfFile:
    """Parse ``data`` (the whole file) once; ``origin`` names it in errors."""

    def __init__(self, data: ElfData, origin: str) -> None:
        self.data = data
        self.origin = origin
        if len(data) < 52 or data[:4] != b"\x7fELF":
            raise ElfError(f"{origin}: not an ELF file", fix="rebuild the module or pass a .ko/.o file")
        self.elfclass = data[4]
        order = {1: "<", 2: ">"}.get(data[5])
        if self.elfclass not in _HEADER or order is None:
            raise ElfError(f"{origin}: unknown ELF class {data[4]} or byte order {data[5]}")
        self.order = order
        self.is64 = self.elfclass == 2
        hdr = self._unpack(order + _HEADER[self.elfclass], 0, "ELF header")
        self.type, self.machine = hdr[0], hdr[1]
        shoff, shentsize, shnum, shstrndx = hdr[5], hdr[10], hdr[11], hdr[12]
        if shnum == 0 or shoff == 0:
            raise ElfError(f"{origin}: ELF file has no section headers", fix="is it stripped or truncated?")
        shfmt = order + _SHDR[self.elfclass]
        if shentsize != struct.calcsize(shfmt):
            raise ElfError(f"{origin}: section header size {shentsize} is not {struct.calcsize(shfmt)}")
        end = shoff + shnum * shentsize
        if end > len(data):
            raise ElfError(
                f"{origin}: truncated ELF file ({len(data)} bytes, section headers end at {end})",
                fix="rebuild the module or copy it again",
            )
        self._shfmt, self._shoff, self._shentsize, self._shnum = shfmt, shoff, shentsize, shnum
        # Section headers are decoded one at a time when asked for (``_header``), or all at once by
        # ``_raw``; name offsets and types are read as columns of 32-bit words when the byte order allows.
        self._raw_cache: list[tuple[int, ...]] | None = None
        self._words = (
            memoryview(data)[shoff:end].cast("I")
            if order == _NATIVE_ORDER and isinstance(data, (bytes, bytearray))
            else None
        )
        if shstrndx >= shnum:
            raise ElfError(f"{origin}: section-name table index {shstrndx} out of range")
        strhdr = self._header(shstrndx)
        self._names = self._slice(strhdr[4], strhdr[5], "section-name table")
        self._by_name_offset_cache: dict[int, int] | None = None
        self._sections: list[Section] | None = None
        self._symtab: list[tuple[int, int, int, int, int]] | None = None

    @property
    def _raw(self) -> list[tuple[int, ...]]:
        """Every section header as the tuple ``struct`` unpacks (made on first use)."""
        if self._raw_cache is None:
            self._raw_cache = list(
                struct.iter_unpack(self._shfmt, self.data[self._shoff : self._shoff + self._shnum * self._shentsize])
            )
        return self._raw_cache

    def _header(self, index: int) -> tuple[int, ...]:
        if self._raw_cache is not None:
            return self._raw_cache[index]
        return struct.unpack_from(self._shfmt, self.data, self._shoff + index * self._shentsize)

    def _column(self, field: int) -> list[int]:
        """Field 0 (``sh_name``) or 1 (``sh_type``) of every section header, read in C."""
        if self._words is not None:
            return self._words[field :: self._shentsize // 4].tolist()
        return list(map(itemgetter(field), self._raw))

    @property
    def _by_name_offset(self) -> dict[int, int]:
        """Name offset -> section index (the last section wins, as a dict comprehension would)."""
        if self._by_name_offset_cache is None:
            self._by_name_offset_cache = dict(zip(self._column(0), range(self._shnum)))
        return self._by_name_offset_cache

    @property
    def sections(self) -> list[Section]:
        """Every section header, decoded and checked against the file size (made on first use)."""
        if self._sections is None:
            self._sections = [self._section(i) for i in range(self._shnum)]
        return self._sections

    def _section(self, index: int) -> Section:
        sh = self._header(index)
        name_end = self._names.find(b"\0", sh[0])
        name = self._names[sh[0] : name_end].decode("latin-1") if name_end >= 0 else ""
        if sh[1] != SHT_NOBITS and sh[4] + sh[5] > len(self.data):
            raise ElfError(
                f"{self.origin}: truncated ELF file (section {name} ends at {sh[4] + sh[5]},"
                f" file has {len(self.data)} bytes)",
                fix="rebuild the module or copy it again",
            )
        return Section(name, sh[1], sh[4], sh[5], sh[6], sh[7], sh[9])

    @property
    def section_count(self) -> int:
        return self._shnum

    def section_header(self, index: int) -> Section:
        """One section header, decoded and checked without decoding the others."""
        if self._sections is not None:
            return self._sections[index]
        return self._section(index)

    def find(self, name: str) -> Section | None:
        """The section called ``name``, found without decoding the others."""
        needle = name.encode("latin-1") + b"\0"
        pos = self._names.find(needle)
        while pos >= 0:
            index = self._by_name_offset.get(pos)
            if index is not None:
                return self._sections[index] if self._sections is not None else self._section(index)
            pos = self._names.find(needle, pos + 1)
        return None

    def _find_type(self, sh_type: int) -> Section | None:
        try:
            index = self._column(1).index(sh_type)  # the first one, found in C
        except ValueError:
            return None
        return self._section(index)

    def _unpack(self, fmt: str, offset: int, what: str) -> tuple[int, ...]:
        try:
            return struct.unpack_from(fmt, self.data, offset)
        except struct.error:
            raise ElfError(f"{self.origin}: truncated ELF file ({what})") from None

    def _slice(self, offset: int, size: int, what: str) -> bytes:
        if offset + size > len(self.data):
            raise ElfError(f"{self.origin}: truncated ELF file ({what})")
        return self.data[offset : offset + size]

    def section_data(self, section: Section | str) -> bytes:
        """The bytes of a section (given or by name); empty for a missing or NOBITS section."""
        if isinstance(section, str):
            found = self.find(section)
            if found is None:
                return b""
            section = found
        if section.type == SHT_NOBITS:
            return b""
        return self.data[section.offset : section.offset + section.size]

    def raw_symbols(self) -> tuple[bytes, list[tuple[int, int, int, int, int]]]:
        """The string table and ``(name_offset, info, shndx, value, size)`` for each symbol.

        This is the fast path for scanning thousands of modules: names are decoded only by the caller,
        and only for the symbols it keeps.
        """
        symtab = self._find_type(SHT_SYMTAB)
        if symtab is None:
            return b"", []
        if symtab.link >= self._shnum:
            raise ElfError(f"{self.origin}: symbol table links to missing section {symtab.link}")
        strtab = self.section_data(self._section(symtab.link))
        fmt = self.order + _SYM[self.elfclass]
        entsize = struct.calcsize(fmt)
        body = self.section_data(symtab)
        if len(body) % entsize:
            raise ElfError(f"{self.origin}: symbol table size {len(body)} is not a multiple of {entsize}")
        if self._symtab is None:
            if self.is64:
                self._symtab = [(n, i, sh, v, sz) for n, i, _o, sh, v, sz in struct.iter_unpack(fmt, body)]
            else:
                self._symtab = [(n, i, sh, v, sz) for n, v, sz, i, _o, sh in struct.iter_unpack(fmt, body)]
        return strtab, self._symtab

    def global_symbols(self) -> tuple[bytes, Sequence[int], Sequence[int]]:
        """The string table, and for each non-local symbol its name offset and ``info | other << 8 |
        shndx << 16``: two flat integer sequences sliced in C, for scanning thousands of modules fast.

        Local symbols come first in an ELF symbol table; the table's ``sh_info`` says where they end.
        """
        symtab = self._find_type(SHT_SYMTAB)
        if symtab is None:
            return b"", (), ()
        if not (self.is64 and self.order == "<" and sys.byteorder == "little"):
            strtab, raw = self.raw_symbols()
            rest = raw[symtab.info :]
            return strtab, [r[0] for r in rest], [r[1] | r[2] << 16 for r in rest]
        if symtab.link >= self._shnum or symtab.size % 24:
            self.raw_symbols()  # raises the precise error
        strtab = self.section_data(self._section(symtab.link))
        start = symtab.offset + 24 * symtab.info
        words = memoryview(self.data)[start : symtab.offset + symtab.size].cast("I")
        return strtab, words[0::6], words[1::6]

    def global_symbol_words(self) -> tuple[bytes, Sequence[int]]:
        """The string table, and for each non-local symbol the first 8 bytes of its ``Elf64_Sym`` as one
        integer, ``name_offset | info << 32 | other << 40 | shndx << 48``: one value per symbol, read in
        C (``other`` is 0 for 32-bit and big-endian files, whose values are built from the decoded table).
        """
        symtab = self._find_type(SHT_SYMTAB)
        if symtab is None:
            return b"", ()
        if not (self.is64 and self.order == "<" and sys.byteorder == "little"):
            strtab, raw = self.raw_symbols()
            return strtab, [r[0] | r[1] << 32 | r[2] << 48 for r in raw[symtab.info :]]
        if symtab.link >= self._shnum or symtab.size % 24:
            self.raw_symbols()  # raises the precise error
        strtab = self.section_data(self._section(symtab.link))
        start = symtab.offset + 24 * symtab.info
        return strtab, memoryview(self.data)[start : symtab.offset + symtab.size].cast("Q")[0::3]

    def symbol_columns(self) -> tuple[bytes, Sequence[int], Sequence[int], Sequence[int]]:
        """The string table and three columns over every symbol (locals too): name offset, ``info |
        other << 8 | shndx << 16`` and the low 32 bits of the value, sliced in C from a 64-bit
        little-endian table (others are decoded)."""
        symtab = self._find_type(SHT_SYMTAB)
        if symtab is None:
            return b"", (), (), ()
        if not (self.is64 and self.order == "<" and sys.byteorder == "little"):
            strtab, raw = self.raw_symbols()
            return (strtab, [r[0] for r in raw], [r[1] | r[2] << 16 for r in raw],
                    [r[3] & 0xFFFFFFFF for r in raw])
        if symtab.link >= self._shnum or symtab.size % 24:
            self.raw_symbols()  # raises the precise error
        strtab = self.section_data(self._section(symtab.link))
        if symtab.offset + symtab.size > len(self.data):
            raise ElfError(f"{self.origin}: truncated ELF file (symbol table)")
        words = memoryview(self.data)[symtab.offset : symtab.offset + symtab.size].cast("I")
        return strtab, words[0::6], words[1::6], words[2::6]

    def symbols(self) -> Iterator[Symbol]:
        """Every symbol but the null one, with its name decoded."""
        strtab, raw = self.raw_symbols()
        for name_off, info, shndx, value, size in raw[1:]:
            yield Symbol(cstring(strtab, name_off, self.origin), value, size, info >> 4, info & 0xF, shndx)

    def uint(self, data: bytes, offset: int, size: int) -> int:
        """An unsigned integer of ``size`` bytes at ``offset`` of ``data``, in the file's byte order."""
        return int.from_bytes(data[offset : offset + size], "little" if self.order == "<" else "big")


def cstring(table: bytes, offset: int, origin: str = "?") -> str:
    """The NUL-terminated string at ``offset`` of ``table``."""
    if offset >= len(table) and offset:
        raise ElfError(f"{origin}: string offset {offset} is outside its table of {len(table)} bytes")
    end = table.find(b"\0", offset)
    return table[offset : end if end >= 0 else None].decode("latin-1")
