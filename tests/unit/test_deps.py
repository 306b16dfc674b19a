"""modules.dep resolution (buildkit.kmod.deps) on synthetic inputs: graphs given directly to the pure
resolver, tiny module trees of hand-written ELF files, and depmod.d configuration. The comparison with
kmod's own depmod on the real 4,022-module tree is tests/integration/test_deps_depmod.py."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from kofile import make_ko, write_ko

from buildkit.errors import InputError
from buildkit.kmod import deps as D
from buildkit.kmod.modfile import quick_symbol_names, quick_symbols

# ------------------------------------------------------------------------- quick_symbols as depmod


@pytest.mark.parametrize("bits,order", [(64, "<"), (32, "<"), (64, ">"), (32, ">")])
def test_quick_symbols_every_layout(tmp_path, bits, order):
    ko = write_ko(tmp_path / "m.ko", exports=("foo", "bar"), undefined=("printk", "baz"), weak=("maybe",),
                  versions=("module_layout", "printk", "baz"), bits=bits, order=order)
    q = quick_symbols(str(ko))
    assert q.exports == ["foo", "bar"]
    assert q.undefined == ["printk", "baz", "maybe", "module_layout"]  # symtab order, then __versions extras
    assert q.weak == {"maybe"}
    raw = quick_symbol_names(str(ko))
    assert raw == ([b"foo", b"bar"], [b"printk", b"baz", b"maybe", b"module_layout"], {b"maybe"})


def test_quick_symbols_kstrtab_fallback_and_version_edge_cases(tmp_path):
    ko = write_ko(tmp_path / "m.ko", kstrtab=("only_kstrtab",), undefined=("a",),
                  versions=("module_layout", "", "module_layout", "a"))
    q = quick_symbols(str(ko))
    assert q.exports == ["only_kstrtab"]
    assert q.undefined == ["a", "module_layout", "module_layout"]  # an empty record is skipped, twins kept
    assert q.weak == set()
    # A record whose name has no terminating NUL within its 56 bytes is read on past it (so does kmod).
    rec = struct.pack("<Q", 1) + b"x" * 56 + struct.pack("<Q", 2) + b"y\0".ljust(56, b"\0")
    q = quick_symbols(str(write_ko(tmp_path / "n.ko", undefined=("y",), raw_versions=rec)))
    assert q.undefined[0] == "y" and len(q.undefined) == 2 and q.undefined[1].startswith("x" * 56)
    # A __versions section that is not whole records.
    q = quick_symbols(str(write_ko(tmp_path / "o.ko", raw_versions=struct.pack("<Q", 1) + b"abc\0")))
    assert q.undefined == ["abc"]


# ------------------------------------------------------------------------------ the pure resolver


def mk(name: str, exports: tuple[str, ...] = (), needs: tuple[str, ...] = ()) -> D.Module:
    m = D.Module(name, f"/t/kernel/{name}.ko", f"kernel/{name}.ko")
    m.exports = [e.encode() for e in exports]
    m.undefined = [u.encode() for u in needs]
    return m


def graph(*mods: D.Module) -> D.DepGraph:
    return D.build_graph(list(mods), "/t", "1.0")


def test_chain_lists_every_dependency_users_first():
    a = mk("a", needs=("b_fn", "printk"))
    b = mk("b", exports=("b_fn",), needs=("c_fn",))
    c = mk("c", exports=("c_fn",))
    g = graph(a, b, c)
    assert D.format_modules_dep(g) == (
        "kernel/a.ko: kernel/b.ko kernel/c.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko:\n"
    )
    assert [d.name for d in g.load_order(a)] == ["c", "b", "a"]
    assert g.cycles == []


def test_depmods_order_of_a_line_follows_its_topological_sort():
    # top needs x then y; y needs x. Kahn's sort with a stack puts y before x, so depmod prints "y x".
    top = mk("top", needs=("x_fn", "y_fn"))
    x = mk("x", exports=("x_fn",))
    y = mk("y", exports=("y_fn",), needs=("x_fn",))
    out = D.format_modules_dep(graph(top, x, y))
    assert out.splitlines()[0] == "kernel/top.ko: kernel/y.ko kernel/x.ko"


def test_duplicate_export_goes_to_the_later_module_and_is_reported():
    first = mk("first", exports=("dup", "only_first"))
    second = mk("second", exports=("dup",))
    user = mk("user", needs=("dup",))
    g = graph(first, second, user)
    assert g.symbols[b"dup"] is second
    assert D.format_modules_dep(g).splitlines()[2] == "kernel/user.ko: kernel/second.ko"
    data = D.graph_json(g)
    assert data["duplicate_exports"] == [
        {"symbol": "dup", "owner": "kernel/second.ko", "also_exported_by": ["kernel/first.ko"]}
    ]


def test_weak_and_dotted_undefined_symbols_make_dependencies_too():
    prov = mk("prov", exports=("w", "f"))
    weak_user = mk("weak_user", needs=("w",))
    weak_user.weak = frozenset({b"w"})
    dotted = mk("dotted", needs=(".f",))  # PPC64 function descriptors: depmod looks ".f" up as "f"
    out = D.format_modules_dep(graph(prov, weak_user, dotted)).splitlines()
    assert out[1:] == ["kernel/weak_user.ko: kernel/prov.ko", "kernel/dotted.ko: kernel/prov.ko"]


def test_external_modules_print_their_absolute_path():
    ext = D.Module("ext", "/src/drv/ext.ko", None)
    ext.exports = [b"ext_fn"]
    user = mk("user", needs=("ext_fn",))
    assert D.format_modules_dep(graph(user, ext)) == "kernel/user.ko: /src/drv/ext.ko\n/src/drv/ext.ko:\n"


def test_cycle_is_reported_in_depmods_words_and_blocks_modules_dep():
    a = mk("a", exports=("a_fn",), needs=("b_fn",))
    b = mk("b", exports=("b_fn",), needs=("c_fn",))
    c = mk("c", exports=("c_fn",), needs=("a_fn",))
    d = mk("d", needs=("a_fn",))
    g = graph(a, b, c, d)
    assert D.cycle_lines(g) == ["Cycle detected: a -> b -> c -> a", "Found 3 modules in dependency cycles!"]
    with pytest.raises(D.DependencyCycle) as err:
        D.format_modules_dep(g)
    assert err.value.exit_code == 1 and "Found 3 modules in dependency cycles!" in str(err.value)
    data = D.graph_json(g)  # json and dot still describe the graph
    assert data["cycles"] == [["a", "b", "c", "a"]]
    assert '"c" -> "a" [color=red];' in D.format_dot(g)


def test_self_dependency_and_two_cycles_one_behind_the_other():
    # z <-> w, and z also needs x, which is in x <-> y: depmod's search from z would go round x/y forever.
    z = mk("z", exports=("z_fn",), needs=("w_fn", "x_fn"))
    x = mk("x", exports=("x_fn",), needs=("y_fn",))
    y = mk("y", exports=("y_fn",), needs=("x_fn",))
    w = mk("w", exports=("w_fn",), needs=("z_fn",))
    g = graph(z, x, y, w)
    assert D.cycle_lines(g) == [
        "Cycle detected: z -> w -> z",
        "Cycle detected: x -> y -> x",
        "Found 4 modules in dependency cycles!",
    ]
    me = mk("me", exports=("me_fn",), needs=("me_fn",))
    assert D.cycle_lines(graph(me)) == ["Cycle detected: me -> me", "Found 1 modules in dependency cycles!"]


def test_json_and_dot_outputs():
    a = mk("a", needs=("b_fn",))
    b = mk("b-x", exports=("b_fn",))
    g = graph(a, b)
    data = json.loads(json.dumps(D.graph_json(g)))
    assert data["modules"][0] == {
        "name": "a", "path": "kernel/a.ko", "file": "/t/kernel/a.ko", "depends": ["b-x"],
        "all_depends": ["kernel/b-x.ko"], "load_order": ["kernel/b-x.ko", "kernel/a.ko"], "exports": 0,
        "error": None,
    }
    dot = D.format_dot(g)
    assert dot.startswith("digraph modules {") and '"a" -> "b-x";' in dot


# ------------------------------------------------------------------------ hash order, modules.order


def test_kmod_hash_matches_libkmod():
    # Values of libkmod's hash_superfast (x86: ``char`` is signed), checked against a C build of it.
    cases = {b"": 0, b"a": 291415938, b"ab": 1366002500, b"abc": 3535673738, b"abcd": 3671636187,
             b"snd_pcm": 480561357, b"\xe9": 1776944832, b"ab\xe9": 3034567861, b"abcd\xff": 3158055757}
    assert {k: D.kmod_hash(k) for k in cases} == cases


def test_modules_order_then_hash_order(tmp_path):
    mods = [mk(n) for n in ("e", "d", "c", "b", "a")]
    (tmp_path / "modules.order").write_text("kernel/c.ko\nkernel/a.ko\nkernel/gone.ko\nkernel/c.ko\n")
    assert D.order_modules(mods, str(tmp_path))
    rest = sorted(["e", "d", "b"], key=lambda n: (D.kmod_hash(n.encode()) & 511, n))
    assert [m.name for m in mods] == ["a", "c"] + rest  # a name listed twice takes its last place


def test_modules_order_names_compressed_modules_by_their_ko_name(tmp_path):
    xz = D.Module("foo_bar", str(tmp_path / "kernel/foo-bar.ko.xz"), "kernel/foo-bar.ko.xz")
    plain = mk("zzz")
    (tmp_path / "modules.order").write_text("kernel/zzz.ko\nkernel/foo-bar.ko\n")
    mods = [xz, plain]
    D.order_modules(mods, str(tmp_path))
    assert mods == [plain, xz]


def test_corrupted_modules_order_is_ignored_like_depmod(tmp_path):
    mods = [mk(n) for n in ("a", "b", "c")]
    (tmp_path / "modules.order").write_text("kernel/c.ko\nkernel/b.ko")  # no final newline
    warnings: list[str] = []
    assert not D.order_modules(mods, str(tmp_path), warnings.append)
    assert [m.name for m in mods] == sorted("abc", key=lambda n: (D.kmod_hash(n.encode()) & 511, n))
    assert "modules.order:2: corrupted line" in warnings[0]


# --------------------------------------------------------------------------------- the module walk


def names_paths(mods: list[D.Module]) -> dict[str, str]:
    return {m.name: m.dep_path for m in mods}


def test_walk_finds_modules_like_depmod(tmp_path):
    for rel in ("kernel/a/x-y.ko", "kernel/b.ko.xz", "kernel/c.ko.zst", "kernel/d.ko.gz", "kernel/e.ko.bz2",
                "kernel/f.o", "kernel/.ko", "build/g.ko", "source/h.ko", "kernel/sub/build/i.ko", "j.ko"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "kernel" / "dir.ko").mkdir()
    (tmp_path / "kernel" / "dir.ko" / "k.v2.ko").write_bytes(b"")
    found = names_paths(D.find_modules(str(tmp_path)))
    assert found == {"x_y": "kernel/a/x-y.ko", "b": "kernel/b.ko.xz", "c": "kernel/c.ko.zst", "d": "kernel/d.ko.gz",
                     "j": "j.ko", "k": "kernel/dir.ko/k.v2.ko"}


def test_updates_beat_kernel_and_override_beats_updates(tmp_path):
    for rel in ("kernel/drivers/a.ko", "updates/dkms/a.ko", "kernel/b.ko", "extra/b.ko"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = names_paths(D.find_modules(str(tmp_path), config=D.DepmodConfig(search=["updates"])))
    assert found["a"] == "updates/dkms/a.ko"
    cfg = D.DepmodConfig(search=["updates"], overrides=["kernel/drivers/a"])
    assert names_paths(D.find_modules(str(tmp_path), config=cfg))["a"] == "kernel/drivers/a.ko"
    cfg = D.DepmodConfig(search=["built-in", "extra"])  # "search extra built-in": extra first
    assert names_paths(D.find_modules(str(tmp_path), config=cfg))["b"] == "extra/b.ko"


def test_m_dirs_beat_the_tree_first_given_first(tmp_path):
    tree, m1, m2 = tmp_path / "tree", tmp_path / "m1", tmp_path / "m2"
    for p in (tree / "kernel" / "a.ko", tree / "updates" / "a.ko", m1 / "a.ko", m2 / "a.ko", m2 / "b.ko"):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    found = names_paths(D.find_modules(str(tree), [str(m1), str(m2)]))
    assert found == {"a": str(m1 / "a.ko"), "b": str(m2 / "b.ko")}


def test_symlink_loop_is_walked_once(tmp_path):
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel" / "a.ko").write_bytes(b"")
    (tmp_path / "kernel" / "loop").symlink_to(tmp_path / "kernel")
    assert names_paths(D.find_modules(str(tmp_path))) == {"a": "kernel/a.ko"}


def test_depmod_d_configuration(tmp_path):
    run = tmp_path / "run"
    etc = tmp_path / "etc"
    run.mkdir()
    etc.mkdir()
    (etc / "a.conf").write_text(
        "# comment\nsearch updates \\\n  extra built-in\noverride foo 6.1.* kernel/drivers\n"
        "override bar 5.10.* updates\nexternal 6.1.0-50-amd64 /opt/mods\nexternal * /srv/mods\n"
        "exclude debug\nfrobnicate x\n"
    )
    (etc / "b.conf").write_text("search nothing\n")
    (run / "b.conf").write_text("exclude more\n")  # the first directory holding b.conf wins
    (etc / "skip.txt").write_text("search bogus\n")
    cfg = D.load_config([str(run), str(etc)], "6.1.0-50-amd64")
    assert cfg.search == ["built-in", "extra", "updates"]
    assert cfg.overrides == ["kernel/drivers/foo"]
    assert cfg.externals == ["/srv/mods", "/opt/mods"]
    assert cfg.excludes == ["more", "debug"]
    assert len(cfg.warnings) == 1 and "ignoring bad line starting with 'frobnicate'" in cfg.warnings[0]
    assert D.load_config([], "x").search == ["updates"]


# ---------------------------------------------------------------------- trees of real ELF files


def small_tree(root: Path) -> Path:
    tree = root / "lib" / "modules" / "1.0"
    write_ko(tree / "kernel" / "core.ko", exports=("core_fn",), undefined=("printk",), versions=("module_layout",))
    write_ko(tree / "kernel" / "mid.ko", exports=("mid_fn",), undefined=("core_fn",))
    write_ko(tree / "kernel" / "top-drv.ko", undefined=("mid_fn", "core_fn"), weak=("opt_fn",))
    write_ko(tree / "updates" / "opt.ko", exports=("opt_fn",), bits=32)
    (tree / "modules.order").write_text("kernel/core.ko\nkernel/top-drv.ko\nkernel/mid.ko\n")
    return tree


def test_collect_a_small_tree(tmp_path):
    tree = small_tree(tmp_path)
    g = D.collect(str(tree), config_paths=[])
    # What depmod -n -b prints for this tree: Kahn's stack takes opt (pushed last) before mid.
    assert D.format_modules_dep(g) == (
        "kernel/core.ko:\n"
        "kernel/top-drv.ko: updates/opt.ko kernel/mid.ko kernel/core.ko\n"
        "kernel/mid.ko: kernel/core.ko\n"
        "updates/opt.ko:\n"
    )
    assert g.kernel_release == "1.0" and g.used_modules_order
    # The root of the tree (a dpkg -x folder, depmod -b) finds lib/modules/VER itself.
    assert D.format_modules_dep(D.collect(str(tmp_path), config_paths=[])) == D.format_modules_dep(g)


def test_garbage_module_is_listed_without_dependencies_and_warned(tmp_path):
    tree = small_tree(tmp_path)
    (tree / "kernel" / "junk.ko").write_bytes(b"not an elf at all")
    (tree / "kernel" / "cut.ko").write_bytes(make_ko(exports=("x",))[:100])
    g = D.collect(str(tree), config_paths=[])
    lines = D.format_modules_dep(g).splitlines()
    assert "kernel/junk.ko:" in lines and "kernel/cut.ko:" in lines
    assert len(g.warnings) == 2
    assert all("listed with no dependencies" in w and str(tree / "kernel") in w for w in g.warnings)


def test_forked_scan_reads_the_same(tmp_path):
    tree = small_tree(tmp_path)
    one, two = D.find_modules(str(tree)), D.find_modules(str(tree))
    D.scan_modules(one, jobs=1)
    D.scan_modules(two, jobs=2)
    assert [(m.exports, m.undefined, m.weak, m.error) for m in one] == [
        (m.exports, m.undefined, m.weak, m.error) for m in two
    ]


def test_bad_trees_are_one_line_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such directory"):
        D.collect(str(tmp_path / "gone"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no kernel modules"):
        D.collect(str(tmp_path / "empty"), config_paths=[])
    (tmp_path / "roots" / "lib" / "modules" / "1").mkdir(parents=True)
    (tmp_path / "roots" / "lib" / "modules" / "2").mkdir(parents=True)
    with pytest.raises(InputError, match="--kernel-release"):
        D.collect(str(tmp_path / "roots"))
    with pytest.raises(InputError, match="M=.*no such directory"):
        D.collect(str(small_tree(tmp_path / "t")), [str(tmp_path / "nope")], config_paths=[])


def test_who_exports_reads_type_and_namespace_of_owners(tmp_path):
    tree = small_tree(tmp_path)
    g = D.collect(str(tree), config_paths=[])
    found = D.who_exports(["mid_fn", "nothing"], g)
    assert [(e.module, e.path, e.source, e.depmod_owner) for e in found["mid_fn"]] == [
        ("mid", "kernel/mid.ko", "tree", True)
    ]
    assert found["nothing"] == []


# ------------------------------------------------------------------------------------------ CLI


def buildkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buildkit", *args], capture_output=True, text=True)


def test_cli_deps_and_who_exports(tmp_path):
    tree = small_tree(tmp_path)
    run = buildkit("symvers", "deps", str(tree), "--config", "/dev/null")
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.splitlines()[1] == "kernel/top-drv.ko: updates/opt.ko kernel/mid.ko kernel/core.ko"
    data = json.loads(buildkit("symvers", "deps", str(tree), "--format", "json").stdout)
    assert [m["name"] for m in data["modules"]] == ["core", "top_drv", "mid", "opt"]
    assert buildkit("symvers", "deps", str(tree), "--format", "dot").stdout.startswith("digraph")
    run = buildkit("symvers", "who-exports", "core_fn", "--tree", str(tree))
    assert run.returncode == 0 and "kernel/core.ko" in run.stdout and "EXPORT_SYMBOL" in run.stdout
    run = buildkit("symvers", "who-exports", "core_fn", "nope", "--tree", str(tree), "--json")
    assert run.returncode == 1 and "nope: not exported by" in run.stderr
    assert json.loads(run.stdout)["symbols"][1] == {"symbol": "nope", "exporters": []}


def test_cli_bad_input_and_cycles(tmp_path):
    for args, needle in (
        ((str(tmp_path / "gone"),), "no such directory"),
        ((str(tmp_path),), "no kernel modules"),
        ((str(tmp_path), "X=1"), "unexpected argument 'X=1'"),
    ):
        run = buildkit("symvers", "deps", *args)
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
        assert run.stderr.count("\n") == 1 and needle in run.stderr and run.stderr.startswith("buildkit: error:")
    tree = tmp_path / "cyc"
    write_ko(tree / "a.ko", exports=("a_fn",), undefined=("b_fn",))
    write_ko(tree / "b.ko", exports=("b_fn",), undefined=("a_fn",))
    run = buildkit("symvers", "deps", str(tree), "--config", "/dev/null")
    assert run.returncode == 1 and run.stdout == ""
    assert "Cycle detected: " in run.stderr and "Found 2 modules in dependency cycles!" in run.stderr
    assert "Traceback" not in run.stderr
