"""symvers diff on generated Module.symvers files (kabi.pl's words, JSON, exit codes), and the bad input of
symvers load / diff: one line naming the file and the fix, exit 2. The loader itself is judged by the
booted kernel (tests/integration/test_kboot.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from buildkit.kmod.loader_rules import RULES, insmod_line, modprobe_line, rules_for


def buildkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buildkit", *args], capture_output=True, text=True)


OLD = ("0x00000001\tkept\tvmlinux\tEXPORT_SYMBOL\t\n"
       "0x00000002\tgone\tdrivers/foo\tEXPORT_SYMBOL\t\n"
       "0x00000003\tcrcd\tvmlinux\tEXPORT_SYMBOL\t\n"
       "0x00000004\tgplified\tvmlinux\tEXPORT_SYMBOL\t\n"
       "0x00000005\tnsd\tvmlinux\tEXPORT_SYMBOL_GPL\t\n"
       "0x00000006\tmoved\tdrivers/a\tEXPORT_SYMBOL\t\n")
NEW = ("0x00000001\tkept\tvmlinux\tEXPORT_SYMBOL\t\n"
       "0x00000013\tcrcd\tvmlinux\tEXPORT_SYMBOL\t\n"
       "0x00000004\tgplified\tvmlinux\tEXPORT_SYMBOL_GPL\t\n"
       "0x00000005\tnsd\tvmlinux\tEXPORT_SYMBOL_GPL\tCORE\n"
       "0x00000006\tmoved\tdrivers/b\tEXPORT_SYMBOL\t\n"
       "0x00000007\tfresh\tvmlinux\tEXPORT_SYMBOL\t\n")


def test_diff_in_kabi_words(tmp_path):
    (tmp_path / "old").write_text(OLD)
    (tmp_path / "new").write_text(NEW)
    run = buildkit("symvers", "diff", str(tmp_path / "old"), str(tmp_path / "new"))
    assert run.returncode == 1
    assert run.stdout.splitlines() == [
        "KABI: symbol gone(mod:drivers/foo) lost",
        "KABI: symbol crcd(mod:vmlinux) changed crc from 0x00000003 to 0x00000013",
        "KABI: symbol gplified(mod:vmlinux) changed type from EXPORT_SYMBOL to EXPORT_SYMBOL_GPL",
        "KABI: symbol nsd(mod:vmlinux) changed namespace from (none) to CORE",
        "KABI: symbol moved(mod:drivers/a) moved from drivers/a to drivers/b",
        "KABI: symbol fresh(mod:vmlinux) added",
    ]
    data = json.loads(buildkit("symvers", "diff", str(tmp_path / "old"), str(tmp_path / "new"), "--json").stdout)
    assert [e["symbol"] for e in data["lost"]] == ["gone"]
    assert data["crc"] == [{"symbol": "crcd", "module": "vmlinux", "old": "0x00000003", "new": "0x00000013"}]
    assert data["type"][0]["new"] == "EXPORT_SYMBOL_GPL" and data["owner"][0]["new"] == "drivers/b"
    same = buildkit("symvers", "diff", str(tmp_path / "old"), str(tmp_path / "old"))
    assert (same.returncode, same.stdout) == (0, "")
    added_only = buildkit("symvers", "diff", str(tmp_path / "new"), str(tmp_path / "new"))
    assert added_only.returncode == 0


def test_bad_input_is_one_line(tmp_path):
    for args, needle in [
        (["symvers", "load", str(tmp_path / "none.ko"), "--kernel", str(tmp_path)], "none.ko: no such module file"),
        (["symvers", "diff", str(tmp_path / "nope"), str(tmp_path / "nope2")], "nope: no such file or directory"),
        (["symvers", "diff", str(tmp_path), str(tmp_path)], "not a kernel"),
    ]:
        run = buildkit(*args)
        assert run.returncode == 2, (args, run.stderr)
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert needle in run.stderr, run.stderr
    (tmp_path / "x.ko").write_bytes(b"\x7fELF" + b"\0" * 10)
    run = buildkit("symvers", "load", str(tmp_path / "x.ko"), "--kernel", str(tmp_path / "missing"))
    assert run.returncode == 2 and "missing: no such file or directory" in run.stderr


def test_rules_are_data_in_version_order():
    assert [r.since for r in RULES] == sorted(r.since for r in RULES)
    assert rules_for((6, 1)).order.index("taints") < rules_for((6, 1)).order.index("duplicate-name")
    assert rules_for((6, 6)).order.index("duplicate-name") < rules_for((6, 6)).order.index("taints")
    assert insmod_line("a.ko", 2) == "insmod: ERROR: could not insert module a.ko: Unknown symbol in module"
    assert insmod_line("a.ko", 129) == "insmod: ERROR: could not insert module a.ko: Key was rejected by service"
    assert modprobe_line("a", 8) == "modprobe: ERROR: could not insert 'a': Exec format error"
    assert insmod_line("a.ko", 0) == ""


def test_a_rhel_familys_symvers_gz_is_not_called_upstream(tmp_path):
    """Issue 17 item 5: /boot/symvers-VER.gz is RHEL's (and Alibaba Cloud Linux's) layout; its kernel was
    labelled "upstream". Judged by the release (.el7, .al8): "rhel", whose loader rules are upstream's."""
    import gzip

    from buildkit.kmod.target import read_target

    boot = tmp_path / "boot"
    boot.mkdir()
    for release, vendor in (("5.10.134-16.al8.x86_64", "rhel"), ("3.10.0-1160.el7.x86_64", "rhel"),
                            ("6.6.30-custom", "upstream")):
        path = boot / f"symvers-{release}.gz"
        path.write_bytes(gzip.compress(b"0x12345678\tmodule_layout\tvmlinux\tEXPORT_SYMBOL\t\n"))
        (boot / f"config-{release}").write_text("CONFIG_MODVERSIONS=y\nCONFIG_SMP=y\nCONFIG_MODULE_UNLOAD=y\n")
        assert read_target(str(path)).vendor == vendor, release
