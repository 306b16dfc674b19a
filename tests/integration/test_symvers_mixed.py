"""An upgrade check whose verdicts are mixed, module by module and symbol by symbol (issue 18 item 2).

Out-of-tree providers and consumers are built together against bookworm's headers (v1); then the providers
are rebuilt (v2) with a changed prototype (new CRC), a dropped export, an export moved to another namespace
and an export made GPL-only. The installed tree holds the v2 providers and the v1 consumers, as after a
provider-only update. Three judges:
- ``depmod -n -e -E`` (kmod): for every module, the symbols whose CRC disagrees and the unknown ones must be
  exactly buildkit's ``crc`` and ``undefined`` problems, every one of them, not just the first;
- the booted kernel (QEMU, tests/kboot.py): errno and every line of each load equal the prediction, for the
  namespace and GPL-only refusals too, which depmod does not check.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from kboot import Step, boot, vmlinuz
from kboot_cases import mismatches, replay
from kmodbuild import build_modules

pytestmark = pytest.mark.integration

PROVIDERS_V1 = {
    "bk_pa": """
int bk_a_fn(int x) { return x; }
EXPORT_SYMBOL(bk_a_fn);
int bk_a_gone(int x) { return x + 1; }
EXPORT_SYMBOL(bk_a_gone);
int bk_a_same(int x) { return x + 2; }
EXPORT_SYMBOL(bk_a_same);
MODULE_LICENSE("GPL");
""",
    "bk_pb": """
int bk_b_ns(int x) { return x; }
EXPORT_SYMBOL_NS(bk_b_ns, BK_NS1);
int bk_b_plain(int x) { return x; }
EXPORT_SYMBOL(bk_b_plain);
MODULE_LICENSE("GPL");
""",
}
PROVIDERS_V2 = {
    "bk_pa": """
long bk_a_fn(long x) { return x; }
EXPORT_SYMBOL(bk_a_fn);
int bk_a_same(int x) { return x + 2; }
EXPORT_SYMBOL(bk_a_same);
int bk_a_new(int x) { return x + 3; }
EXPORT_SYMBOL(bk_a_new);
MODULE_LICENSE("GPL");
""",
    "bk_pb": """
int bk_b_ns(int x) { return x; }
EXPORT_SYMBOL_NS(bk_b_ns, BK_NS2);
int bk_b_plain(int x) { return x; }
EXPORT_SYMBOL_GPL(bk_b_plain);
MODULE_LICENSE("GPL");
""",
}


def consumer(uses: list[str], extra: str = "", license: str = "GPL") -> str:
    decls = "".join(f"extern int {s}(int);\n" for s in uses)
    calls = " + ".join(f"{s}(0)" for s in uses) or "0"
    return (f"{decls}static int __init c_init(void) {{ return ({calls}) & 0; }}\nmodule_init(c_init);\n{extra}"
            f'MODULE_LICENSE("{license}");\n')


CONSUMERS = {
    "bk_c_ok": consumer(["bk_a_same"]),
    "bk_c_crc": consumer(["bk_a_fn"]),
    "bk_c_gone": consumer(["bk_a_gone"]),
    "bk_c_multi": consumer(["bk_a_fn", "bk_a_gone", "bk_a_same", "bk_b_plain"]),
    "bk_c_ns": consumer(["bk_b_ns"], "MODULE_IMPORT_NS(BK_NS1);\n"),
    # proprietary (an edit after the build would do too; modpost lets it use a plain export at v1)
    "bk_c_prop": consumer(["bk_b_plain"], license="Proprietary"),
}


@pytest.fixture(scope="module")
def tree(kernel_tree, tmp_path_factory):
    """ROOT/lib/modules/REL/extra with the v2 providers and the v1 consumers."""
    v1 = tmp_path_factory.mktemp("mixed-v1")
    build_modules(kernel_tree, v1, {**PROVIDERS_V1, **CONSUMERS})
    v2 = tmp_path_factory.mktemp("mixed-v2")
    build_modules(kernel_tree, v2, PROVIDERS_V2)
    root = tmp_path_factory.mktemp("mixed-root")
    extra = root / "lib" / "modules" / kernel_tree.release / "extra"
    extra.mkdir(parents=True)
    for name in PROVIDERS_V2:
        shutil.copy(v2 / f"{name}.ko", extra)
    for name in CONSUMERS:
        shutil.copy(v1 / f"{name}.ko", extra)
    return root, extra


def depmod_warnings(kernel_tree, root) -> dict[str, set[tuple[str, str]]]:
    depmod = shutil.which("depmod") or "/usr/sbin/depmod"
    run = subprocess.run([depmod, "-n", "-e", "-E", str(kernel_tree.build / "Module.symvers"), "-b", str(root),
                          kernel_tree.release], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    found: dict[str, set[tuple[str, str]]] = {}
    for path, what, sym in re.findall(r"WARNING: (\S+\.ko) (disagrees about version of|needs unknown) symbol (\S+)",
                                      run.stderr):
        name = path.rsplit("/", 1)[-1][:-3]
        found.setdefault(name, set()).add(("crc" if what.startswith("disagrees") else "undefined", sym))
    assert found, run.stderr  # the tree has failures depmod must see
    return found


def test_every_symbol_problem_is_depmods(kernel_tree, tree):
    root, extra = tree
    run = subprocess.run([sys.executable, "-m", "buildkit", "symvers", "load", str(extra), "--kernel",
                          str(kernel_tree.modules), "--json"], capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    modules = {m["name"]: m for m in json.loads(run.stdout)["modules"]}
    assert set(modules) == set(PROVIDERS_V2) | set(CONSUMERS)
    mine = {name: {(p["kind"], p["symbol"]) for p in m["problems"] if p["kind"] in ("crc", "undefined")}
            for name, m in modules.items()}
    theirs = depmod_warnings(kernel_tree, root)
    assert {n: s for n, s in mine.items() if s} == theirs
    # every problem of a module, not only its first: bk_c_multi has a CRC and an unknown symbol
    assert theirs["bk_c_multi"] == {("crc", "bk_a_fn"), ("undefined", "bk_a_gone")}
    # what depmod does not check, buildkit does (the booted kernel agrees, below)
    assert [p["kind"] for p in modules["bk_c_ns"]["problems"] if p["kind"] != "taint"] == ["namespace"]
    assert [p["kind"] for p in modules["bk_c_prop"]["problems"] if p["kind"] != "taint"] == ["gpl-only"]
    assert {n for n, m in modules.items() if m["loads"]} == {"bk_pa", "bk_pb", "bk_c_ok"}


def test_the_booted_kernel_agrees(kernel_tree, tree):
    _root, extra = tree
    steps = [Step("providers", [extra / "bk_pa.ko", extra / "bk_pb.ko"])] + [
        Step(name, [extra / f"{name}.ko"]) for name in CONSUMERS]
    result = boot(vmlinuz(kernel_tree), steps)
    # bk_c_multi: a CRC and an unknown symbol, the last failure's errno wins (symbol-table order)
    assert [result.steps[n].loads[0].errname for n in CONSUMERS] == ["", "EINVAL", "ENOENT", "ENOENT", "EINVAL",
                                                                     "ENOENT"]
    bad = mismatches(result, steps, replay(kernel_tree, result, steps))
    assert not bad, "\n".join(bad)
