"""Resolve an external module build the way modpost does, and say how to fix what it would reject.

Stages, as in kbuild's ``scripts/mod/modpost.c`` (6.x):

1. exports: the kernel's ``Module.symvers``, then each ``KBUILD_EXTRA_SYMBOLS`` file, then the modules of
   ``M=`` themselves (an export of a ``M=`` module that vmlinux, or the same module, already exports is
   "exported twice");
2. for each module, each undefined, non-weak symbol: undefined, namespace not imported, GPL-only symbol in
   a GPL-incompatible module; a ``__versions`` CRC that disagrees with the exporter's; no ``MODULE_LICENSE``;
3. for each problem a fix, found by :class:`FixFinder`, which searches only when something is unresolved.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from buildkit.errors import InputError
from buildkit.kmod.kernel import (
    GPL_COMPATIBLE,
    at_headers,
    import_ns_line,
    kernel_release_string,
    kernel_version_from_tree,
    module_tree,
)
from buildkit.kmod.modfile import ModuleInfo, is_module_file, module_name, quick_symbols, read_module
from buildkit.kmod.symvers import Symvers, read_symvers

__all__ = [
    "GPL_COMPATIBLE",
    "CheckOptions",
    "FixFinder",
    "ModuleReport",
    "Problem",
    "check",
    "default_kerneldir",
    "built_modules",
]

# Undefined in every module object until modpost's generated <mod>.mod.c is linked in.
_IGNORED = frozenset({"__this_module", "_GLOBAL_OFFSET_TABLE_", ".TOC."})
_EXPORT_IN_SOURCE = rb"(?m)^\s*EXPORT_(?:UNUSED_)?SYMBOL(?:_NS)?(_GPL(?:_FUTURE)?)?(?:_NS)?(?:_GPL)?\s*\(\s*(\w+)"
_SKIP_DIRS = frozenset({".git", ".svn", ".hg", "build", "source", "__pycache__", ".tmp_versions"})


class Problem(NamedTuple):
    kind: str  # undefined | gpl-only | namespace | license | duplicate | crc | module_layout | vermagic
    symbol: str | None
    message: str  # what modpost (or the module loader, for crc) says
    fix: str

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "symbol": self.symbol, "message": self.message, "fix": self.fix}


class ModuleReport(NamedTuple):
    name: str
    path: str
    depends: tuple[str, ...]
    problems: tuple[Problem, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "path": self.path,
            "depends": list(self.depends),
            "problems": [p.to_json() for p in self.problems],
        }


class CheckOptions(NamedTuple):
    m_dir: str
    kerneldir: str
    extra_symbols: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    system_map: str | None = None
    default_search: bool = True


class _Export(NamedTuple):
    """An export as modpost's symbol table holds it: from a Module.symvers line or a module of M=."""

    symbol: str
    module: str  # 'vmlinux', an in-tree path such as 'drivers/net/mii', or a path of M=
    type: str
    namespace: str
    crc: int | None
    origin: str  # the file it was read from

    @property
    def gpl_only(self) -> bool:
        return self.type in ("EXPORT_SYMBOL_GPL", "EXPORT_UNUSED_SYMBOL_GPL")


class _ExportTable:
    """modpost's symbol table: Module.symvers files first (the first line for a symbol wins), then the
    exports of the modules being built. Entries are made only for the symbols looked up."""

    def __init__(self, tables: list[Symvers]) -> None:
        self.tables = tables
        self.added: dict[str, _Export] = {}

    def get(self, symbol: str) -> _Export | None:
        for table in self.tables:
            e = table.get(symbol)
            if e is not None:
                return _Export(e.symbol, e.module, e.type, e.namespace, e.crc, table.path)
        return self.added.get(symbol)

    def __getitem__(self, symbol: str) -> _Export:
        """The export of a symbol known to be exported (a name :meth:`names` gave)."""
        found = self.get(symbol)
        if found is None:
            raise KeyError(symbol)
        return found

    def add(self, export: _Export) -> None:
        self.added.setdefault(export.symbol, export)

    def names(self) -> list[str]:
        found = set(self.added)
        for table in self.tables:
            found.update(table.symbols())
        return sorted(found)


def default_kerneldir() -> str:
    return f"/lib/modules/{os.uname().release}/build"


def built_modules(m_dir: str) -> list[str]:
    """The module files of a build directory, in ``modules.order`` order.

    A ``.ko`` where one was linked; where modpost failed there is none, and the ``<mod>.o`` that
    ``<mod>.mod`` describes stands in for it.
    """
    if not os.path.isdir(m_dir):
        what = "a file, not a directory" if os.path.exists(m_dir) else "no such directory"
        raise InputError(f"M={m_dir}: {what}", fix="pass the directory you built with 'make M=...'")
    listed: list[str] = []
    order = os.path.join(m_dir, "modules.order")
    if os.path.isfile(order):
        with open(order, encoding="utf-8", errors="replace") as f:
            for line in f:
                entry = line.strip()
                if entry:
                    entry = entry[len("kernel/") :] if entry.startswith("kernel/") else entry
                    listed.append(entry if os.path.isabs(entry) else os.path.join(m_dir, entry))
    else:
        for root, dirs, files in os.walk(m_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if is_module_file(name) or name.endswith(".mod"):
                    listed.append(os.path.join(root, name))
    found: list[str] = []
    seen: set[str] = set()
    for entry in listed:
        stem = re.sub(r"\.(ko(\.(gz|xz|zst|bz2))?|o|mod)$", "", entry)
        if stem in seen:
            continue
        seen.add(stem)
        for candidate in (stem + ".ko", stem + ".ko.xz", stem + ".ko.zst", stem + ".ko.gz", stem + ".o"):
            if os.path.isfile(candidate):
                found.append(candidate)
                break
    if not found:
        raise InputError(
            f"M={m_dir}: no modules built there (no .ko, and no .o named by modules.order or a .mod file)",
            fix=f"build first: make -C <KERNELDIR> M={m_dir} modules",
        )
    return found


def _load_kernel_symvers(kerneldir: str) -> Symvers:
    if not os.path.isdir(kerneldir):
        raise InputError(
            f"KERNELDIR={kerneldir}: {'a file, not a directory' if os.path.exists(kerneldir) else 'no such directory'}",
            fix="install the kernel headers (Debian: linux-headers-<release>, RHEL: kernel-devel-<release>)"
            " or pass KERNELDIR=<headers dir>",
        )
    path = os.path.join(kerneldir, "Module.symvers")
    build = os.path.join(kerneldir, "build")
    if not os.path.isfile(path) and os.path.isfile(os.path.join(build, "Module.symvers")):
        # /lib/modules/VER given for /lib/modules/VER/build (the headers' link, what kbuild's -C gets)
        raise InputError(f"KERNELDIR={kerneldir}: the modules folder of a kernel, not its headers",
                         fix=f"pass KERNELDIR={build}")
    if not os.path.isfile(path):
        raise InputError(
            f"{path}: missing, so no kernel export is known",
            fix="use a distro headers package (it ships Module.symvers) or run 'make modules' in that tree",
        )
    return read_symvers(path)


def _license_ok(info: ModuleInfo) -> bool:
    return info.license in GPL_COMPATIBLE


def check(opts: CheckOptions) -> list[ModuleReport]:
    """Resolve every module of ``opts.m_dir``; one report per module, problems with their fixes."""
    module_paths = built_modules(opts.m_dir)
    kernel = _load_kernel_symvers(opts.kerneldir)
    release = kernel_version_from_tree(opts.kerneldir)
    exports = _ExportTable([kernel] + [read_symvers(p) for p in opts.extra_symbols])
    modules = [read_module(p) for p in module_paths]
    problems: dict[str, list[Problem]] = {m.path: [] for m in modules}
    for mod in modules:
        stem = _stem(mod.path)
        for e in mod.exports:
            previous = exports.get(e.name)
            if previous is not None and (previous.module == "vmlinux" or previous.module == stem):
                where = previous.module + ("" if previous.module == "vmlinux" else ".ko")
                problems[mod.path].append(
                    Problem(
                        "duplicate",
                        e.name,
                        f"{stem}: '{e.name}' exported twice. Previous export was in {where}",
                        f"rename {e.name} in {mod.name} (or make it static): {where} already exports it,"
                        " and a symbol can have one exporter",
                    )
                )
                continue
            exports.add(_Export(e.name, stem, e.type, e.namespace, e.crc, mod.path))
    finder = FixFinder(opts, release, exports)
    reports = []
    for mod in modules:
        found = problems[mod.path]
        depends: list[str] = []
        stem = _stem(mod.path)
        basename = os.path.basename(stem)
        for sym in mod.undefined:
            if sym in _IGNORED or sym.startswith("__crc_"):
                continue
            exp = exports.get(sym)
            if exp is None:
                if sym not in mod.weak:
                    found.append(
                        Problem("undefined", sym, f'"{sym}" [{stem}.ko] undefined!', finder.undefined_fix(sym))
                    )
                continue
            if exp.module != "vmlinux":
                dep = module_name(exp.module)
                if dep != mod.name and dep not in depends:
                    depends.append(dep)
            if exp.namespace and exp.namespace not in mod.import_ns:
                line = import_ns_line(exp.namespace, release)
                found.append(
                    Problem(
                        "namespace",
                        sym,
                        f"module {basename} uses symbol {sym} from namespace {exp.namespace}, but does not import it.",
                        f"add {line} to {mod.name}'s source (next to MODULE_LICENSE)",
                    )
                )
            if exp.gpl_only and not _license_ok(mod):
                allowed = ", ".join(f'"{x}"' for x in GPL_COMPATIBLE)
                says = f'"{mod.license}"' if mod.license else "nothing"
                found.append(
                    Problem(
                        "gpl-only",
                        sym,
                        f"GPL-incompatible module {basename}.ko uses GPL-only symbol '{sym}'",
                        f"{sym} is {exp.type} (from {_owner(exp)}): only modules whose MODULE_LICENSE is one of"
                        f" {allowed} may use it; {mod.name} says {says}",
                    )
                )
            want = mod.versions.get(sym)
            if want is not None and exp.crc is not None and want != exp.crc:
                found.append(
                    Problem(
                        "crc",
                        sym,
                        f"{mod.name}: disagrees about version of symbol {sym}",
                        f"{mod.path} was built against another {sym} (CRC 0x{want:08x}, {exp.origin} has"
                        f" 0x{exp.crc:08x}): rebuild it against {opts.kerneldir} and the current extra symbols",
                    )
                )
        found += _abi_problems(mod, exports, opts.kerneldir)
        if mod.license is None:
            found.append(
                Problem(
                    "license",
                    None,
                    f"missing MODULE_LICENSE() in {stem}.o",
                    f'add MODULE_LICENSE("GPL"); (or another licence string) to {mod.name}\'s source',
                )
            )
        reports.append(ModuleReport(mod.name, mod.path, tuple(depends), tuple(found)))
    return reports


def _abi_problems(mod: ModuleInfo, exports: _ExportTable, kerneldir: str) -> list[Problem]:
    """What the loader checks before any symbol and modpost never does: a module built for other headers.
    ``module_layout``'s CRC (kernels up to 6.2 export it) and the release in ``vermagic`` against KERNELDIR's."""
    found = []
    want = mod.versions.get("module_layout")
    layout = exports.get("module_layout")
    if want is not None and layout is not None and layout.crc is not None and want != layout.crc:
        found.append(Problem(
            "module_layout", "module_layout", f"{mod.name}: disagrees about version of symbol module_layout",
            f"{mod.path} was built for another kernel ABI (module_layout 0x{want:08x}, {kerneldir} has"
            f" 0x{layout.crc:08x}): the kernel refuses it (Invalid module format); rebuild it with"
            f" make -C {kerneldir} M=..."))
    magic = (mod.vermagic or "").split()
    release = kernel_release_string(kerneldir)
    if magic and release and magic[0] != release:
        found.append(Problem(
            "vermagic", None, f"{mod.name}: version magic '{' '.join(magic)}' should be '{release} ...'",
            f"{mod.path} was built against {magic[0]}, not {release}: rebuild it with make -C {kerneldir} M=..."))
    return found


def _stem(path: str) -> str:
    return re.sub(r"\.(ko(\.(gz|xz|zst|bz2))?|o)$", "", path)


def _owner(exp: _Export) -> str:
    return "vmlinux" if exp.module == "vmlinux" else f"{exp.module}.ko"


class _Found(NamedTuple):
    """Where an export that kbuild did not see was found."""

    how: str  # symvers | module | source
    path: str
    module: str = ""
    line: int = 0


class FixFinder:
    """Finds who exports a symbol modpost could not resolve. Searches once, on first need."""

    def __init__(self, opts: CheckOptions, release: tuple[int, int] | None, exports: _ExportTable) -> None:
        self.opts = opts
        self.release = release
        self.exports = exports
        self._index: dict[str, _Found] | None = None
        self._system_map: dict[str, str] | None = None
        self._placeholder = ""  # a placeholder System.map met (Debian's), said when a symbol is not found
        self._searched: list[str] = []

    def roots(self) -> list[str]:
        roots = [os.path.abspath(r) for r in self.opts.search]
        if self.opts.default_search:
            parent = os.path.dirname(os.path.abspath(self.opts.m_dir))
            roots.append(parent)
            tree = module_tree(self.opts.kerneldir)
            if tree:
                roots.append(tree)
        return roots

    def _scan(self) -> dict[str, _Found]:
        if self._index is not None:
            return self._index
        index: dict[str, _Found] = {}
        kernel_tree = module_tree(self.opts.kerneldir)
        own = os.path.abspath(self.opts.m_dir)
        for root in self.roots():
            self._searched.append(root)
            deep = root == kernel_tree or root in self.opts.search
            for dirpath, dirs, files in os.walk(root):
                depth = dirpath[len(root) :].count(os.sep)
                dirs[:] = sorted(
                    d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS and (deep or depth < 3)
                )
                if os.path.abspath(dirpath) == own:
                    dirs[:] = []
                    continue
                self._scan_dir(dirpath, files, index)
        self._index = index
        return index

    def _scan_dir(self, dirpath: str, files: list[str], index: dict[str, _Found]) -> None:
        names = set(files)
        if "Module.symvers" in names:
            path = os.path.join(dirpath, "Module.symvers")
            try:
                table = read_symvers(path)
            except InputError:
                table = None
            for e in table.entries if table else ():
                if e.module != "vmlinux":
                    index.setdefault(e.symbol, _Found("symvers", path, e.module))
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            if is_module_file(name) or (name.endswith(".o") and name[:-2] + ".mod" in names):
                try:
                    syms = quick_symbols(path)
                except InputError:
                    continue
                for sym in syms.exports:
                    index.setdefault(sym, _Found("module", path, module_name(name)))
            elif name.endswith(".c"):
                try:
                    with open(path, "rb") as f:
                        text = f.read(4 << 20)
                except OSError:
                    continue
                if b"EXPORT_" not in text:
                    continue
                for m in re.finditer(_EXPORT_IN_SOURCE, text):
                    sym = m[2].decode("latin-1")
                    line = text.count(b"\n", 0, m.start()) + 1
                    index.setdefault(sym, _Found("source", path, line=line))

    def system_map(self) -> dict[str, str]:
        """Symbol -> type letter from System.map (given; next to KERNELDIR; /boot of its root; the -dbg
        package's; /proc/kallsyms when KERNELDIR is the running kernel's). Debian's /boot/System.map-VER is a
        one-line placeholder: remembered (``self._placeholder``) and passed over."""
        if self._system_map is not None:
            return self._system_map
        table: dict[str, str] = {}
        for path in self._system_map_candidates():
            try:
                with open(path, encoding="latin-1") as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) >= 3 and len(parts[1]) == 1:
                            table.setdefault(parts[2], parts[1])
            except OSError as e:
                if self.opts.system_map:
                    why = e.strerror or str(e)
                    raise InputError(f"{path}: cannot read System.map: {why}", fix="check --system-map") from None
                continue
            placeholder = len(table) == 1 and "The" in table
            if table and not placeholder:
                break
            if self.opts.system_map:
                what = ("Debian's placeholder, not the real map" if placeholder
                        else "no 'ADDRESS TYPE SYMBOL' line in it")
                raise InputError(f"--system-map {path}: {what}",
                                 fix="pass the kernel's real System.map (Debian: linux-image-VER-dbg's "
                                     "/usr/lib/debug/boot/System.map-VER; the running kernel: /proc/kallsyms)")
            if placeholder:
                self._placeholder = path
            table = {}
        self._system_map = table
        return table

    def _system_map_candidates(self) -> list[str]:
        if self.opts.system_map:
            return [self.opts.system_map]
        kdir = self.opts.kerneldir.rstrip("/")
        place = at_headers(kdir)
        if place is None or place.modules_dir is None:  # headers of no installed kernel: their own map only
            return [p for p in [os.path.join(kdir, "System.map")] if os.path.isfile(p)]
        return place.system_map_candidates()

    def undefined_fix(self, symbol: str) -> str:
        kdir = self.opts.kerneldir
        m_dir = self.opts.m_dir
        found = self._scan().get(symbol)
        if found is not None:
            where = os.path.dirname(found.path)
            extra = " ".join(list(self.opts.extra_symbols) + [os.path.join(where, "Module.symvers")])
            quoted = f'"{extra}"' if " " in extra else extra
            make = f"make -C {kdir} M={m_dir} KBUILD_EXTRA_SYMBOLS={quoted} modules"
            if found.how == "symvers":
                return f"exported by {found.module} ({found.path}): {make}"
            tree = module_tree(kdir)
            if tree and _under(found.path, tree):
                rel = os.path.relpath(found.path, tree)
                return (
                    f"exported by in-tree module {found.module} ({rel}), which {kdir}/Module.symvers does not"
                    f" list: this kernel was not built with it; use headers of a kernel that builds {found.module}"
                    " (enable its CONFIG_ option) or do not depend on it"
                )
            if found.how == "module":
                return (
                    f"exported by {found.path}, but {where} has no Module.symvers: build {where} first"
                    f" (make -C {kdir} M={where} modules), then {make}"
                )
            return (
                f"exported in {found.path}:{found.line}, which is not built: build {where} first"
                f" (make -C {kdir} M={where} modules), then {make}"
            )
        kind = self.system_map().get(symbol)
        if kind is not None:
            return (
                f"defined in the kernel (System.map: {kind} {symbol}) but not exported to modules: no build"
                " setting fixes this; use an exported interface instead"
            )
        near = self.near_misses(symbol)
        if near:
            if len(near) == 1:
                return f"did you mean `{near[0]}`? (exported by {_owner(self.exports[near[0]])})"
            listed = ", ".join(f"`{n}` ({_owner(self.exports[n])})" for n in near[:-1])
            return f"did you mean {listed} or `{near[-1]}` ({_owner(self.exports[near[-1]])})?"
        searched = ", ".join(self._searched) or "nowhere"
        if self._placeholder:
            return (
                f"no exporter found in {kdir}/Module.symvers, KBUILD_EXTRA_SYMBOLS or the search roots ({searched});"
                f" {self._placeholder} is Debian's placeholder, so whether the kernel defines it without exporting"
                " it is unknown: install linux-image-<release>-dbg (its System.map is found) or pass --system-map,"
                " else check the spelling"
            )
        return (
            f"no exporter found in {kdir}/Module.symvers, KBUILD_EXTRA_SYMBOLS, System.map or the search roots"
            f" ({searched}): check the spelling, or pass --search DIR where the providing module lives"
        )

    def near_misses(self, symbol: str, most: int = 3) -> list[str]:
        """Exported names the user may have meant, best first. An underscore variant (``printk`` is a macro
        for the export ``_printk``) is certain and comes alone; otherwise names are compared with their
        leading underscores set aside, so that ``printkk`` finds ``_printk`` before ``vprintk``, and up to
        ``most`` are given when they are about as close as the best."""
        for guess in ("_" + symbol, symbol.lstrip("_"), "__" + symbol, "_" + symbol.lstrip("_")):
            if guess != symbol and self.exports.get(guess):
                return [guess]
        import difflib

        bare: dict[str, list[str]] = {}
        for name in self.exports.names():
            bare.setdefault(name.lstrip("_"), []).append(name)
        wanted = symbol.lstrip("_")
        scored: dict[str, float] = {}
        for base in difflib.get_close_matches(wanted, bare, n=8, cutoff=0.8):
            ratio = difflib.SequenceMatcher(None, wanted, base).ratio()
            for name in sorted(bare[base], key=lambda n: (len(n) - len(n.lstrip("_")), n)):
                scored.setdefault(name, ratio)
        if not scored:
            return []
        best = max(scored.values())
        ranked = sorted(scored, key=lambda n: (-scored[n], len(n) - len(n.lstrip("_")), n))
        return [n for n in ranked if scored[n] >= best - 0.05][:most]


def _under(path: str, root: str) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(root) + os.sep)

