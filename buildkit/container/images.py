"""The images ``buildkit ci`` knows, and their Dockerfiles: pure data and rendering, no Docker.

An IMAGE on the command line is ``DISTRO:RELEASE`` (``debian:12``, ``debian:bookworm``, ``ubuntu:22.04``,
``centos:7``, ``rocky:9``, ``alma:8``, ``alinux:3``), optionally ``=BASE`` to build from another base image
than the pinned default (``debian:12=buildkit-base:debian-bookworm``, a local ``docker import``). Its family
picks the template (``containers/debian.Dockerfile.j2``: apt; ``containers/rhel.Dockerfile.j2``: yum/dnf),
its purpose the packages (``python``: the recipes' toolchain; ``kmod``: the kernel headers package).

Builder images are cached by the hash of the rendered Dockerfile, which the engine stores as a label.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from buildkit import __version__
from buildkit.errors import InputError
from buildkit.templating import environment

__all__ = [
    "AptStanza",
    "IMAGES",
    "ImageRef",
    "ImageSpec",
    "PURPOSES",
    "RenderOptions",
    "Rendered",
    "apt_sources_for",
    "known_images",
    "parse_image",
    "render",
    "spec_from_os_release",
    "write_if_changed",
]

PURPOSES = ("python", "kmod")
BUILD_USER = "build"
BUILD_UID = 1000
LABEL_HASH = "org.buildkit.template-hash"
LABEL_IMAGE = "org.buildkit.image"
LABEL_PURPOSE = "org.buildkit.purpose"


@dataclass(frozen=True)
class ImageSpec:
    """One distribution release buildkit has a template for."""

    distro: str  # debian | ubuntu | centos | rocky | alma | alinux
    release: str  # 12, 22.04, 7, 9, 3
    family: str  # debian | rhel: the template
    pm: str  # apt | yum | dnf
    base: str | None  # the pinned default base image (tag or digest); None: must be given
    pretty: str
    os_id: str  # ID= of /etc/os-release
    codename: str = ""
    openssldir: str = "/etc/ssl"  # the distribution's OpenSSL directory (CA store), for relocated artifacts
    system_libs: str = ""  # what the distribution ships, for the template's comment
    aliases: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.distro}:{self.release}"

    @property
    def label(self) -> str:
        """The distro part of artifact names: debian12, ubuntu22.04, centos7."""
        return f"{self.distro}{self.release}"


_DEB_SSL = "/etc/ssl"
_RHEL_SSL = "/etc/pki/tls"

IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec("debian", "11", "debian", "apt", "debian:11.11-slim", "Debian 11 (bullseye)", "debian", "bullseye",
              _DEB_SSL, "OpenSSL 1.1.1, SQLite 3.34", ("debian:bullseye",)),
    ImageSpec("debian", "12", "debian", "apt", "debian:12.11-slim", "Debian 12 (bookworm)", "debian", "bookworm",
              _DEB_SSL, "OpenSSL 3.0, SQLite 3.40", ("debian:bookworm",)),
    ImageSpec("debian", "13", "debian", "apt", "debian:13.1-slim", "Debian 13 (trixie)", "debian", "trixie",
              _DEB_SSL, "OpenSSL 3.5, SQLite 3.46", ("debian:trixie",)),
    ImageSpec("ubuntu", "20.04", "debian", "apt", "ubuntu:20.04", "Ubuntu 20.04 (focal)", "ubuntu", "focal",
              _DEB_SSL, "OpenSSL 1.1.1f, SQLite 3.31", ("ubuntu:focal",)),
    ImageSpec("ubuntu", "22.04", "debian", "apt", "ubuntu:22.04", "Ubuntu 22.04 (jammy)", "ubuntu", "jammy",
              _DEB_SSL, "OpenSSL 3.0.2, SQLite 3.37", ("ubuntu:jammy",)),
    ImageSpec("ubuntu", "24.04", "debian", "apt", "ubuntu:24.04", "Ubuntu 24.04 (noble)", "ubuntu", "noble",
              _DEB_SSL, "OpenSSL 3.0.13, SQLite 3.45", ("ubuntu:noble",)),
    ImageSpec("centos", "7", "rhel", "yum", "centos:7.9.2009", "CentOS 7", "centos", "",
              _RHEL_SSL, "OpenSSL 1.0.2k and SQLite 3.7.17", ()),
    ImageSpec("rocky", "8", "rhel", "dnf", "rockylinux:8.9", "Rocky Linux 8", "rocky", "",
              _RHEL_SSL, "OpenSSL 1.1.1k and SQLite 3.26", ("rockylinux:8",)),
    ImageSpec("rocky", "9", "rhel", "dnf", "rockylinux:9.3", "Rocky Linux 9", "rocky", "",
              _RHEL_SSL, "OpenSSL 3.0.7 and SQLite 3.34", ("rockylinux:9",)),
    ImageSpec("alma", "8", "rhel", "dnf", "almalinux:8.10", "AlmaLinux 8", "almalinux", "",
              _RHEL_SSL, "OpenSSL 1.1.1k and SQLite 3.26", ("almalinux:8",)),
    ImageSpec("alma", "9", "rhel", "dnf", "almalinux:9.5", "AlmaLinux 9", "almalinux", "",
              _RHEL_SSL, "OpenSSL 3.0.7 and SQLite 3.34", ("almalinux:9",)),
    # Alibaba Cloud Linux images live on Alibaba Cloud's own registry: no default, pass alinux:3=BASE.
    ImageSpec("alinux", "2", "rhel", "yum", None, "Alibaba Cloud Linux 2", "alinux", "",
              _RHEL_SSL, "OpenSSL 1.0.2k and SQLite 3.7.17", ("alibaba-cloud-linux:2",)),
    ImageSpec("alinux", "3", "rhel", "dnf", None, "Alibaba Cloud Linux 3", "alinux", "",
              _RHEL_SSL, "OpenSSL 1.1.1k and SQLite 3.26", ("alibaba-cloud-linux:3",)),
)

_BY_NAME: dict[str, ImageSpec] = {}
for _spec in IMAGES:
    for _n in (_spec.name, *_spec.aliases):
        _BY_NAME[_n] = _spec


def known_images() -> list[str]:
    return [s.name for s in IMAGES]


@dataclass(frozen=True)
class ImageRef:
    """An image of a matrix: the release and the base image its builder starts from."""

    spec: ImageSpec
    base: str
    explicit_base: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def arg(self) -> str:
        """How to name it again on a command line."""
        return f"{self.spec.name}={self.base}" if self.explicit_base else self.spec.name


_REF = re.compile(r"^[a-z0-9][a-z0-9._/:@+-]*$", re.I)


def check_pinned(base: str, image: str) -> None:
    """A base image must name a version: ``repo:tag`` (not ``latest``) or ``repo@sha256:...``."""
    if not _REF.match(base) or base.startswith("-"):
        raise InputError(f"{image}: {base!r} is not an image reference", fix="use e.g. debian:12.11-slim")
    if "@" in base:
        digest = base.split("@", 1)[1]
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise InputError(f"{image}: base {base!r} has a malformed digest", fix="use REPO@sha256:<64 hex digits>")
        return
    last = base.rsplit("/", 1)[-1]
    if ":" not in last or last.rsplit(":", 1)[1] in ("", "latest"):
        raise InputError(f"{image}: base image {base!r} is not pinned",
                         fix="name a tag other than latest (debian:12.11-slim) or a digest (REPO@sha256:...)")


def spec_from_os_release(fields: dict[str, str], ref: str) -> ImageSpec:
    """The release an image's ``/etc/os-release`` describes (``ID``, ``VERSION_ID``: ``9.3`` is Rocky 9;
    Debian testing has only ``VERSION_CODENAME``); one line naming what was found when there is no template."""
    os_id = fields.get("ID", "").lower()
    version = fields.get("VERSION_ID", "")
    codename = fields.get("VERSION_CODENAME", "")
    found = fields.get("PRETTY_NAME") or " ".join(filter(None, (os_id, version))) or "nothing"
    said = f"{ref}: /etc/os-release says {found} (ID={os_id or '?'}, VERSION_ID={version or '?'})"
    family = [s for s in IMAGES if s.os_id == os_id]
    if not family:
        kinds = sorted({f"{s.family} ({', '.join(sorted({t.distro for t in IMAGES if t.family == s.family}))})"
                        for s in IMAGES})
        raise InputError(f"{said}: no template for that distribution",
                         fix=f"families buildkit has templates for: {'; '.join(kinds)}")
    for spec in family:
        if version == spec.release or version.startswith(spec.release + ".") or (
                not version and codename and codename == spec.codename):
            return spec
    raise InputError(f"{said}: no template for that release",
                     fix=f"{family[0].distro} releases buildkit has templates for: "
                         f"{', '.join(s.release for s in family)}")


def parse_image(text: str, resolve: Callable[[str], dict[str, str]] | None = None) -> ImageRef:
    """``DISTRO:RELEASE[=BASE]`` -> :class:`ImageRef`; an unknown family or release is an InputError.

    With ``resolve`` (an engine's :meth:`~buildkit.container.engine.Engine.os_release`), any other image
    reference is taken as the base image of the release its ``/etc/os-release`` names."""
    name, sep, base = text.strip().partition("=")
    name = name.strip().lower()
    spec = _BY_NAME.get(name)
    distros = {s.distro for s in IMAGES} | {a.split(":")[0] for s in IMAGES for a in s.aliases}
    if spec is None and not sep and resolve is not None and _REF.match(text.strip()) and (
            name.split(":", 1)[0] not in distros):
        ref = text.strip()
        spec = spec_from_os_release(resolve(ref), ref)
        check_pinned(ref, ref)
        return ImageRef(spec, ref, True)
    if spec is None:
        distro = name.split(":", 1)[0]
        releases = [s.release for s in IMAGES if s.distro == distro or distro in (a.split(":")[0] for a in s.aliases)]
        if releases:
            raise InputError(f"unknown release in image {text!r}",
                             fix=f"{distro} releases buildkit has templates for: {', '.join(releases)}")
        raise InputError(f"unknown image family {text!r}",
                         fix=f"use one of {', '.join(known_images())} (optionally =BASE, e.g. "
                             "debian:12=buildkit-base:debian-bookworm), or an image on the engine, whose "
                             "/etc/os-release names its release")
    if sep:
        base = base.strip()
        check_pinned(base, spec.name)
        return ImageRef(spec, base, True)
    if spec.base is None:
        raise InputError(f"{spec.name} has no default base image here ({spec.pretty} images are on its vendor's "
                         "registry)", fix=f"pass {spec.name}=REGISTRY/REPO:TAG, pinned by tag or digest")
    return ImageRef(spec, spec.base)


# --- apt sources ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AptStanza:
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str


def apt_sources_for(spec: ImageSpec, *, mirror: str | None = None, archive=None) -> tuple[AptStanza, ...]:
    """apt sources for an image: ``--apt-mirror URI`` if given; for Debian images, else the host's Debian
    mirrors (``archive``: :class:`buildkit.sources.DebianArchive`, read at run time); else none (the base
    image's own sources stay)."""
    if spec.pm != "apt":
        return ()
    if spec.distro == "ubuntu":
        if not mirror:
            return ()
        suites = (spec.codename, f"{spec.codename}-updates", f"{spec.codename}-security")
        return (AptStanza((mirror,), suites, ("main", "universe"), "/usr/share/keyrings/ubuntu-archive-keyring.gpg"),)
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    if mirror:
        return (AptStanza((mirror,), (spec.codename, f"{spec.codename}-updates"), ("main",), keyring),)
    if archive is None:
        return ()
    stanzas = [AptStanza(tuple(archive.uris), (spec.codename, f"{spec.codename}-updates"), ("main",), keyring)]
    if archive.security_uris:
        stanzas.append(AptStanza(tuple(archive.security_uris), (f"{spec.codename}-security",), ("main",), keyring))
    return tuple(stanzas)


def host_debian_archive():
    """The host's Debian mirrors (``/etc/apt/sources.list.d/debian.sources``), or None off Debian."""
    from buildkit.sources.debian import read_debian_sources

    try:
        return read_debian_sources()
    except Exception:  # RouteMiss: no Debian sources on this host
        return None


# --- rendering -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RenderOptions:
    purpose: str = "python"
    kernel: str = ""  # kmod: the release whose headers to install (uname -r form); "" the newest
    apt_sources: tuple[AptStanza, ...] = ()
    yum_baseurl: str = ""


@dataclass(frozen=True)
class Rendered:
    image: ImageRef
    options: RenderOptions
    dockerfile: str
    hash: str = field(default="")

    @property
    def tag(self) -> str:
        """The builder image's name: buildkit-ci/debian-12-python:<hash12>."""
        return f"buildkit-ci/{self.image.spec.distro}-{self.image.spec.release}-{self.options.purpose}:{self.hash[:12]}"

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_HASH: self.hash, LABEL_IMAGE: self.image.name, LABEL_PURPOSE: self.options.purpose}


def _templates_dir() -> Path:
    # containers/ is buildkit.containers as recipes/ is buildkit.recipes (see buildkit/pybuild/plan.py): mypy
    # cannot find it from here and checks it on its own (tests/unit/test_types.py)
    from buildkit.containers import TEMPLATES  # type: ignore[import-not-found]

    return TEMPLATES


_KERNEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]*$")


def render(image: ImageRef, options: RenderOptions = RenderOptions()) -> Rendered:
    """The builder's Dockerfile for ``image`` (StrictUndefined: a missing variable is an error)."""
    if options.purpose not in PURPOSES:
        raise InputError(f"unknown purpose {options.purpose!r}", fix=f"use one of {', '.join(PURPOSES)}")
    if options.kernel and not _KERNEL.match(options.kernel):
        raise InputError(f"--kernel {options.kernel!r} is not a kernel release", fix="e.g. --kernel 6.1.0-50-amd64")
    spec = image.spec
    template = environment(_templates_dir()).get_template(f"{spec.family}.Dockerfile.j2")
    text = template.render(
        image=spec,
        base=image.base,
        purpose=options.purpose,
        kernel=options.kernel,
        apt_sources=options.apt_sources,
        yum_baseurl=options.yum_baseurl.rstrip("/"),
        user=BUILD_USER,
        uid=BUILD_UID,
        buildkit_version=__version__,
    )
    text = re.sub(r"\n{3,}", "\n\n", text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Rendered(image, options, text, digest)


def write_if_changed(path: str | os.PathLike, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that (mtime kept); True when written."""
    path = Path(path)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    except OSError as e:
        raise InputError(f"{path}: cannot read it: {e.strerror}", fix="choose another output file") from None
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise InputError(f"{path}: cannot write it: {e.strerror}", fix="choose another output file") from None
    return True
