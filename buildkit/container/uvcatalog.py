"""uv's download catalog for the artifacts of an output folder: ``uv python install`` installs them as it
installs python-build-standalone's.

``uv python install V --python-downloads-json-url DIR/download-metadata.json`` reads a JSON object of
downloads, each ``{"name": "cpython", "arch": {"family", "variant"}, "os", "libc", "major", "minor",
"patch", "prerelease", "url", "sha256", "variant"}``; the URL may be ``file://``; uv strips the archive's
one top directory, so an artifact's own (``python-3.13.5-openssl-...-x86_64/``) is fine.

uv tells builds apart by version, os, architecture and libc only: two artifacts of one Python version for
one architecture (built on two distributions, or with two OpenSSL versions) are one download to it. So:

* ``download-metadata.json`` holds every Python version of the folder once, the most recently built
  artifact of it (said when there were others), under uv's own key (``cpython-3.13.5-linux-x86_64-gnu``);
* ``download-metadata-<distro>.json`` (``-debian12``, ``-rocky9``) holds each distribution's own, for a
  host of that distribution: a CentOS 7 host takes the ``centos7`` build, whatever else the folder holds.

Each entry also carries ``buildkit`` (artifact, OpenSSL, SQLite, distribution), which uv ignores. Entries a
user put in the files that are not ours are kept; ours are rebuilt from the reports in the folder, so an
artifact that was deleted leaves the catalog too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from buildkit.errors import InputError

__all__ = ["CATALOG", "update_catalogs", "entry_for"]

CATALOG = "download-metadata.json"
_NAME = re.compile(r"^python-(?P<py>[^-]+)(?P<opt>-pgo-lto)?-openssl-(?P<ossl>[^-]+)-sqlite-(?P<sql>[^-]+)"
                   r"-(?P<distro>[^-]+)-(?P<arch>[^-]+)$")
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)((?:a|b|rc)\d+)?$")


def entry_for(report: dict, archive: Path) -> tuple[str, dict, str] | None:
    """(uv's key, the entry, the distribution label) of one verified artifact report, or None when the
    report is not one of a verified artifact."""
    name = str(report.get("artifact", ""))
    if not report.get("verified") or not report.get("sha256") or not name.endswith(".tar.gz"):
        return None
    found = _NAME.match(name[: -len(".tar.gz")])
    version = _VERSION.match(found["py"]) if found else None
    if not found or not version:
        return None
    major, minor, patch, pre = int(version[1]), int(version[2]), int(version[3]), version[4] or ""
    arch = found["arch"]
    key = f"cpython-{found['py']}-linux-{arch}-gnu"
    entry = {
        "name": "cpython",
        "arch": {"family": arch, "variant": None},
        "os": "linux",
        "libc": "gnu",
        "major": major,
        "minor": minor,
        "patch": patch,
        "prerelease": pre,
        "url": archive.resolve().as_uri(),
        "sha256": report["sha256"],
        "variant": None,
        "buildkit": {"artifact": name, "openssl": found["ossl"], "sqlite": found["sql"],
                     "distribution": found["distro"], "optimized": bool(found["opt"]),
                     "image": report.get("image", {}).get("name", "")},
    }
    return key, entry, found["distro"]


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a JSON download catalog ({e})",
                         fix="move it away; buildkit writes it again from the artifacts' reports") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a JSON object of downloads", fix="move it away; buildkit writes it again")
    return data


def _write(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def update_catalogs(out: Path, say: Callable[[str], None] = lambda _line: None) -> list[Path]:
    """Write ``out/download-metadata.json`` and one ``download-metadata-<distro>.json`` per distribution
    from the verified artifacts' reports in ``out``; returns the files written."""
    found: list[tuple[float, str, dict, str]] = []
    for report_path in sorted(out.glob("python-*.json")):
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not a report of ours (or half written by another run)
        archive = out / str(report.get("artifact", ""))
        made = entry_for(report, archive) if archive.is_file() else None
        if made is not None:
            found.append((report_path.stat().st_mtime, *made))
    if not found:
        return []
    found.sort(key=lambda item: (item[0], item[2]["buildkit"]["artifact"]))  # the newest last: it wins
    groups: dict[str, list[tuple[str, dict]]] = {"": []}
    for _mtime, key, entry, distro in found:
        groups[""].append((key, entry))
        groups.setdefault(distro, []).append((key, entry))
    written = []
    for distro, entries in groups.items():
        path = out / (CATALOG if not distro else f"download-metadata-{distro}.json")
        data = {k: v for k, v in _load(path).items() if not (isinstance(v, dict) and "buildkit" in v)}
        chosen: dict[str, dict] = {}
        others: dict[str, list[str]] = {}
        for key, entry in entries:
            if key in chosen:
                others.setdefault(key, []).append(chosen[key]["buildkit"]["artifact"])
            chosen[key] = entry
        data.update(chosen)
        _write(path, data)
        written.append(path)
        for key, older in others.items():
            say(f"{path.name}: {key} is {chosen[key]['buildkit']['artifact']} (uv takes one build per version; "
                f"also here: {', '.join(older)}; each distribution's own: download-metadata-<distro>.json)")
    return written
