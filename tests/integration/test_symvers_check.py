"""``buildkit symvers check`` against real modules built with Debian's 6.1 kbuild and gcc.

Each consumer in kmods/ hits one modpost error (and some have a fixed twin that builds). For every
module the test compares what modpost printed with what ``check`` reports, then checks the fix.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

KMODS = Path(__file__).parent / "kmods"
MODPOST = re.compile(
    r"""(?:ERROR|WARNING):\ modpost:\ (?:
        "(?P<undef>[^"]+)"\ \[[^]]+\]\ undefined!
      | GPL-incompatible\ module\ \S+\ uses\ GPL-only\ symbol\ '(?P<gpl>[^']+)'
      | module\ \S+\ uses\ symbol\ (?P<ns>\S+)\ from\ namespace
      | (?P<license>missing\ MODULE_LICENSE)
      | \S+:\ '(?P<dup>[^']+)'\ exported\ twice
    )""",
    re.X,
)


@dataclass
class Built:
    dir: Path
    log: str
    ok: bool
    extra: str = ""

    def modpost_problems(self) -> set[tuple[str, str | None]]:
        found = set()
        for m in MODPOST.finditer(self.log):
            kind = next(k for k, v in m.groupdict().items() if v)
            kind = {"undef": "undefined", "gpl": "gpl-only", "ns": "namespace", "dup": "duplicate"}.get(kind, kind)
            found.add((kind, None if kind == "license" else m[m.lastgroup]))
        return found


def make(kdir: Path, mdir: Path, extra: str = "") -> Built:
    cmd = ["make", "-C", str(kdir), f"M={mdir}", "modules"]
    if extra:
        cmd.insert(-1, f"KBUILD_EXTRA_SYMBOLS={extra}")
    run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return Built(mdir, run.stdout, run.returncode == 0, extra)


@pytest.fixture(scope="module")
def built(kernel_tree, tmp_path_factory) -> dict[str, Built]:
    """Build every module once: prov first, its consumers, never ``late`` (its exports stay in source)."""
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.fail("make and gcc are needed: apt-get install build-essential")
    work = tmp_path_factory.mktemp("kmods")
    shutil.copytree(KMODS, work, dirs_exist_ok=True)
    kdir = kernel_tree.build
    out = {"prov": make(kdir, work / "prov")}
    assert out["prov"].ok, out["prov"].log
    prov_symvers = str(work / "prov" / "Module.symvers")
    shutil.copytree(work / "cons_undef", work / "cons_undef_fixed")
    for name, extra in [
        ("cons_undef", ""),
        ("cons_undef_fixed", prov_symvers),
        ("cons_gpl", prov_symvers),
        ("cons_gpl_fixed", prov_symvers),
        ("cons_ns", prov_symvers),
        ("cons_ns_fixed", prov_symvers),
        ("cons_nolicense", ""),
        ("cons_typo", ""),
        ("cons_notexp", ""),
        ("cons_late", ""),
        ("cons_dup", ""),
    ]:
        out[name] = make(kdir, work / name, extra)
    return out


def run_check(kernel_tree, b: Built, *extra_args: str) -> tuple[int, dict, str]:
    args = [sys.executable, "-m", "buildkit", "symvers", "check", f"M={b.dir}", f"KERNELDIR={kernel_tree.build}"]
    if b.extra:
        args.append(f"KBUILD_EXTRA_SYMBOLS={b.extra}")
    run = subprocess.run(args + ["--json", *extra_args], capture_output=True, text=True)
    assert "Traceback" not in run.stderr, run.stderr
    data = json.loads(run.stdout) if run.stdout.strip() else {}
    return run.returncode, data, run.stderr


def problems(data: dict) -> dict[tuple[str, str | None], dict]:
    return {(p["kind"], p["symbol"]): p for m in data["modules"] for p in m["problems"]}


@pytest.mark.parametrize(
    "name", ["cons_undef", "cons_gpl", "cons_ns", "cons_nolicense", "cons_typo", "cons_notexp", "cons_late", "cons_dup"]
)
def test_check_names_what_modpost_named(kernel_tree, built, name):
    b = built[name]
    assert not b.ok, f"{name} was expected to fail modpost:\n{b.log}"
    expected = b.modpost_problems()
    assert expected, b.log
    code, data, _ = run_check(kernel_tree, b, "--system-map", "/proc/kallsyms")
    assert code == 1
    assert set(problems(data)) == expected


@pytest.mark.parametrize("name", ["cons_undef_fixed", "cons_gpl_fixed", "cons_ns_fixed", "prov"])
def test_fixed_twins_are_clean(kernel_tree, built, name):
    b = built[name]
    assert b.ok, b.log
    code, data, _ = run_check(kernel_tree, b)
    assert code == 0, data
    assert data["modules"][0]["problems"] == []
    assert data["modules"][0]["path"].endswith(".ko")


def test_undefined_fix_is_the_exact_extra_symbols(kernel_tree, built):
    _, data, _ = run_check(kernel_tree, built["cons_undef"])
    fix = problems(data)[("undefined", "prov_add")]["fix"]
    prov = built["prov"].dir / "Module.symvers"
    assert f"KBUILD_EXTRA_SYMBOLS={prov}" in fix
    # ... and following it is exactly what made the twin build.
    assert built["cons_undef_fixed"].extra == str(prov)


def test_fixes_for_gpl_namespace_license(kernel_tree, built):
    _, data, _ = run_check(kernel_tree, built["cons_gpl"])
    fix = problems(data)[("gpl-only", "prov_gpl")]["fix"]
    assert "EXPORT_SYMBOL_GPL" in fix and '"Dual BSD/GPL"' in fix and '"Proprietary"' in fix
    _, data, _ = run_check(kernel_tree, built["cons_ns"])
    assert "MODULE_IMPORT_NS(BKTEST);" in problems(data)[("namespace", "prov_ns")]["fix"]
    _, data, _ = run_check(kernel_tree, built["cons_nolicense"])
    assert 'MODULE_LICENSE("GPL")' in problems(data)[("license", None)]["fix"]


def test_depends_names_the_provider(kernel_tree, built):
    _, data, _ = run_check(kernel_tree, built["cons_ns_fixed"])
    assert data["modules"][0]["depends"] == ["prov"]


def test_near_miss_not_exported_and_unbuilt_sibling(kernel_tree, built):
    _, data, _ = run_check(kernel_tree, built["cons_typo"])
    found = problems(data)
    assert "did you mean `_printk`?" in found[("undefined", "printk")]["fix"]
    # A typo of a macro-wrapped name finds the real export first (not vprintk, one letter closer as typed).
    assert "did you mean `_printk`" in found[("undefined", "printkk")]["fix"]
    assert "did you mean `mutex_lock`? (exported by vmlinux)" in found[("undefined", "mutex_lok")]["fix"]
    _, data, _ = run_check(kernel_tree, built["cons_late"])
    fix = problems(data)[("undefined", "late_fn")]["fix"]
    late = built["prov"].dir.parent / "late"
    assert f"build {late} first" in fix and "late.c:4" in fix
    if not os.access("/proc/kallsyms", os.R_OK):
        pytest.skip("no /proc/kallsyms to stand in for System.map")
    _, data, _ = run_check(kernel_tree, built["cons_notexp"], "--system-map", "/proc/kallsyms")
    assert "not exported" in problems(data)[("undefined", "kallsyms_lookup_name")]["fix"]


def test_in_tree_module_the_headers_did_not_build(kernel_tree, built, tmp_path):
    """A symbol of an in-tree .ko that the headers' Module.symvers lacks: name that module."""
    headers = tmp_path / "lib" / "modules" / "x" / "build"
    shutil.copytree(kernel_tree.build, headers, symlinks=True)
    symvers = (headers / "Module.symvers").read_text().splitlines(keepends=True)
    (headers / "Module.symvers").write_text("".join(l for l in symvers if "\tmii_link_ok\t" not in l))
    mii = next(kernel_tree.modules.glob("kernel/drivers/net/mii.ko"))
    (tmp_path / "lib" / "modules" / "x" / "kernel").mkdir()
    shutil.copy(mii, tmp_path / "lib" / "modules" / "x" / "kernel" / "mii.ko")
    user = tmp_path / "user"
    user.mkdir()
    (user / "Kbuild").write_text("obj-m := user.o\n")
    (user / "user.c").write_text(
        "#include <linux/module.h>\nextern int mii_link_ok(void *);\n"
        "static int __init i(void) { return mii_link_ok(0); }\nmodule_init(i);\nMODULE_LICENSE(\"GPL\");\n"
    )
    b = make(kernel_tree.build, user)
    assert b.ok, b.log  # the real headers list mii_link_ok
    run = subprocess.run(
        [sys.executable, "-m", "buildkit", "symvers", "check", f"M={user}", f"KERNELDIR={headers}", "--json"],
        capture_output=True, text=True,
    )
    fix = problems(json.loads(run.stdout))[("undefined", "mii_link_ok")]["fix"]
    assert "in-tree module mii" in fix and "kernel/mii.ko" in fix


@pytest.mark.parametrize("name", ["cons_undef", "cons_typo", "cons_nolicense", "cons_dup", "cons_late"])
def test_diagnose_explains_the_real_log_with_checks_fixes(kernel_tree, built, name):
    b = built[name]
    run = subprocess.run(
        [sys.executable, "-m", "buildkit", "symvers", "diagnose", "--json"], input=b.log, capture_output=True, text=True
    )
    assert run.returncode == 1, run.stderr
    messages = json.loads(run.stdout)["messages"]
    assert {(m["kind"], None if m["kind"] == "license" else m["symbol"]) for m in messages} == b.modpost_problems()
    _, data, _ = run_check(kernel_tree, b)
    fixes = {(p["kind"], p["symbol"]): p["fix"] for m in data["modules"] for p in m["problems"]}
    for m in messages:
        if m["kind"] == "undefined":  # the log names KERNELDIR by its real path; the rest is the same
            assert m["fix"].split(" M=")[-1] == fixes[("undefined", m["symbol"])].split(" M=")[-1]


def test_diagnose_clean_log_exits_zero(built):
    run = subprocess.run(
        [sys.executable, "-m", "buildkit", "symvers", "diagnose"], input=built["prov"].log, capture_output=True,
        text=True,
    )
    assert run.returncode == 0 and "no modpost problems" in run.stdout


def test_crc_mismatch_after_the_provider_changed(kernel_tree, built, tmp_path):
    """cons was linked against prov's old prov_add; prov_add's signature changed since, so its CRC did:
    the loader would say 'disagrees about version of symbol prov_add'."""
    prov2 = tmp_path / "prov"
    shutil.copytree(built["prov"].dir, prov2)
    src = prov2 / "prov.c"
    src.write_text(src.read_text().replace("int prov_add(int a, int b)", "int prov_add(long a, int b)"))
    assert make(kernel_tree.build, prov2).ok
    cons = built["cons_undef_fixed"]
    run = subprocess.run(
        [sys.executable, "-m", "buildkit", "symvers", "check", f"M={cons.dir}", f"KERNELDIR={kernel_tree.build}",
         f"KBUILD_EXTRA_SYMBOLS={prov2 / 'Module.symvers'}", "--json"],
        capture_output=True, text=True,
    )
    assert run.returncode == 1, run.stderr
    found = problems(json.loads(run.stdout))
    assert set(found) == {("crc", "prov_add")}
    assert "disagrees about version of symbol prov_add" in found[("crc", "prov_add")]["message"]


def test_debians_placeholder_system_map_is_said_and_a_bad_one_refused(kernel_tree, built, tmp_path):
    """Debian's /boot/System.map-VER is one line ("The real System.map is in the linux-image-<version>-dbg
    package"): a kernel-internal symbol is then unknown, and the fix says so instead of 'check the spelling'.
    A --system-map that is no System.map (or is that placeholder) is one line, exit 2."""
    placeholder = kernel_tree.root / "boot" / f"System.map-{kernel_tree.release}"
    assert placeholder.read_text().count("\n") <= 1 and "linux-image-<version>-dbg" in placeholder.read_text()
    _, data, _ = run_check(kernel_tree, built["cons_notexp"])
    fix = problems(data)[("undefined", "kallsyms_lookup_name")]["fix"]
    assert f"{placeholder} is Debian's placeholder" in fix and "linux-image-<release>-dbg" in fix, fix
    garbage = tmp_path / "System.map"
    garbage.write_text("this is not a map\n")
    for bad in (garbage, placeholder):
        code, _, err = run_check(kernel_tree, built["cons_notexp"], "--system-map", str(bad))
        assert code == 2 and err.count("\n") == 1 and f"--system-map {bad}:" in err, err
