"""A kernel upgrade, checked on two real bookworm ABIs: the oldest the archive offers (OLD) and the newest
(NEW), both from Debian's packages (tests/fixtures/kernel.sh).

``symvers load OLD-modules --kernel NEW`` must refuse exactly the modules that ``depmod -n -e -E`` (the
core of RHEL's weak-modules) warns about, each for its first failing gate, and change nothing on disk;
``symvers diff OLD NEW`` must agree with a plain reading of the two Module.symvers files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def buildkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buildkit", *args], capture_output=True, text=True)


def snapshot(tree) -> dict[str, tuple[int, int]]:
    return {os.path.join(root, f): (os.stat(os.path.join(root, f)).st_mtime_ns, os.stat(os.path.join(root, f)).st_size)
            for root, _dirs, files in os.walk(tree) for f in files}


def plain_symvers(path) -> dict[str, tuple[str, ...]]:
    """symbol -> (crc, module, type, namespace) of a 5.6+ Module.symvers, read the simplest way."""
    table = {}
    for line in path.read_text().splitlines():
        crc, sym, mod, typ, ns = line.split("\t")
        table.setdefault(sym, (crc, mod, typ, ns))
    return table


def test_a_kernels_own_modules_load_with_the_dependencies_modpost_wrote(kernel_tree, monkeypatch):
    """Every in-tree module of NEW loads into NEW, in dependency order, each taking its symbols from the
    modules modpost named in its ``depends=``; the set shortcut of the symbols gate (records settled
    without the loop) gives exactly what the symbol-by-symbol walk gives."""
    from buildkit.kmod import load
    from buildkit.kmod.target import read_target

    target = read_target(str(kernel_tree.modules))
    fast = load.predict(load.expand_modules([str(kernel_tree.modules / "kernel")], target), target)
    assert len(fast) > 3000 and all(r.loads for r in fast), [r.name for r in fast if not r.loads][:5]
    with_deps = 0
    for r in fast:
        declared = load.read_for_load(r.path).depends
        assert set(r.depends) == set(declared), (r.name, r.depends, declared)
        with_deps += bool(declared)
    assert with_deps > 1000
    monkeypatch.setattr(load._Walk, "_settle", lambda self: None)
    walked = load.predict(load.expand_modules([str(kernel_tree.modules / "kernel")], target), target)
    assert [r.to_json() for r in walked] == [r.to_json() for r in fast]


def test_upgrade_check_agrees_with_depmod_and_writes_nothing(kernel_tree, kernel_tree_oldest):
    depmod = shutil.which("depmod") or "/usr/sbin/depmod"
    old_tree = kernel_tree_oldest.modules / "kernel"
    before = snapshot(kernel_tree_oldest.modules) | snapshot(kernel_tree.modules)
    run = buildkit("symvers", "load", str(old_tree), "--kernel", str(kernel_tree.modules), "--json")
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert report["kernel"] == kernel_tree.release
    modules = report["modules"]
    count = sum(1 for _r, _d, files in os.walk(old_tree) for f in files if f.endswith(".ko"))
    assert len(modules) == count > 3000
    warned = subprocess.run([depmod, "-n", "-e", "-E", str(kernel_tree.build / "Module.symvers"), "-b",
                             str(kernel_tree_oldest.root), kernel_tree_oldest.release], capture_output=True, text=True)
    flagged = {re.sub(r"\.ko.*$", "", m.rsplit("/", 1)[-1]).replace("-", "_")
               for m in re.findall(r"WARNING: (\S+\.ko\S*) (?:disagrees|needs unknown)", warned.stderr)}
    assert {m["name"] for m in modules if not m["loads"]} == flagged
    # The ABIs differ in module_layout itself: the loader stops there, before vermagic and symbols.
    old_layout = plain_symvers(kernel_tree_oldest.build / "Module.symvers")["module_layout"][0]
    new_layout = plain_symvers(kernel_tree.build / "Module.symvers")["module_layout"][0]
    assert old_layout != new_layout
    first = modules[0]
    assert (first["errno"], first["error"]) == (8, "ENOEXEC")
    assert first["dmesg"] == [f"{first['name']}: disagrees about version of symbol module_layout"]
    assert first["insmod"].endswith(": Invalid module format")
    assert first["problems"][0]["kind"] == "module_layout"
    assert f"make -C {kernel_tree.modules / 'build'} M=" in first["problems"][0]["fix"]
    assert all(m["problems"][0]["kind"] == "module_layout" for m in modules)
    # The same kernel's own modules all load into it; nothing was written anywhere.
    same = buildkit("symvers", "load", str(kernel_tree.modules / "kernel"), "--kernel", str(kernel_tree.root))
    assert same.returncode == 0, same.stdout[-2000:] + same.stderr
    assert snapshot(kernel_tree_oldest.modules) | snapshot(kernel_tree.modules) == before


def test_every_problem_is_depmods_symbol_by_symbol(kernel_tree, kernel_tree_oldest):
    """--every-problem: past module_layout, every CRC mismatch and unknown symbol of every module of OLD
    against NEW, compared with each warning of depmod -n -e -E (67,384 of them on 6.1.0-47 -> 6.1.0-57):
    a per-symbol mistake fails here, where the all-or-nothing verdicts above would pass."""
    depmod = shutil.which("depmod") or "/usr/sbin/depmod"
    run = buildkit("symvers", "load", str(kernel_tree_oldest.modules / "kernel"), "--kernel", str(kernel_tree.modules),
                   "--every-problem", "--json")
    assert run.returncode == 1, run.stderr
    modules = json.loads(run.stdout)["modules"]
    mine: dict[str, set] = {}
    for m in modules:
        # the verdict and the kernel's lines are still the kernel's: it stops at module_layout
        assert m["error"] == "ENOEXEC" and m["dmesg"] == [f"{m['name']}: disagrees about version of symbol module_layout"]
        mine[m["name"]] = {("crc" if p["kind"] in ("crc", "module_layout") else p["kind"], p["symbol"])
                           for p in m["problems"] if p["kind"] not in ("taint", "trust")}
    warned = subprocess.run([depmod, "-n", "-e", "-E", str(kernel_tree.build / "Module.symvers"), "-b",
                             str(kernel_tree_oldest.root), kernel_tree_oldest.release], capture_output=True, text=True)
    theirs: dict[str, set] = {name: set() for name in mine}
    for path, what, sym in re.findall(r"WARNING: (\S+\.ko\S*) (disagrees about version of|needs unknown) symbol (\S+)",
                                      warned.stderr):
        name = re.sub(r"\.ko.*$", "", path.rsplit("/", 1)[-1]).replace("-", "_")
        theirs.setdefault(name, set()).add(("crc" if what.startswith("disagrees") else "undefined", sym))
    total = sum(len(v) for v in theirs.values())
    assert total > 10000 and any(k == "undefined" for v in theirs.values() for k, _s in v)
    assert {n: v for n, v in mine.items() if v != theirs[n]} == {}, "differs from depmod"
    assert set(theirs) == set(mine)
    # the text report names each of them too (problems sharing a fix are one line, every symbol on it)
    text = buildkit("symvers", "load", str(kernel_tree_oldest.modules / "kernel"), "--kernel",
                    str(kernel_tree.modules), "--every-problem")
    blocks = re.split(r"^(\w+): (?:loads|refused: \w+ \(\d+\))  ", text.stdout, flags=re.M)[1:]
    said = {name: set(re.findall(r"[\w.$]+", block)) for name, block in zip(blocks[::2], blocks[1::2])}
    assert {n: {s for _k, s in v} - said.get(n, set()) for n, v in theirs.items()
            if {s for _k, s in v} - said.get(n, set())} == {}


def test_diff_of_two_real_abis(kernel_tree, kernel_tree_oldest, tmp_path):
    old = plain_symvers(kernel_tree_oldest.build / "Module.symvers")
    new = plain_symvers(kernel_tree.build / "Module.symvers")
    run = buildkit("symvers", "diff", str(kernel_tree_oldest.root), str(kernel_tree.modules), "--json")
    assert run.returncode == 1, run.stderr
    data = json.loads(run.stdout)
    assert sorted(e["symbol"] for e in data["lost"]) == sorted(set(old) - set(new))
    assert sorted(e["symbol"] for e in data["added"]) == sorted(set(new) - set(old))
    assert sorted(c["symbol"] for c in data["crc"]) == sorted(s for s in set(old) & set(new) if old[s][0] != new[s][0])
    assert sorted(c["symbol"] for c in data["type"]) == sorted(s for s in set(old) & set(new) if old[s][2] != new[s][2])
    assert sorted(c["symbol"] for c in data["owner"]) == sorted(s for s in set(old) & set(new) if old[s][1] != new[s][1])
    layout = next(c for c in data["crc"] if c["symbol"] == "module_layout")
    assert (layout["old"], layout["new"]) == (old["module_layout"][0], new["module_layout"][0])
    text = buildkit("symvers", "diff", str(kernel_tree_oldest.build / "Module.symvers"), str(kernel_tree.build))
    lost = sorted(set(old) - set(new))[0]
    assert f"KABI: symbol {lost}(mod:{old[lost][1]}) lost" in text.stdout.splitlines()
    assert (f"KABI: symbol module_layout(mod:vmlinux) changed crc from {old['module_layout'][0]} to "
            f"{new['module_layout'][0]}") in text.stdout.splitlines()

    # --uses: a real module of OLD narrows the diff to what it imports.
    user = kernel_tree_oldest.modules / "kernel" / "lib" / "crc-itu-t.ko"
    narrow = json.loads(buildkit("symvers", "diff", str(kernel_tree_oldest.root), str(kernel_tree.modules),
                                 "--uses", str(user), "--json").stdout)
    assert narrow["scope"] is not None and narrow["scope"] < 20
    changed = {c["symbol"] for c in narrow["crc"]}
    assert "module_layout" in changed and changed < {c["symbol"] for c in data["crc"]}


def test_every_target_form_reads_the_same_kernel(kernel_tree, kernel_tree_oldest, tmp_path):
    """/lib/modules/VER, the headers, a dpkg root and a RHEL-style /boot/symvers-VER.gz (config beside it):
    one kernel, one verdict for the same module."""
    import gzip

    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / f"symvers-{kernel_tree.release}.gz").write_bytes(
        gzip.compress((kernel_tree.build / "Module.symvers").read_bytes()))
    shutil.copy(kernel_tree.root / "boot" / f"config-{kernel_tree.release}", boot / f"config-{kernel_tree.release}")
    module = kernel_tree_oldest.modules / "kernel" / "lib" / "crc-itu-t.ko"
    answers = []
    for target in (kernel_tree.modules, kernel_tree.build.resolve(), kernel_tree.root,
                   boot / f"symvers-{kernel_tree.release}.gz"):
        run = buildkit("symvers", "load", str(module), "--kernel", str(target), "--json")
        assert run.returncode == 1, (target, run.stderr)
        data = json.loads(run.stdout)
        answers.append((data["kernel"], data["modules"][0]["errno"], data["modules"][0]["dmesg"]))
    assert answers[0][0] == kernel_tree.release
    assert all(a == answers[0] for a in answers), answers


def test_check_and_load_agree_on_a_module_built_for_another_abi(kernel_tree, kernel_tree_oldest, tmp_path):
    """A real module of 6.1.0-47 checked against 6.1.0-57's headers: check says what load (and the kernel)
    says, module_layout and the version magic, with the rebuild; against its own headers it is clean."""
    m_dir = tmp_path / "m"
    m_dir.mkdir()
    shutil.copy(next(kernel_tree_oldest.modules.glob("kernel/drivers/net/mii.ko*")), m_dir)
    run = buildkit("symvers", "check", f"M={m_dir}", f"KERNELDIR={kernel_tree.build}", "--json")
    assert run.returncode == 1, run.stderr
    kinds = {p["kind"]: p for m in json.loads(run.stdout)["modules"] for p in m["problems"]}
    # and the symbols whose CRCs moved between the ABIs (netdev_info, ...), as modpost would say of them
    assert set(kinds) == {"module_layout", "vermagic", "crc"}, kinds
    assert kinds["module_layout"]["message"] == "mii: disagrees about version of symbol module_layout"
    assert f"make -C {kernel_tree.build} M=" in kinds["module_layout"]["fix"]
    assert kernel_tree_oldest.release in kinds["vermagic"]["fix"] and kernel_tree.release in kinds["vermagic"]["fix"]
    load = buildkit("symvers", "load", str(next(m_dir.iterdir())), "--kernel", str(kernel_tree.modules), "--json")
    assert json.loads(load.stdout)["modules"][0]["problems"][0]["kind"] == "module_layout"
    own = buildkit("symvers", "check", f"M={m_dir}", f"KERNELDIR={kernel_tree_oldest.build}", "--json")
    assert own.returncode == 0 and not json.loads(own.stdout)["modules"][0]["problems"], own.stdout
