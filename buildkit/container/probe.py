"""What a builder image has, asked from inside it: the same facts :func:`buildkit.pybuild.host.probe_host`
reads on the host (system OpenSSL and SQLite headers and libraries, compiler, glibc, CA store), plus the
distribution and architecture. A sh script (the image may have no Python), rendered from host.py's own
lists of places, prints ``key=value`` lines; :func:`parse` turns them into a :class:`ContainerHost`.
"""

# ruff: noqa: E501  (the sh script's sed expressions are clearer on one line each)
from __future__ import annotations

import shlex
from dataclasses import dataclass

from buildkit.errors import InputError
from buildkit.pybuild import host as hostmod
from buildkit.pybuild.host import HostInfo, SystemLib

__all__ = ["ContainerHost", "parse", "script"]


@dataclass(frozen=True)
class ContainerHost:
    info: HostInfo
    os_id: str  # ID= of os-release: debian, ubuntu, centos, rocky, almalinux, alinux
    version_id: str  # VERSION_ID=: 12, 22.04, 7, 9.3
    arch: str  # uname -m: x86_64, aarch64

    def to_json(self) -> dict[str, object]:
        i = self.info
        lib = lambda s: None if s is None else {"version": s.version, "include": s.include_dir, "lib": s.lib_dir,  # noqa: E731
                                                 "layout": s.layout}
        return {"os": i.os, "id": self.os_id, "version_id": self.version_id, "arch": self.arch,
                "compiler": i.compiler, "glibc": i.glibc, "ca_file": i.ca_file, "ca_dir": i.ca_dir,
                "openssl": lib(i.openssl), "sqlite": lib(i.sqlite)}


def _words(items) -> str:
    return " ".join(shlex.quote(x) for x in items)


def script() -> str:
    """The probe, for ``sh -c``: POSIX sh, sed, grep, ls, uname (every image buildkit makes has them)."""
    return f"""
osr=/etc/os-release; [ -f "$osr" ] || osr=/usr/lib/os-release
field() {{ sed -n "s/^$1=//p" "$osr" 2>/dev/null | head -n 1 | sed 's/^"//; s/"$//'; }}
echo "os=$(field PRETTY_NAME)"
echo "id=$(field ID)"
echo "version_id=$(field VERSION_ID)"
echo "arch=$(uname -m)"
echo "compiler=$(${{CC:-cc}} --version 2>/dev/null | head -n 1)"
echo "glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null)"
for f in {_words(hostmod._CA_FILES)}; do [ -f "$f" ] && {{ echo "ca_file=$f"; break; }}; done
for d in {_words(hostmod._CA_DIRS)}; do
    if [ -d "$d" ] && ls "$d"/*.0 >/dev/null 2>&1; then echo "ca_dir=$d"; break; fi
done
libdir() {{
    for d in {_words(hostmod._LIB_DIRS)} "$@"; do
        for n in $LIBNAMES; do ls "$d"/$n >/dev/null 2>&1 && {{ echo "$d"; return; }}; done
    done
}}
ossl_version() {{
    v=$(sed -n 's/.*define[[:space:]]*OPENSSL_VERSION_STR[[:space:]]*"\\([^"]*\\)".*/\\1/p' "$1" 2>/dev/null | head -n 1)
    [ -n "$v" ] || v=$(sed -n 's/.*define[[:space:]]*OPENSSL_VERSION_TEXT[[:space:]]*"OpenSSL[[:space:]]*\\([^ "]*\\).*/\\1/p' "$1" 2>/dev/null | head -n 1)
    echo "$v"
}}
LIBNAMES="libssl.so libssl.so.*"
for inc in {_words(hostmod._INCLUDE_DIRS)}; do
    v=$(ossl_version "$inc/openssl/opensslv.h"); l=$(libdir)
    if [ -n "$v" ] && [ -n "$l" ]; then echo "openssl=$v|$inc|$l|system"; break; fi
done
v=$(ossl_version /usr/include/openssl11/openssl/opensslv.h)
[ -n "$v" ] || v=$(ossl_version /usr/include/openssl11/opensslv.h)
LIBNAMES="libssl.so libssl.so.1.1*"
if [ -n "$v" ]; then
    for l in /usr/lib64/openssl11 /usr/lib64; do
        for n in $LIBNAMES; do ls "$l"/$n >/dev/null 2>&1 && {{ echo "openssl11=$v|/usr/include/openssl11|$l|epel-openssl11"; break 2; }}; done
    done
fi
LIBNAMES="libsqlite3.so libsqlite3.so.*"
for inc in {_words(hostmod._INCLUDE_DIRS)}; do
    v=$(sed -n 's/.*define[[:space:]]*SQLITE_VERSION[[:space:]]*"\\([^"]*\\)".*/\\1/p' "$inc/sqlite3.h" 2>/dev/null | head -n 1)
    l=$(libdir)
    if [ -n "$v" ] && [ -n "$l" ]; then echo "sqlite=$v|$inc|$l|system"; break; fi
done
exit 0
"""


def _lib(name: str, value: str | None) -> SystemLib | None:
    if not value:
        return None
    parts = value.split("|")
    if len(parts) != 4:
        return None
    return SystemLib(name, parts[0], parts[1], parts[2], parts[3])


def parse(output: str, image: str) -> ContainerHost:
    facts: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier() and key not in facts:
            facts[key] = value.strip()
    if not facts.get("arch"):
        raise InputError(f"{image}: the probe printed nothing useful", fix="check that the image has sh, sed and uname")
    openssl = _lib("openssl", facts.get("openssl")) or _lib("openssl", facts.get("openssl11"))
    info = HostInfo(
        openssl=openssl,
        sqlite=_lib("sqlite", facts.get("sqlite")),
        compiler=facts.get("compiler", ""),
        glibc=facts.get("glibc", ""),
        os=facts.get("os", ""),
        ca_file=facts.get("ca_file", ""),
        ca_dir=facts.get("ca_dir", ""),
    )
    return ContainerHost(info, facts.get("id", ""), facts.get("version_id", ""), facts["arch"])
