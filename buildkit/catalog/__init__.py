"""The source catalog: which upstream tarballs buildkit knows, with checksums, and which versions fit.

Data lives in ``sources.toml`` next to this file; this module loads it into frozen dataclasses and answers
"which tarball is CPython 3.11.2", "what is the newest known 3.0 OpenSSL" and "what does CPython 3.13 need".
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from buildkit.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

__all__ = [
    "PACKAGES", "Compat", "Source", "candidates", "compat_for", "django_sqlite_min", "find", "sources", "parse_version",
]

# The first three make every build; the rest are the libraries of a portable build (--portable) only.
PACKAGES = ("cpython", "openssl", "sqlite", "zlib", "bzip2", "xz", "libffi", "ncurses", "readline", "util-linux")
CATALOG = Path(__file__).with_name("sources.toml")


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    url: str
    filename: str
    sha256: str
    license: str
    checksum_from: str
    size: int | None = None
    kind: str = ""  # sqlite: "amalgamation" or "full"
    debian: str = ""  # the Debian source package "name/suite" whose orig tarball is this file

    @property
    def key(self) -> Version:
        return parse_version(self.package, self.version)

    def __str__(self) -> str:
        return f"{self.package} {self.version}"


@dataclass(frozen=True)
class Compat:
    cpython: SpecifierSet
    openssl_min: str
    sqlite_min: str


def parse_version(package: str, version: str) -> Version:
    """A comparable version; OpenSSL's letter releases (1.1.1w) sort after their base (1.1.1)."""
    text = version
    if package == "openssl" and version[-1:].isalpha():
        text = f"{version[:-1]}.{ord(version[-1]) - ord('a') + 1}"
    try:
        return Version(text)
    except InvalidVersion:
        raise InputError(
            f"{package} version {version!r} is not a version", fix="use e.g. 3.11.2, 3.0.20, 1.1.1w"
        ) from None


@cache
def _load() -> tuple[tuple[Source, ...], tuple[Compat, ...], str]:
    with CATALOG.open("rb") as f:
        data = tomllib.load(f)
    items = tuple(sorted((Source(**entry) for entry in data["source"]), key=lambda s: (s.package, s.key)))
    compat = tuple(Compat(SpecifierSet(c["cpython"]), c["openssl_min"], c["sqlite_min"]) for c in data["compat"])
    return items, compat, data["requirements"]["django_sqlite_min"]


def sources(package: str | None = None) -> list[Source]:
    """All known sources, or one package's, oldest first."""
    return [s for s in _load()[0] if package is None or s.package == package]


def find(package: str, version: str) -> Source:
    """The preferred source of ``package`` at ``version`` (see :func:`candidates`)."""
    return candidates(package, version)[0]


def candidates(package: str, version: str) -> list[Source]:
    """Every known tarball of ``package`` at ``version``, preferred first (an upstream SQLite amalgamation
    before a full source tree). A prefix (``3.11``, ``3.0``) means its newest release.

    An unknown version raises with the nearest known ones.
    """
    known = sources(package)
    if not known:
        raise InputError(f"unknown package {package!r}", fix=f"use one of {', '.join(PACKAGES)}")
    matching = [s for s in known if s.version == version]
    if not matching:
        prefixed = [s for s in known if s.version.startswith(version + ".") or (package == "openssl" and
                    s.version.startswith(version) and s.version[len(version):].isalpha())]
        if prefixed:
            matching = [s for s in prefixed if s.version == prefixed[-1].version]
    if matching:
        return sorted(matching, key=lambda s: s.kind == "full")
    names = [s.version for s in known]
    near = difflib.get_close_matches(version, names, n=4, cutoff=0.5) or names[-4:]
    raise InputError(
        f"{package} {version} is not in the catalog",
        fix=f"nearest known: {', '.join(near)} (all: buildkit python --list)",
    )


def compat_for(cpython: str) -> Compat:
    """The OpenSSL and SQLite minimums of a CPython version."""
    version = parse_version("cpython", cpython)
    for entry in _load()[1]:
        if version in entry.cpython:
            return entry
    raise InputError(f"no compatibility data for CPython {cpython}", fix="buildkit knows CPython 3.8 and newer")


def django_sqlite_min() -> str:
    """SQLite needed for ``create_function(..., deterministic=True)`` (and so for Django)."""
    return _load()[2]
