"""``buildkit ci symvers`` on a real Docker engine: the test provider and consumers (tests/integration/kmods)
built against Debian bookworm's kernel headers, installed by apt in the kmod builder image, then checked.

The headers are those of the kernel fixture's ABI (``tests/fixtures/kernel.sh``), so the Module.symvers
copied out of the image must be byte for byte the one of Debian's package unpacked on this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parents[1]
KMODS = Path(__file__).resolve().parent / "kmods"
IMAGE = "buildkit-base:debian-bookworm"  # a plain reference: its /etc/os-release says debian 12


@pytest.fixture()
def kmods(tmp_path) -> Path:
    for name in ("prov", "cons_undef", "cons_ns"):
        shutil.copytree(KMODS / name, tmp_path / name)
    return tmp_path


def ci_symvers(host: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buildkit", "ci", "symvers", *args, "--image", IMAGE, "--json"],
                          capture_output=True, text=True, env={**os.environ, "DOCKER_HOST": host}, timeout=1800)


def by_name(data: dict) -> dict:
    return {m["name"]: m for m in data["modules"]}


def test_consumer_without_extra_symbols_gets_the_exact_fix(docker_host, kernel_tree, kmods, tmp_path):
    out = tmp_path / "kept"
    run = ci_symvers(docker_host, f"M={kmods / 'prov'}", f"M={kmods / 'cons_undef'}", "--kernel-release", kernel_tree.release,
                     "--out", str(out))
    assert run.returncode == 1, run.stderr[-3000:]
    data = json.loads(run.stdout)
    assert data["kernel"] == kernel_tree.release
    assert data["kerneldir"] == f"/usr/src/linux-headers-{kernel_tree.release}"
    assert [b["ok"] for b in data["builds"]] == [True, False]  # modpost stopped the consumer, as it would here
    mods = by_name(data)
    assert mods["prov"]["problems"] == []
    (problem,) = mods["cons_undef"]["problems"]
    assert problem["kind"] == "undefined" and problem["symbol"] == "prov_add"
    # The fix names the user's folders and the headers' path on a bookworm machine, not the copies.
    assert f"KBUILD_EXTRA_SYMBOLS={kmods / 'prov' / 'Module.symvers'}" in problem["fix"]
    assert f"make -C /usr/src/linux-headers-{kernel_tree.release} M={kmods / 'cons_undef'}" in problem["fix"]
    assert str(out) not in problem["fix"]
    # The modpost error really happened in the container.
    log = Path(data["builds"][1]["log"]).read_text()
    assert 'ERROR: modpost: "prov_add" [/home/build/src/cons_undef/cons_undef.ko] undefined!' in log
    # The headers came from apt in the image: the same bytes as Debian's package unpacked here.
    copied = out / "kernel" / kernel_tree.release / "Module.symvers"
    assert copied.read_bytes() == (kernel_tree.build / "Module.symvers").read_bytes()
    assert (out / "src" / "prov" / "prov.ko").is_file()


def test_with_extra_symbols_everything_resolves(docker_host, kernel_tree, kmods):
    run = ci_symvers(docker_host, f"M={kmods / 'prov'}", f"M={kmods / 'cons_undef'}", f"M={kmods / 'cons_ns'}",
                     f"KBUILD_EXTRA_SYMBOLS={kmods / 'prov' / 'Module.symvers'}", "--kernel", kernel_tree.release)
    assert run.returncode == 1, run.stderr[-3000:]  # cons_ns still misses its namespace import
    data = json.loads(run.stdout)
    mods = by_name(data)
    assert mods["cons_undef"]["problems"] == [] and mods["cons_undef"]["depends"] == ["prov"]
    (problem,) = mods["cons_ns"]["problems"]
    assert problem["kind"] == "namespace" and "MODULE_IMPORT_NS(BKTEST);" in problem["fix"]
    assert data["work"]  # kept, since there are problems


def test_clean_build_exits_zero_and_keeps_nothing(docker_host, kernel_tree, kmods):
    run = ci_symvers(docker_host, f"M={kmods / 'prov'}", f"M={kmods / 'cons_undef'}",
                     f"KBUILD_EXTRA_SYMBOLS={kmods / 'prov' / 'Module.symvers'}", "--kernel", kernel_tree.release)
    assert run.returncode == 0, run.stderr[-3000:]
    data = json.loads(run.stdout)
    assert all(b["ok"] for b in data["builds"]) and data["work"] is None
    assert "reusing buildkit-ci/debian-12-kmod" in run.stderr


def test_unknown_kernel_and_broken_module(docker_host, kernel_tree, kmods):
    run = ci_symvers(docker_host, f"M={kmods / 'prov'}", "--kernel", "6.1.0-9999-amd64")
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.startswith("buildkit: error:")]
    assert len(lines) == 1 and "no package linux-headers-6.1.0-9999-amd64 in the image's repositories" in lines[0]
    broken = kmods / "broken"
    broken.mkdir()
    (broken / "Kbuild").write_text("obj-m := broken.o\n")
    (broken / "broken.c").write_text("#include <linux/module.h>\nthis is not C;\n")
    run = ci_symvers(docker_host, f"M={broken}", "--kernel", kernel_tree.release)
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.startswith("buildkit: error:")]
    assert len(lines) == 1 and "failed in debian:12 and left nothing to check" in lines[0]
    assert "Traceback" not in run.stderr
