"""What the doctor reports and how: :class:`Finding`, the collector that keeps one finding per root cause,
and the context that phrases the fixes (the ``buildkit python ...`` command that rebuilds, the ``-dev``
packages)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from buildkit.catalog import Compat, compat_for, compat_table, default, django_sqlite_min, parse_version
from buildkit.errors import InputError


@dataclass(frozen=True)
class Finding:
    title: str
    detail: str
    fix: str
    problem: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "detail": self.detail, "fix": self.fix, "problem": self.problem}


# --- fixes --------------------------------------------------------------------------------------------

# Development packages for modules whose headers configure looks for: module -> (Debian/Ubuntu, RHEL/Fedora).
def dev_packages() -> dict[str, tuple[str, str]]:
    from buildkit.pybuild.verify import OPTIONAL_MODULES

    table = {name: (deb, rpm) for name, (_, deb, rpm) in OPTIONAL_MODULES.items()}
    table.update({
        "_ssl": ("libssl-dev", "openssl-devel"),
        "_hashlib": ("libssl-dev", "openssl-devel"),
        "_sqlite3": ("libsqlite3-dev", "sqlite-devel"),
        "_curses_panel": ("libncurses-dev", "ncurses-devel"),
        "_crypt": ("libcrypt-dev", "libxcrypt-devel"),
        "nis": ("libnsl-dev", "libnsl2-devel"),
    })
    return table


@dataclass
class Context:
    cpython: str | None = None  # "3.11.2" or "3.11"
    prefix: str | None = None

    def rebuild(self) -> str:
        """The command that rebuilds it: the private OpenSSL and SQLite at buildkit's defaults (the bare flags:
        the versions the plan picks for this CPython, whose tarballs reach a host that sees only Debian)."""
        version = self.cpython or "X.Y.Z"
        prefix = self.prefix or (f"/opt/python{'.'.join(version.split('.')[:2])}" if self.cpython else "/opt/python")
        if ".buildkit" + os.sep in prefix + os.sep:  # a build of buildkit's own: name the prefix the user chose
            prefix = prefix[: prefix.index(".buildkit")]
        return f"buildkit python {version} --with-openssl --with-sqlite --prefix {prefix}"

    def _compat(self) -> Compat:
        """The catalog's compatibility row of this CPython; unknown (not given, or not in the table): that of
        buildkit's default CPython, the one a rebuild without VERSION makes."""
        try:
            return compat_for(self.cpython or default("cpython"))
        except InputError:
            return compat_for(default("cpython"))

    def openssl_min(self) -> str:
        return self._compat().openssl_min

    def sqlite_min(self) -> str:
        """CPython's minimum SQLite; unknown CPython: every range of the catalog's table."""
        if self.cpython:
            try:
                return compat_for(self.cpython).sqlite_min
            except InputError:
                pass
        return _ranges("sqlite_min")

    def system_openssl(self) -> str:
        text = ("or install the OpenSSL headers and rebuild: apt-get install libssl-dev (Debian/Ubuntu), "
                "dnf install openssl-devel (RHEL 8+/Fedora)")
        if _older("openssl", RHEL7["openssl"], self.openssl_min()):
            text += (f"; on RHEL/CentOS 7, whose OpenSSL is {RHEL7['openssl']}, yum install epel-release && yum "
                     "install openssl11-devel, then configure with CPPFLAGS=\"$(pkg-config --cflags openssl11)\" "
                     "LDFLAGS=\"$(pkg-config --libs-only-L openssl11)\" (--with-openssl=/usr/include/openssl11 "
                     "does not work: --with-openssl=DIR wants DIR/include/openssl/ssl.h and DIR/lib)")
        return text

    def system_sqlite(self) -> str:
        old = RHEL7["sqlite"]
        too_old = ["Django"] if _older("sqlite", old, django_sqlite_min()) else []
        too_old += [f"CPython {row.first}" for row in compat_table() if _older("sqlite", old, row.sqlite_min)][:1]
        why = f" is too old for {' and '.join(too_old)}" if too_old else ""
        return ("or install the SQLite headers and rebuild: apt-get install libsqlite3-dev (Debian/Ubuntu), "
                f"dnf install sqlite-devel (RHEL/Fedora; RHEL/CentOS 7's SQLite {old}{why}, use a private SQLite)")


#: what RHEL/CentOS 7 ships (the oldest distribution buildkit's advice has in mind), not buildkit's versions
RHEL7 = {"openssl": "1.0.2", "sqlite": "3.7.17"}


def _older(package: str, version: str, than: str) -> bool:
    return parse_version(package, version) < parse_version(package, than)


def _ranges(field: str) -> str:
    """The catalog's compatibility table for one minimum, oldest CPython first, rows that need the same joined:
    ``3.7.2 up to 3.9, 3.7.15 up to 3.12, 3.15.2 from 3.13``."""
    parts = []
    for value, run in groupby(compat_table(), key=lambda row: str(getattr(row, field))):
        rows = list(run)
        parts.append(f"{value} up to {rows[-1].last}" if rows[-1].last else f"{value} from {rows[0].first}")
    return ", ".join(parts)


class Collector:
    """Findings keyed by root cause: a second sign of the same cause adds evidence, not a finding."""

    def __init__(self) -> None:
        self._items: dict[str, list[Any]] = {}

    def add(self, key: str, title: str, detail: str, fix: str, problem: bool = True) -> None:
        item = self._items.get(key)
        if item is None:
            self._items[key] = [title, [detail] if detail else [], fix, problem]
        elif detail and detail not in item[1] and len(item[1]) < 8:
            item[1].append(detail)

    def has(self, key: str) -> bool:
        return key in self._items

    def findings(self) -> list[Finding]:
        out = [Finding(t, "\n".join(d), f, p) for t, d, f, p in self._items.values()]
        return sorted(out, key=lambda f: not f.problem)  # problems first, stable otherwise
