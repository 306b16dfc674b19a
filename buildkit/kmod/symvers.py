"""``Module.symvers`` in every layout kbuild has written, read and written back.

==========  ==================================================  =========================
layout      columns (tab-separated)                             kernels
==========  ==================================================  =========================
``3col``    crc, symbol, module                                 <= 2.6.17
``4col``    crc, symbol, module, export type                    2.6.18 - 5.3
``5.4``     crc, symbol, namespace, module, export type         5.4 - 5.5
``5.6``     crc, symbol, module, export type, namespace         5.6+ (ends in a tab when no
                                                                namespace)
==========  ==================================================  =========================

Gzip files (``/boot/symvers-*.gz``) are read transparently. Writing a file back in its own layout gives
the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from buildkit.errors import InputError
from buildkit.kmod.modfile import EXPORT_TYPES, GPL_ONLY_TYPES, Export

__all__ = ["LAYOUTS", "Symvers", "SymversEntry", "SymversError", "format_symvers", "parse_symvers", "read_symvers"]

LAYOUTS = ("3col", "4col", "5.4", "5.6")
_TYPES = frozenset(EXPORT_TYPES)


class SymversError(InputError):
    """A line of a ``Module.symvers`` file that no kbuild layout explains."""


class SymversEntry(NamedTuple):
    crc: int
    symbol: str
    module: str
    type: str = "EXPORT_SYMBOL"
    namespace: str = ""

    @property
    def gpl_only(self) -> bool:
        return self.type in GPL_ONLY_TYPES

    @property
    def in_vmlinux(self) -> bool:
        return self.module == "vmlinux"


class Symvers:
    """One ``Module.symvers``: its path, layout and entries, the first line for a symbol winning.

    ``symvers check`` needs a few dozen lookups in the kernel's 25,000 lines, inside a 0.2 s budget that
    includes the interpreter's start. So a modern (5.6+) file whose shape checks out (tab, ``0x`` and
    export-type counts, all done in C) is indexed by symbol as raw lines, and a lookup parses just its
    line. When all entries are wanted it is parsed whole, and a line that does not parse is named.
    """

    __slots__ = ("path", "layout", "_text", "_entries", "_index", "_lines", "_seen")

    def __init__(
        self, path: str, layout: str, entries: Sequence[SymversEntry] | None = None, text: str | None = None
    ) -> None:
        self.path = path
        self.layout = layout
        self._text = text
        self._entries = tuple(entries) if entries is not None else None
        self._index: dict[str, SymversEntry] | None = None
        self._lines: dict[str, str] | None = None
        self._seen: dict[str, SymversEntry | None] = {}

    @property
    def entries(self) -> tuple[SymversEntry, ...]:
        if self._entries is None:
            self._entries = tuple(_parse_lines(self._text or "", self.path)[1])
        return self._entries

    def __len__(self) -> int:
        return len(self.entries)

    def _table(self) -> dict[str, SymversEntry]:
        if self._index is None:
            self._index = {e.symbol: e for e in reversed(self.entries)}
        return self._index

    def symbols(self) -> Iterable[str]:
        return self._table().keys()

    def get(self, symbol: str) -> SymversEntry | None:
        text = self._text
        if self._index is not None or text is None:
            return self._table().get(symbol)
        try:
            return self._seen[symbol]
        except KeyError:
            found = self._seen[symbol] = self._get_line(symbol, text)
            return found

    def first_entries(self) -> Iterable[SymversEntry]:
        """The entry of each symbol (its first line), in the order of :meth:`symbols`."""
        return self._table().values()

    def _get_line(self, symbol: str, text: str) -> SymversEntry | None:
        if self._lines is None and len(self._seen) < _FIND_LOOKUPS:
            # A check looks up a few dozen of 25,000 symbols: a search in C beats splitting every line.
            # The line is ``crc \t symbol \t module \t type \t ns``; the first such line wins.
            needle = f"\t{symbol}\t"
            at = text.find(needle)
            while at >= 0 and text.rfind("\t", text.rfind("\n", 0, at) + 1, at) >= 0:
                at = text.find(needle, at + 1)  # the name appeared in another column: look further
            if at < 0:
                return None
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            line = text[start: end if end >= 0 else len(text)]
        else:
            found = self._line_of(symbol, text)
            if found is None:
                return None
            line = found
        crc, sym, mod, typ, ns = line.split("\t")  # the shape was checked in parse_symvers
        try:
            return _entry(int(crc, 16), sym, mod, typ, ns)
        except ValueError:
            return self._table().get(symbol)  # parsing it all names the bad line

    def _line_of(self, symbol: str, text: str) -> str | None:
        if self._lines is None:
            lines = text.splitlines()
            symbols = [line.split("\t", 2)[1] for line in lines]
            self._lines = dict(zip(reversed(symbols), reversed(lines)))  # the first line wins
        return self._lines.get(symbol)

    def by_symbol(self) -> dict[str, SymversEntry]:
        """Symbol -> entry; the first entry wins, as it does for modpost."""
        return dict(self._table())


_entry = SymversEntry
_FIND_LOOKUPS = 48  # lookups answered by searching the text before every line is indexed
_TYPE_FIELDS = tuple(f"\t{t}\t" for t in EXPORT_TYPES)


def _bad(path: str, lineno: int, why: str) -> SymversError:
    return SymversError(
        f"{path}:{lineno}: {why}",
        fix="regenerate it with 'make modules' or fix that line (crc<TAB>symbol<TAB>module<TAB>EXPORT_...)",
    )


def parse_symvers(text: str, path: str = "Module.symvers") -> Symvers:
    """Parse the text of a ``Module.symvers``; the layout is detected from its lines."""
    # Fast path: the shape of a 5.6+ file (every kernel built since 2020): each line has four tabs,
    # starts with 0x and has one export-type field. Counted in C; lines are parsed when looked up.
    lines = text.count("\n") + (not text.endswith("\n"))
    if (
        text
        and "\n\n" not in text
        and text.count("\t") == 4 * lines
        and text.count("\n0x") + text.startswith("0x") == lines
        and sum(map(text.count, _TYPE_FIELDS)) == lines
    ):
        return Symvers(path, "5.6", text=text)
    layout, entries = _parse_lines(text, path)
    return Symvers(path, layout, entries)


def _parse_lines(text: str, path: str) -> tuple[str, list[SymversEntry]]:
    entries: list[SymversEntry] = []
    layout = ""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        n = len(fields)
        if n == 5 and fields[3] in _TYPES:
            kind, (crc, sym, mod, typ, ns) = "5.6", fields
        elif n == 5 and fields[4] in _TYPES:
            kind, (crc, sym, ns, mod, typ) = "5.4", fields
        elif n == 4 and fields[3] in _TYPES:
            kind, (crc, sym, mod, typ), ns = "4col", fields, ""
        elif n == 3:
            kind, (crc, sym, mod), typ, ns = "3col", fields, "EXPORT_SYMBOL", ""
        elif n in (4, 5):
            bad = fields[3] if n == 4 else f"{fields[3]!r} / {fields[4]!r}"
            raise _bad(path, lineno, f"unknown export type {bad}; expected one of {', '.join(EXPORT_TYPES)}")
        else:
            raise _bad(path, lineno, f"{n} tab-separated fields; a Module.symvers line has 3, 4 or 5")
        if layout and kind != layout:
            raise _bad(path, lineno, f"line in the {kind} layout, but the lines before are {layout}")
        layout = kind
        try:
            value = int(crc, 16)
        except ValueError:
            raise _bad(path, lineno, f"CRC {crc!r} is not a hex number") from None
        if not sym or not mod:
            raise _bad(path, lineno, "empty symbol or module name")
        entries.append(SymversEntry(value, sym, mod, typ, ns))
    return layout or "5.6", entries




def gunzip(raw: bytes, path: str) -> bytes:
    """``raw`` itself, or its gzip content; a damaged gzip (cut short, bits flipped) is one error naming ``path``
    (an ``EOFError`` escaping to click would read as Ctrl-C)."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    import gzip
    import zlib

    try:
        return gzip.decompress(raw)
    except EOFError:
        raise InputError(f"{path}: a gzip file cut short ({len(raw)} bytes, no end-of-stream marker)",
                         fix="copy or download it again (gzip -t checks one)") from None
    except (OSError, zlib.error) as e:
        raise InputError(f"{path}: a damaged gzip file ({e})",
                         fix="copy or download it again (gzip -t checks one)") from None


def read_symvers(path: str) -> Symvers:
    """Read a ``Module.symvers`` (or a gzip of one, e.g. ``/boot/symvers-$(uname -r).gz``)."""
    from buildkit._input import read_input

    fix = ("build the module first ('make modules') or fix the path" if not os.path.lexists(path)
           else "check the file and its permissions")
    raw = gunzip(read_input(path, fix), path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        why = f"byte {e.start} is not UTF-8 text"
        raise SymversError(f"{path}: {why}", fix="is this really a Module.symvers?") from None
    return parse_symvers(text, path)


def format_symvers(entries: Iterable[SymversEntry], layout: str = "5.6") -> str:
    """Write entries in ``layout`` exactly as that era's modpost did."""
    if layout not in LAYOUTS:
        raise InputError(f"unknown Module.symvers layout {layout!r}", fix=f"use one of {', '.join(LAYOUTS)}")
    lines = []
    for e in entries:
        crc = f"0x{e.crc:08x}"
        if layout == "5.6":
            lines.append(f"{crc}\t{e.symbol}\t{e.module}\t{e.type}\t{e.namespace}\n")
        elif layout == "5.4":
            lines.append(f"{crc}\t{e.symbol}\t{e.namespace}\t{e.module}\t{e.type}\n")
        elif layout == "4col":
            lines.append(f"{crc}\t{e.symbol}\t{e.module}\t{e.type}\n")
        else:
            lines.append(f"{crc}\t{e.symbol}\t{e.module}\n")
    return "".join(lines)


def entries_for_module(exports: Sequence[Export], module: str) -> list[SymversEntry]:
    """``Module.symvers`` entries for a module's exports, as modpost writes them."""
    return [SymversEntry(e.crc or 0, e.name, module, e.type, e.namespace) for e in exports]

