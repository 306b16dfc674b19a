"""Recipes: one short declarative class per component. ``RECIPES`` maps a catalog package to its recipe:
the table :mod:`buildkit.pybuild.plan` builds from. Installed as ``buildkit.recipes`` (pyproject's
package-dir); in a checkout, ``buildkit/__init__.py`` finds it here, beside ``buildkit/``.

zlib, bzip2, xz, libffi, ncurses, readline and util-linux (libuuid) are built only by portable builds
(``--portable``): static, for the standard library's zlib, bz2, lzma, ctypes, curses, readline and _uuid
modules, which a plain build takes from the host's -dev packages; linux-uapi (kernel headers newer than the
glibc sysroot's) is installed only there too."""

from __future__ import annotations

from buildkit.pybuild.recipe import Recipe

from .bzip2 import Bzip2
from .cpython import CPython
from .libffi import Libffi
from .linux_uapi import LinuxUapi
from .ncurses import Ncurses
from .openssl import OpenSSL
from .readline import Readline
from .sqlite import SQLite
from .util_linux import UtilLinux
from .xz import Xz
from .zlib import Zlib

RECIPES: dict[str, Recipe] = {r.package: r for r in (LinuxUapi(), Zlib(), Bzip2(), Xz(), Libffi(), Ncurses(),
                                                      Readline(), UtilLinux(), OpenSSL(), SQLite(), CPython())}
__all__ = ["RECIPES", "Bzip2", "CPython", "Libffi", "LinuxUapi", "Ncurses", "OpenSSL", "Readline", "SQLite",
           "UtilLinux", "Xz", "Zlib"]
