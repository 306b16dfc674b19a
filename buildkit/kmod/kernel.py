"""Facts about a kernel tree and its rules that both ``resolve`` and ``diagnose`` need, and where a kernel's
files are (:class:`KernelPlace`) however it is named: headers, ``/lib/modules/VER``, ``symvers-VER.gz``."""

from __future__ import annotations

import os
import re
from typing import NamedTuple

__all__ = ["GPL_COMPATIBLE", "KernelPlace", "at_headers", "at_modules_dir", "at_symvers_file", "import_ns_line",
           "kernel_version_from_tree", "module_tree", "releases_under", "root_of_modules"]

# modpost's license_is_gpl_compatible() (include/linux/license.h).
GPL_COMPATIBLE = ("GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL")


def kernel_version_from_tree(kerneldir: str | None) -> tuple[int, int] | None:
    """(major, minor) of a kernel tree on disk: ``include/config/kernel.release``, ``utsrelease.h`` or
    the ``VERSION``/``PATCHLEVEL`` of its Makefile (a Debian headers Makefile only includes another)."""
    if not kerneldir or not os.path.isdir(kerneldir):
        return None
    for rel in ("include/config/kernel.release", "include/generated/utsrelease.h"):
        text = _read_small(os.path.join(kerneldir, rel))
        m = re.search(r"(\d+)\.(\d+)", text)
        if m:
            return int(m[1]), int(m[2])
    makefile = os.path.join(kerneldir, "Makefile")
    for _ in range(3):
        text = _read_small(makefile)
        major = re.search(r"^VERSION\s*=\s*(\d+)", text, re.M)
        minor = re.search(r"^PATCHLEVEL\s*=\s*(\d+)", text, re.M)
        if major and minor:
            return int(major[1]), int(minor[1])
        included = re.search(r"^include\s+(/\S+/Makefile)\s*$", text, re.M)
        if not included:
            break
        makefile = included[1]
    return None


def _read_small(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(65536)
    except OSError:
        return ""


def import_ns_line(namespace: str, version: tuple[int, int] | None) -> str:
    """The ``MODULE_IMPORT_NS`` line for a kernel: a string literal from 6.13 on (commit cdd30ebb1b9f)."""
    if version is not None and version >= (6, 13):
        return f'MODULE_IMPORT_NS("{namespace}");'
    return f"MODULE_IMPORT_NS({namespace});"


def kernel_release_string(kerneldir: str) -> str | None:
    """The full release (``6.1.0-50-amd64``) of the kernel whose headers are in ``kerneldir``: UTS_RELEASE,
    what ``uname -r`` prints (Debian's ``include/config/kernel.release`` holds the upstream ``6.1.192``)."""
    for rel in ("include/generated/utsrelease.h", "include/config/kernel.release"):
        found = re.search(r"(\d+\.\d+[^\s\"]*)", _read_small(os.path.join(kerneldir, rel)))
        if found:
            return found[1]
    return None


class KernelPlace(NamedTuple):
    """Where one kernel's files are, however it was named: every command that takes a kernel derives its
    paths from here. ``root`` is the filesystem the kernel is installed in ("/" or a ``dpkg -x`` folder)."""

    release: str
    root: str
    modules_dir: str | None  # ROOT/lib/modules/VER: the in-tree modules
    build_dir: str | None  # the headers kbuild's -C gets (their Module.symvers)

    def boot(self, name: str) -> str:
        """``ROOT/boot/NAME-VER`` (config, System.map, vmlinuz, symvers ... .gz)."""
        return os.path.join(self.root, "boot", f"{name}-{self.release}")

    def symvers_candidates(self) -> list[str]:
        """Where the kernel's export table may be, in the order it is looked for: the headers'
        Module.symvers (Debian, and any kernel with its headers), /boot/symvers-VER.gz (RHEL, Alibaba Cloud
        Linux), VER/symvers.gz."""
        found = [os.path.join(self.build_dir, "Module.symvers")] if self.build_dir else []
        if self.modules_dir and not self.build_dir:
            found.append(os.path.join(self.modules_dir, "build", "Module.symvers"))
        found.append(self.boot("symvers") + ".gz")
        if self.modules_dir:
            found.append(os.path.join(self.modules_dir, "symvers.gz"))
        return found

    @property
    def symvers_path(self) -> str | None:
        return next((c for c in self.symvers_candidates() if os.path.isfile(c)), None)

    def system_map_candidates(self) -> list[str]:
        """System.map of this kernel where it exists: beside the headers, the root's /boot (Debian's is a
        placeholder), the linux-image-VER-dbg package's, /proc/kallsyms when it is the running kernel."""
        found = [os.path.join(self.build_dir, "System.map")] if self.build_dir else []
        found += [self.boot("System.map"), os.path.join(self.root, "usr", "lib", "debug", "boot",
                                                        f"System.map-{self.release}")]
        if os.path.realpath(self.root) == "/" and self.release == os.uname().release:
            found.append("/proc/kallsyms")
        return [p for p in found if os.path.isfile(p)]

    @property
    def vmlinuz(self) -> str | None:
        """The kernel image: ``/lib/modules/VER/vmlinuz`` (RHEL, Fedora) or the root's ``/boot/vmlinuz-VER``
        (Debian)."""
        if not self.modules_dir:
            return None
        return next((p for p in (os.path.join(self.modules_dir, "vmlinuz"), self.boot("vmlinuz"))
                     if os.path.isfile(p)), None)


def root_of_modules(modules_dir: str) -> str:
    """The root a ``ROOT/lib/modules/VER`` (or merged-/usr ``ROOT/usr/lib/modules/VER``) is under; "/" for a
    folder elsewhere."""
    parts = os.path.abspath(modules_dir).rstrip("/").split("/")
    if len(parts) >= 3 and parts[-3:-1] == ["lib", "modules"]:
        root = "/".join(parts[:-3]) or "/"
        return root[:-4] or "/" if root.endswith("/usr") else root
    return "/"


def at_modules_dir(modules_dir: str) -> KernelPlace:
    """The kernel of ``ROOT/lib/modules/VER``: its release is the folder's name, its headers the ``build``
    link (when it holds a Module.symvers)."""
    build = os.path.join(modules_dir, "build")
    return KernelPlace(os.path.basename(modules_dir.rstrip("/")), root_of_modules(modules_dir), modules_dir,
                       build if os.path.isfile(os.path.join(build, "Module.symvers")) else None)


def at_headers(build_dir: str) -> KernelPlace | None:
    """The kernel of a headers folder (None: it names no release): its modules are its parent when reached
    through ``VER/build``, else ``ROOT/lib/modules/VER`` of the root the headers are under
    (``ROOT/usr/src/linux-headers-*``)."""
    release = kernel_release_string(build_dir)
    if release is None:
        return None
    real = os.path.realpath(build_dir)
    root = real[: real.find("/usr/src/")] or "/" if "/usr/src/" in real else "/"
    parent = os.path.dirname(os.path.abspath(build_dir).rstrip("/"))
    tree = parent if os.path.isdir(os.path.join(parent, "kernel")) else os.path.join(root, "lib", "modules", release)
    return KernelPlace(release, root, tree if os.path.isdir(os.path.join(tree, "kernel")) else None, build_dir)


def at_symvers_file(path: str, release: str) -> KernelPlace:
    """The kernel of ``ROOT/boot/symvers-VER.gz``."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(path))) or "/"
    tree = os.path.join(root, "lib", "modules", release)
    modules_dir = tree if os.path.isdir(tree) else None
    build = os.path.join(modules_dir, "build") if modules_dir else None
    return KernelPlace(release, root, modules_dir, build if build and os.path.isdir(build) else None)


def releases_under(root: str) -> list[str]:
    """The release folders of ``ROOT/lib/modules`` and ``ROOT/usr/lib/modules``, sorted by release, each
    kernel once (a merged-/usr root, /lib -> usr/lib, shows each twice)."""
    found: dict[str, str] = {}
    for base in (os.path.join(root, "lib", "modules"), os.path.join(root, "usr", "lib", "modules")):
        if os.path.isdir(base):
            for name in sorted(os.listdir(base)):
                path = os.path.join(base, name)
                if os.path.isdir(path):
                    found.setdefault(os.path.realpath(path), path)
    return sorted(found.values(), key=os.path.basename)


def module_tree(kerneldir: str) -> str | None:
    """``/lib/modules/<release>`` of the headers ``kerneldir`` (see :func:`at_headers`)."""
    place = at_headers(kerneldir)
    return place.modules_dir if place is not None else None
