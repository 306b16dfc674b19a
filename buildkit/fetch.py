"""Fetch the catalog's source tarballs by checksum, and unpack them safely.

A tarball is known by its sha256 (and, where the catalog has it, its size); where it comes from does not
matter. :func:`fetch` tries, in order:

1. the cache (``cache_dir/<filename>``), reused only if its size and sha256 still match;
2. ``source_dirs``: any file directly in those folders whose sha256 matches, whatever its name (upstream's
   ``Python-3.11.2.tgz`` or Debian's ``python3.11_3.11.2.orig.tar.gz``); hashes are remembered in
   ``cache_dir/hashes.json`` by (path, size, mtime_ns) so that a second run does not read the folders again;
3. ``mirrors``: ``<mirror>/<sha256>`` (pyenv's mirror layout), then ``<mirror>/<filename>``;
4. the upstream URL;
5. with ``debian=True``: ``apt-get source --download-only <srcpkg>/<suite>`` through a private apt
   configuration under ``cache_dir/apt`` whose mirrors are read from the host's
   ``/etc/apt/sources.list.d/debian.sources``, keeping the ``*.orig.tar.*`` with that sha256.

Whatever the route, the bytes are streamed into ``<filename>.part-<pid>`` next to their final place while
their sha256 and size are computed, and renamed only when both match. A route that cannot supply the file
(no such file, HTTP 404, no network, a timeout) is skipped and named in the error raised when every route
failed. A route that supplies *other bytes* is an error at once (:class:`ChecksumMismatch`): that mirror
or download is not what it claims to be, and the partial file is deleted.

:func:`safe_extract` unpacks a tarball (or zip), refusing members that would land outside the destination.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import http.client
import json
import logging
import lzma
import os
import posixpath
import re
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Optional

from buildkit import __version__
from buildkit.catalog import Source, candidates
from buildkit.errors import InputError

__all__ = [
    "ChecksumMismatch",
    "Fetched",
    "SourceUnavailable",
    "copy_to_dest",
    "default_cache_dir",
    "fetch",
    "fetch_first",
    "fetch_source",
    "fetch_spec",
    "parse_spec",
    "safe_extract",
    "stderr_progress",
]

log = logging.getLogger(__name__)

#: seconds to wait for a connection or for the next bytes of a download
TIMEOUT = 30.0
CHUNK = 1 << 16
#: the most a download may bring when the catalog gives no size
MAX_UNKNOWN_SIZE = 1 << 31
HASH_INDEX = "hashes.json"
DEBIAN_SOURCES = "/etc/apt/sources.list.d/debian.sources"
DEBIAN_SOURCES_LIST = "/etc/apt/sources.list"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
#: apt-get update again when the private indexes are older than this (seconds)
APT_LISTS_MAX_AGE = 24 * 3600
TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tbz", ".tar")
ARCHIVE_SUFFIXES = (*TAR_SUFFIXES, ".zip", ".tar.zst")
MIRROR_SCHEMES = ("http", "https", "ftp", "file")

#: ``progress(done, total)``: bytes so far and the expected total (None if unknown); a last call with
#: ``done == total`` marks the end of the stream, whether it succeeded or not.
Progress = Callable[[int, Optional[int]], None]
Say = Callable[[str], None]

_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")  # 3.12+, and 3.8.17/3.9.17/3.10.12/3.11.4 backports
_NO_FILTER = {"filter": "fully_trusted"} if _HAS_DATA_FILTER else {}  # without tarfile's 3.12+ warning


# --- results and errors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    """A verified file in the cache and the route it came by."""

    source: Source
    path: Path
    size: int
    origin: str  # "cache", "source dir DIR (NAME)", "mirror URL", "upstream URL", "debian PKG/SUITE (NAME)"

    @property
    def sha256(self) -> str:
        return self.source.sha256

    def to_json(self) -> dict[str, object]:
        s = self.source
        return {"package": s.package, "version": s.version, "filename": s.filename, "path": str(self.path),
                "size": self.size, "sha256": s.sha256, "origin": self.origin, "kind": s.kind, "license": s.license}


class ChecksumMismatch(InputError):
    """A route supplied bytes other than the catalog's (wrong sha256, too short or too long)."""


class SourceUnavailable(InputError):
    """No route could supply the file; ``tried`` says what each route answered."""

    def __init__(self, message: str, *, fix: str, sources: Sequence[Source], tried: Sequence[str]) -> None:
        super().__init__(message, fix=fix)
        self.sources = tuple(sources)
        self.tried = tuple(tried)


class _Miss(Exception):
    """One route could not supply the file (not there, HTTP error, no network): try the next one."""


# --- small helpers ----------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$BUILDKIT_CACHE``, else ``~/.cache/buildkit/sources``."""
    env = os.environ.get("BUILDKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "buildkit" / "sources"


def parse_spec(spec: str) -> list[Source]:
    """``cpython@3.11.2`` -> the catalog's candidate tarballs for it, preferred first."""
    package, sep, version = spec.partition("@")
    if not sep or not package or not version:
        raise InputError(f"expected PACKAGE@VERSION, got {spec!r}",
                         fix="e.g. cpython@3.11.2 openssl@3.0.20 sqlite@3.40.1")
    return candidates(package.strip().lower(), version.strip())


def debian_orig_name(source: Source) -> str:
    """The name of Debian's ``*.orig.tar.*`` for ``source`` (``python3.11_3.11.2.orig.tar.gz``), or ``""``."""
    if ".orig.tar." in source.filename:
        return source.filename
    if not source.debian:
        return ""
    package = source.debian.partition("/")[0]
    name = source.filename
    ext = "gz" if name.endswith(".tgz") else "xz" if name.endswith(".txz") else name.rpartition(".")[2]
    return f"{package}_{source.version}.orig.tar.{ext}"


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _check_filename(source: Source) -> None:
    name = source.filename
    if not name or "/" in name or name.startswith(".") or "\0" in name:
        raise InputError(f"{source}: bad file name {name!r} in the catalog",
                         fix="a plain file name such as Python-3.11.2.tgz")


def _ensure_dir(path: Path, what: str) -> Path:
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fix = "pick another folder (--cache DIR or BUILDKIT_CACHE)" if what == "cache" else "pick another folder"
        raise InputError(f"cannot create {what} {path}: {e.strerror}", fix=fix) from None
    return path.resolve()


def _write_error(e: OSError, path: Path) -> InputError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return InputError(f"disk full while writing {path}",
                          fix="the partial file was removed; free some space or point --cache (BUILDKIT_CACHE) "
                          "at a bigger disk")
    return InputError(f"cannot write {path}: {e.strerror or e}",
                      fix="check the folder's permissions, or use --cache DIR")


def _reason(e: BaseException) -> str:
    """A short reason for a failed network or file read."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return _reason(e.reason) if isinstance(e.reason, BaseException) else str(e.reason)
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"timed out after {TIMEOUT:g} s"
    if isinstance(e, FileNotFoundError):
        return "no such file"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


_READ_ERRORS = (OSError, http.client.HTTPException, urllib.error.URLError, ValueError)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_parts(directory: Path, filename: str) -> None:
    """Partial downloads left by processes that are gone."""
    prefix = f"{filename}.part-"
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(prefix):] if entry.name.startswith(prefix) else ""
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            _unlink(Path(entry.path))


# --- the one verified write -------------------------------------------------------------------------------


def _open_part(path: Path) -> IO[bytes]:
    return open(path, "wb")


def _stream_verified(reader: IO[bytes], source: Source, directory: Path, origin: str, *,
                     progress: Progress | None = None, total: int | None = None) -> Path:
    """Copy ``reader`` into ``directory/<filename>`` through sha256 and size checks.

    The bytes go to ``<filename>.part-<pid>``, which is renamed only when both match and deleted otherwise.
    Reading more than the expected size stops at once. Read errors raise :class:`_Miss`; a full disk raises
    ``InputError("disk full while writing ...")``.
    """
    final = directory / source.filename
    part = directory / f"{source.filename}.part-{os.getpid()}"
    expected = source.size
    limit = expected if expected is not None else MAX_UNKNOWN_SIZE
    total = expected if expected is not None else total
    digest = hashlib.sha256()
    got = 0
    try:
        try:
            with _open_part(part) as out:
                while True:
                    try:
                        chunk = reader.read(CHUNK)
                    except _READ_ERRORS as e:
                        raise _Miss(f"{origin}: {_reason(e)} after {got} bytes") from None
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > limit:
                        what = (f"more than the expected {expected} bytes" if expected is not None
                                else f"more than {MAX_UNKNOWN_SIZE} bytes and the catalog gives no size")
                        raise ChecksumMismatch(
                            f"size mismatch for {source.filename} from {origin}: {what}; the download was deleted",
                            fix="that copy is not the catalog's file: fix or drop it, or use another route")
                    digest.update(chunk)
                    out.write(chunk)
                    if progress is not None:
                        progress(got, total)
                out.flush()
                os.fsync(out.fileno())
        except OSError as e:
            raise _write_error(e, part) from None
        actual = digest.hexdigest()
        if actual != source.sha256 or (expected is not None and got != expected):
            sizes = f" ({expected} bytes)" if expected is not None and got != expected else ""
            got_size = f" ({got} bytes)" if sizes else ""
            raise ChecksumMismatch(
                f"checksum mismatch for {source.filename} from {origin}: expected {source.sha256}{sizes}, "
                f"got {actual}{got_size}; the download was deleted",
                fix="that copy is not the catalog's file: fix or drop it, or use another route")
        try:
            os.replace(part, final)
        except OSError as e:
            raise _write_error(e, final) from None
    except BaseException:
        _unlink(part)
        raise
    finally:
        if progress is not None and got:
            progress(got, got)
    return final


# --- routes -------------------------------------------------------------------------------------------------


def _from_cache(source: Source, cache_dir: Path, warn: Say) -> Fetched | None:
    path = cache_dir / source.filename
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path} is in the cache but is not a file", fix="remove it")
    if source.size is not None and st.st_size != source.size:
        problem = f"{st.st_size} bytes, expected {source.size}"
    else:
        actual = _hash_file(path)
        if actual == source.sha256:
            return Fetched(source, path, st.st_size, "cache")
        problem = f"sha256 {actual}, expected {source.sha256}"
    _unlink(path)
    warn(f"cached {path} was damaged ({problem}); deleted it, fetching it again")
    return None


class _HashIndex:
    """sha256 of files in --source-dir folders, keyed by path and trusted while size and mtime_ns hold."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dirty = False
        self.entries: dict[str, list] = {}
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict) and data.get("version") == 1 and isinstance(data.get("files"), dict):
                self.entries = data["files"]
        except (OSError, ValueError):
            pass
        self.hashed = 0  # files read this run (for tests and curiosity)

    def sha256(self, path: Path, st: os.stat_result) -> str:
        key = str(path)
        entry = self.entries.get(key)
        if isinstance(entry, list) and len(entry) == 3 and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
            return str(entry[2])
        digest = _hash_file(path)
        self.hashed += 1
        self.entries[key] = [st.st_size, st.st_mtime_ns, digest]
        self.dirty = True
        return digest

    def forget(self, path: Path) -> None:
        if self.entries.pop(str(path), None) is not None:
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        live = {k: v for k, v in self.entries.items() if os.path.exists(k)}
        tmp = self.path.with_name(f"{self.path.name}.part-{os.getpid()}")
        try:
            tmp.write_text(json.dumps({"version": 1, "files": live}, sort_keys=True))
            os.replace(tmp, self.path)
        except OSError:  # only a speed-up: never fail a fetch over it
            _unlink(tmp)
        self.dirty = False


def _plausible_files(directory: Path, source: Source) -> Iterator[tuple[Path, os.stat_result]]:
    """Files directly in ``directory`` that could be ``source``: its exact size when the catalog has one,
    else an archive-like name (or the file's own name, its Debian name or its sha256). Likely names first."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        raise InputError(f"--source-dir {directory}: no such directory",
                         fix="pass a folder that holds source tarballs") from None
    except OSError as e:
        raise InputError(f"--source-dir {directory}: cannot read it: {e.strerror}",
                         fix="check its permissions") from None
    likely = [n for n in (source.filename, debian_orig_name(source), source.sha256) if n]
    found = []
    for entry in entries:
        if ".part-" in entry.name or entry.name.endswith((".asc", ".sig", ".json")):
            continue
        try:
            if not entry.is_file():
                continue
            st = entry.stat()
        except OSError:
            continue
        if source.size is not None:
            if st.st_size != source.size:
                continue
        elif st.st_size == 0 or not (entry.name in likely or entry.name.endswith(ARCHIVE_SUFFIXES)):
            continue
        found.append((likely.index(entry.name) if entry.name in likely else len(likely), entry.name, st))
    for _, name, st in sorted(found):
        yield Path(directory) / name, st


def _from_source_dirs(source: Source, cache_dir: Path, source_dirs: Sequence[Path], warn: Say,
                      tried: list[str]) -> Fetched | None:
    index = _HashIndex(cache_dir / HASH_INDEX)
    try:
        for directory in source_dirs:
            directory = Path(directory).expanduser().resolve()
            for path, st in _plausible_files(directory, source):
                try:
                    if index.sha256(path, st) != source.sha256:
                        continue
                    with open(path, "rb") as f:
                        final = _stream_verified(f, source, cache_dir, str(path))
                except (ChecksumMismatch, _Miss, OSError) as e:
                    index.forget(path)
                    why = getattr(e, "strerror", None) or e
                    warn(f"{path} changed or could not be read while it was copied ({why}); skipped")
                    continue
                name = f" ({path.name})" if path.name != source.filename else ""
                return Fetched(source, final, final.stat().st_size, f"source dir {directory}{name}")
            tried.append(f"--source-dir {directory}: no file with that sha256")
    finally:
        index.save()
    return None


def _mirror_base(mirror: str) -> str:
    """A mirror as a URL without a trailing slash; a bare folder becomes a file:// URL."""
    text = mirror.strip()
    scheme = urllib.parse.urlsplit(text).scheme.lower() if "://" in text else ""
    if not scheme:
        if not text:
            raise InputError("--mirror: empty URL", fix="pass e.g. --mirror file:///srv/tarballs or --mirror https://HOST/PATH")
        return Path(text).expanduser().resolve().as_uri()
    if scheme not in MIRROR_SCHEMES:
        raise InputError(f"--mirror {mirror}: unsupported scheme {scheme!r}",
                         fix=f"use one of {', '.join(MIRROR_SCHEMES)}, or a folder")
    return text.rstrip("/")


def _mirror_urls(base: str, source: Source) -> list[str]:
    return [f"{base}/{source.sha256}", f"{base}/{urllib.parse.quote(source.filename)}"]


def _open_url(url: str) -> tuple[IO[bytes], int | None]:
    request = urllib.request.Request(url, headers={"User-Agent": f"buildkit/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310 - schemes checked
    except urllib.error.HTTPError as e:
        e.close()
        raise _Miss(f"{url}: {_reason(e)}") from None
    except _READ_ERRORS as e:
        raise _Miss(f"{url}: {_reason(e)}") from None
    length = response.headers.get("Content-Length")
    return response, int(length) if length and length.isdigit() else None


def _download(url: str, source: Source, cache_dir: Path, origin: str, progress: Progress | None) -> Fetched:
    response, length = _open_url(url)
    with response:
        final = _stream_verified(response, source, cache_dir, url, progress=progress, total=length)
    return Fetched(source, final, final.stat().st_size, f"{origin} {url}")


# --- Debian's archive -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DebianArchive:
    """The host's Debian mirrors, read from its apt configuration at run time."""

    uris: tuple[str, ...]
    security_uris: tuple[str, ...]
    keyring: str


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    for block in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[:1] in " \t" and key:
                fields[key] += "\n" + line.strip()
                continue
            name, sep, value = line.partition(":")
            if sep:
                key = name.strip().lower()
                fields[key] = value.strip()
        if fields:
            yield fields


def read_debian_sources(path: str | None = None) -> DebianArchive:
    """Mirror URIs and keyring from ``debian.sources`` (deb822), or the one-line ``sources.list``.

    ``$BUILDKIT_DEBIAN_SOURCES`` names another file. Raises :class:`_Miss` when none is found.
    """
    path = path or os.environ.get("BUILDKIT_DEBIAN_SOURCES") or DEBIAN_SOURCES
    uris: list[str] = []
    security: list[str] = []
    keyring = ""

    def add(uri: str, suites: list[str]) -> None:
        is_security = uri.rstrip("/").endswith("-security") or (
            bool(suites) and all(s.endswith("-security") for s in suites))
        target = security if is_security else uris
        if uri not in target:
            target.append(uri)

    try:
        text = Path(path).read_text()
    except OSError as e:
        if path != DEBIAN_SOURCES or not os.path.exists(DEBIAN_SOURCES_LIST):
            raise _Miss(f"cannot read {path}: {_reason(e)}") from None
        try:
            path, text = DEBIAN_SOURCES_LIST, Path(DEBIAN_SOURCES_LIST).read_text()
        except OSError as e2:
            raise _Miss(f"cannot read {DEBIAN_SOURCES_LIST}: {_reason(e2)}") from None
    if path.endswith(".list"):
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] in ("deb", "deb-src"):
                add(words[1], [words[2]])
    else:
        for fields in _deb822_stanzas(text):
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if not {"deb", "deb-src"} & set(fields.get("types", "").split()):
                continue
            for uri in fields.get("uris", "").split():
                add(uri, fields.get("suites", "").split())
            signed = fields.get("signed-by", "")
            if signed and not keyring and "\n" not in signed and os.path.isfile(signed):
                keyring = signed
    if not uris:
        raise _Miss(f"no Debian archive URIs in {path}")
    return DebianArchive(tuple(uris), tuple(security), keyring or DEBIAN_KEYRING)


class _Apt:
    """apt-get with its own sources, lists and cache under ``root``: the host's apt state is left alone."""

    def __init__(self, root: Path, archive: DebianArchive, note: Say) -> None:
        self.root = root
        self.archive = archive
        self.note = note
        self.sources = root / "sources.list.d" / "buildkit.sources"
        self.stamp = root / "updated"
        for sub in ("sources.list.d", "lists/partial", "cache/archives/partial"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "sources.list").touch()
        try:
            import pwd

            self.user = pwd.getpwuid(os.geteuid()).pw_name
        except (ImportError, KeyError):
            self.user = "root"

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        r = self.root
        cmd = ["apt-get", "-q", "-y",
               "-o", f"Dir::Etc::SourceList={r / 'sources.list'}",
               "-o", f"Dir::Etc::SourceParts={r / 'sources.list.d'}",
               "-o", f"Dir::State::Lists={r / 'lists'}",
               "-o", f"Dir::Cache={r / 'cache'}",
               "-o", f"APT::Sandbox::User={self.user}",
               "-o", "Acquire::Languages=none",
               "-o", f"Acquire::http::Timeout={TIMEOUT:g}",
               "-o", f"Acquire::https::Timeout={TIMEOUT:g}",
               *args]
        env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)

    def _wanted(self, suite: str, keep: bool = True) -> str:
        """The sources file with ``suite`` added to the suites already configured (or alone)."""
        suites = {suite}
        if keep and self.sources.exists():
            for fields in _deb822_stanzas(self.sources.read_text()):
                suites.update(fields.get("suites", "").split())
        plain = sorted(s for s in suites if not s.endswith("-security"))
        secure = sorted(s for s in suites if s.endswith("-security"))
        stanzas = []
        for names, uris in ((plain, self.archive.uris), (secure, self.archive.security_uris)):
            if names and uris:
                stanzas.append(f"Types: deb-src\nURIs: {' '.join(uris)}\nSuites: {' '.join(names)}\n"
                               f"Components: main\nSigned-By: {self.archive.keyring}\n")
        return "\n".join(stanzas)

    def ensure(self, suite: str) -> bool:
        """Configure ``suite`` and run apt-get update when the indexes are missing or old; True if it ran."""
        wanted = self._wanted(suite)
        try:
            age = time.time() - self.stamp.stat().st_mtime
            fresh = self.stamp.read_text() == wanted and age < APT_LISTS_MAX_AGE
        except OSError:
            fresh = False
        if fresh:
            return False
        try:
            self.update(wanted)
        except _Miss:
            alone = self._wanted(suite, keep=False)
            if alone == wanted:
                raise
            self.update(alone)  # a suite configured earlier may be gone from the mirror: drop the others
        return True

    def update(self, wanted: str | None = None) -> None:
        wanted = wanted if wanted is not None else self.sources.read_text()
        self.sources.write_text(wanted)
        suites = " ".join(sorted({s for f in _deb822_stanzas(wanted) for s in f.get("suites", "").split()}))
        self.note(f"updating Debian's source indexes for {suites} (apt-get update in {self.root})")
        done = self.run("update")
        if done.returncode != 0:
            _unlink(self.stamp)
            raise _Miss(f"apt-get update failed: {_last_apt_error(done)}")
        self.stamp.write_text(wanted)


def _last_apt_error(done: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (done.stderr or "").splitlines() + (done.stdout or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("E:")] or [ln for ln in lines if ln.startswith("W:")] or lines
    return errors[-1] if errors else f"exit status {done.returncode}"


def _from_debian(source: Source, cache_dir: Path, note: Say) -> Fetched:
    spec = source.debian
    package, _, suite = spec.partition("/")
    if not package or not suite:
        raise _Miss(f"debian {spec!r}: expected SRCPKG/SUITE in the catalog")
    if shutil.which("apt-get") is None:
        raise _Miss(f"debian {spec}: apt-get not found (Debian and Ubuntu hosts only)")
    archive = read_debian_sources()
    root = cache_dir / "apt"
    root.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(root / "lock-buildkit", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one buildkit at a time in this apt state
        apt = _Apt(root, archive, note)
        updated = apt.ensure(suite)
        work = Path(tempfile.mkdtemp(prefix=".debian-", dir=cache_dir))
        try:
            note(f"fetching {spec} from Debian's archive (apt-get source --download-only)")
            done = apt.run("source", "--download-only", spec, cwd=work)
            if done.returncode != 0 and not updated:
                apt.update()
                done = apt.run("source", "--download-only", spec, cwd=work)
            if done.returncode != 0:
                raise _Miss(f"debian {spec}: apt-get source failed: {_last_apt_error(done)}")
            seen = []
            for path in sorted(work.iterdir()):
                if not path.is_file() or path.name.endswith((".asc", ".dsc")):
                    continue
                size = path.stat().st_size
                if ".orig.tar." not in path.name and size != source.size:
                    continue
                digest = _hash_file(path)
                if digest == source.sha256:
                    with open(path, "rb") as f:
                        final = _stream_verified(f, source, cache_dir, f"debian {spec} ({path.name})")
                    return Fetched(source, final, final.stat().st_size, f"debian {spec} ({path.name})")
                if ".orig.tar." in path.name:
                    seen.append(f"{path.name} has sha256 {digest}")
            found = "; ".join(seen) or "no orig tarball in the source package"
            raise _Miss(f"debian {spec}: {found}, not {source.sha256} (did Debian move to another upstream version?)")
        finally:
            shutil.rmtree(work, ignore_errors=True)


# --- fetch ------------------------------------------------------------------------------------------------


def _fix_for(sources: Sequence[Source], debian: bool) -> str:
    names: list[str] = []
    for s in sources:
        for name in (s.filename, debian_orig_name(s)):
            if name and name not in names:
                names.append(name)
    fix = (f"pass --source-dir DIR with {' or '.join(names)} (matched by sha256, any name), "
           f"or --mirror URL serving <sha256> or {sources[0].filename}")
    debs = [s.debian for s in sources if s.debian]
    if debs and not debian:
        fix += f", or --debian to take {' or '.join(debs)} from Debian's archive"
    return fix


def fetch_source(source: Source, *, cache_dir: Path, mirrors: Sequence[str] = (), source_dirs: Sequence[Path] = (),
                 debian: bool = False, progress: Progress | None = None, warn: Say | None = None,
                 note: Say | None = None) -> Fetched:
    """Like :func:`fetch`, and also say where the file came from."""
    warn = warn or log.warning
    note = note or log.info
    _check_filename(source)
    bases = [_mirror_base(m) for m in mirrors]
    cache_dir = _ensure_dir(Path(cache_dir), "cache")
    _remove_stale_parts(cache_dir, source.filename)

    hit = _from_cache(source, cache_dir, warn)
    if hit is not None:
        return hit
    tried = [f"cache {cache_dir}: no {source.filename}"]
    if source_dirs:
        hit = _from_source_dirs(source, cache_dir, source_dirs, warn, tried)
        if hit is not None:
            return hit
    routes = [(url, "mirror") for base in bases for url in _mirror_urls(base, source)]
    if source.url:
        routes.append((source.url, "upstream"))
    for url, origin in routes:
        try:
            if origin == "upstream" or url.startswith(("http:", "https:", "ftp:")):
                note(f"downloading {source.filename} from {url}")
            return _download(url, source, cache_dir, origin, progress)
        except _Miss as miss:
            tried.append(str(miss))
    if not source.url:
        tried.append("upstream: no URL serves this file")
    if debian and source.debian:
        try:
            return _from_debian(source, cache_dir, note)
        except _Miss as miss:
            tried.append(str(miss))
        except OSError as e:  # setting up the private apt state (a full disk while copying is an InputError)
            tried.append(f"debian {source.debian}: {_reason(e)}")
    elif debian:
        tried.append("debian: no Debian source package ships this file")
    raise SourceUnavailable(
        f"cannot fetch {source} ({source.filename}, sha256 {source.sha256}): tried {'; '.join(tried)}",
        fix=_fix_for([source], debian), sources=[source], tried=tried)


def fetch(source: Source, *, cache_dir: Path, mirrors: Sequence[str] = (), source_dirs: Sequence[Path] = (),
          debian: bool = False, progress: Progress | None = None, warn: Say | None = None,
          note: Say | None = None) -> Path:
    """A verified copy of ``source`` in ``cache_dir`` (named ``source.filename``), from the first route that
    has it: cache, ``source_dirs`` (by sha256, any name), ``mirrors`` (``<m>/<sha256>``, ``<m>/<filename>``;
    http(s), ftp, file:// or a folder), the upstream URL, and Debian's archive when ``debian`` is true.

    ``progress(done, total)`` follows downloads; ``warn`` gets what was deleted or skipped (default: logging);
    ``note`` gets what is being tried (default: logging at INFO).

    Raises :class:`ChecksumMismatch` when a route supplies other bytes (the partial file is deleted),
    :class:`SourceUnavailable` when no route has the file, ``InputError`` when the disk is full.
    """
    return fetch_source(source, cache_dir=cache_dir, mirrors=mirrors, source_dirs=source_dirs, debian=debian,
                        progress=progress, warn=warn, note=note).path


def fetch_first(sources: Sequence[Source], **kwargs) -> Fetched:
    """The first of ``sources`` (e.g. ``catalog.candidates(...)``) that any route can supply.

    A checksum mismatch or a full disk stops at once; only "no route has it" moves on to the next one.
    """
    if not sources:
        raise InputError("nothing to fetch", fix="name a PACKAGE@VERSION")
    failures: list[SourceUnavailable] = []
    for source in sources:
        try:
            return fetch_source(source, **kwargs)
        except SourceUnavailable as e:
            failures.append(e)
    if len(failures) == 1:
        raise failures[0]
    first = sources[0]
    parts = [f"{e.sources[0].filename} (sha256 {e.sources[0].sha256}): tried {'; '.join(e.tried)}" for e in failures]
    raise SourceUnavailable(f"cannot fetch {first.package} {first.version}, any of its {len(sources)} tarballs: "
                            + " | ".join(parts), fix=_fix_for(sources, bool(kwargs.get("debian"))),
                            sources=sources, tried=[t for e in failures for t in e.tried])


def fetch_spec(spec: str, **kwargs) -> Fetched:
    """``fetch_first(parse_spec(spec), **kwargs)``: e.g. ``fetch_spec("sqlite@3.40.1", cache_dir=...)``."""
    return fetch_first(parse_spec(spec), **kwargs)


def copy_to_dest(fetched: Fetched, dest_dir: Path) -> Path:
    """Copy a fetched file into ``dest_dir`` (verified again, written under a temporary name and renamed).
    A file already there with the right sha256 is kept as it is."""
    dest_dir = _ensure_dir(Path(dest_dir), "destination")
    target = dest_dir / fetched.source.filename
    if target.exists():
        if os.path.samefile(target, fetched.path):
            return target
        if target.is_file() and target.stat().st_size == fetched.size and _hash_file(target) == fetched.sha256:
            return target
    _remove_stale_parts(dest_dir, fetched.source.filename)
    with open(fetched.path, "rb") as f:
        try:
            return _stream_verified(f, fetched.source, dest_dir, str(fetched.path))
        except _Miss as e:
            raise InputError(f"cannot copy {fetched.path}: {e}", fix="check the cache folder") from None


def _stderr_is_tty() -> bool:
    try:
        return os.isatty(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def stderr_progress(label: str, *, interval: float = 0.2) -> Progress | None:
    """A progress callback that writes ``downloading LABEL: 12.3/26.4 MB`` to stderr, or None if stderr is not
    a terminal."""
    if not _stderr_is_tty():
        return None
    state = {"last": 0.0, "shown": False}

    def report(done: int, total: int | None) -> None:
        if total is not None and done >= total:
            if state["shown"]:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()
                state["shown"] = False
            return
        now = time.monotonic()
        if now - state["last"] < interval:
            return
        state["last"] = now
        state["shown"] = True
        amount = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        sys.stderr.write(f"\rdownloading {label}: {amount}\033[K")
        sys.stderr.flush()

    return report


# --- safe extraction ---------------------------------------------------------------------------------------


def _refuse(archive: Path, name: str, why: str) -> InputError:
    return InputError(f"{archive}: refusing member {name!r}: {why}",
                      fix="this is not a plain source archive; check where it came from")


def _member_path(archive: Path, name: str) -> str:
    """A member's path relative to the destination ('' for the root itself); absolute or '..' refused."""
    if name.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", name):
        raise _refuse(archive, name, "absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(archive, name, "'..' in its path")
    return "/".join(parts)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _check_tar_member(archive: Path, member: tarfile.TarInfo) -> str:
    """Static checks of one member (what it is, where it points); returns its relative path."""
    path = _member_path(archive, member.name)
    if member.ischr() or member.isblk():
        raise _refuse(archive, member.name, "device file")
    if member.isfifo():
        raise _refuse(archive, member.name, "named pipe")
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise _refuse(archive, member.name, f"unsupported member type {member.type!r}")
    if member.mode & (stat.S_ISUID | stat.S_ISGID):
        raise _refuse(archive, member.name, "setuid or setgid bit")
    if member.issym():
        if member.linkname.startswith("/"):
            raise _refuse(archive, member.name, f"symlink to an absolute path {member.linkname!r}")
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
        if target == ".." or target.startswith("../"):
            raise _refuse(archive, member.name, f"symlink pointing outside the destination ({member.linkname!r})")
    if member.islnk():
        if member.linkname.startswith("/") or ".." in member.linkname.split("/"):
            raise _refuse(archive, member.name, f"hard link to {member.linkname!r}, outside the destination")
    return path


def _check_on_disk(archive: Path, name: str, path: str, root: str, top_root: str, link: str | None,
                   hard: bool) -> None:
    """Where the member really lands, given the symlinks written so far (this catches chains of links):
    its folder must stay under ``root``, the file and any link target under the top directory ``top_root``."""
    parent = os.path.realpath(os.path.join(root, os.path.dirname(path)))
    if not _inside(parent, root):
        raise _refuse(archive, name, "its folder leads outside the destination through a symlink")
    if link is None:
        where = os.path.realpath(os.path.join(parent, os.path.basename(path)))
        if not _inside(where, top_root):
            raise _refuse(archive, name, "it would be written through a symlink outside the destination")
        return
    target = os.path.realpath(os.path.join(root if hard else parent, link))
    if not _inside(target, top_root):
        raise _refuse(archive, name, f"link to {link!r} resolves outside the destination")


def _check_link_stays_in_top(archive: Path, name: str, path: str, link: str, top: str) -> None:
    """A symlink must point into the archive's own top directory, not at ``dest`` or a sibling tree."""
    target = posixpath.normpath(posixpath.join(posixpath.dirname(path), link))
    if target != top and not target.startswith(top + "/"):
        raise _refuse(archive, name, f"symlink pointing outside the destination ({link!r})")


def _single_top(archive: Path, paths: list[tuple[str, bool]]) -> str:
    """The one top-level directory of the members ``(path, is_dir)``."""
    tops = sorted({p.split("/", 1)[0] for p, _ in paths if p})
    if len(tops) != 1:
        shown = ", ".join(tops[:5]) + (", ..." if len(tops) > 5 else "")
        raise InputError(f"{archive}: expected one top-level directory, found {len(tops)} entries ({shown or 'none'})",
                         fix="unpack it by hand; buildkit expects an upstream source archive")
    top = tops[0]
    if not any(is_dir and p == top for p, is_dir in paths) and not any(p.startswith(top + "/") for p, _ in paths):
        raise InputError(f"{archive}: its only top-level entry {top!r} is not a directory",
                         fix="unpack it by hand; buildkit expects an upstream source archive")
    return top


def _sanitized(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """For Pythons without tarfile's data filter: no owners from the archive, no odd permission bits."""
    m = copy.copy(member)
    m.uid, m.gid, m.uname, m.gname = os.geteuid(), os.getegid(), "", ""
    if m.isdir():
        m.mode = (m.mode & 0o755) | 0o700
    elif m.isreg() or m.islnk():
        m.mode = (m.mode & 0o755) | 0o600
        if not m.mode & 0o100:
            m.mode &= ~0o111
    return m


def _extract_error(archive: Path, e: BaseException, where: Path) -> InputError:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return InputError(f"disk full while extracting {archive} into {where}",
                          fix="free some space there; the partial tree was removed")
    if isinstance(e, OSError) and e.errno is not None:
        return InputError(f"cannot extract {archive} into {where}: {e.strerror or e}", fix="check the folder")
    return InputError(f"{archive}: not a readable archive ({e})",
                      fix="fetch it again (buildkit fetch verifies checksums)")


_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError)


def _extract_tar(archive: Path, tmp: Path, dest: Path) -> str:
    with tarfile.open(archive, "r:*") as tar:
        plan = [(m, _check_tar_member(archive, m)) for m in tar.getmembers()]
        plan = [(m, p) for m, p in plan if p]  # "." itself is not extracted
        top = _single_top(archive, [(p, m.isdir()) for m, p in plan])
        if os.path.lexists(dest / top):
            raise InputError(f"{dest / top} already exists", fix="remove it, or extract into another folder")
        for member, path in plan:
            if member.issym():
                _check_link_stays_in_top(archive, member.name, path, member.linkname, top)
        root = os.path.realpath(tmp)
        top_root = os.path.join(root, top)
        for member, path in plan:
            link = member.linkname if member.issym() or member.islnk() else None
            _check_on_disk(archive, member.name, path, root, top_root, link, member.islnk())
            if _HAS_DATA_FILTER:
                try:
                    tar.extract(member, root, filter="data")
                except tarfile.FilterError as e:
                    raise _refuse(archive, member.name, str(e)) from None
            else:  # this Python has no data filter (or a test pretends so): our checks and sanitizing only
                tar.extract(_sanitized(member), root, **_NO_FILTER)
        # A link checked while its target was missing may point elsewhere once later links exist.
        for member, path in plan:
            if member.issym() and not _inside(os.path.realpath(os.path.join(root, path)), top_root):
                raise _refuse(archive, member.name, f"link to {member.linkname!r} resolves outside the destination "
                              "once the whole archive is written")
    return top


def _extract_zip(archive: Path, tmp: Path, dest: Path) -> str:
    with zipfile.ZipFile(archive) as zf:
        plan = []
        for info in zf.infolist():
            path = _member_path(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise _refuse(archive, info.filename, "symlink (not supported in zip archives)")
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                raise _refuse(archive, info.filename, "device file")
            if mode & (stat.S_ISUID | stat.S_ISGID):
                raise _refuse(archive, info.filename, "setuid or setgid bit")
            if path:
                plan.append((info, path, mode))
        top = _single_top(archive, [(p, i.is_dir()) for i, p, _ in plan])
        if os.path.lexists(dest / top):
            raise InputError(f"{dest / top} already exists", fix="remove it, or extract into another folder")
        root = os.path.realpath(tmp)
        for info, path, mode in plan:
            _check_on_disk(archive, info.filename, path, root, os.path.join(root, top), None, False)
            out = zf.extract(info, root)
            if not info.is_dir() and mode & 0o100:
                os.chmod(out, (mode & 0o755) | 0o600)
    return top


def safe_extract(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` (.tar.gz, .tgz, .tar.xz, .tar.bz2, .tar, .zip) into ``dest`` and return its single
    top-level directory, ``dest/<top>``.

    Members with an absolute path or a ``..`` component, links that point outside ``dest``, devices, pipes
    and setuid/setgid bits are refused (``InputError`` naming the member) before anything is written; where
    each member really lands is checked again as the tree is written, and tarfile's ``data`` filter is used
    when this Python has it. The tree is written into a temporary folder inside ``dest`` and renamed into
    place, so ``dest/<top>`` either appears whole or not at all; it must not exist yet.
    """
    archive = Path(archive)
    dest = Path(dest)
    name = archive.name.lower()
    if name.endswith(TAR_SUFFIXES):
        extract = _extract_tar
    elif name.endswith(".zip"):
        extract = _extract_zip
    else:
        raise InputError(f"{archive}: unknown archive type", fix=f"expected one of {', '.join(TAR_SUFFIXES)}, .zip")
    if not archive.is_file():
        raise InputError(f"{archive}: no such file", fix="fetch it first (buildkit fetch)")
    dest = _ensure_dir(dest, "destination")
    tmp = Path(tempfile.mkdtemp(prefix=f".{archive.name}.extract-", dir=dest))
    try:
        try:
            top = extract(archive, tmp, dest)
        except InputError:
            raise
        except _ARCHIVE_ERRORS as e:
            raise _extract_error(archive, e, dest) from None
        final = dest / top
        try:
            os.rename(tmp / top, final)
        except OSError as e:
            raise InputError(f"cannot move the extracted tree to {final}: {e.strerror}",
                             fix="remove it, or extract into another folder") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
