"""Two kernels' exports compared: what was lost, added, or changed its CRC, type, namespace or owner.

Either side is a ``Module.symvers`` in any layout, a ``symvers-VER.gz``, or a TARGET (see
:mod:`buildkit.kmod.target`). ``uses`` narrows the comparison to the symbols some modules import (their
``__versions`` and undefined symbols): the question of a module's maintainer before a kernel update.
The text is kabi.pl's (``KABI: symbol s(mod:m ns:NS) lost``, ``... changed crc from A to B``, ``...
changed type from A to B``) with the same shape for namespace and owner changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from buildkit.kmod.modfile import is_module_file, read_module
from buildkit.kmod.symvers import Symvers, SymversEntry, read_symvers

__all__ = ["AbiDiff", "diff_exports", "read_exports", "imported_symbols"]


class EntryJson(TypedDict):
    symbol: str
    module: str
    type: str
    namespace: str
    crc: str


class ChangeJson(TypedDict):
    symbol: str
    module: str
    old: str
    new: str


class AbiDiffJson(TypedDict):
    """An :class:`AbiDiff` as ``symvers diff --json`` gives it."""

    old: str
    new: str
    scope: int | None
    lost: list[EntryJson]
    added: list[EntryJson]
    crc: list[ChangeJson]
    type: list[ChangeJson]
    namespace: list[ChangeJson]
    owner: list[ChangeJson]


@dataclass
class AbiDiff:
    old: str
    new: str
    lost: list[SymversEntry] = field(default_factory=list)
    added: list[SymversEntry] = field(default_factory=list)
    crc: list[tuple[SymversEntry, SymversEntry]] = field(default_factory=list)
    type: list[tuple[SymversEntry, SymversEntry]] = field(default_factory=list)
    namespace: list[tuple[SymversEntry, SymversEntry]] = field(default_factory=list)
    owner: list[tuple[SymversEntry, SymversEntry]] = field(default_factory=list)
    scope: int | None = None  # symbols in scope with --uses

    @property
    def breaks(self) -> bool:
        """Something a module built against OLD could meet: lost or changed (additions break nothing)."""
        return bool(self.lost or self.crc or self.type or self.namespace or self.owner)

    def lines(self) -> list[str]:
        out = [f"KABI: symbol {_label(e)} lost" for e in self.lost]
        out += [f"KABI: symbol {_label(a)} changed crc from 0x{a.crc:08x} to 0x{b.crc:08x}" for a, b in self.crc]
        out += [f"KABI: symbol {_label(a)} changed type from {a.type} to {b.type}" for a, b in self.type]
        out += [f"KABI: symbol {_label(a)} changed namespace from {a.namespace or '(none)'} to "
                f"{b.namespace or '(none)'}" for a, b in self.namespace]
        out += [f"KABI: symbol {_label(a)} moved from {a.module} to {b.module}" for a, b in self.owner]
        out += [f"KABI: symbol {_label(e)} added" for e in self.added]
        return out

    def to_json(self) -> AbiDiffJson:
        def entry(e: SymversEntry) -> EntryJson:
            return {"symbol": e.symbol, "module": e.module, "type": e.type, "namespace": e.namespace,
                    "crc": f"0x{e.crc:08x}"}

        def change(a: SymversEntry, b: SymversEntry, what: Literal["crc", "type", "namespace", "module"]) -> ChangeJson:
            old: str
            new: str
            old, new = (f"0x{a.crc:08x}", f"0x{b.crc:08x}") if what == "crc" else (getattr(a, what), getattr(b, what))
            return {"symbol": a.symbol, "module": a.module, "old": old, "new": new}

        return {"old": self.old, "new": self.new, "scope": self.scope,
                "lost": [entry(e) for e in self.lost], "added": [entry(e) for e in self.added],
                "crc": [change(a, b, "crc") for a, b in self.crc],
                "type": [change(a, b, "type") for a, b in self.type],
                "namespace": [change(a, b, "namespace") for a, b in self.namespace],
                "owner": [change(a, b, "module") for a, b in self.owner]}


def _label(e: SymversEntry) -> str:
    ns = f" ns:{e.namespace}" if e.namespace else ""
    return f"{e.symbol}(mod:{e.module}{ns})"


def read_exports(spec: str) -> tuple[str, Symvers]:
    """A side of the comparison: (its name, its exports)."""
    if os.path.isfile(spec) and not os.path.basename(spec).startswith("symvers-"):
        return spec, read_symvers(spec)
    from buildkit.kmod.target import read_target

    target = read_target(spec)
    return f"{target.release} ({target.symvers_path})", target.symvers


def imported_symbols(paths: Iterable[str]) -> set[str]:
    """What the modules at ``paths`` (files, or folders searched for modules) take from elsewhere."""
    wanted: set[str] = set()
    for path in paths:
        files = [path]
        if os.path.isdir(path):
            files = sorted(os.path.join(root, f) for root, _dirs, names in os.walk(path) for f in names
                           if is_module_file(f))
            if not files:
                from buildkit.errors import InputError

                raise InputError(f"--uses {path}: no module files (*.ko, *.ko.xz, ...) in it",
                                 fix="name built modules or the folder they are in")
        for f in files:
            info = read_module(f)
            own = {e.name for e in info.exports}
            wanted |= (set(info.undefined) | set(info.versions)) - own
    return wanted


def diff_exports(old_name: str, old: Symvers, new_name: str, new: Symvers,
                 uses: set[str] | None = None) -> AbiDiff:
    a, b = old.by_symbol(), new.by_symbol()
    result = AbiDiff(old_name, new_name)
    names = sorted(a.keys() | b.keys())
    if uses is not None:
        names = [n for n in names if n in uses]
        result.scope = len(uses)
    for name in names:
        x, y = a.get(name), b.get(name)  # one of them at least: the name came from a or b
        if x is not None and y is not None:
            if x.crc != y.crc:
                result.crc.append((x, y))
            if x.type != y.type:
                result.type.append((x, y))
            if x.namespace != y.namespace:
                result.namespace.append((x, y))
            if x.module != y.module:
                result.owner.append((x, y))
        elif x is not None:
            result.lost.append(x)
        elif y is not None:
            result.added.append(y)
    return result
