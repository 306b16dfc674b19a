"""``ci symvers`` without Docker: which kernel tree of the image is used, M= folders, and the copied-out
kbuild files re-rooted at the host folder (kbuild writes absolute container paths into them)."""

from __future__ import annotations

import pytest

from buildkit.container.symvers import _check_dirs, _pick_kernel, _reroot
from buildkit.errors import InputError

TREES = ("6.1.0-50-amd64 /usr/src/linux-headers-6.1.0-50-amd64\n"
         "6.1.0-9-amd64 /usr/src/linux-headers-6.1.0-9-amd64\n")


def test_pick_kernel():
    assert _pick_kernel(TREES, "", "debian:12") == ("6.1.0-50-amd64", "/usr/src/linux-headers-6.1.0-50-amd64")
    assert _pick_kernel(TREES, "6.1.0-9-amd64", "debian:12")[0] == "6.1.0-9-amd64"
    rhel = "5.14.0-362.8.1.el9_3.x86_64 /usr/src/kernels/5.14.0-362.8.1.el9_3.x86_64\n"
    assert _pick_kernel(rhel, "", "rocky:9")[1] == "/usr/src/kernels/5.14.0-362.8.1.el9_3.x86_64"
    with pytest.raises(InputError, match="no headers for kernel 6.1.0-1-amd64 in the image"):
        _pick_kernel(TREES, "6.1.0-1-amd64", "debian:12")
    with pytest.raises(InputError, match="has no kernel headers"):
        _pick_kernel("", "", "debian:12")


def test_check_dirs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "Kbuild").write_text("obj-m := a.o\n")
    (tmp_path / "x" / "a").mkdir(parents=True)
    (tmp_path / "x" / "a" / "Makefile").write_text("obj-m := a.o\n")
    (tmp_path / "empty").mkdir()
    assert _check_dirs([tmp_path / "a"]) == [tmp_path / "a"]
    with pytest.raises(InputError, match="same name"):
        _check_dirs([tmp_path / "a", tmp_path / "x" / "a"])
    with pytest.raises(InputError, match="no Kbuild or Makefile"):
        _check_dirs([tmp_path / "empty"])
    with pytest.raises(InputError, match="no such directory"):
        _check_dirs([tmp_path / "missing"])
    with pytest.raises(InputError, match="M=DIR is required"):
        _check_dirs([])


def test_reroot(tmp_path):
    prov = tmp_path / "src" / "prov"
    prov.mkdir(parents=True)
    (prov / "modules.order").write_text("/home/build/src/prov/prov.o\n")
    (prov / "prov.mod").write_text("/home/build/src/prov/prov.o\n")
    (prov / "Module.symvers").write_text("0x1\tprov_add\t/home/build/src/prov/prov\tEXPORT_SYMBOL\t\n")
    (prov / "prov.c").write_text('/* /home/build/src/ stays in sources */\n')
    _reroot(tmp_path / "src", "/home/build/src")
    assert (prov / "modules.order").read_text() == f"{prov}/prov.o\n"
    assert (prov / "prov.mod").read_text() == f"{prov}/prov.o\n"
    assert f"\t{prov}/prov\t" in (prov / "Module.symvers").read_text()
    assert "/home/build/src/" in (prov / "prov.c").read_text()
