"""Module dependencies computed the way kmod's ``depmod`` computes them: ``modules.dep``, load order, cycles.

The steps, each a function of its own so that tests can feed synthetic inputs to the pure ones:

1. :func:`find_modules` walks a module tree (``/lib/modules/VER`` or any folder) and extra external
   directories like depmod: every ``*.ko``/``*.ko.{gz,xz,zst}`` below it except in ``build``/``source``,
   one module per name, a duplicate name settled by depmod.d's ``override``/``search`` priorities;
2. :func:`order_modules` puts them in depmod's order: ``modules.order`` first, the rest in the order of
   libkmod's name hash table (which is what depmod does, so ``modules.dep`` comes out byte-identical);
3. :func:`scan_modules` reads exports and undefined symbols with :func:`~buildkit.kmod.modfile.quick_symbols`
   (on two processes when there are many modules and more than one CPU);
4. :func:`resolve` is pure: each undefined symbol goes to the module exporting it (when two export it, the
   one later in the order wins, as in depmod), then a topological sort, or the cycles, reported in
   depmod's words (``Cycle detected: a -> b -> a``).

:func:`format_modules_dep`, :func:`graph_json` and :func:`format_dot` write the result. Read from kmod 30
(Debian 12) ``tools/depmod.c``; see :data:`DEVIATIONS` for the few places that differ on purpose.
"""

from __future__ import annotations

import marshal
import os
import re
import struct
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional, Protocol, TypedDict

from buildkit.errors import CheckFailed, InputError
from buildkit.kmod.kernel import releases_under
from buildkit.kmod.modfile import quick_symbol_names

if TYPE_CHECKING:
    from buildkit.kmod.modfile import Export
    from buildkit.kmod.symvers import Symvers

__all__ = [
    "DEFAULT_CONFIG_PATHS",
    "DEVIATIONS",
    "KMOD_EXTENSIONS",
    "DepGraph",
    "DependencyCycle",
    "DepmodConfig",
    "Exporter",
    "Module",
    "Tree",
    "build_graph",
    "collect",
    "cycle_lines",
    "find_modules",
    "format_dot",
    "format_modules_dep",
    "graph_json",
    "kmod_hash",
    "kmod_modname",
    "load_config",
    "locate_tree",
    "order_modules",
    "resolve",
    "scan_modules",
    "stderr_progress",
    "who_exports",
]

#: What depmod reads (kmod 30: ``ROOTPREFIX/lib/depmod.d`` etc.), most important first.
DEFAULT_CONFIG_PATHS = ("/run/depmod.d", "/etc/depmod.d", "/lib/depmod.d")
#: Module file names depmod lists (an upstream kmod built with zlib, xz and zstd).
KMOD_EXTENSIONS = (".ko", ".ko.gz", ".ko.xz", ".ko.zst")
#: Where this module knowingly does not do what kmod 30's depmod does.
DEVIATIONS = (
    "*.ko.gz modules are listed even where kmod was built without zlib (Debian's is): they are modules",
    "a module that cannot be read is listed with no dependencies, as depmod does, and also named in a warning",
    "M=DIR directories rank above the tree (like 'search external ...' in depmod.d) when no depmod.d "
    "'search' line places 'external' itself; depmod ranks its external directories with built-in ones",
    "cycle reports follow depmod's search but skip its bogus one-module 'Cycle detected: m' lines, and end "
    "where depmod loops forever or aborts (a cycle that does not pass through the module searched from)",
    "without MODVERSIONS the exports are a module's __kstrtab_* labels (quick_symbols) where depmod reads "
    "the strings of __ksymtab_strings: those add only namespace names, which no module imports as symbols",
    "a symbolic link to a directory the walk is inside is not followed (depmod follows it round and round)",
)

_PATH_MAX = 4096
_EXCLUDED_NAMES = frozenset({".", "..", "build", "source"})


# --------------------------------------------------------------------------------------------- names


def kmod_modname(filename: str) -> str:
    """libkmod's name for a module file: the basename up to its first ``.``, ``-`` turned into ``_``."""
    base = filename.rsplit("/", 1)[-1]
    return base.split(".", 1)[0].replace("-", "_")


def kmod_hash(key: bytes) -> int:
    """libkmod's ``hash_superfast`` (Paul Hsieh's SuperFastHash) of ``key``, as computed on x86."""
    m = 0xFFFFFFFF
    length = len(key)
    h = length
    rem = length & 3
    i = 0
    for _ in range(length >> 2):
        h = (h + (key[i] | key[i + 1] << 8)) & m
        tmp = ((key[i + 2] | key[i + 3] << 8) << 11) ^ h
        h = ((h << 16) & m) ^ tmp
        h = (h + (h >> 11)) & m
        i += 4
    if rem == 3:
        h = (h + (key[i] | key[i + 1] << 8)) & m
        h ^= (h << 16) & m
        h ^= (_schar(key[i + 2]) << 18) & m  # ``char`` is signed on x86
        h = (h + (h >> 11)) & m
    elif rem == 2:
        h = (h + (key[i] | key[i + 1] << 8)) & m
        h ^= (h << 11) & m
        h = (h + (h >> 17)) & m
    elif rem == 1:
        h = (h + _schar(key[i])) & m
        h ^= (h << 10) & m
        h = (h + (h >> 1)) & m
    h ^= (h << 3) & m
    h = (h + (h >> 5)) & m
    h ^= (h << 4) & m
    h = (h + (h >> 17)) & m
    h ^= (h << 25) & m
    h = (h + (h >> 6)) & m
    return h


def _schar(byte: int) -> int:
    return byte - 256 if byte >= 128 else byte


def _hash_order_key(name: str) -> tuple[int, bytes]:
    """Where libkmod's 512-bucket hash of module names puts ``name`` when iterated: bucket, then strcmp."""
    raw = name.encode("utf-8", "surrogateescape")
    return kmod_hash(raw) & 511, raw


# -------------------------------------------------------------------------------------------- config


@dataclass
class DepmodConfig:
    """The depmod.d settings that decide which file a module name stands for.

    The lists are kept in depmod's internal order, which is the reverse of the order in the files (depmod
    prepends): a later ``search`` entry has the higher index, and a higher index wins.
    """

    search: list[str] = field(default_factory=list)  # "built-in", "external" or a subdirectory
    overrides: list[str] = field(default_factory=list)  # "subdir/modname"
    externals: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _kernel_matches(pattern: str, release: str) -> bool:
    if pattern == "*":
        return True
    try:
        return re.search(pattern, release) is not None
    except re.error:
        return False


def _config_files(paths: Sequence[str]) -> list[str]:
    """The files depmod parses: ``*.conf`` in each directory (or the path itself), by basename; the first
    path holding a basename wins, like depmod's ``cfg_files_insert_sorted``."""
    chosen: dict[str, str] = {}
    for path in paths:
        if os.path.isdir(path):
            try:
                names = os.listdir(path)
            except OSError:
                continue
            for name in names:
                if name.startswith(".") or len(name) < 6 or not name.endswith(".conf"):
                    continue
                if os.path.isdir(os.path.join(path, name)):
                    continue
                chosen.setdefault(name, os.path.join(path, name))
        elif os.path.exists(path):
            chosen.setdefault(os.path.basename(path), path)
    return [chosen[name] for name in sorted(chosen, key=lambda n: n.encode("utf-8", "surrogateescape"))]


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines with backslash-newline continuations joined (kmod's ``freadline_wrapped``)."""
    buf, start = "", 0
    for lineno, line in enumerate(text.split("\n"), 1):
        if not buf:
            start = lineno
        if line.endswith("\\"):
            buf += line[:-1]
            continue
        yield start, buf + line
        buf = ""
    if buf:
        yield start, buf


def load_config(paths: Sequence[str] | None = None, kernel_release: str = "") -> DepmodConfig:
    """Read depmod.d configuration like depmod (``search``, ``override``, ``external``, ``exclude``)."""
    cfg = DepmodConfig()
    for path in _config_files(DEFAULT_CONFIG_PATHS if paths is None else paths):
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError as e:
            cfg.warnings.append(f"{path}: cannot read depmod configuration: {e.strerror}")
            continue
        cfg.files.append(path)
        for lineno, line in _logical_lines(text):
            if not line or line.startswith("#"):
                continue
            words = line.split()
            if not words:
                continue
            cmd, args = words[0], words[1:]
            if cmd == "search":
                cfg.search[:0] = reversed(args)
            elif cmd == "override" and len(args) >= 3:
                if _kernel_matches(args[1], kernel_release):
                    cfg.overrides.insert(0, f"{args[2]}/{args[0]}")
            elif cmd == "external" and len(args) >= 2:
                if _kernel_matches(args[0], kernel_release):
                    cfg.externals.insert(0, args[1])
            elif cmd == "exclude":
                cfg.excludes[:0] = reversed(args)
            elif cmd in ("include", "make_map_files"):
                pass
            else:
                cfg.warnings.append(f"{path}:{lineno}: ignoring bad line starting with '{cmd}'")
    if not cfg.search:
        cfg.search.append("updates")
    return cfg


# ------------------------------------------------------------------------------------------- modules


class Module:
    """One module file of the tree, and what resolution found out about it."""

    __slots__ = (
        "name", "path", "relpath", "exports", "undefined", "weak", "error",
        "deps", "users", "order", "index", "sort_index",
    )

    def __init__(self, name: str, path: str, relpath: str | None = None) -> None:
        self.name = name
        self.path = path  # as found: TREE/kernel/... or DIR/...
        self.relpath = relpath  # relative to the tree, None for an external module outside it
        # Symbol names as bytes (latin-1), as quick_symbol_names reads them: looked up, rarely printed.
        self.exports: Sequence[bytes] = ()
        self.undefined: Sequence[bytes] = ()
        self.weak: frozenset[bytes] = frozenset()
        self.error: str | None = None
        self.deps: list[Module] = []  # direct dependencies, in the order their symbols came
        self.users = 0
        self.order = 1  # modules.order position (negative) or 1 (not listed), as depmod's sort_idx
        self.index = 0  # position in the output
        self.sort_index: int | None = None  # topological position (depmod's dep_sort_idx)

    @property
    def dep_path(self) -> str:
        """The path as written in modules.dep: relative to the tree, else as found."""
        return self.relpath if self.relpath is not None else self.path

    def __repr__(self) -> str:
        return f"Module({self.name!r}, {self.dep_path!r})"


def _starts_with_dir(path: str, length: int, prefix: str) -> bool:
    """depmod's ``depmod_is_path_starts_with`` on the first ``length`` characters of ``path``."""
    n = len(prefix)
    return length > n and path[n : n + 1] == "/" and path[:n] == prefix


class _Loop(Exception):
    pass


class _DirIterator(Iterator["os.DirEntry[str]"], Protocol):
    """What ``os.scandir`` returns (typeshed's class for it is private): its entries, and ``close``."""

    def close(self) -> None: ...


class _Collector:
    """depmod's ``depmod_modules_search``: the walk, and the priority rules for a name found twice."""

    def __init__(self, dirname: str, cfg: DepmodConfig, warn: Callable[[str], None]) -> None:
        self.dirname = dirname
        self.cfg = cfg
        self.warn = warn
        self.excluded = _EXCLUDED_NAMES.union(cfg.excludes)
        self.by_name: dict[str, Module] = {}

    def walk(self, top: str, report_missing: bool) -> None:
        """Depth first, each directory in readdir order, like depmod's ``depmod_modules_search_dir``."""
        active: set[tuple[int, int]] = set()  # the directories being read: a link to one of them is a loop
        try:
            key, it = self.opendir(top, active)
        except OSError as e:
            if report_missing or not isinstance(e, FileNotFoundError):
                self.warn(f"{top}: cannot open directory: {e.strerror}")
            return
        stack = [(top, it, key)]
        while stack:
            base, it, key = stack[-1]
            entry = next(it, None)
            if entry is None:
                it.close()
                active.discard(key)
                stack.pop()
                continue
            name = entry.name
            if name in self.excluded:
                continue
            path = f"{base}/{name}"
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                try:
                    sub, it = self.opendir(path, active)
                    stack.append((path, it, sub))
                except _Loop:
                    continue
                except OSError as e:
                    self.warn(f"{path}: cannot open directory: {e.strerror}")
            elif is_file:
                if name.endswith(KMOD_EXTENSIONS) and name not in KMOD_EXTENSIONS:
                    self.add(path, len(base) + 1, name)
            elif name.endswith(KMOD_EXTENSIONS):
                self.warn(f"{path}: not a regular file; skipped")

    @staticmethod
    def opendir(path: str, active: set[tuple[int, int]]) -> tuple[tuple[int, int], _DirIterator]:
        st = os.stat(path)
        key = (st.st_dev, st.st_ino)
        if key in active:  # a symbolic link back up the tree: depmod would go round until paths overflow
            raise _Loop(path)
        it = os.scandir(path)
        active.add(key)
        return key, it

    def add(self, path: str, baselen: int, filename: str) -> None:
        modname = kmod_modname(filename)
        if not modname:
            self.warn(f"{path}: no module name in the file name; skipped")
            return
        old = self.by_name.get(modname)
        if old is not None and self.existing_wins(old, path, baselen, len(modname)):
            return
        relpath = path[len(self.dirname) + 1 :] if path.startswith(self.dirname + "/") else None
        self.by_name[modname] = Module(modname, path, relpath)

    def existing_wins(self, old: Module, newpath: str, baselen: int, namelen: int) -> bool:
        """depmod's ``depmod_module_is_higher_priority``, condition for condition."""
        cfg, dirname = self.cfg, self.dirname
        cut = len(dirname) + 1
        newlen = baselen + namelen
        oldlen = old.path.rfind("/") + 1 + len(old.name)
        relnew = newpath[cut:newlen] if newpath.startswith(dirname) else None
        relold = old.path[cut:oldlen] if old.path.startswith(dirname) else None
        for ov in cfg.overrides:
            if relnew is not None and relnew == ov:
                return False
            if relold is not None and relold == ov:
                return True
        bprio = newprio = oldprio = -1
        i = 0
        for se in cfg.search:
            if se == "built-in":
                bprio = i
            elif se == "external":
                for ext in cfg.externals:
                    if _starts_with_dir(newpath, newlen, ext):
                        newprio = i
                    if _starts_with_dir(old.path, oldlen, ext):
                        oldprio = i
                    i += 1
            elif relnew is not None and len(relnew) > len(se) and relnew[len(se)] == "/" and relnew.startswith(se):
                newprio = i
            elif relold is not None and len(relold) > len(se) and relold[len(se)] == "/" and relold.startswith(se):
                oldprio = i
            i += 1
        if newprio < 0:
            newprio = bprio
        if oldprio < 0:
            oldprio = bprio
        return newprio <= oldprio


def find_modules(
    dirname: str,
    externals: Sequence[str] = (),
    config: DepmodConfig | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[Module]:
    """Every module depmod would list for ``dirname`` plus the ``externals`` directories (M=DIR), one per
    module name, in the order found (:func:`order_modules` puts them in depmod's).

    ``externals`` rank above the tree and in the order given (first wins) unless ``config`` has a
    ``search`` line naming ``external``.
    """
    cfg = config if config is not None else DepmodConfig(search=["updates"])
    dirname = dirname.rstrip("/") or "/"
    if externals:
        cfg = DepmodConfig(
            search=list(cfg.search) if "external" in cfg.search else list(cfg.search) + ["external"],
            overrides=list(cfg.overrides),
            externals=list(cfg.externals) + [e.rstrip("/") or "/" for e in reversed(externals)],
            excludes=list(cfg.excludes),
        )
    collector = _Collector(dirname, cfg, warn or (lambda _msg: None))
    collector.walk(dirname, report_missing=True)
    for ext in cfg.externals:
        collector.walk(ext, report_missing=ext in externals)
    return list(collector.by_name.values())


def order_modules(modules: list[Module], dirname: str, warn: Callable[[str], None] | None = None) -> bool:
    """Sort ``modules`` like depmod: the ones named in ``dirname/modules.order`` first, in its order (a
    name listed twice takes its last place), the rest after them in the order libkmod's hash table of
    module names iterates (its buckets, then strcmp). Returns whether a usable modules.order was found."""
    for m in modules:
        m.order = 1
    used = _read_modules_order(modules, dirname, warn)
    # Only the modules modules.order does not name need their place in the hash table computed.
    modules.sort(key=lambda m: (m.order, _hash_order_key(m.name) if m.order > 0 else (0, b"")))
    return used


def _read_modules_order(modules: list[Module], dirname: str, warn: Callable[[str], None] | None) -> bool:
    order_file = os.path.join(dirname, "modules.order")
    try:
        with open(order_file, "rb") as f:
            raw = f.read()
    except OSError:
        return False
    lines = raw.split(b"\n")
    lines[-1] += b"\n"  # the text after the last newline, if any: a line without its newline
    bad = next((i for i, line in enumerate(lines, 1) if len(line) >= _PATH_MAX - 1 or b"\0" in line), 0)
    if lines.pop() != b"\n":
        bad = bad or len(lines) + 1
    if bad:  # depmod reads lines with fgets into a PATH_MAX buffer and gives up on one without a newline
        if warn:
            warn(f"{order_file}:{bad}: corrupted line misses '\\n'; modules.order ignored, as depmod does")
        return False
    by_uncrelpath: dict[bytes, Module] = {}
    for m in modules:
        if m.relpath is not None:
            rel = m.relpath.encode("utf-8", "surrogateescape")
            # depmod's uncrelpath: the directory, then as many characters of the file name as the module
            # name has, then ".ko" (so "kernel/x/foo.ko.xz" is found as "kernel/x/foo.ko").
            cut = rel.rfind(b"/") + 1 + len(m.name.encode("utf-8", "surrogateescape")) + 3
            by_uncrelpath[rel[:cut]] = m
    total = len(lines) + 1
    for idx, line in enumerate(lines, 1):
        named = by_uncrelpath.get(line)
        if named is not None:
            named.order = idx - total
    return True


# ------------------------------------------------------------------------------------------ scanning


#: What one module's scan gives: exports, undefined symbols, weak ones, the error that stopped the read. A plain
#: tuple of lists, as marshal sends it from the forked scanner.
_Scanned = tuple[list[bytes], list[bytes], list[bytes], Optional[str]]


def _scan_one(path: str) -> _Scanned:
    try:
        exports, undefined, weak = quick_symbol_names(path)
    except InputError as e:
        return [], [], [], e.message
    except (OSError, ValueError, IndexError, EOFError, struct.error) as e:
        return [], [], [], f"{path}: cannot read symbols ({type(e).__name__}: {e})"
    return exports, undefined, list(weak), None


def _scan_range(paths: Sequence[str], progress: Callable[[int], None] | None) -> list[_Scanned]:
    out = []
    for i, path in enumerate(paths):
        out.append(_scan_one(path))
        if progress is not None and not i & 63:
            progress(i)
    return out


def _scan_forked(paths: Sequence[str], progress: Callable[[int], None] | None) -> list[_Scanned] | None:
    """Scan the second half of ``paths`` in a forked child and the first half here; None if fork fails."""
    half = len(paths) // 2
    try:
        rfd, wfd = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(rfd)
        os.close(wfd)
        return None
    if pid == 0:  # child: no cleanup handlers, no stdio flushing; just the data down the pipe
        code = 0
        try:
            os.close(rfd)
            blob = marshal.dumps(_scan_range(paths[half:], None))
            view = memoryview(blob)
            while view:
                view = view[os.write(wfd, view) :]
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    try:
        first = _scan_range(paths[:half], None if progress is None else (lambda i: progress(2 * i)))
        chunks = []
        while True:
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
    if status != 0:
        return None
    rest: list[_Scanned] = marshal.loads(b"".join(chunks))  # what the child's _scan_range returned
    return first + rest


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def scan_modules(
    modules: Sequence[Module],
    progress: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
) -> None:
    """Fill each module's exports and undefined symbols (``quick_symbols``: what depmod reads).

    A file that cannot be read gets no symbols and its ``error`` set; it stays in the list (depmod lists it
    too). With ``jobs`` > 1 (the default when this process may use 2+ CPUs and there are 256+ modules) a
    forked process scans the second half.
    """
    paths = [m.path for m in modules]
    total = len(paths)
    report = None if progress is None else (lambda done: progress(done, total))
    if jobs is None:
        jobs = 2 if total >= 256 and _usable_cpus() > 1 else 1
    results = None
    if jobs > 1 and hasattr(os, "fork") and total > 1:
        results = _scan_forked(paths, report)
    if results is None:
        results = _scan_range(paths, report)
    if report is not None:
        report(total)
    for m, (exports, undefined, weak, error) in zip(modules, results):
        m.exports, m.undefined, m.weak, m.error = exports, undefined, frozenset(weak), error


# ---------------------------------------------------------------------------------------- resolution


@dataclass
class DepGraph:
    """The resolved tree: modules in modules.dep order, and what resolution noticed."""

    modules: list[Module]
    symbols: dict[bytes, Module]  # export (latin-1 bytes) -> owner (depmod's pick)
    duplicates: dict[bytes, list[Module]]  # export -> every module exporting it, in order; the last wins
    cycles: list[list[str]]  # module names, each ending with its first
    cyclic: set[str] = field(default_factory=set)
    dirname: str = ""
    kernel_release: str = ""
    used_modules_order: bool = False
    warnings: list[str] = field(default_factory=list)

    def module_deps(self, mod: Module) -> list[Module]:
        """Every module ``mod`` needs, directly or not, in depmod's order (``modules.dep``)."""
        seen: dict[int, Module] = {}
        stack = list(reversed(mod.deps))
        while stack:
            d = stack.pop()
            if id(d) in seen:
                continue
            seen[id(d)] = d
            stack.extend(reversed(d.deps))
        big = len(self.modules)
        return sorted(seen.values(), key=lambda d: (d.sort_index if d.sort_index is not None else big + d.index))

    def load_order(self, mod: Module) -> list[Module]:
        """The order modprobe loads ``mod`` in: its dependencies' line read backwards, then itself."""
        return list(reversed(self.module_deps(mod))) + [mod]


class DependencyCycle(CheckFailed):
    """Modules that need each other: depmod refuses to write modules.dep."""

    def __init__(self, cycles: list[list[str]], count: int) -> None:
        self.cycles = cycles
        super().__init__(
            f"Found {count} modules in dependency cycles!",
            fix="no modules.dep can be written; rebuild one module of each cycle without the symbol it "
            "takes from the other",
        )


def resolve(modules: Sequence[Module]) -> tuple[dict[bytes, Module], dict[bytes, list[Module]]]:
    """Give every module its direct dependencies (depmod's ``depmod_load``): ``modules`` in final order."""
    symbols: dict[bytes, Module] = {}
    total = 0
    for m in modules:
        m.deps = []
        m.users = 0
        if m.exports:
            symbols.update(dict.fromkeys(m.exports, m))  # later modules overwrite: depmod's hash_add
            total += len(m.exports)
    duplicates: dict[bytes, list[Module]] = {}
    if total != len(symbols):
        first: dict[bytes, Module] = {}
        for m in modules:
            for name in m.exports:
                prev = first.setdefault(name, m)
                if prev is not m:
                    owners = duplicates.setdefault(name, [prev])
                    if owners[-1] is not m:
                        owners.append(m)
    get = symbols.get
    for m in modules:
        names = m.undefined
        if not names:
            continue
        if b"\n." in b"\n" + b"\n".join(names):  # depmod looks ".foo" up as "foo" (PPC64)
            names = [n[1:] if n.startswith(b".") else n for n in names]
        # each exporting module once, in the order of its first symbol; filter drops the None of a symbol
        # no module exports (a Module is always true)
        needed = dict.fromkeys(filter(None, map(get, names)))
        if needed:
            m.deps = list(needed)
            for owner in m.deps:
                owner.users += 1
    return symbols, duplicates


def _placed(m: Module) -> int:
    """``m.sort_index``, which every module has once the sort met no cycle."""
    if m.sort_index is None:
        raise ValueError(f"{m!r} has no place in the topological sort (a dependency cycle)")
    return m.sort_index


def _topological_sort(modules: Sequence[Module]) -> list[int]:
    """depmod's sort: Kahn's algorithm with a stack, users before what they use; sets ``sort_index``."""
    for i, m in enumerate(modules):
        m.index = i
        m.sort_index = None
    users = [m.users for m in modules]
    stack = [i for i, u in enumerate(users) if u == 0]
    n_sorted = 0
    while stack:
        src = modules[stack.pop()]
        src.sort_index = n_sorted
        n_sorted += 1
        for dst in src.deps:
            users[dst.index] -= 1
            if users[dst.index] == 0:
                stack.append(dst.index)
    return users  # > 0 for the modules left over: in a cycle or needed by one


def _find_cycles(modules: Sequence[Module], users: Sequence[int]) -> tuple[list[list[str]], set[str]]:
    """depmod's ``depmod_report_cycles``: from every module left over by the sort, a depth-first search for
    the paths that come back to it; each is one ``Cycle detected`` line.

    The modules left to start from are a ring, as in libkmod's circular lists: taking one out of the
    middle (when it turns out to be a leaf, or on a reported cycle) makes the one after it the next start.
    """
    ring = [m for m, u in zip(modules, users) if u > 0]
    cycles: list[list[str]] = []
    in_loops: set[str] = set()

    def remove(m: Module) -> None:  # kmod_list_remove_data: the list goes on from the removed one's next
        nonlocal ring
        for i, r in enumerate(ring):
            if r is m:
                ring = ring[i + 1 :] + ring[:i]
                return

    while ring:
        root = ring.pop(0)
        stack: list[tuple[Module, tuple[Module, ...]]] = [(root, ())]
        while stack:
            m, parents = stack.pop()
            if parents and m is root:
                names = [p.name for p in parents] + [m.name]
                cycles.append(names)
                in_loops.update(names[:-1])
                for p in parents:
                    remove(p)
                continue
            if m in parents[1:]:  # a loop that does not come back to root: depmod would never stop
                continue
            if not m.deps:
                remove(m)
                continue
            path = parents + (m,)
            stack.extend((dep, path) for dep in m.deps)
    return cycles, in_loops


def build_graph(
    modules: list[Module],
    dirname: str = "",
    kernel_release: str = "",
    used_modules_order: bool = False,
    warnings: Sequence[str] = (),
) -> DepGraph:
    """Resolve ``modules`` (already in depmod's order, symbols scanned) into a :class:`DepGraph`."""
    symbols, duplicates = resolve(modules)
    users = _topological_sort(modules)
    left = any(users)
    cycles: list[list[str]] = []
    cyclic: set[str] = set()
    if left:
        cycles, cyclic = _find_cycles(modules, users)
    for m in modules:
        if len(m.deps) > 1 and not left:
            m.deps.sort(key=_placed)
    return DepGraph(
        modules=list(modules),
        symbols=symbols,
        duplicates=duplicates,
        cycles=cycles,
        cyclic=cyclic,
        dirname=dirname,
        kernel_release=kernel_release,
        used_modules_order=used_modules_order,
        warnings=list(warnings),
    )


# ------------------------------------------------------------------------------------------- outputs


def cycle_lines(graph: DepGraph) -> list[str]:
    """depmod's words for the cycles, one line each, then the count."""
    lines = [f"Cycle detected: {' -> '.join(c)}" for c in graph.cycles]
    lines.append(f"Found {len(graph.cyclic)} modules in dependency cycles!")
    return lines


def format_modules_dep(graph: DepGraph) -> str:
    """The text of modules.dep, byte for byte what ``depmod -n`` prints first. Raises
    :class:`DependencyCycle` if there are cycles (depmod then writes nothing)."""
    if graph.cycles or any(m.sort_index is None for m in graph.modules):
        raise DependencyCycle(graph.cycles, len(graph.cyclic))
    out = []
    closures: dict[int, int] = {}  # sort_index -> bit set of the sort indexes it needs
    by_sort = sorted(graph.modules, key=_placed, reverse=True)  # dependencies first
    for m in by_sort:
        bits = 0
        for d in m.deps:
            at = _placed(d)
            bits |= closures[at] | (1 << at)
        closures[_placed(m)] = bits
    by_index = {_placed(m): m.dep_path for m in graph.modules}
    for m in graph.modules:
        bits = closures[_placed(m)]
        if not bits:
            out.append(f"{m.dep_path}:\n")
            continue
        paths = []
        while bits:
            low = bits & -bits
            paths.append(by_index[low.bit_length() - 1])
            bits ^= low
        out.append(f"{m.dep_path}: {' '.join(paths)}\n")
    return "".join(out)


class ModuleJson(TypedDict):
    """A module in :func:`graph_json`."""

    name: str
    path: str
    file: str
    depends: list[str]
    all_depends: list[str]
    load_order: list[str]
    exports: int
    error: str | None


class DuplicateExportJson(TypedDict):
    symbol: str
    owner: str
    also_exported_by: list[str]


class GraphJson(TypedDict):
    """What :func:`graph_json` gives (``symvers deps --json``)."""

    tree: str
    kernel_release: str
    modules_order: bool
    modules: list[ModuleJson]
    duplicate_exports: list[DuplicateExportJson]
    cycles: list[list[str]]
    warnings: list[str]


def graph_json(graph: DepGraph) -> GraphJson:
    """The graph as JSON-ready data: modules in modules.dep order with direct and full dependencies and
    the order modprobe loads them in, duplicate exports, cycles, warnings."""
    modules: list[ModuleJson] = []
    for m in graph.modules:
        needs = graph.module_deps(m)
        modules.append({
            "name": m.name,
            "path": m.dep_path,
            "file": m.path,
            "depends": [d.name for d in m.deps],
            "all_depends": [d.dep_path for d in needs],
            "load_order": [d.dep_path for d in reversed(needs)] + [m.dep_path],
            "exports": len(m.exports),
            "error": m.error,
        })
    return {
        "tree": graph.dirname,
        "kernel_release": graph.kernel_release,
        "modules_order": graph.used_modules_order,
        "modules": modules,
        "duplicate_exports": [
            {
                "symbol": name.decode("latin-1"),
                "owner": owners[-1].dep_path,
                "also_exported_by": [o.dep_path for o in owners[:-1]],
            }
            for name, owners in sorted(graph.duplicates.items())
        ],
        "cycles": graph.cycles,
        "warnings": graph.warnings,
    }


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_dot(graph: DepGraph) -> str:
    """Graphviz: one node per module (named as the kernel names it), an edge to each direct dependency;
    edges inside a cycle in red."""
    lines = ["digraph modules {", "  node [shape=box, fontsize=10];"]
    for m in graph.modules:
        lines.append(f"  {_dot_id(m.name)} [tooltip={_dot_id(m.dep_path)}];")
    for m in graph.modules:
        for d in m.deps:
            style = " [color=red]" if m.name in graph.cyclic and d.name in graph.cyclic else ""
            lines.append(f"  {_dot_id(m.name)} -> {_dot_id(d.name)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- entry points


@dataclass(frozen=True)
class Tree:
    dirname: str  # the module directory depmod would use: .../lib/modules/VER or the folder given
    kernel_release: str


def locate_tree(tree: str, kernel_release: str | None = None) -> Tree:
    """Accept ``/lib/modules/VER``, any folder of modules, or a root with ``lib/modules/VER`` under it
    (``dpkg -x`` output, depmod's ``-b``)."""
    if not os.path.exists(tree):
        raise InputError(
            f"{tree}: no such directory",
            fix="pass a module tree such as /lib/modules/$(uname -r) or a folder of .ko files",
        )
    if not os.path.isdir(tree):
        raise InputError(f"{tree}: not a directory", fix="pass the directory that holds the modules, not a file")
    dirname = os.path.abspath(tree)
    trees = releases_under(dirname) if not os.path.exists(os.path.join(dirname, "modules.order")) else []
    if trees:
        releases = [os.path.basename(t) for t in trees]
        base = os.path.dirname(trees[0])
        if kernel_release:
            if kernel_release not in releases:
                raise InputError(f"{base}: no kernel release {kernel_release}",
                                 fix=f"pick one of: {', '.join(releases)}")
            return Tree(trees[releases.index(kernel_release)], kernel_release)
        if len(trees) == 1:
            return Tree(trees[0], releases[0])
        raise InputError(f"{base}: holds {len(releases)} kernel releases ({', '.join(releases)})",
                         fix="pick one with --kernel-release VER")
    return Tree(dirname, kernel_release or os.path.basename(dirname))


def collect(
    tree: str,
    externals: Sequence[str] = (),
    kernel_release: str | None = None,
    config_paths: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
) -> DepGraph:
    """Everything :func:`find_modules` to :func:`build_graph` do, for a tree given by a user: bad input
    raises :class:`InputError` naming it; unreadable modules become warnings."""
    where = locate_tree(tree, kernel_release)
    for ext in externals:
        if not os.path.isdir(ext):
            why = "not a directory" if os.path.exists(ext) else "no such directory"
            raise InputError(f"M={ext}: {why}", fix="pass the directory holding the built .ko files")
    cfg = load_config(config_paths, where.kernel_release)
    warnings = list(cfg.warnings)
    modules = find_modules(where.dirname, [os.path.abspath(e) for e in externals], cfg, warnings.append)
    if not modules:
        places = " or ".join([where.dirname] + [f"M={e}" for e in externals])
        raise InputError(
            f"{places}: no kernel modules (*.ko, *.ko.xz, *.ko.zst, *.ko.gz) found",
            fix="pass /lib/modules/VER (or a root holding lib/modules/VER) or a folder of built modules",
        )
    used_order = order_modules(modules, where.dirname, warnings.append)
    scan_modules(modules, progress, jobs)
    for m in modules:
        if m.error is not None:
            warnings.append(f"{m.error}; listed with no dependencies (as depmod does); rebuild or remove it")
    return build_graph(modules, where.dirname, where.kernel_release, used_order, warnings)


# --------------------------------------------------------------------------------------- who-exports


class ExporterJson(TypedDict):
    """An :class:`Exporter` as ``symvers who-exports --json`` gives it."""

    symbol: str
    module: str
    path: str
    source: str
    type: str
    namespace: str
    crc: str | None
    depmod_owner: bool


@dataclass(frozen=True)
class Exporter:
    symbol: str
    module: str  # module name, or vmlinux / the Module.symvers module column
    path: str  # module path (modules.dep style) or the Module.symvers file
    source: str  # "tree" or "Module.symvers"
    type: str
    namespace: str
    crc: int | None
    depmod_owner: bool  # the one depmod resolves the symbol to (the last of duplicates)

    def to_json(self) -> ExporterJson:
        return {
            "symbol": self.symbol, "module": self.module, "path": self.path, "source": self.source,
            "type": self.type, "namespace": self.namespace,
            "crc": None if self.crc is None else f"0x{self.crc:08x}", "depmod_owner": self.depmod_owner,
        }


def who_exports(
    symbols: Iterable[str],
    graph: DepGraph | None = None,
    symvers: Sequence[Symvers] = (),
) -> dict[str, list[Exporter]]:
    """For each symbol, the modules of ``graph`` and the entries of ``symvers`` (parsed Module.symvers
    files) exporting it. Export type and namespace of tree modules come from a full read of just those."""
    from buildkit.kmod.modfile import read_module

    wanted = list(dict.fromkeys(symbols))
    found: dict[str, list[Exporter]] = {s: [] for s in wanted}
    if graph is not None:
        owners: dict[str, list[Module]] = {}
        want = {s.encode("latin-1", "replace"): s for s in wanted}
        for m in graph.modules:
            for raw in want.keys() & set(m.exports):
                owners.setdefault(want[raw], []).append(m)
        details: dict[int, dict[str, Export]] = {}  # id(module) -> its exports by name
        for name in wanted:
            for m in owners.get(name, ()):
                if id(m) not in details:
                    try:
                        details[id(m)] = {e.name: e for e in read_module(m.path).exports}
                    except InputError:
                        details[id(m)] = {}
                exp = details[id(m)].get(name)
                found[name].append(Exporter(
                    name, m.name, m.dep_path, "tree",
                    exp.type if exp else "EXPORT_SYMBOL", exp.namespace if exp else "",
                    exp.crc if exp else None, graph.symbols.get(name.encode("latin-1", "replace")) is m,
                ))
    for table in symvers:
        for entry in table.entries:
            if entry.symbol in found:
                found[entry.symbol].append(Exporter(
                    entry.symbol, entry.module, table.path, "Module.symvers", entry.type, entry.namespace,
                    entry.crc, False,
                ))
    return found


def stderr_progress(delay: float = 1.0) -> Callable[[int, int], None] | None:
    """A progress callback that writes ``reading modules N/M`` to stderr once ``delay`` seconds have gone
    by, or None if stderr is not a terminal."""
    from buildkit._term import live_terminal

    if not live_terminal(2):
        return None
    import time

    start = time.monotonic()
    shown = [False]

    def report(done: int, total: int) -> None:
        if done >= total:
            if shown[0]:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()
            return
        if shown[0] or time.monotonic() - start > delay:
            shown[0] = True
            sys.stderr.write(f"\rreading modules {done}/{total}")
            sys.stderr.flush()

    return report
