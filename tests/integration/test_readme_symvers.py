"""The README's `buildkit symvers` examples cannot drift: each one found in its console blocks is run on real
modules built against bookworm's headers, and its output must be the README's, line for line, once the
fixture's paths are written as the README writes them (/src for the work folder, /lib/modules/... for the
unpacked kernel, the fixture's release as 6.1.0-57-amd64). An example this file does not know how to set up
fails the test: a new one comes with its setup.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kboot_cases import SOURCES
from kmodbuild import build_modules

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
README = HERE.parents[1] / "README.md"
README_RELEASE = "6.1.0-57-amd64"


def examples() -> list[tuple[str, list[str]]]:
    """(command, output lines) of every `$ buildkit symvers ...` line in the README's console blocks."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", README.read_text(), re.S):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("$ buildkit symvers "):
                out = []
                for after in lines[i + 1:]:
                    if after.startswith("$ "):
                        break
                    out.append(after)
                found.append((line[2:], out))
    return found


def setup_check(kernel_tree, work: Path) -> dict[str, str]:
    """prov (a namespaced export) and cons (uses it without MODULE_IMPORT_NS): modpost stops cons."""
    shutil.copytree(HERE / "kmods" / "prov", work / "prov")
    (work / "cons").mkdir()
    shutil.copy(HERE / "kmods" / "cons_ns" / "cons_ns.c", work / "cons" / "cons.c")
    (work / "cons" / "Kbuild").write_text("obj-m := cons.o\n")
    kdir = str(kernel_tree.build)
    subprocess.run(["make", "-C", kdir, f"M={work / 'prov'}", "modules"], check=True, capture_output=True)
    failed = subprocess.run(["make", "-C", kdir, f"M={work / 'cons'}",
                             f"KBUILD_EXTRA_SYMBOLS={work / 'prov' / 'Module.symvers'}", "modules"],
                            capture_output=True, text=True)
    assert failed.returncode != 0 and "does not import it" in failed.stdout + failed.stderr
    return {"KDIR": kdir}


def setup_load(kernel_tree, work: Path) -> dict[str, str]:
    """cons/bk_cons.ko and prov/bk_prov.ko (test_kboot's provider and consumer), built apart."""
    (work / "prov").mkdir()
    (work / "cons").mkdir()
    build_modules(kernel_tree, work / "prov", {"bk_prov": SOURCES["bk_prov"]})
    (work / "cons" / "Kbuild").write_text("obj-m := bk_cons.o\n")
    (work / "cons" / "bk_cons.c").write_text(f"#include <linux/module.h>\n{SOURCES['bk_cons']}")
    subprocess.run(["make", "-C", str(kernel_tree.build), f"M={work / 'cons'}",
                    f"KBUILD_EXTRA_SYMBOLS={work / 'prov' / 'Module.symvers'}", "modules"], check=True,
                   capture_output=True)
    return {}


SETUPS = {"check": setup_check, "load": setup_load}


def test_every_example_is_known():
    found = [cmd.split()[2] for cmd, _out in examples()]
    assert found and sorted(found) == sorted(SETUPS), found


@pytest.mark.parametrize("command, expected", examples(), ids=lambda v: v.split()[2] if isinstance(v, str) else "")
def test_example_output_is_the_readmes(kernel_tree, tmp_path, command, expected):
    env = SETUPS[command.split()[2]](kernel_tree, tmp_path)
    readme_kernel = f"/lib/modules/{README_RELEASE}"
    shell = command.replace("buildkit ", f"{sys.executable} -m buildkit ", 1).replace(readme_kernel,
                                                                                     str(kernel_tree.modules))
    run = subprocess.run(["sh", "-c", shell], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PWD": str(tmp_path), "LC_ALL": "C.UTF-8",
                              **env})
    assert run.returncode == 1 and run.stderr == "", run.stderr  # both examples find a problem
    out = run.stdout.replace(str(tmp_path), "/src").replace(str(kernel_tree.root), "")
    out = out.replace(kernel_tree.release, README_RELEASE)
    assert out.rstrip("\n").splitlines() == expected
