"""Fetch the catalog's source tarballs by checksum, from the first route that has them.

A tarball is known by its sha256 (and, where the catalog has it, its size); where it comes from does not
matter. :func:`fetch` tries, in order:

1. the cache (``cache_dir/<filename>``), reused only if its size and sha256 still match;
2. ``source_dirs``: any file directly in those folders whose sha256 matches, whatever its name (upstream's
   ``Python-3.11.2.tgz`` or Debian's ``python3.11_3.11.2.orig.tar.gz``); hashes are remembered in
   ``cache_dir/hashes.json`` by (path, size, mtime_ns) so that a second run does not read the folders again;
3. ``mirrors``: ``<mirror>/<sha256>`` (pyenv's mirror layout), then ``<mirror>/<filename>``;
4. the upstream URL;
5. with ``debian=True``: Debian's source package (:mod:`buildkit.sources.debian`).

Every route writes through :func:`~buildkit.sources.transfer.stream_verified`; a route that cannot supply
the file is skipped and named in the error raised when every route failed.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from buildkit.catalog import Source, candidates
from buildkit.errors import InputError
from buildkit.sources.debian import from_debian
from buildkit.sources.extract import TAR_SUFFIXES
from buildkit.sources.transfer import (
    ChecksumMismatch,
    Fetched,
    Progress,
    RouteMiss,
    Say,
    SourceUnavailable,
    ensure_dir,
    failure_reason,
    hash_file,
    open_url,
    remove_stale_parts,
    stream_verified,
    unlink_missing_ok,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.11

log = logging.getLogger(__name__)

HASH_INDEX = "hashes.json"
ARCHIVE_SUFFIXES = (*TAR_SUFFIXES, ".zip", ".tar.zst")
MIRROR_SCHEMES = ("http", "https", "ftp", "file")


# --- names ------------------------------------------------------------------------------------------------


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
    if not source.debian or source.filename.endswith(".deb"):
        return ""
    package = source.debian.partition("/")[0]
    name = source.filename
    ext = "gz" if name.endswith(".tgz") else "xz" if name.endswith(".txz") else name.rpartition(".")[2]
    return f"{package}_{source.version}.orig.tar.{ext}"


def _check_filename(source: Source) -> None:
    name = source.filename
    if not name or "/" in name or name.startswith(".") or "\0" in name:
        raise InputError(f"{source}: bad file name {name!r} in the catalog",
                         fix="a plain file name such as Python-3.11.2.tgz")


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
        actual = hash_file(path)
        if actual == source.sha256:
            return Fetched(source, path, st.st_size, "cache")
        problem = f"sha256 {actual}, expected {source.sha256}"
    unlink_missing_ok(path)
    warn(f"cached {path} was damaged ({problem}); deleted it, fetching it again")
    return None


class _HashIndex:
    """sha256 of files in --source-dir folders, keyed by path and trusted while size and mtime_ns hold."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dirty = False
        self.entries: dict[str, object] = {}  # path -> [size, mtime_ns, sha256], as read (checked on use)
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
        digest = hash_file(path)
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
            unlink_missing_ok(tmp)
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
                        final = stream_verified(f, source, cache_dir, str(path))
                except (ChecksumMismatch, RouteMiss, OSError) as e:
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


def _download(url: str, source: Source, cache_dir: Path, origin: str, progress: Progress | None) -> Fetched:
    response, length = open_url(url)
    with response:
        final = stream_verified(response, source, cache_dir, url, progress=progress, total=length)
    return Fetched(source, final, final.stat().st_size, f"{origin} {url}")


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
        fix += f", or drop --no-debian to take {' or '.join(debs)} from Debian's archive"
    return fix


def fetch_source(source: Source, *, cache_dir: Path, mirrors: Sequence[str] = (), source_dirs: Sequence[Path] = (),
                 debian: bool = False, progress: Progress | None = None, warn: Say | None = None,
                 note: Say | None = None) -> Fetched:
    """Like :func:`fetch`, and also say where the file came from."""
    warn = warn or log.warning
    note = note or log.info
    _check_filename(source)
    bases = [_mirror_base(m) for m in mirrors]
    cache_dir = ensure_dir(Path(cache_dir), "cache")
    remove_stale_parts(cache_dir, source.filename)

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
        except RouteMiss as miss:
            tried.append(str(miss))
    if not source.url:
        tried.append("upstream: no URL serves this file")
    if debian and source.debian:
        try:
            return from_debian(source, cache_dir, note)
        except RouteMiss as miss:
            tried.append(str(miss))
        except OSError as e:  # setting up the private apt state (a full disk while copying is an InputError)
            tried.append(f"debian {source.debian}: {failure_reason(e)}")
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


class _FetchPlace(TypedDict):
    cache_dir: Path


class FetchKwargs(_FetchPlace, total=False):
    """The keyword arguments of :func:`fetch_source`, as :func:`fetch_first` and :func:`fetch_spec` pass them on."""

    mirrors: Sequence[str]
    source_dirs: Sequence[Path]
    debian: bool
    progress: Progress | None
    warn: Say | None
    note: Say | None


def fetch_first(sources: Sequence[Source], **kwargs: Unpack[FetchKwargs]) -> Fetched:
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


def fetch_spec(spec: str, **kwargs: Unpack[FetchKwargs]) -> Fetched:
    """``fetch_first(parse_spec(spec), **kwargs)``: e.g. ``fetch_spec("sqlite@3.40.1", cache_dir=...)``."""
    return fetch_first(parse_spec(spec), **kwargs)


def copy_to_dest(fetched: Fetched, dest_dir: Path) -> Path:
    """Copy a fetched file into ``dest_dir`` (verified again, written under a temporary name and renamed).
    A file already there with the right sha256 is kept as it is."""
    dest_dir = ensure_dir(Path(dest_dir), "destination")
    target = dest_dir / fetched.source.filename
    if target.exists():
        if os.path.samefile(target, fetched.path):
            return target
        if target.is_file() and target.stat().st_size == fetched.size and hash_file(target) == fetched.sha256:
            return target
    remove_stale_parts(dest_dir, fetched.source.filename)
    with open(fetched.path, "rb") as f:
        try:
            return stream_verified(f, fetched.source, dest_dir, str(fetched.path))
        except RouteMiss as e:
            raise InputError(f"cannot copy {fetched.path}: {e}", fix="check the cache folder") from None


def _stderr_is_tty() -> bool:
    from buildkit._term import live_terminal

    try:
        return live_terminal(sys.stderr.fileno())
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
