"""Debian's archive as a last route: ``apt-get source --download-only <srcpkg>/<suite>``, or for a catalog file
that is a binary package (``*.deb``: the kernel's uapi headers of a portable build) ``apt-get download
<pkg>=<version>``.

The host's mirrors are read at run time from ``/etc/apt/sources.list.d/debian.sources`` (deb822) or the
one-line ``/etc/apt/sources.list``; apt-get then runs with a private configuration, lists and cache under
``cache_dir/apt`` (source indexes) or ``cache_dir/apt-deb`` (binary indexes, amd64), so the host's apt state is
left alone. Of the source package, the ``*.orig.tar.*`` with the catalog's sha256 is kept; a binary package is
kept when it has the catalog's sha256.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from buildkit.catalog import Source
from buildkit.sources.transfer import (
    TIMEOUT,
    Fetched,
    RouteMiss,
    Say,
    failure_reason,
    hash_file,
    stream_verified,
    unlink_missing_ok,
)

DEBIAN_SOURCES = "/etc/apt/sources.list.d/debian.sources"
DEBIAN_SOURCES_LIST = "/etc/apt/sources.list"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
#: apt-get update again when the private indexes are older than this (seconds)
APT_LISTS_MAX_AGE = 24 * 3600


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

    ``$BUILDKIT_DEBIAN_SOURCES`` names another file. Raises :class:`RouteMiss` when none is found.
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
            raise RouteMiss(f"cannot read {path}: {failure_reason(e)}") from None
        try:
            path, text = DEBIAN_SOURCES_LIST, Path(DEBIAN_SOURCES_LIST).read_text()
        except OSError as e2:
            raise RouteMiss(f"cannot read {DEBIAN_SOURCES_LIST}: {failure_reason(e2)}") from None
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
        raise RouteMiss(f"no Debian archive URIs in {path}")
    return DebianArchive(tuple(uris), tuple(security), keyring or DEBIAN_KEYRING)


class _Apt:
    """apt-get with its own sources, lists and cache under ``root``: the host's apt state is left alone."""

    def __init__(self, root: Path, archive: DebianArchive, note: Say, kind: str = "deb-src") -> None:
        self.root = root
        self.kind = kind  # deb-src: source packages; deb: binary packages
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

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
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
                stanzas.append(f"Types: {self.kind}\nURIs: {' '.join(uris)}\nSuites: {' '.join(names)}\n"
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
        except RouteMiss:
            alone = self._wanted(suite, keep=False)
            if alone == wanted:
                raise
            self.update(alone)  # a suite configured earlier may be gone from the mirror: drop the others
        return True

    def update(self, wanted: str | None = None) -> None:
        wanted = wanted if wanted is not None else self.sources.read_text()
        self.sources.write_text(wanted)
        suites = " ".join(sorted({s for f in _deb822_stanzas(wanted) for s in f.get("suites", "").split()}))
        what = "source" if self.kind == "deb-src" else "package"
        self.note(f"updating Debian's {what} indexes for {suites} (apt-get update in {self.root})")
        done = self.run("update")
        if done.returncode != 0:
            unlink_missing_ok(self.stamp)
            raise RouteMiss(f"apt-get update failed: {_last_apt_error(done)}")
        self.stamp.write_text(wanted)


def _last_apt_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = [ln.strip() for ln in (done.stderr or "").splitlines() + (done.stdout or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("E:")] or [ln for ln in lines if ln.startswith("W:")] or lines
    return errors[-1] if errors else f"exit status {done.returncode}"


def from_debian(source: Source, cache_dir: Path, note: Say) -> Fetched:
    spec = source.debian
    package, _, rest = spec.partition("/")
    # SRCPKG/SUITE, or SRCPKG/SUITE=REVISION when the suite's newest revision is another upstream version
    # (trixie's openssl is 3.5.9 and 3.5.7 at once; only 3.5.7's files are on every mirror).
    suite, _, revision = rest.partition("=")
    if not package or not suite:
        raise RouteMiss(f"debian {spec!r}: expected SRCPKG/SUITE or SRCPKG/SUITE=REVISION in the catalog")
    binary = source.filename.endswith(".deb")
    if binary and not revision:
        raise RouteMiss(f"debian {spec!r}: a binary package is named PKG/SUITE=VERSION in the catalog")
    wanted = f"{package}={revision}" if revision else spec
    if shutil.which("apt-get") is None:
        raise RouteMiss(f"debian {spec}: apt-get not found (Debian and Ubuntu hosts only)")
    archive = read_debian_sources()
    root = cache_dir / ("apt-deb" if binary else "apt")
    root.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(root / "lock-buildkit", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one buildkit at a time in this apt state
        apt = _Apt(root, archive, note, "deb" if binary else "deb-src")
        updated = apt.ensure(suite)
        work = Path(tempfile.mkdtemp(prefix=".debian-", dir=cache_dir))
        try:
            args = ("download", wanted) if binary else ("source", "--download-only", wanted)
            note(f"fetching {spec} from Debian's archive (apt-get {' '.join(args)})")
            done = apt.run(*args, cwd=work)
            if done.returncode != 0 and not updated:
                apt.update()
                done = apt.run(*args, cwd=work)
            if done.returncode != 0:
                raise RouteMiss(f"debian {spec}: apt-get {args[0]} failed: {_last_apt_error(done)}")
            seen = []
            for path in sorted(work.iterdir()):
                if not path.is_file() or path.name.endswith((".asc", ".dsc")):
                    continue
                size = path.stat().st_size
                if ".orig.tar." not in path.name and not binary and size != source.size:
                    continue
                digest = hash_file(path)
                if digest == source.sha256:
                    with open(path, "rb") as f:
                        final = stream_verified(f, source, cache_dir, f"debian {spec} ({path.name})")
                    return Fetched(source, final, final.stat().st_size, f"debian {spec} ({path.name})")
                if ".orig.tar." in path.name or binary:
                    seen.append(f"{path.name} has sha256 {digest}")
            found = "; ".join(seen) or ("no file" if binary else "no orig tarball in the source package")
            raise RouteMiss(f"debian {spec}: {found}, not {source.sha256} "
                            "(did Debian move to another upstream version?)")
        finally:
            shutil.rmtree(work, ignore_errors=True)
