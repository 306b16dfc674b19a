"""Build tiny out-of-tree modules against a kernel fixture (tests/fixtures/kernel.sh) with that kernel's own
compiler, as a user of its distribution would.

Bookworm's 6.1 is built on this host (Debian 12: its gcc-12 is the kernel's). Another suite's kernel is built
in a container of that suite (``buildkit-base:debian-SUITE``, made by tests/fixtures/images.sh) into which its
``linux-headers-ABI`` package is installed by apt: it brings the compiler the kernel was built with (bullseye's
5.10: gcc-10; trixie's 6.12: gcc-14, with dwarves for pahole, since 6.12 gives every module BTF). The image is
built once per ABI (host network for apt); the build itself runs with no network.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Mapping
from pathlib import Path

_DOCKERFILE = """FROM buildkit-base:debian-{suite}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
        linux-headers-{abi} make {extra} && rm -rf /var/lib/apt/lists/*
"""
EXTRA = {"trixie": "dwarves"}


def write_sources(work: Path, sources: Mapping[str, str]) -> None:
    (work / "Kbuild").write_text("obj-m := " + " ".join(f"{n}.o" for n in sources) + "\n")
    for name, body in sources.items():
        (work / f"{name}.c").write_text(f"#include <linux/module.h>\n{body}")


def kbuild_image(docker_host: str, suite: str, abi: str) -> str:
    """The image that builds modules for ``abi`` (e.g. 5.10.0-32-amd64), made if missing."""
    import docker

    tag = f"buildkit-kbuild:{abi.replace('+', '_')}"
    client = docker.DockerClient(base_url=docker_host)
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    dockerfile = _DOCKERFILE.format(suite=suite, abi=abi, extra=EXTRA.get(suite, ""))
    try:
        client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, network_mode="host", rm=True)
    except docker.errors.BuildError as e:
        log = "".join(chunk.get("stream", "") for chunk in e.build_log)
        raise AssertionError(f"the {suite} kbuild image for {abi} did not build:\n{log[-3000:]}") from None
    return tag


def build_modules(tree, work: Path, sources: Mapping[str, str], docker_host: str | None = None) -> None:
    """``make -C <headers> M=work modules`` for ``sources`` (name -> body after ``#include <linux/module.h>``);
    the ``.ko`` files land in ``work``. ``tree`` is a conftest.KernelTree."""
    write_sources(work, sources)
    if tree.suite == "bookworm":
        run = subprocess.run(["make", "-C", str(tree.build), f"M={work}", "modules"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        assert run.returncode == 0, run.stdout
        return
    import docker

    assert docker_host, f"{tree.suite}'s modules are built in a container: a Docker engine is needed"
    image = kbuild_image(docker_host, tree.suite, tree.release)
    client = docker.DockerClient(base_url=docker_host)
    box = client.containers.run(image, ["make", "-C", f"/usr/src/linux-headers-{tree.release}", f"M={work}",
                                        "modules"], volumes={str(work): {"bind": str(work), "mode": "rw"}},
                                network_mode="none", detach=True)
    try:
        status = box.wait()["StatusCode"]
        log = box.logs().decode("utf-8", "replace")
    finally:
        box.remove(force=True)
    assert status == 0, log
