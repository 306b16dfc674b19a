"""Builder Dockerfiles: every family renders with StrictUndefined, the packages each purpose needs, image
names and pinning, apt sources from the host's mirrors, and write-only-when-changed. No Docker needed."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import jinja2
import pytest

from buildkit.container import images
from buildkit.container.images import (
    IMAGES,
    RenderOptions,
    apt_sources_for,
    check_pinned,
    parse_image,
    render,
    spec_from_os_release,
    write_if_changed,
)
from buildkit.errors import InputError
from buildkit.sources import DebianArchive
from buildkit.templating import environment

TEMPLATES = Path(__file__).resolve().parents[2] / "containers"
# A placeholder mirror: the .invalid top-level domain never resolves.
ARCHIVE = DebianArchive(("http://mirror.invalid/debian",), ("http://mirror.invalid/debian-security",),
                        "/usr/share/keyrings/debian-archive-keyring.gpg")


def ref(spec):
    return parse_image(f"{spec.name}=example/{spec.distro}:{spec.release}-base") if spec.base is None else parse_image(spec.name)


@pytest.mark.parametrize("spec", IMAGES, ids=lambda s: s.name)
@pytest.mark.parametrize("purpose", ["python", "kmod"])
def test_every_image_renders(spec, purpose):
    image = ref(spec)
    out = render(image, RenderOptions(purpose, apt_sources=apt_sources_for(spec, archive=ARCHIVE)))
    text = out.dockerfile
    assert text.splitlines()[2] == f"FROM {image.base}" or f"\nFROM {image.base}\n" in text
    assert "{{" not in text and "{%" not in text
    assert "useradd --create-home --uid 1000 --user-group --shell /bin/sh build" in text
    assert "\nUSER build\n" in text and "install -d -o build -g build /opt/buildkit" in text
    assert re.fullmatch(r"[0-9a-f]{64}", out.hash)
    assert out.tag == f"buildkit-ci/{spec.distro}-{spec.release}-{purpose}:{out.hash[:12]}"
    assert out.labels[images.LABEL_HASH] == out.hash
    if purpose == "python":
        for tool in ("gcc", "make", "perl", "tcl"):
            assert re.search(rf"\s{tool}\s", text), tool
        assert "perl -MIPC::Cmd -e 1" in text
        # The private OpenSSL and SQLite are the point; the images lack the system's -dev packages.
        for devpkg in ("libssl-dev", "libsqlite3-dev", "openssl-devel", "sqlite-devel"):
            assert not re.search(rf"^\s+[^#\n]*\b{devpkg}\b", text, re.M), devpkg
    else:
        assert ("linux-headers-" in text) if spec.pm == "apt" else ("kernel-devel" in text)


@pytest.mark.parametrize("spec", [s for s in IMAGES if s.family == "rhel"], ids=lambda s: s.name)
def test_rhel_images_use_yum_or_dnf_and_perl_ipc_cmd(spec):
    text = render(ref(spec)).dockerfile
    assert "perl-IPC-Cmd" in text and "perl-core" in text
    manager = "yum" if spec.name in ("centos:7", "alinux:2") else "dnf"
    assert spec.pm == manager
    assert f"{manager} -y install" in text and f"{manager} clean all" in text
    assert "apt-get" not in text
    assert "zlib-devel" in text and "libffi-devel" in text


def test_debian_python_image_packages():
    text = render(parse_image("debian:12")).dockerfile
    assert "apt-get install -y --no-install-recommends" in text
    for pkg in ("zlib1g-dev", "libffi-dev", "libbz2-dev", "liblzma-dev", "uuid-dev", "ca-certificates", "xz-utils"):
        assert pkg in text
    assert "yum" not in text and "dnf" not in text


def test_kernel_headers_package_by_family():
    deb = render(parse_image("debian:12"), RenderOptions("kmod", kernel="6.1.0-50-amd64")).dockerfile
    assert "        linux-headers-6.1.0-50-amd64; \\" in deb
    newest = render(parse_image("debian:12"), RenderOptions("kmod")).dockerfile
    assert '"linux-headers-$(dpkg --print-architecture)"' in newest
    assert "linux-headers-generic" in render(parse_image("ubuntu:22.04"), RenderOptions("kmod")).dockerfile
    rhel = render(parse_image("rocky:9"), RenderOptions("kmod", kernel="5.14.0-362.8.1.el9_3.x86_64")).dockerfile
    assert "kernel-devel-5.14.0-362.8.1.el9_3.x86_64; \\" in rhel
    with pytest.raises(InputError, match="not a kernel release"):
        render(parse_image("debian:12"), RenderOptions("kmod", kernel="6.1; rm -rf /"))


def test_strict_undefined_catches_a_missing_variable():
    env = environment(TEMPLATES)
    assert env.undefined is jinja2.StrictUndefined
    template = env.get_template("debian.Dockerfile.j2")
    with pytest.raises(jinja2.UndefinedError):
        template.render(image=IMAGES[1], base="x:1", purpose="kmod", apt_sources=(), yum_baseurl="",
                        user="build", uid=1000, buildkit_version="0")  # kernel missing


def test_templates_are_composed_with_include_and_name_no_hosts():
    for family in ("debian", "rhel"):
        text = (TEMPLATES / f"{family}.Dockerfile.j2").read_text()
        assert text.count("{% include") >= 4
    host = re.compile(r"\b[a-z0-9-]+\.(?:org|com|net|io|cn)\b")
    for path in TEMPLATES.rglob("*.j2"):
        assert not host.search(path.read_text()), path


def test_hash_changes_with_the_rendered_text_only():
    image = parse_image("debian:12")
    a = render(image, RenderOptions("python"))
    assert render(image, RenderOptions("python")).hash == a.hash
    assert render(image, RenderOptions("kmod")).hash != a.hash
    assert render(parse_image("debian:12=example/debian:12-local"), RenderOptions("python")).hash != a.hash


def test_apt_sources_from_the_host_archive():
    spec = parse_image("debian:12").spec
    stanzas = apt_sources_for(spec, archive=ARCHIVE)
    assert [s.suites for s in stanzas] == [("bookworm", "bookworm-updates"), ("bookworm-security",)]
    assert stanzas[0].uris == ("http://mirror.invalid/debian",)
    text = render(parse_image("debian:12"), RenderOptions("python", apt_sources=stanzas)).dockerfile
    assert "'URIs: http://mirror.invalid/debian-security'" in text
    assert "'Suites: bookworm bookworm-updates'" in text
    assert apt_sources_for(spec) == ()  # off Debian: the image's own sources
    ubuntu = parse_image("ubuntu:22.04").spec
    assert apt_sources_for(ubuntu, archive=ARCHIVE) == ()  # a Debian mirror does not serve Ubuntu
    assert apt_sources_for(ubuntu, mirror="http://mirror.invalid/ubuntu")[0].suites[-1] == "jammy-security"
    assert apt_sources_for(parse_image("rocky:9").spec, archive=ARCHIVE) == ()


def test_yum_mirror_rewrites_the_host_part_only():
    text = render(parse_image("centos:7"), RenderOptions("python", yum_baseurl="http://mirror.invalid/vault/")).dockerfile
    assert "s|^#\\{0,1\\}baseurl=[a-z]*://[^/]*/|baseurl=http://mirror.invalid/vault/|" in text
    assert "mirrorlist" not in render(parse_image("centos:7")).dockerfile


@pytest.mark.parametrize("text, name, base", [
    ("debian:bookworm", "debian:12", "debian:12.11-slim"),
    ("Debian:12", "debian:12", "debian:12.11-slim"),
    ("rockylinux:9", "rocky:9", "rockylinux:9.3"),
    ("almalinux:8", "alma:8", "almalinux:8.10"),
    ("debian:12=buildkit-base:debian-bookworm", "debian:12", "buildkit-base:debian-bookworm"),
    ("alinux:3=registry.invalid/alinux3/alinux3@sha256:" + "a" * 64, "alinux:3", "registry.invalid/alinux3/alinux3@sha256:" + "a" * 64),
])
def test_parse_image(text, name, base):
    image = parse_image(text)
    assert (image.name, image.base) == (name, base)
    assert parse_image(image.arg) == image


@pytest.mark.parametrize("text, message", [
    ("fedora:40", "unknown image family"),
    ("debian:10", "unknown release"),
    ("alinux:3", "no default base image"),
    ("debian:12=debian", "is not pinned"),
    ("debian:12=debian:latest", "is not pinned"),
    ("debian:12=debian@sha256:abc", "malformed digest"),
    ("debian:12=-rm", "not an image reference"),
])
def test_bad_images(text, message):
    with pytest.raises(InputError, match=message) as err:
        parse_image(text)
    assert err.value.exit_code == 2


def test_check_pinned_accepts_registry_ports():
    check_pinned("registry.invalid:5000/team/debian:12.11", "debian:12")
    with pytest.raises(InputError):
        check_pinned("registry.invalid:5000/team/debian", "debian:12")


def test_write_if_changed(tmp_path):
    path = tmp_path / "Dockerfile"
    assert write_if_changed(path, "FROM a:1\n") is True
    old = time.time() - 100
    os.utime(path, (old, old))
    assert write_if_changed(path, "FROM a:1\n") is False
    assert path.stat().st_mtime == pytest.approx(old)
    assert write_if_changed(path, "FROM a:2\n") is True
    assert path.read_text() == "FROM a:2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["Dockerfile"]  # no temporary left
    with pytest.raises(InputError, match="cannot write"):
        write_if_changed(tmp_path / "missing" / "Dockerfile", "x")


@pytest.mark.parametrize("fields, name", [
    ({"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"}, "debian:12"),
    ({"ID": "debian", "VERSION_CODENAME": "trixie"}, "debian:13"),  # testing: no VERSION_ID yet
    ({"ID": "ubuntu", "VERSION_ID": "22.04", "ID_LIKE": "debian"}, "ubuntu:22.04"),
    ({"ID": "centos", "VERSION_ID": "7"}, "centos:7"),
    ({"ID": "rocky", "VERSION_ID": "9.3"}, "rocky:9"),
    ({"ID": "almalinux", "VERSION_ID": "8.10"}, "alma:8"),
    ({"ID": "alinux", "VERSION_ID": "3"}, "alinux:3"),
])
def test_release_from_os_release(fields, name):
    assert spec_from_os_release(fields, "some/image:1").name == name


def test_plain_reference_needs_an_engine_only_when_unknown():
    asked = []

    def resolve(ref):
        asked.append(ref)
        return {"ID": "rocky", "VERSION_ID": "9.4", "PRETTY_NAME": "Rocky Linux 9.4 (Blue Onyx)"}

    assert parse_image("debian:12", resolve).base == "debian:12.11-slim" and not asked
    image = parse_image("registry.invalid:5000/base/rocky:9.4", resolve)
    assert (image.name, image.base, image.arg) == ("rocky:9", "registry.invalid:5000/base/rocky:9.4",
                                                   "rocky:9=registry.invalid:5000/base/rocky:9.4")
    with pytest.raises(InputError, match="unknown release"):  # a known distribution's name: no probe
        parse_image("debian:14", resolve)
    with pytest.raises(InputError, match=r"Rocky Linux 10.0 \(Red Quartz\) \(ID=rocky, VERSION_ID=10.0\): no "
                                         r"template for that release; rocky releases buildkit has templates for: 8, 9"):
        parse_image("local/rocky:10", lambda ref: {"ID": "rocky", "VERSION_ID": "10.0",
                                                   "PRETTY_NAME": "Rocky Linux 10.0 (Red Quartz)"})
    with pytest.raises(InputError, match="is not pinned"):
        parse_image("local/rocky:latest", resolve)
    assert asked == ["registry.invalid:5000/base/rocky:9.4", "local/rocky:latest"]
