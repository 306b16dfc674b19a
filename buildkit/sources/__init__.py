"""The catalog's source tarballs: fetched by checksum from the first route that has them, unpacked safely.

* :mod:`~buildkit.sources.routes`: :func:`fetch` and friends, the routes in order (cache, ``--source-dir``
  by sha256, ``--mirror``, upstream, Debian), progress on stderr;
* :mod:`~buildkit.sources.debian`: Debian's archive through ``apt-get source`` with a private apt state;
* :mod:`~buildkit.sources.transfer`: the one verified write (sha256 and size, ``.part-<pid>``, rename), the
  URL opener, :class:`Fetched` and the errors;
* :mod:`~buildkit.sources.extract`: :func:`safe_extract`, and :func:`safe_extract_tarfile` for what a build container
  gives back: one policy (no member outside, no link pointing out unless its caller declares it).
"""

from buildkit.sources.debian import DebianArchive, read_debian_sources
from buildkit.sources.extract import safe_extract
from buildkit.sources.routes import (
    copy_to_dest,
    debian_orig_name,
    default_cache_dir,
    fetch,
    fetch_first,
    fetch_source,
    fetch_spec,
    parse_spec,
    stderr_progress,
)
from buildkit.sources.transfer import ChecksumMismatch, Fetched, SourceUnavailable

__all__ = [
    "ChecksumMismatch",
    "DebianArchive",
    "Fetched",
    "SourceUnavailable",
    "copy_to_dest",
    "debian_orig_name",
    "default_cache_dir",
    "fetch",
    "fetch_first",
    "fetch_source",
    "fetch_spec",
    "parse_spec",
    "read_debian_sources",
    "safe_extract",
    "stderr_progress",
]
