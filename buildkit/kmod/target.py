"""A target kernel, read offline from its files: what the module loader of that kernel will compare a
module with.

A TARGET is any of:

* ``/lib/modules/VER`` (its ``build/`` headers or ``/boot/symvers-VER.gz``, its in-tree modules);
* a kernel headers directory (``Module.symvers``, ``include/config/auto.conf``);
* ``/boot/symvers-VER.gz`` (RHEL-family), with ``config-VER`` beside it;
* a folder holding one of these, such as the root of unpacked packages (``dpkg -x``).

From them: the release, its vermagic (an in-tree module's ``vermagic=``, else built from the config the
way ``include/linux/vermagic.h`` does), the configuration, every export with its CRC, type, namespace and
owner, the in-tree module files by name, and who built it (Debian patches the loader).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from typing import Literal

from buildkit.errors import InputError
from buildkit.kmod.kernel import KernelPlace, at_headers, at_modules_dir, at_symvers_file, releases_under
from buildkit.kmod.modfile import MODULE_SUFFIXES, module_name
from buildkit.kmod.symvers import Symvers, SymversEntry, gunzip, parse_symvers

__all__ = ["KernelTarget", "TargetError", "read_target"]

_EM_BY_ARCH = {"x86_64": 62, "x86": 62, "amd64": 62, "i386": 3, "arm64": 183, "aarch64": 183, "arm": 40,
               "ppc64le": 21, "powerpc": 21, "s390": 22, "riscv": 243}


class TargetError(InputError):
    """A TARGET that is not a kernel buildkit can read."""


@dataclass
class KernelTarget:
    spec: str  # what the user named
    release: str  # 6.1.0-57-amd64
    version: tuple[int, int]
    vermagic: str
    vermagic_from: str  # where the vermagic string was read
    config: dict[str, str]
    symvers: Symvers
    symvers_path: str
    build_dir: str | None  # the headers, to rebuild against
    modules_dir: str | None  # /lib/modules/VER with the in-tree modules
    vendor: str  # "debian", "rhel" or "upstream"
    machine: int  # ELF e_machine of the kernel's architecture
    root: str = "/"  # the filesystem it is installed in ("/" or a dpkg -x folder)
    _module_files: dict[str, str] | None = field(default=None, repr=False)
    _by_owner: dict[str, list[SymversEntry]] | None = field(default=None, repr=False)
    _records: dict[tuple[bool, str], dict[bytes, bytes]] = field(default_factory=dict, repr=False)
    _vmlinux_names: frozenset[bytes] | None = field(default=None, repr=False)
    _struct_module: tuple[int | None] | None = field(default=None, repr=False)

    def enabled(self, option: str) -> bool:
        return self.config.get(option) in ("y", "m")

    @property
    def sig_force(self) -> bool:
        return self.enabled("CONFIG_MODULE_SIG_FORCE")

    def export(self, symbol: str) -> SymversEntry | None:
        return self.symvers.get(symbol)

    @property
    def module_layout_crc(self) -> int | None:
        entry = self.symvers.get("module_layout")
        return entry.crc if entry is not None else None

    def module_files(self) -> dict[str, str]:
        """In-tree module name -> file (``modules.order`` names first, then whatever else is there)."""
        if self._module_files is None:
            found: dict[str, str] = {}
            if self.modules_dir:
                for root, dirs, files in os.walk(self.modules_dir):
                    dirs[:] = [d for d in dirs if d not in ("build", "source")]
                    for f in files:
                        if f.endswith(MODULE_SUFFIXES):
                            found.setdefault(module_name(f), os.path.join(root, f))
            self._module_files = found
        return self._module_files

    @property
    def place(self) -> KernelPlace:
        return KernelPlace(self.release, self.root, self.modules_dir, self.build_dir)

    @property
    def vmlinuz(self) -> str | None:
        """The kernel image beside the modules (None when it is not there): see KernelPlace.vmlinuz."""
        return self.place.vmlinuz

    @property
    def struct_module_size(self) -> int | None:
        """sizeof(struct module) of this kernel, as its in-tree modules have it (the size of their
        ``.gnu.linkonce.this_module``), read from the one its vermagic came from; None without in-tree
        modules (the vermagic then came from the configuration)."""
        if self._struct_module is None:
            size = None
            if os.path.isfile(self.vermagic_from):
                from buildkit.kmod.elf import ElfFile
                from buildkit.kmod.modfile import read_module_bytes

                path = self.vermagic_from
                section = ElfFile(read_module_bytes(path), path).find(".gnu.linkonce.this_module")
                size = section.size if section is not None else None
            self._struct_module = (size,)
        return self._struct_module[0]

    def version_records(self, is64: bool, order: str) -> dict[bytes, bytes]:
        """The ``__versions`` record (``struct modversion_info``, 64 bytes) a module built against this
        kernel holds for each vmlinux export that has a CRC and no namespace, mapped to the symbol's name:
        a module's records found here are symbols the loader accepts from vmlinux without a word."""
        key = (is64, order)
        if key not in self._records:
            size = 8 if is64 else 4
            endian: Literal["little", "big"] = "little" if order == "<" else "big"
            width = 64 - size
            records: dict[bytes, bytes] = {}
            for entry in self.symvers.first_entries():
                name = entry.symbol.encode("latin-1")
                if entry.in_vmlinux and entry.crc is not None and not entry.namespace and len(name) < width:
                    records[entry.crc.to_bytes(size, endian) + name.ljust(width, b"\0")] = name
            self._records[key] = records
        return self._records[key]

    @property
    def vmlinux_names(self) -> frozenset[bytes]:
        """Every symbol vmlinux exports, as bytes (latin-1)."""
        if self._vmlinux_names is None:
            self._vmlinux_names = frozenset(e.symbol.encode("latin-1") for e in self.symvers.first_entries()
                                            if e.in_vmlinux)
        return self._vmlinux_names

    def exports_of(self, owner: str) -> list[SymversEntry]:
        """The exports of one in-tree module, by its kernel name (``Module.symvers`` names it by path)."""
        if self._by_owner is None:
            table: dict[str, list[SymversEntry]] = {}
            for e in self.symvers.entries:
                if not e.in_vmlinux:
                    table.setdefault(module_name(e.module), []).append(e)
            self._by_owner = table
        return self._by_owner.get(owner, [])


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    return gunzip(data, path).decode("utf-8", "replace")


def _parse_config(text: str) -> dict[str, str]:
    config = {}
    for line in text.splitlines():
        m = re.match(r"(CONFIG_\w+)=(.*)", line)
        if m:
            config[m[1]] = m[2].strip('"')
    return config


def _version(release: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release)
    if not m:
        raise TargetError(f"cannot tell the kernel version from release {release!r}",
                          fix="name /lib/modules/VER or a headers directory with include/config/kernel.release")
    return int(m[1]), int(m[2])


def _vermagic_from_config(release: str, config: dict[str, str], version: tuple[int, int]) -> str:
    """``VERMAGIC_STRING`` of include/linux/vermagic.h for x86 (no arch suffix there)."""
    def on(option: str) -> bool:
        return config.get(option) in ("y", "m")

    preempt = on("CONFIG_PREEMPT_BUILD") if version >= (5, 17) else on("CONFIG_PREEMPT")
    parts = [release, "SMP " if on("CONFIG_SMP") else "", "preempt " if preempt else "",
             "preempt_rt " if on("CONFIG_PREEMPT_RT") else "", "mod_unload " if on("CONFIG_MODULE_UNLOAD") else "",
             "modversions " if on("CONFIG_MODVERSIONS") else ""]
    return parts[0] + " " + "".join(parts[1:])


def _vermagic(modules_dir: str | None, release: str, config: dict[str, str],
              version: tuple[int, int]) -> tuple[str, str]:
    """An in-tree module's ``vermagic=`` (the kernel's own VERMAGIC_STRING), else the config's."""
    if modules_dir:
        order = _read(os.path.join(modules_dir, "modules.order")).split()
        candidates = [os.path.join(modules_dir, p) for p in order[:5]]
        candidates += glob.glob(os.path.join(modules_dir, "kernel", "*", "*.ko*"))[:5]
        from buildkit.kmod.modfile import read_module

        for path in candidates:
            if os.path.isfile(path):
                try:
                    magic = read_module(path).vermagic
                except InputError:
                    continue
                if magic:
                    return magic, path
    if not config:
        raise TargetError(f"kernel {release}: no in-tree module and no configuration to read its vermagic from",
                          fix="name /lib/modules/VER with its modules, or headers with include/config/auto.conf")
    return _vermagic_from_config(release, config, version), "the configuration"


def _is_debian(root: str, release: str, build_dir: str | None) -> bool:
    docs = glob.glob(os.path.join(root, "usr/share/doc", f"linux-*{release}*", "changelog.Debian.gz"))
    if docs:
        return True
    if build_dir:  # Debian's arch headers include the -common tree by absolute path
        makefile = _read(os.path.join(build_dir, "Makefile"))
        return bool(re.search(r"^include .*linux-headers-.*-common/Makefile", makefile, re.M))
    return False


def _symvers_file(path: str) -> Symvers:
    text = _read(path)
    if not text:
        raise TargetError(f"{path}: empty or unreadable", fix="name a Module.symvers or symvers-VER.gz of the kernel")
    return parse_symvers(text, path)


def read_target(spec: str, *, release: str | None = None) -> KernelTarget:
    """Read TARGET ``spec`` (see the module's docstring); ``release`` picks one when a root holds several."""
    path = spec.rstrip("/") or "/"
    if not os.path.exists(path):
        raise TargetError(f"{spec}: no such file or directory",
                          fix="name /lib/modules/VER, a kernel headers directory, /boot/symvers-VER.gz or a dpkg root")
    if os.path.isfile(path):
        return _from_symvers_gz(spec, path)
    if os.path.isfile(os.path.join(path, "Module.symvers")) and not os.path.isdir(os.path.join(path, "kernel")):
        return _from_headers(spec, path)
    if os.path.isdir(os.path.join(path, "kernel")) or os.path.isfile(os.path.join(path, "modules.order")):
        return _from_modules_dir(spec, path)
    trees = [t for t in releases_under(path) if os.path.isdir(os.path.join(t, "kernel")) or
             os.path.isfile(os.path.join(t, "build", "Module.symvers"))]
    if release:
        trees = [t for t in trees if os.path.basename(t) == release]
    if len(trees) == 1:
        return _from_modules_dir(spec, trees[0])
    headers = sorted(h for h in glob.glob(os.path.join(path, "usr", "src", "linux-headers-*"))
                     if os.path.isfile(os.path.join(h, "Module.symvers")))
    if not trees and len(headers) == 1:
        return _from_headers(spec, headers[0])
    if len(trees) > 1:
        names = ", ".join(os.path.basename(t) for t in trees)
        raise TargetError(f"{spec}: holds several kernels ({names})", fix="name one: TARGET/lib/modules/VER")
    raise TargetError(f"{spec}: not a kernel: no Module.symvers, lib/modules/VER or symvers-VER.gz found",
                      fix="name /lib/modules/VER, a kernel headers directory, /boot/symvers-VER.gz or a dpkg root")


def _arch_machine(config: dict[str, str], build_dir: str | None) -> int:
    if config.get("CONFIG_X86_64") == "y":
        return 62
    if config.get("CONFIG_ARM64") == "y":
        return 183
    if build_dir:
        arch = os.path.basename(os.path.realpath(os.path.join(build_dir, "arch", "x86")))
        return _EM_BY_ARCH.get(arch, 62)
    return 62


def _finish(spec: str, place: KernelPlace, config: dict[str, str], symvers: Symvers, symvers_path: str
            ) -> KernelTarget:
    release, build_dir = place.release, place.build_dir
    version = _version(release)
    magic, magic_from = _vermagic(place.modules_dir, release, config, version)
    return KernelTarget(spec, release, version, magic, magic_from, config, symvers, symvers_path, build_dir,
                        place.modules_dir, _vendor(place.root, release, build_dir), _arch_machine(config, build_dir),
                        place.root)


#: RHEL-family releases: 3.10.0-1160.el7.x86_64, 5.10.134-16.al8.x86_64 (Alibaba Cloud Linux), ...
_RHEL_RELEASE = re.compile(r"\.(el|al|an)\d+(_\d+)?(\.|$)")


def _vendor(root: str, release: str, build_dir: str | None) -> str:
    """Whose kernel: "debian", "rhel" (by its release's .elN/.alN part: a /boot/symvers-VER.gz is RHEL's) or
    "upstream". The loader's rules for "rhel" are upstream's (loader_rules.py): no RHEL kernel was booted."""
    if _is_debian(root, release, build_dir):
        return "debian"
    return "rhel" if _RHEL_RELEASE.search(release) else "upstream"


def _headers_config(build_dir: str) -> dict[str, str]:
    for rel in ("include/config/auto.conf", ".config"):
        text = _read(os.path.join(build_dir, rel))
        if text:
            return _parse_config(text)
    return {}


def _from_headers(spec: str, build_dir: str) -> KernelTarget:
    place = at_headers(build_dir)
    if place is None:
        raise TargetError(f"{build_dir}: headers without include/config/kernel.release or utsrelease.h",
                          fix="run 'make modules_prepare' in it, or name /lib/modules/VER")
    path = os.path.join(build_dir, "Module.symvers")
    return _finish(spec, place, _headers_config(build_dir), _symvers_file(path), path)


def _from_modules_dir(spec: str, modules_dir: str) -> KernelTarget:
    place = at_modules_dir(modules_dir)
    symvers_path = place.symvers_path
    if symvers_path is None:
        raise TargetError(f"{modules_dir}: no Module.symvers of kernel {place.release} (looked for "
                          f"{', '.join(place.symvers_candidates())})",
                          fix=f"install its headers (e.g. apt-get install linux-headers-{place.release}) or name them")
    config = _headers_config(place.build_dir) if place.build_dir else {}
    if not config:
        config = _parse_config(_read(place.boot("config")) or _read(os.path.join(modules_dir, "config")))
    return _finish(spec, place, config, _symvers_file(symvers_path), symvers_path)


def _from_symvers_gz(spec: str, path: str) -> KernelTarget:
    name = os.path.basename(path)
    m = re.match(r"symvers-(.+?)(\.gz)?$", name)
    boot = os.path.dirname(os.path.abspath(path))
    if m is None:
        if name == "Module.symvers":
            return _from_headers(spec, boot)
        raise TargetError(f"{path}: not a symvers-VER.gz, Module.symvers or directory",
                          fix="name /boot/symvers-VER.gz, /lib/modules/VER or a headers directory")
    place = at_symvers_file(path, m[1])
    config = _parse_config(_read(os.path.join(boot, f"config-{place.release}")))
    return _finish(spec, place, config, _symvers_file(path), path)
