"""Facts about a kernel tree and its rules that both ``resolve`` and ``diagnose`` need."""

from __future__ import annotations

import os
import re

__all__ = ["GPL_COMPATIBLE", "import_ns_line", "kernel_version_from_tree"]

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


def module_tree(kerneldir: str) -> str | None:
    """``/lib/modules/<release>`` of these headers: their parent when reached through its ``build`` link,
    else found from the release under the same root (``<root>/usr/src/linux-headers-*``)."""
    parent = os.path.dirname(kerneldir.rstrip("/"))
    if os.path.isdir(os.path.join(parent, "kernel")):
        return parent
    release = kernel_release_string(kerneldir)
    if release is None:
        return None
    real = os.path.realpath(kerneldir)
    root = real[: real.find("/usr/src/")] if "/usr/src/" in real else ""
    tree = os.path.join(root or "/", "lib", "modules", release)
    return tree if os.path.isdir(os.path.join(tree, "kernel")) else None
