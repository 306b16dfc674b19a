"""buildkit.kmod.kernel's KernelPlace: one kernel's files found from each way it is named (headers,
/lib/modules/VER, a merged-/usr root, /boot/symvers-VER.gz), the same place from each, on hand-made roots laid
out as Debian and RHEL lay them."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from buildkit.kmod.deps import locate_tree
from buildkit.kmod.kernel import at_headers, at_modules_dir, at_symvers_file, module_tree, releases_under
from buildkit.kmod.target import read_target

REL = "6.1.0-99-amd64"
LINE = "0x00000001\tmodule_layout\tvmlinux\tEXPORT_SYMBOL\t\n"


def debian_root(root: Path, *, merged: bool = False) -> Path:
    """ROOT/usr/src/linux-headers-REL, ROOT/(usr/)lib/modules/REL with a build link to them, ROOT/boot."""
    headers = root / "usr" / "src" / f"linux-headers-{REL}"
    (headers / "include" / "config").mkdir(parents=True)
    (headers / "include" / "config" / "kernel.release").write_text(REL + "\n")
    (headers / ".config").write_text("CONFIG_X86_64=y\nCONFIG_MODVERSIONS=y\n")
    (headers / "Module.symvers").write_text(LINE)
    modules = root / ("usr/lib" if merged else "lib") / "modules" / REL
    (modules / "kernel").mkdir(parents=True)
    (modules / "build").symlink_to(f"../../../{'../' if merged else ''}usr/src/linux-headers-{REL}")
    if merged:
        (root / "lib").symlink_to("usr/lib")
    (root / "boot").mkdir()
    for name in ("System.map", "vmlinuz", "config"):
        (root / "boot" / f"{name}-{REL}").write_text("x")
    return modules


@pytest.mark.parametrize("merged", [False, True])
def test_headers_modules_folder_and_root_name_one_place(tmp_path, merged):
    modules = debian_root(tmp_path, merged=merged)
    headers = tmp_path / "usr" / "src" / f"linux-headers-{REL}"
    from_modules = at_modules_dir(str(modules))
    from_headers = at_headers(str(headers))
    assert from_headers is not None
    assert from_modules.release == from_headers.release == REL
    assert Path(from_modules.root).resolve() == Path(from_headers.root).resolve() == tmp_path.resolve()
    assert Path(from_headers.modules_dir).resolve() == modules.resolve()
    assert from_modules.symvers_path == str(modules / "build" / "Module.symvers")
    assert from_modules.vmlinuz == str(tmp_path / "boot" / f"vmlinuz-{REL}")
    assert Path(module_tree(str(modules / "build"))).resolve() == modules.resolve()
    assert [Path(p).name for p in releases_under(str(tmp_path))] == [REL]  # once, though /lib -> usr/lib
    assert Path(locate_tree(str(tmp_path)).dirname).resolve() == modules.resolve()
    for spec in (tmp_path, modules, headers):
        target = read_target(str(spec))
        assert (target.release, target.vmlinuz) == (REL, str(tmp_path / "boot" / f"vmlinuz-{REL}")), spec


def test_system_map_candidates_in_order(tmp_path):
    debian_root(tmp_path)
    dbg = tmp_path / "usr" / "lib" / "debug" / "boot" / f"System.map-{REL}"
    dbg.parent.mkdir(parents=True)
    dbg.write_text("x")
    place = at_headers(str(tmp_path / "usr" / "src" / f"linux-headers-{REL}"))
    assert place is not None
    assert place.system_map_candidates() == [str(tmp_path / "boot" / f"System.map-{REL}"), str(dbg)]
    assert "/proc/kallsyms" not in place.system_map_candidates()  # a root other than / is not the running kernel


def test_a_rhel_symvers_gz_names_its_tree(tmp_path):
    rel = "5.10.134-16.al8.x86_64"
    (tmp_path / "boot").mkdir()
    symvers = tmp_path / "boot" / f"symvers-{rel}.gz"
    symvers.write_bytes(gzip.compress(LINE.encode()))
    (tmp_path / "lib" / "modules" / rel / "kernel").mkdir(parents=True)
    place = at_symvers_file(str(symvers), rel)
    assert (place.root, place.modules_dir, place.build_dir) == (str(tmp_path), str(tmp_path / "lib/modules" / rel), None)
    assert at_modules_dir(place.modules_dir).symvers_path == str(symvers)


def test_several_kernels_under_a_root_are_named(tmp_path):
    for rel in ("6.1.0-2-amd64", "6.1.0-10-amd64"):
        (tmp_path / "lib" / "modules" / rel / "kernel").mkdir(parents=True)
    assert [Path(p).name for p in releases_under(str(tmp_path))] == ["6.1.0-10-amd64", "6.1.0-2-amd64"]
    with pytest.raises(Exception, match="holds 2 kernel releases"):
        locate_tree(str(tmp_path))
    assert locate_tree(str(tmp_path), "6.1.0-2-amd64").kernel_release == "6.1.0-2-amd64"
