"""A module file as the loader reads it, and MODULE arguments turned into modules in load order.

Of a plain ``.ko`` only the pages of its headers, ``.modinfo``, ``__versions`` and (when the module will
get that far) its symbol table are touched: the file is mapped, not read, and closed again at once, so a
tree of 4,000 modules is read before any of them is loaded. A compressed module is decompressed.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from buildkit.errors import InputError
from buildkit.kmod.elf import ElfFile
from buildkit.kmod.modfile import (
    export_table,
    is_module_file,
    module_name,
    parse_modinfo,
    parse_versions_blob,
    read_module_bytes,
    symtab_names,
)
from buildkit.kmod.signature import SIG_MARKER, module_signature
from buildkit.kmod.target import KernelTarget

__all__ = ["LazyModule", "SIG_MARKER", "expand_modules", "module_arguments", "read_for_load", "read_export_table",
           "read_modules"]


class LazyModule:
    """A module as the loader reads it: the header, ``.modinfo`` and ``__versions`` at once (the first
    gates need nothing else), the symbol table only for a module that gets as far as its symbols;
    ``.modinfo`` and ``__versions`` are decoded only as far as asked."""

    def __init__(self, path: str, data: bytes | mmap.mmap, layout_crc: int | None = None,
                 symbols: bool = False) -> None:
        """``layout_crc``: the target's ``module_layout`` CRC; a module that passes that gate will reach its
        symbols, so its symbol table is read now, while the file is open (None: read it when asked).
        ``symbols``: read it now whatever the gates say (every gate is walked: ``--every-problem``)."""
        self.path = path
        elf = ElfFile(data, path)  # not kept: a tree of 4,000 modules is read before any is loaded
        self.machine = elf.machine
        self.type = elf.type
        self.signed = data[-len(SIG_MARKER):] == SIG_MARKER
        self.signature = module_signature(data) if self.signed else b""  # the PKCS#7 message: who signed it
        self._modinfo_blob = elf.section_data(".modinfo")
        self.is64, self.order = elf.is64, elf.order
        self.versions_blob = elf.section_data("__versions")
        this_module = elf.find(".gnu.linkonce.this_module")
        self.this_module_size = this_module.size if this_module is not None else None  # sizeof(struct module)
        self._modinfo: dict[str, tuple[str, ...]] | None = None
        self._versions: dict[str, int] | None = None
        self.name = self.info("name") or module_name(path)
        self._names: tuple[list[bytes], list[bytes], set[bytes]] | None = None
        self._undefined: tuple[str, ...] | None = None
        self._weak: frozenset[str] | None = None
        self._exports: tuple[str, ...] | None = None
        if symbols or (layout_crc is not None and self.version_of("module_layout") == layout_crc):
            self._names = symtab_names(elf)

    @property
    def modinfo(self) -> dict[str, tuple[str, ...]]:
        if self._modinfo is None:
            self._modinfo = parse_modinfo(self._modinfo_blob)
        return self._modinfo

    @property
    def versions(self) -> dict[str, int]:
        if self._versions is None:
            self._versions = parse_versions_blob(self.versions_blob, self.is64, self.order)
        return self._versions

    def version_of(self, symbol: str) -> int | None:
        """One ``__versions`` CRC without decoding the others (the module_layout gate needs only it)."""
        if self._versions is not None:
            return self._versions.get(symbol)
        size = 8 if self.is64 else 4
        needle = symbol.encode() + b"\0"
        at = self.versions_blob.find(needle)
        while at >= 0:
            if at % 64 == size:
                return int.from_bytes(self.versions_blob[at - size:at], "little" if self.order == "<" else "big")
            at = self.versions_blob.find(needle, at + 1)
        return None

    def info(self, key: str) -> str | None:
        """The first ``key=`` of ``.modinfo``, found without decoding the rest (hundreds of aliases)."""
        if self._modinfo is not None:
            values = self._modinfo.get(key)
            return values[0] if values else None
        blob, needle = self._modinfo_blob, key.encode() + b"="
        at = 0 if blob.startswith(needle) else blob.find(b"\0" + needle) + 1
        if at == 0 and not blob.startswith(needle):
            return None
        start = at + len(needle)
        end = blob.find(b"\0", start)
        return blob[start: end if end >= 0 else len(blob)].decode("utf-8", "replace")

    def info_all(self, key: str) -> tuple[str, ...]:
        """Every ``key=`` of ``.modinfo`` (import_ns may repeat), without decoding the rest."""
        if self._modinfo is not None:
            return self._modinfo.get(key, ())
        needle = b"\0" + key.encode() + b"="
        blob = b"\0" + self._modinfo_blob
        if needle not in blob:
            return ()
        return tuple(v.decode("utf-8", "replace") for v in re.findall(re.escape(needle) + rb"([^\0]*)", blob))

    @property
    def license(self) -> str | None:
        return self.info("license")

    @property
    def vermagic(self) -> str | None:
        return self.info("vermagic")

    @property
    def import_ns(self) -> tuple[str, ...]:
        return self.info_all("import_ns")

    @property
    def depends(self) -> tuple[str, ...]:
        return tuple(d.replace("-", "_") for d in (self.info("depends") or "").split(",") if d)

    def _symtab(self) -> tuple[list[bytes], list[bytes], set[bytes]]:
        if self._names is None:
            with _mapped(self.path) as data:
                self._names = symtab_names(ElfFile(data, self.path))
        return self._names

    @property
    def undefined_raw(self) -> list[bytes]:
        """Undefined names as bytes (latin-1), in symbol-table order, as the loader meets them."""
        return self._symtab()[1]

    @property
    def undefined(self) -> tuple[str, ...]:
        if self._undefined is None:
            self._undefined = tuple(n.decode("latin-1") for n in self._symtab()[1])
        return self._undefined

    @property
    def weak(self) -> frozenset[str]:
        if self._weak is None:
            self._weak = frozenset(n.decode("latin-1") for n in self._symtab()[2])
        return self._weak

    @property
    def export_names(self) -> tuple[str, ...]:
        if self._exports is None:
            self._exports = tuple(n.decode("latin-1") for n in self._symtab()[0])
        return self._exports


@contextmanager
def _mapped(path: str) -> Iterator[bytes | mmap.mmap]:
    """A plain module file mapped, not read (only the pages looked at are touched); a compressed one
    decompressed; an unreadable one named by read_module_bytes."""
    try:
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if f.read(4) == b"\x7fELF" else None
    except (OSError, ValueError):
        mapped = None  # unreadable or empty
    if mapped is None:
        yield read_module_bytes(path)
        return
    with mapped:
        yield mapped


def read_export_table(path: str) -> dict[str, tuple[int | None, str, str]]:
    with _mapped(path) as data:
        return export_table(path, data)


def read_for_load(path: str, layout_crc: int | None = None, symbols: bool = False) -> LazyModule:
    """The header, ``.modinfo`` and ``__versions`` of a module: all the first gates need (and its symbol
    table when it matches ``layout_crc`` or ``symbols`` is true: see LazyModule)."""
    with _mapped(path) as data:
        return LazyModule(path, data, layout_crc, symbols)


def module_arguments(args: Sequence[str]) -> list[str | list[str]]:
    """MODULE arguments checked and listed, nothing read yet: a file as it is, a folder as the sorted list
    of the module files under it."""
    found: list[str | list[str]] = []
    for arg in args:
        if not os.path.isdir(arg):
            if not os.path.isfile(arg):
                raise InputError(f"{arg}: no such module file or folder", fix="name .ko files or folders of them")
            found.append(arg)
            continue
        files = sorted(os.path.join(root, f) for root, dirs, names in os.walk(arg)
                       for f in names if is_module_file(f) and not root.endswith(("/build", "/source")))
        if not files:
            raise InputError(f"{arg}: no module files (*.ko, *.ko.xz, ...) in it",
                             fix="name built modules or their folder")
        found.append(files)
    return found


def expand_modules(args: Sequence[str], target: KernelTarget | None = None) -> list[str | LazyModule]:
    """MODULE arguments as modules to load, in order: :func:`read_modules` of :func:`module_arguments`."""
    return read_modules(module_arguments(args), target)


def read_modules(found: Sequence[str | list[str]], target: KernelTarget | None = None, *,
                 every_symbol: bool = False) -> list[str | LazyModule]:
    """What :func:`module_arguments` listed, as modules to load: a file stays where it is; a folder gives its
    modules in dependency order (providers first, as modprobe would load them; otherwise in the order of
    their paths), read for loading into ``target`` when given. ``every_symbol``: each module's symbol table
    is read with the rest (every symbol will be looked at, whatever the first gates say)."""
    layout = target.module_layout_crc if target is not None and target.enabled("CONFIG_MODVERSIONS") else None
    paths: list[str | LazyModule] = []
    for item in found:
        if isinstance(item, str):  # read as a folder's modules are: with the target's layout, so its symbol
            paths.append(read_for_load(item, layout, every_symbol) if target is not None else item)
        else:  # (its table waits until needed)
            paths.extend(_dependency_order(item, layout, every_symbol))
    return paths


def _dependency_order(found: list[str], layout_crc: int | None, symbols: bool) -> list[LazyModule]:
    """Depth-first over the ``depends=`` modpost wrote into each module (what depmod derives from the
    symbols): providers before the modules that need them; a cycle is broken where it is met."""
    modules = [read_for_load(path, layout_crc, symbols) for path in found]
    index = {m.name: i for i, m in enumerate(modules)}
    deps = [[index[n] for n in m.depends if n in index] for m in modules]
    order: list[int] = []
    state = [0] * len(found)  # 0 new, 1 on the stack, 2 placed
    for first in range(len(found)):
        if state[first]:
            continue
        state[first] = 1
        stack = [(first, iter(deps[first]))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if state[child] == 0:
                    state[child] = 1
                    stack.append((child, iter(deps[child])))
                    break
            else:
                stack.pop()
                state[node] = 2
                order.append(node)
    return [modules[i] for i in order]
