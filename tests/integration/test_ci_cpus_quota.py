"""``buildkit ci python --cpus N`` on a real engine: a build container made as a cell's is (the real
:func:`buildkit.container.python.build_container`, as the build user, no network) gets a CFS quota of one
CPU with ``cpus=1`` and none without, seen from inside the container and in the engine's HostConfig.NanoCpus;
a --cpus beyond the engine's CPU count is one line before anything is made. No build: seconds.

This host's cgroup version decides where the quota is read: cgroup v2's ``cpu.max`` ("QUOTA PERIOD", "max"
without a limit), else v1's ``cpu/cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (-1 without a limit).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from buildkit.container.engine import Engine, connect
from buildkit.container.images import BUILD_UID
from buildkit.container.python import CiOptions, build_container
from buildkit.pybuild.build import FetchOptions

pytestmark = pytest.mark.integration

BASE = "buildkit-base:debian-bookworm"
TAG = "buildkit-test:cpus"
CFS_QUOTA = ("cat /sys/fs/cgroup/cpu.max 2>/dev/null "
             "|| cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us")


@pytest.fixture(scope="module")
def engine(docker_host) -> Engine:
    return connect(docker_host)


@pytest.fixture(scope="module")
def with_build_user(engine) -> str:
    """The bookworm base plus the build user a builder image has (no toolchain: nothing is built here)."""
    dockerfile = f"FROM {BASE}\nRUN useradd -m -u {BUILD_UID} build\n"
    image, _logs = engine.client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=TAG, rm=True,
                                              network_mode="none")
    return image.id


def quota_and_nano(engine: Engine, image: str, cpus: int | None, tmp_path: Path) -> tuple[list[str], int, str]:
    """(CFS quota and period as read inside, HostConfig.NanoCpus, user) of a build container with ``cpus``."""
    opts = CiOptions(tmp_path / "out", FetchOptions(tmp_path / "cache"), cpus=cpus)
    with build_container(engine, image, "test-ci-cpus", opts) as c:
        nano = engine.api.inspect_container(c.id)["HostConfig"]["NanoCpus"]
        quota = c.call(["sh", "-c", CFS_QUOTA]).output.split()
        user = c.call(["id", "-un"]).output.strip()
    return quota, nano, user


def test_cpus_1_is_a_quota_of_one_cpu(engine, with_build_user, tmp_path):
    quota, nano, user = quota_and_nano(engine, with_build_user, 1, tmp_path)
    assert quota == ["100000", "100000"] and nano == 1_000_000_000 and user == "build"


def test_no_cpus_is_no_quota(engine, with_build_user, tmp_path):
    quota, nano, _user = quota_and_nano(engine, with_build_user, None, tmp_path)
    assert quota in (["max", "100000"], ["-1", "100000"]) and nano == 0


def test_more_cpus_than_the_engine_has_is_one_line(docker_host, engine, tmp_path):
    over = engine.cpus + 1
    run = subprocess.run([sys.executable, "-m", "buildkit", "ci", "python", "3.13.5", "--with-openssl=3.0.20",
                          "--with-sqlite=3.40.1", "--image", f"debian:12={BASE}", "--out", str(tmp_path / "out"),
                          "--cpus", str(over)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "DOCKER_HOST": docker_host})
    has = f"{engine.cpus} CPU{'s' if engine.cpus > 1 else ''}"
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == (f"buildkit: error: --cpus {over}: the engine at {docker_host} has {has}; "
                          f"pass --cpus {engine.cpus} or fewer, or leave --cpus out (no limit)\n")
    assert not (tmp_path / "out").exists()
