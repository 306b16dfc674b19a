"""Plain image references on a real Docker engine: ``--image REF`` for any image, its distribution and
release read from the image's own ``/etc/os-release`` (from a container created, never started), and
remembered by image id.

The images are the bookworm and trixie roots debootstrap made (tests/fixtures/images.sh), under other
names; the image with no template is a busybox root file system whose os-release names Buildroot (what
Buildroot's images say), the one with no os-release a single static binary.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

pytestmark = pytest.mark.integration


def buildkit(host: str, cache: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": host, "XDG_CACHE_HOME": cache}
    return subprocess.run([sys.executable, "-m", "buildkit", *args], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.fixture(scope="module")
def client(docker_host):
    import docker

    client = docker.DockerClient(base_url=docker_host)
    yield client
    client.close()


def import_root(client, files: dict[str, bytes | str], tag: str) -> str:
    """``docker import`` of a root file system holding ``files`` (path -> bytes, or a symlink target)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for path, body in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            if isinstance(body, str):
                info.type, info.linkname = tarfile.SYMTYPE, body
                tar.addfile(info)
            else:
                info.size, info.mode = len(body), 0o755
                tar.addfile(info, io.BytesIO(body))
    repo, tag_ = tag.rsplit(":", 1)
    client.api.import_image_from_data(data.getvalue(), repository=repo, tag=tag_)
    return client.images.get(tag).id


def test_plain_references_are_read_from_os_release_and_remembered(docker_host, client, tmp_path):
    cache = str(tmp_path / "cache")
    for base, ref, name in (("buildkit-base:debian-bookworm", "local/debian:bookworm", "debian:12"),
                            ("buildkit-base:debian-trixie", "example.org:5000/team/trixie:2026-11", "debian:13")):
        client.images.get(base).tag(ref)
        run = buildkit(docker_host, cache, "ci", "render", ref)
        assert run.returncode == 0, run.stderr
        assert f"FROM {ref}\n" in run.stdout and f"org.buildkit.image={name} " in run.stdout
        # the same as naming the release and the base by hand
        assert run.stdout == buildkit(docker_host, cache, "ci", "render", f"{name}={ref}").stdout
    remembered = json.loads((tmp_path / "cache" / "buildkit" / "os-release.json").read_text())
    ids = {client.images.get(r).id for r in ("local/debian:bookworm", "example.org:5000/team/trixie:2026-11")}
    assert set(remembered) == ids
    assert {f["VERSION_CODENAME"] for f in remembered.values()} == {"bookworm", "trixie"}
    # remembered by id: a fact in the cache wins over the image (no container is made the second time)
    first = next(i for i in ids if remembered[i]["VERSION_CODENAME"] == "bookworm")
    remembered[first]["VERSION_ID"], remembered[first]["VERSION_CODENAME"] = "13", "trixie"
    (tmp_path / "cache" / "buildkit" / "os-release.json").write_text(json.dumps(remembered))
    again = buildkit(docker_host, cache, "ci", "render", "local/debian:bookworm")
    assert "org.buildkit.image=debian:13 " in again.stdout


def test_a_distribution_without_template_is_one_line(docker_host, client, tmp_path):
    busybox = shutil.which("busybox") or "/bin/busybox"
    body = open(busybox, "rb").read()
    os_release = b'NAME=Buildroot\nVERSION=2024.02\nID=buildroot\nVERSION_ID=2024.02\nPRETTY_NAME="Buildroot 2024.02"\n'
    import_root(client, {"/bin/busybox": body, "/bin/sh": "busybox", "/usr/lib/os-release": os_release,
                         "/etc/os-release": "../usr/lib/os-release"}, "local/buildroot:2024.02")
    run = buildkit(docker_host, str(tmp_path), "ci", "render", "local/buildroot:2024.02")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "Buildroot 2024.02 (ID=buildroot, VERSION_ID=2024.02)" in run.stderr
    assert "debian (debian, ubuntu)" in run.stderr and "rhel (alinux, alma, centos, rocky)" in run.stderr
    import_root(client, {"/bin/busybox": body}, "local/no-os-release:1")
    run = buildkit(docker_host, str(tmp_path), "ci", "python", "3.13", "--image", "local/no-os-release:1",
                   "--out", str(tmp_path / "out"))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "no /etc/os-release" in run.stderr and "DISTRO:RELEASE=local/no-os-release:1" in run.stderr
    run = buildkit(docker_host, str(tmp_path), "ci", "render", "local/absent:1")
    assert run.returncode == 2 and "is not on the engine" in run.stderr, run.stderr
    assert not client.containers.list(all=True, filters={"label": "org.buildkit.ci=os-release"})
