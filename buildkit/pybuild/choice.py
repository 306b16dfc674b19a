"""``--with-openssl`` / ``--with-sqlite``: how a build asks for a library, read once where it comes in.

One grammar for ``buildkit python``, ``buildkit ci python``/``ci matrix`` and a matrix file's ``openssl`` and
``sqlite``::

    (not given)  auto      the system's when it is new enough for the CPython, else a private one
    private      private   a private one of buildkit's default version (what the bare flag means)
    system       system    the system's, refused when too old
    PATH         prefix    one already installed at PATH (any value with a ``/``)
    VERSION      version   a private one of that version (``3.0``: the newest 3.0 the catalog knows)

:meth:`LibraryChoice.parse` is the only reader of that text; everything after it (planning, the update, the
matrix) takes a :class:`LibraryChoice`. Which versions exist and which are new enough is the catalog's
question, asked where the CPython is known (:func:`buildkit.pybuild.plan.choose`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from buildkit import catalog
from buildkit.errors import InputError

__all__ = ["AUTO", "LIBRARIES", "PREFIX", "PRIVATE", "SYSTEM", "VERSION", "Kind", "LibraryChoice"]

Kind = Literal["auto", "private", "system", "prefix", "version"]
AUTO: Kind = "auto"
PRIVATE: Kind = "private"
SYSTEM: Kind = "system"
PREFIX: Kind = "prefix"
VERSION: Kind = "version"
#: the libraries a build can be asked for, and how their names are written in prose
LIBRARIES = {"openssl": "OpenSSL", "sqlite": "SQLite"}


@dataclass(frozen=True)
class LibraryChoice:
    """``--with-<package>``'s value, parsed: its kind and, for a version or a prefix, the text as written."""

    package: str  # openssl | sqlite
    kind: Kind = AUTO
    value: str = ""  # VERSION: the version as written (3.0, 1.1.1w); PREFIX: the path as written

    def __post_init__(self) -> None:
        if self.package not in LIBRARIES:
            raise ValueError(f"no --with-{self.package}: a build asks only for {', '.join(LIBRARIES)}")
        if (self.kind in (VERSION, PREFIX)) != bool(self.value):
            raise ValueError(f"LibraryChoice({self.package!r}, {self.kind!r}, {self.value!r}): a version or a "
                             "prefix has a value, the other kinds none")

    @classmethod
    def parse(cls, package: str, text: str | None) -> LibraryChoice:
        """``--with-<package>``'s value (``None``: the option was not given). Raises :class:`InputError` with one
        line naming the option and the value and what to write instead."""
        option = f"--with-{package}"
        if text is None:
            return cls(package)
        if text == PRIVATE:
            return cls(package, PRIVATE)
        if text == SYSTEM:
            return cls(package, SYSTEM)
        if "/" in text:
            return cls(package, PREFIX, text)
        fix = (f"give a version ({option}={catalog.default(package)}; all: buildkit python --list), a prefix "
               f"holding one ({option}=/opt/{package}), system, or the bare {option} for buildkit's default")
        if not text.strip():
            raise InputError(f"{option}={text}: an empty value", fix=fix)
        try:
            catalog.parse_version(package, text)
        except InputError:
            raise InputError(f"{option}={text}: not a version, a prefix (a path with /), private or system",
                             fix=fix) from None
        return cls(package, VERSION, text)

    @property
    def option(self) -> str:
        return f"--with-{self.package}"

    @property
    def label(self) -> str:
        """``OpenSSL`` or ``SQLite``."""
        return LIBRARIES[self.package]

    @property
    def text(self) -> str:
        """The value as the user wrote it: the version, the path, ``private`` or ``system``; "" when not given."""
        return self.value if self.kind in (VERSION, PREFIX) else "" if self.kind == AUTO else self.kind

    @property
    def from_host(self) -> bool:
        """A library of this host (the system's, or one installed at a prefix here), not one buildkit builds."""
        return self.kind in (SYSTEM, PREFIX)

    def private_if_auto(self) -> LibraryChoice:
        """This choice, with "not given" meaning a private one of the default version (``--portable``)."""
        return LibraryChoice(self.package, PRIVATE) if self.kind == AUTO else self

    def __str__(self) -> str:
        return f"{self.option}={self.text}" if self.kind != AUTO else f"no {self.option}"
