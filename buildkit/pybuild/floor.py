"""The binary floor of an install: what its ELF files ask of the host they run on.

Read on the host side (no process of the install runs), over every ELF executable and shared object of the
install: the interpreter, libpython, ``lib-dynload/*.so``, and the private OpenSSL and SQLite (libraries,
engines and providers, ``bin/openssl``, ``bin/sqlite3``). ``site-packages`` is left out: what the user
installs there is not the build.

* **glibc floor**: the highest ``GLIBC_x.y`` symbol version any file needs (``.gnu.version_r``), with the
  file and the symbols that need it: the build runs on hosts with that glibc or newer.
* **linked libraries**: every ``DT_NEEDED`` must be a library of the C runtime, a library of the install
  itself (its own sonames: libssl, libcrypto, libsqlite3, libpython), or the distribution library of an
  optional module, named as such (:data:`DISTRO_LIBRARIES`). Anything else fails, naming the file and the
  library. Without a private OpenSSL or SQLite, the system's libssl/libcrypto/libsqlite3 are allowed too.
* **hardening**, per file, reported: RELRO (``PT_GNU_RELRO``; full with ``BIND_NOW``/``DF_1_NOW``), the
  stack (``PT_GNU_STACK`` without ``PF_X``; none at all means an executable stack), text relocations
  (``DT_TEXTREL``/``DF_TEXTREL``).

The ELF structures are read with pyelftools (program headers, the dynamic section, GNU version needs and
the version of each dynamic symbol), not with ``buildkit.kmod.elf``, which reads what kernel modules have.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection, DynamicTag
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection

__all__ = ["BASE_LIBRARIES", "DISTRO_LIBRARIES", "ElfInfo", "Floor", "elf_files", "floor", "floor_checks",
           "is_elf", "read_elf", "glibc_symbols"]

#: The C runtime every build needs: glibc's libraries, the loader, GCC's unwinder.
BASE_LIBRARIES: tuple[tuple[str, str], ...] = (
    ("libc.so.*", "glibc"), ("libm.so.*", "glibc"), ("libpthread.so.*", "glibc"), ("libdl.so.*", "glibc"),
    ("librt.so.*", "glibc"), ("libutil.so.*", "glibc"), ("libcrypt.so.*", "glibc or libxcrypt (_crypt)"),
    ("ld-linux*.so*", "the dynamic loader"), ("ld64.so.*", "the dynamic loader"),
    ("libgcc_s.so.*", "GCC's runtime"),
)
#: The distribution libraries of CPython's optional modules (read from what lib-dynload of real builds needs).
DISTRO_LIBRARIES: tuple[tuple[str, str], ...] = (
    ("libz.so.*", "zlib, binascii"), ("libbz2.so.*", "_bz2"), ("liblzma.so.*", "_lzma"), ("libffi.so.*", "_ctypes"),
    ("libreadline.so.*", "readline"), ("libedit.so.*", "readline (libedit)"),
    ("libncursesw.so.*", "_curses"), ("libncurses.so.*", "_curses"), ("libtinfo.so.*", "_curses, readline"),
    ("libpanelw.so.*", "_curses_panel"), ("libpanel.so.*", "_curses_panel"),
    ("libgdbm.so.*", "_gdbm"), ("libgdbm_compat.so.*", "_dbm"), ("libdb-*.so", "_dbm (Berkeley DB)"),
    ("libuuid.so.*", "_uuid"), ("libexpat.so.*", "pyexpat (--with-system-expat)"),
    ("libmpdec.so.*", "_decimal (--with-system-libmpdec)"), ("libb2.so.*", "_blake2 (libb2)"),
    ("libtk*.so*", "_tkinter"), ("libtcl*.so*", "_tkinter"), ("libX11.so.*", "_tkinter"),
    ("libnsl.so.*", "_nis"), ("libtirpc.so.*", "_nis"),
)
#: Allowed from the system only when the build has no private copy of them.
SYSTEM_TLS_SQLITE: tuple[tuple[str, str], ...] = (
    ("libssl.so.*", "the system's OpenSSL"), ("libcrypto.so.*", "the system's OpenSSL"),
    ("libsqlite3.so.*", "the system's SQLite"),
)
#: Prefixes shared with the rest of the system: only the interpreter's own files are read there.
SYSTEM_PREFIXES = ("/", "/usr", "/usr/local")
_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}
_SKIP_SUFFIXES = (".py", ".pyc", ".txt", ".h", ".a", ".o", ".pem", ".json", ".html", ".rst", ".tcl", ".decTest")
_GLIBC = re.compile(r"^GLIBC_(\d+(?:\.\d+)+)$")

DF_TEXTREL, DF_BIND_NOW = 0x4, 0x8
DF_1_NOW = 0x1
PF_X = 0x1


class FloorError(ValueError):
    """An ELF file that cannot be read; the message names it."""


@dataclass(frozen=True)
class ElfInfo:
    path: str
    type: str  # ET_EXEC | ET_DYN
    soname: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    glibc: str | None  # the highest GLIBC_ version needed, e.g. "2.34"
    relro: str  # full | partial | none
    nx_stack: bool
    textrel: bool
    glibc_versions: tuple[str, ...] = ()  # every GLIBC_ version needed, oldest first

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.type, "soname": self.soname, "needed": list(self.needed),
                "rpath": list(self.rpath), "runpath": list(self.runpath), "glibc": self.glibc, "relro": self.relro,
                "nx_stack": self.nx_stack, "textrel": self.textrel}


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def _tag_string(tag: DynamicTag) -> str:
    """The string of a DT_NEEDED, DT_SONAME, DT_RPATH or DT_RUNPATH entry. pyelftools sets it as an attribute
    named after the tag (``tag.needed``, ``tag.soname``...), which its type hints do not declare; this reads it
    the way its own ``DynamicTag.__str__`` does."""
    return getattr(tag, tag.entry.d_tag[3:].lower())


def read_elf(path: str) -> ElfInfo | None:
    """The floor facts of one file; ``None`` for an ELF file that is not an executable or shared object
    (an ``ET_REL`` object such as ``config-3.11/python.o``). Raises :class:`FloorError` when unreadable."""
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            kind = elf.header["e_type"]
            if kind not in ("ET_EXEC", "ET_DYN"):
                return None
            relro = False
            stack_flags: int | None = None
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_GNU_RELRO":
                    relro = True
                elif seg["p_type"] == "PT_GNU_STACK":
                    stack_flags = seg["p_flags"]
            needed: list[str] = []
            rpath: list[str] = []
            runpath: list[str] = []
            soname = None
            flags = flags_1 = 0
            textrel = bind_now = False
            glibc: list[str] = []
            for sec in elf.iter_sections():
                if isinstance(sec, DynamicSection):
                    for tag in sec.iter_tags():
                        t = tag.entry.d_tag
                        if t == "DT_NEEDED":
                            needed.append(_tag_string(tag))
                        elif t == "DT_SONAME":
                            soname = _tag_string(tag)
                        elif t == "DT_RPATH":
                            rpath.extend(p for p in _tag_string(tag).split(":") if p)
                        elif t == "DT_RUNPATH":
                            runpath.extend(p for p in _tag_string(tag).split(":") if p)
                        elif t == "DT_FLAGS":
                            flags = tag.entry.d_val
                        elif t == "DT_FLAGS_1":
                            flags_1 = tag.entry.d_val
                        elif t == "DT_TEXTREL":
                            textrel = True
                        elif t == "DT_BIND_NOW":
                            bind_now = True
                elif isinstance(sec, GNUVerNeedSection):
                    for _need, auxiliaries in sec.iter_versions():
                        for aux in auxiliaries:
                            m = _GLIBC.match(aux.name)
                            if m:
                                glibc.append(m.group(1))
    except (ELFError, OSError, ValueError, KeyError, AssertionError) as e:  # pyelftools' errors on a broken file
        raise FloorError(f"{path}: cannot read it as ELF ({e})") from None
    full = relro and (bind_now or bool(flags & DF_BIND_NOW) or bool(flags_1 & DF_1_NOW))
    return ElfInfo(
        path=path, type=kind, soname=soname, needed=tuple(needed), rpath=tuple(rpath), runpath=tuple(runpath),
        glibc=max(glibc, key=_version_key) if glibc else None,
        relro="full" if full else "partial" if relro else "none",
        nx_stack=stack_flags is not None and not stack_flags & PF_X,
        textrel=textrel or bool(flags & DF_TEXTREL),
        glibc_versions=tuple(sorted(set(glibc), key=_version_key)),
    )


def glibc_symbols(path: str, version: str) -> list[str]:
    """The dynamic symbols of ``path`` bound to ``GLIBC_<version>`` (``.gnu.version`` against ``.dynsym``)."""
    wanted = f"GLIBC_{version}"
    with open(path, "rb") as f:
        elf = ELFFile(f)
        indices: set[int] = set()
        versym = dynsym = None
        for sec in elf.iter_sections():
            if isinstance(sec, GNUVerNeedSection):
                for _need, auxiliaries in sec.iter_versions():
                    indices.update(aux["vna_other"] for aux in auxiliaries if aux.name == wanted)
            elif isinstance(sec, GNUVerSymSection):
                versym = sec
            elif isinstance(sec, SymbolTableSection) and sec["sh_type"] == "SHT_DYNSYM":
                dynsym = sec
        if versym is None or dynsym is None:
            return []
        names = []
        for i in range(dynsym.num_symbols()):
            ndx = versym.get_symbol(i)["ndx"]
            if isinstance(ndx, int) and ndx & 0x7FFF in indices:
                names.append(dynsym.get_symbol(i).name)
        return sorted(set(names))


def _walk(root: str) -> Iterable[str]:
    if os.path.isfile(root):
        yield root
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            path = os.path.join(folder, name)
            if not name.endswith(_SKIP_SUFFIXES) and not os.path.islink(path) and os.path.isfile(path):
                yield path


def is_elf(path: str) -> bool:
    """Whether ``path`` starts with the ELF magic (unreadable: no)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def elf_files(roots: Sequence[str]) -> list[str]:
    """The ELF files under ``roots`` (files or folders; symbolic links are not followed, each file once)."""
    seen: set[str] = set()
    out = []
    for root in roots:
        for path in _walk(root):
            real = os.path.realpath(path)
            if real not in seen and is_elf(path):
                seen.add(real)
                out.append(path)
    return out


@dataclass(frozen=True)
class Floor:
    files: tuple[ElfInfo, ...]
    roots: tuple[str, ...]
    private: bool  # the build has a private OpenSSL or SQLite
    glibc_max: str | None = None  # a portable build's target: no file may need a newer GLIBC_ version
    self_contained: bool = False  # a portable build: only the C runtime and its own libraries may be needed

    @property
    def glibc(self) -> str | None:
        versions = [f.glibc for f in self.files if f.glibc]
        return max(versions, key=_version_key) if versions else None

    @property
    def glibc_files(self) -> list[ElfInfo]:
        return [f for f in self.files if f.glibc == self.glibc]

    def own_sonames(self) -> dict[str, str]:
        return {f.soname or os.path.basename(f.path): f.path for f in self.files if f.type == "ET_DYN"}

    def classify(self, library: str) -> str | None:
        """Why ``library`` may be needed, or ``None`` when it is outside the allow-list."""
        own = self.own_sonames()
        if library in own:
            return "the install's own (" + own[library] + ")"
        if self.self_contained:
            tables = BASE_LIBRARIES
        else:
            tables = BASE_LIBRARIES + DISTRO_LIBRARIES + (() if self.private else SYSTEM_TLS_SQLITE)
        for pattern, what in tables:
            if fnmatch.fnmatchcase(library, pattern):
                return what
        return None

    def to_json(self) -> dict[str, Any]:
        top = self.glibc_files
        return {"roots": list(self.roots), "glibc": self.glibc, "glibc_files": [f.path for f in top],
                "needed": {lib: self.classify(lib) for lib in sorted({n for f in self.files for n in f.needed})},
                "files": [f.to_json() for f in self.files]}


def floor(roots: Sequence[str], private: bool, glibc_max: str | None = None, self_contained: bool = False) -> Floor:
    """Read every ELF file under ``roots``. Raises :class:`FloorError` naming a file that cannot be read.
    ``glibc_max`` and ``self_contained``: what a portable build promises (see :class:`Floor`)."""
    files = []
    for path in elf_files(roots):
        info = read_elf(path)
        if info is not None:
            files.append(info)
    return Floor(tuple(files), tuple(roots), private, glibc_max, self_contained)


def _short(path: str, roots: Sequence[str]) -> str:
    for root in sorted(roots, key=len, reverse=True):
        if path.startswith(root.rstrip("/") + "/"):
            return os.path.relpath(path, os.path.dirname(root.rstrip("/")))
    return path


def floor_checks(fl: Floor) -> list[tuple[str, bool, str, bool]]:
    """(name, ok, detail, required) of the three checks: glibc floor, linked libraries, hardening."""
    roots = fl.roots
    out: list[tuple[str, bool, str, bool]] = []
    if not fl.files:
        return [("glibc floor", False, "no ELF executable or shared object under " + ", ".join(roots), True)]
    if fl.glibc is None:
        out.append(("glibc floor", True, f"{len(fl.files)} ELF files need no GLIBC_ symbol version", True))
    elif fl.glibc_max and _version_key(fl.glibc) > _version_key(fl.glibc_max):
        over = [f for f in fl.files if f.glibc and _version_key(f.glibc) > _version_key(fl.glibc_max)]
        who = []
        for f in over[:3]:
            assert f.glibc is not None  # over holds only files that need one
            newer = [v for v in f.glibc_versions if _version_key(v) > _version_key(fl.glibc_max)]
            symbols = [s for v in sorted(newer, key=_version_key, reverse=True) for s in glibc_symbols(f.path, v)]
            who.append(f"{_short(f.path, roots)} ({', '.join(symbols[:3]) or 'GLIBC_' + f.glibc})")
        more = f" and {len(over) - 3} more files" if len(over) > 3 else ""
        out.append(("glibc floor", False, f"{len(over)} of {len(fl.files)} ELF files need a glibc newer than "
                    f"{fl.glibc_max}, the target: {'; '.join(who)}{more}", True))
    else:
        top = fl.glibc_files
        who = []
        for f in top[:3]:
            symbols = glibc_symbols(f.path, fl.glibc)
            shown = ", ".join(symbols[:3]) + (f" and {len(symbols) - 3} more" if len(symbols) > 3 else "")
            who.append(_short(f.path, roots) + (f" ({shown})" if shown else ""))
        if len(top) > 3:
            who.append(f"{len(top) - 3} more")
        target = f" (target <= {fl.glibc_max})" if fl.glibc_max else ""
        out.append(("glibc floor", True, f"runs on hosts with glibc >= {fl.glibc}{target}: GLIBC_{fl.glibc} needed by "
                    f"{', '.join(who)}; {len(fl.files)} ELF files read", True))

    bad = [(f, lib) for f in fl.files for lib in f.needed if fl.classify(lib) is None]
    if bad:
        first = "; ".join(f"{_short(f.path, roots)} needs {lib}" for f, lib in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        hint = ("a private OpenSSL/SQLite library from outside the install" if any(
            fnmatch.fnmatchcase(lib, p) for _f, lib in bad for p, _w in SYSTEM_TLS_SQLITE) else
                "a library outside the allow-list: the host that runs this build must have it")
        out.append(("linked libraries (DT_NEEDED)", False, f"{first}{more}: {hint}; rebuild without it, or "
                    "check that the module that needs it is one you want", True))
    else:
        libs = sorted({lib for f in fl.files for lib in f.needed})
        own = [lib for lib in libs if lib in fl.own_sonames()]
        base = [lib for lib in libs if lib not in own and any(fnmatch.fnmatchcase(lib, p) for p, _ in BASE_LIBRARIES)]
        rest = [lib for lib in libs if lib not in own and lib not in base]
        parts = [f"C runtime {', '.join(base)}"]
        if own:
            parts.append(f"the install's own {', '.join(own)}")
        if rest:
            parts.append("distribution libraries " + ", ".join(f"{lib} ({fl.classify(lib)})" for lib in rest))
        out.append(("linked libraries (DT_NEEDED)", True, "all in the allow-list: " + "; ".join(parts), True))

    partial = [f for f in fl.files if f.relro == "partial"]
    none = [f for f in fl.files if f.relro == "none"]
    execstack = [f for f in fl.files if not f.nx_stack]
    textrel = [f for f in fl.files if f.textrel]

    def names(files: list[ElfInfo]) -> str:
        return ", ".join(_short(f.path, roots) for f in files[:3]) + (f" and {len(files) - 3} more"
                                                                      if len(files) > 3 else "")
    full = len(fl.files) - len(partial) - len(none)
    detail = f"RELRO full {full}, partial {len(partial)}, none {len(none)}"
    if none:
        detail += f" (no RELRO: {names(none)})"
    detail += f"; executable stack: {names(execstack) if execstack else 'none'}"
    detail += f"; text relocations: {names(textrel) if textrel else 'none'}"
    out.append(("hardening", not (none or execstack or textrel), detail, False))
    return out
