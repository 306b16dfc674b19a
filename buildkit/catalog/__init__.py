"""The source catalog: which upstream tarballs buildkit knows, with checksums, and which versions fit.

Data lives in ``sources.toml`` next to this file; this module loads it into frozen dataclasses and answers
"which tarball is CPython 3.11.2", "what is the newest known 3.0 OpenSSL", "what does CPython 3.13 need"
(:func:`library_min`) and "what is built when no version is named" (:func:`default`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from buildkit.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

__all__ = [
    "PACKAGES", "Compat", "CompilerNeed", "Source", "candidates", "compat_for", "compat_table", "compiler_needs",
    "default", "defaults", "django_sqlite_min", "find", "library_min", "sources", "parse_version", "suggest",
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
    """One row of the compatibility table: the OpenSSL and SQLite a range of CPython releases needs."""

    cpython: SpecifierSet
    openssl_min: str
    sqlite_min: str

    @property
    def first(self) -> str:
        """The oldest CPython series of the range (``>=3.10,<3.13``: ``3.10``); "" without a lower bound."""
        return next((s.version for s in self.cpython if s.operator == ">="), "")

    @property
    def last(self) -> str:
        """The newest CPython series of the range (``>=3.10,<3.13``: ``3.12``); "" when it is open-ended."""
        below = next((Version(s.version) for s in self.cpython if s.operator == "<"), None)
        if below is None:
            return ""
        major, minor = (below.release + (0,))[:2]
        return f"{major}.{minor - 1}" if minor else f"{major - 1}"


@dataclass(frozen=True)
class CompilerNeed:
    """What a CPython range asks of gcc, with the evidence it was found by (``sources.toml``'s [[compiler]])."""

    cpython: SpecifierSet
    gcc_min: str
    level: str  # "stop": refused before fetching; "note": builds, with something left out
    needs: str
    evidence: str


def parse_version(package: str, version: str) -> Version:
    """A comparable version; OpenSSL's letter releases (1.1.1w) sort after their base (1.1.1)."""
    text = version
    if package == "openssl" and version[-1:].isalpha():
        text = f"{version[:-1]}.{ord(version[-1]) - ord('a') + 1}"
    try:
        return Version(text)
    except InvalidVersion:
        examples = {"cpython": "3.13.5 or 3.12", "openssl": "3.0.20 or 1.1.1w", "sqlite": "3.46.1"}
        raise InputError(
            f"{package} version {version!r} is not a version",
            fix=f"use e.g. {examples.get(package, '3.11.2, 3.0.20, 1.1.1w')} (all: buildkit python --list)",
        ) from None


_Loaded = tuple[tuple[Source, ...], tuple[Compat, ...], str, tuple[CompilerNeed, ...], tuple[tuple[str, str], ...]]


@cache
def _load() -> _Loaded:
    """sources.toml: (sources, compat, django_sqlite_min, compiler needs, defaults)."""
    with CATALOG.open("rb") as f:
        data = tomllib.load(f)
    items = tuple(sorted((Source(**entry) for entry in data["source"]), key=lambda s: (s.package, s.key)))
    compat = tuple(Compat(SpecifierSet(c["cpython"]), c["openssl_min"], c["sqlite_min"]) for c in data["compat"])
    needs = tuple(CompilerNeed(**{**c, "cpython": SpecifierSet(c["cpython"])}) for c in data.get("compiler", ()))
    defaults = tuple((str(k), str(v)) for k, v in data["defaults"].items())
    return items, compat, data["requirements"]["django_sqlite_min"], needs, defaults


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
    raise InputError(f"{package} {version} is not in the catalog", fix=suggest(package, version))


def _too_old(package: str) -> str:
    """Why the oldest versions the catalog holds are the oldest buildkit builds."""
    if package == "openssl":
        return ("CPython 3.10 and newer need OpenSSL 1.1.1 or newer (PEP 644), and 1.0.2 has had no public fixes "
                "since 2019")
    if package == "sqlite":
        return ("the system's SQLite serves older needs; a private one is built to be new (deterministic functions "
                f"and Django need {django_sqlite_min()} or newer)")
    return ""


def suggest(package: str, version: str) -> str:
    """What to use instead of ``version`` of ``package``, by version order (not by spelling): the newest of
    the same series, else the known versions either side; below the oldest, why older ones are not built."""
    wanted = parse_version(package, version)
    known = sorted({s.version for s in sources(package)}, key=lambda v: parse_version(package, v))
    keys = {v: parse_version(package, v) for v in known}
    depth = max(2, min(len(wanted.release), 3) - 1)  # 3.11 -> the 3.11 series; 3.11.99 -> the 3.11 series
    series = [v for v in known if keys[v].release[:depth] == wanted.release[:depth]]
    listing = "(all: buildkit python --list)"
    if series:
        return f"nearest known: {', '.join(reversed(series[-3:]))} {listing}"
    if wanted < keys[known[0]]:
        why = f"; {_too_old(package)}" if _too_old(package) else ""
        return f"the oldest buildkit builds is {known[0]}{why} {listing}"
    if wanted > keys[known[-1]]:
        return (f"the newest in the catalog is {known[-1]}; a newer release needs a catalog entry with its sha256 "
                f"(buildkit/catalog/sources.toml) {listing}")
    lower = [v for v in known if keys[v] < wanted][-1]
    higher = next(v for v in known if keys[v] > wanted)
    return f"nearest known: {lower}, {higher} {listing}"


def compat_for(cpython: str) -> Compat:
    """The OpenSSL and SQLite minimums of a CPython version."""
    version = parse_version("cpython", cpython)
    for entry in _load()[1]:
        if version in entry.cpython:
            return entry
    raise InputError(f"no compatibility data for CPython {cpython}", fix="buildkit knows CPython 3.8 and newer")


def compiler_needs(cpython: str, gcc: str) -> list[CompilerNeed]:
    """The needs of CPython ``cpython`` that gcc ``gcc`` (a dotted version) does not meet, "stop" first."""
    version, have = parse_version("cpython", cpython), Version(gcc)
    unmet = [n for n in _load()[3] if version in n.cpython and have < Version(n.gcc_min)]
    return sorted(unmet, key=lambda n: n.level != "stop")


def compat_table() -> tuple[Compat, ...]:
    """Every row of the compatibility table, oldest CPython range first."""
    return _load()[1]


def django_sqlite_min() -> str:
    """SQLite needed for ``create_function(..., deterministic=True)`` (and so for Django)."""
    return _load()[2]


def library_min(package: str, cpython: str) -> str:
    """The oldest ``package`` (openssl | sqlite) buildkit builds CPython ``cpython`` with: CPython's own minimum
    (the compatibility table), and for SQLite at least :func:`django_sqlite_min` (``deterministic=True``)."""
    compat = compat_for(cpython)
    if package == "openssl":
        return compat.openssl_min
    if package == "sqlite":
        return max(compat.sqlite_min, django_sqlite_min(), key=partial(parse_version, "sqlite"))
    raise InputError(f"no minimum version of {package!r}", fix="ask for openssl or sqlite")


def defaults() -> dict[str, str]:
    """{package: version} built when no version is named (``sources.toml``'s [defaults])."""
    return dict(_load()[4])


def default(package: str) -> str:
    """The version of ``package`` built when no version is named: ``buildkit python`` without VERSION, the bare
    ``--with-openssl``/``--with-sqlite``, a matrix without that axis, a portable build's libraries."""
    try:
        return dict(_load()[4])[package]
    except KeyError:
        raise InputError(f"no default version of {package!r}", fix=f"use one of {', '.join(PACKAGES)}") from None
