"""Bytes in: the one verified write, the URL opener, and what a fetch returns or raises.

Whatever the route, the bytes are streamed into ``<filename>.part-<pid>`` next to their final place while
their sha256 and size are computed, and renamed only when both match (:func:`stream_verified`). A route
that cannot supply the file (no such file, HTTP 404, no network, a timeout) raises :class:`RouteMiss`, and the
caller tries the next one; a route that supplies *other bytes* is an error at once
(:class:`ChecksumMismatch`) and the partial file is deleted.

Names with a leading ``_`` are shared by the modules of :mod:`buildkit.sources` only.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Optional

from buildkit import __version__
from buildkit.catalog import Source
from buildkit.errors import InputError

#: seconds to wait for a connection or for the next bytes of a download
TIMEOUT = 30.0
CHUNK = 1 << 16
#: the most a download may bring when the catalog gives no size
MAX_UNKNOWN_SIZE = 1 << 31

#: ``progress(done, total)``: bytes so far and the expected total (None if unknown); a last call with
#: ``done == total`` marks the end of the stream, whether it succeeded or not.
Progress = Callable[[int, Optional[int]], None]
Say = Callable[[str], None]


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


class RouteMiss(Exception):
    """One route could not supply the file (not there, HTTP error, no network): try the next one."""


# --- small helpers ----------------------------------------------------------------------------------------


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def unlink_missing_ok(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def ensure_dir(path: Path, what: str) -> Path:
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


def failure_reason(e: BaseException) -> str:
    """A short reason for a failed network or file read."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return failure_reason(e.reason) if isinstance(e.reason, BaseException) else str(e.reason)
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


def remove_stale_parts(directory: Path, filename: str) -> None:
    """Partial downloads left by processes that are gone."""
    prefix = f"{filename}.part-"
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(prefix):] if entry.name.startswith(prefix) else ""
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            unlink_missing_ok(Path(entry.path))


# --- the one verified write -------------------------------------------------------------------------------


def _open_part(path: Path) -> IO[bytes]:
    return open(path, "wb")


def stream_verified(reader: IO[bytes], source: Source, directory: Path, origin: str, *,
                     progress: Progress | None = None, total: int | None = None) -> Path:
    """Copy ``reader`` into ``directory/<filename>`` through sha256 and size checks.

    The bytes go to ``<filename>.part-<pid>``, which is renamed only when both match and deleted otherwise.
    Reading more than the expected size stops at once. Read errors raise :class:`RouteMiss`; a full disk raises
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
                        raise RouteMiss(f"{origin}: {failure_reason(e)} after {got} bytes") from None
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
        unlink_missing_ok(part)
        raise
    finally:
        if progress is not None and got:
            progress(got, got)
    return final


# --- the one URL opener ----------------------------------------------------------------------------------


def open_url(url: str) -> tuple[IO[bytes], int | None]:
    request = urllib.request.Request(url, headers={"User-Agent": f"buildkit/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310 - schemes checked
    except urllib.error.HTTPError as e:
        e.close()
        raise RouteMiss(f"{url}: {failure_reason(e)}") from None
    except _READ_ERRORS as e:
        raise RouteMiss(f"{url}: {failure_reason(e)}") from None
    length = response.headers.get("Content-Length")
    return response, int(length) if length and length.isdigit() else None

