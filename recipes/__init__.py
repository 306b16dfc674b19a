"""Recipes: one short declarative class per component. ``RECIPES`` maps a catalog package to its recipe;
importing this package registers them with the planner (:func:`buildkit.pybuild.recipe.register`).

zlib, bzip2, xz, libffi, ncurses, readline and util-linux (libuuid) are built only by portable builds
(``--portable``): static, for the standard library's zlib, bz2, lzma, ctypes, curses, readline and _uuid
modules, which a plain build takes from the host's -dev packages; linux-uapi (kernel headers newer than the
glibc sysroot's) is installed only there too."""

from __future__ import annotations

from buildkit.pybuild.recipe import register
from recipes.bzip2 import Bzip2
from recipes.cpython import CPython
from recipes.libffi import Libffi
from recipes.linux_uapi import LinuxUapi
from recipes.ncurses import Ncurses
from recipes.openssl import OpenSSL
from recipes.readline import Readline
from recipes.sqlite import SQLite
from recipes.util_linux import UtilLinux
from recipes.xz import Xz
from recipes.zlib import Zlib

RECIPES = {r.package: r for r in (LinuxUapi(), Zlib(), Bzip2(), Xz(), Libffi(), Ncurses(), Readline(), UtilLinux(),
                                  OpenSSL(), SQLite(), CPython())}
register(*RECIPES.values())

__all__ = ["RECIPES", "Bzip2", "CPython", "Libffi", "LinuxUapi", "Ncurses", "OpenSSL", "Readline", "SQLite",
           "UtilLinux", "Xz", "Zlib"]
