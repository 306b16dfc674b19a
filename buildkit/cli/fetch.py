"""``buildkit fetch``: the catalog's source tarballs (:mod:`buildkit.sources`); and the source options
(``--cache``, ``--source-dir``, ``--mirror``, ``--no-debian``) that ``buildkit python`` and ``ci python`` share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from buildkit.cli.output import CONTEXT, fail_all, print_json, say, warn
from buildkit.errors import BuildkitError, InputError

if TYPE_CHECKING:
    from buildkit.pybuild.build import FetchOptions


def fetch_options(cache_dir: str | None, source_dirs: tuple[str, ...], mirrors: tuple[str, ...],
                  no_debian: bool) -> FetchOptions:
    """Where ``buildkit python`` and ``buildkit ci python`` take their sources from (their --cache,
    --source-dir, --mirror and --no-debian)."""
    from buildkit.pybuild.build import FetchOptions
    from buildkit.sources import default_cache_dir

    return FetchOptions(Path(cache_dir).expanduser() if cache_dir else default_cache_dir(),
                        tuple(Path(d) for d in source_dirs), tuple(mirrors), debian=not no_debian)


@click.command("fetch", context_settings=CONTEXT)
@click.argument("specs", nargs=-1, required=True, metavar="PACKAGE@VERSION...")
@click.option("--cache", metavar="DIR", type=click.Path(file_okay=False),
              help="Where verified tarballs are kept (default: $BUILDKIT_CACHE, else ~/.cache/buildkit/sources).")
@click.option("--source-dir", "source_dirs", multiple=True, metavar="DIR",
              type=click.Path(file_okay=False, exists=True),
              help="Take a file directly in DIR whose sha256 matches, whatever its name, e.g. Debian's "
              "python3.11_3.11.2.orig.tar.gz (repeatable; hashes are remembered in the cache).")
@click.option("--mirror", "mirrors", multiple=True, metavar="URL",
              help="Try URL/<sha256> (pyenv's mirror layout), then URL/<filename> (repeatable; http(s)://, "
              "ftp://, file:// or a folder).")
@click.option("--no-debian", is_flag=True,
              help="Do not fall back to Debian's source packages (the last resort otherwise, as for buildkit "
              "python: 'apt-get source --download-only' of the package whose *.orig.tar.* is the file, with a "
              "private apt configuration under the cache; mirrors read from /etc/apt/sources.list.d/debian.sources).")
@click.option("--debian", is_flag=True, hidden=True, help="The default now; kept for scripts that pass it.")
@click.option("--dest", "--out", "dest", metavar="DIR", type=click.Path(file_okay=False),
              help="Also copy the verified files into DIR (a file already there with the right sha256 is kept).")
@click.option("--json", "as_json", is_flag=True, help="Print {\"sources\": [...]} as JSON.")
def fetch_command(specs: tuple[str, ...], cache: str | None, source_dirs: tuple[str, ...], mirrors: tuple[str, ...],
                  no_debian: bool, debian: bool, dest: str | None, as_json: bool) -> None:
    """Download and verify the source tarballs of the catalog (CPython, OpenSSL, SQLite).

    Each PACKAGE@VERSION (cpython@3.11 means the newest 3.11 the catalog knows) is looked for, in order, in
    the cache, the --source-dir folders, the --mirror URLs, its upstream URL and (unless --no-debian)
    Debian's archive. Every file is streamed through the catalog's sha256 and size before it is kept; a file with
    other bytes is deleted and reported, and no other route is tried for it. When the catalog knows two
    tarballs of a version (sqlite 3.40.1: upstream's amalgamation and Debian's full tree) the first one any
    route can supply is taken. Prints each file's path, size, sha256 and where it came from.

    \b
    Exit status: 0 all fetched, 2 bad input, a checksum mismatch, or a tarball no route could supply.

    \b
    Examples:
      buildkit fetch cpython@3.11.2 openssl@3.0.20 sqlite@3.40.1
      buildkit fetch cpython@3.11.2 --source-dir /var/tmp/debian-sources
      buildkit fetch openssl@3.0.20 --mirror file:///srv/tarballs --mirror https://HOST/pyenv-cache
      buildkit fetch --dest ./src cpython@3.11.2 openssl@1.1.1w sqlite@3.40.1 --json
    """
    from buildkit.sources import copy_to_dest, default_cache_dir, fetch_spec, stderr_progress

    if debian and no_debian:
        raise InputError("--debian and --no-debian together", fix="drop one (Debian's archive is tried by default)")
    cache_dir = Path(cache).expanduser() if cache else default_cache_dir()
    from buildkit._term import live_terminal

    tty = live_terminal(2)
    results: list[tuple[Any, Any]] = []
    errors: list[BuildkitError] = []
    for spec in specs:
        try:
            got = fetch_spec(spec, cache_dir=cache_dir, mirrors=mirrors, source_dirs=[Path(d) for d in source_dirs],
                             debian=not no_debian, progress=stderr_progress(spec), warn=warn,
                             note=(lambda m: say(f"buildkit: {m}")) if tty else (lambda m: None))
            results.append((got, copy_to_dest(got, Path(dest)) if dest else None))
        except BuildkitError as err:
            errors.append(err)
    if as_json:
        print_json({"sources": [{**got.to_json(), "copied_to": str(copied) if copied else None}
                                 for got, copied in results]})
    else:
        for got, copied in results:
            click.echo(f"{got.source}: {copied or got.path}")
            click.echo(f"  {got.size} bytes  sha256 {got.sha256}  from {got.origin}")
            if copied:
                click.echo(f"  cached as {got.path}")
    fail_all(errors)

