"""buildkit.kmod.loader_rules: which rows a boot has proven, as --json says it, and the 6.4+ licence line."""

from __future__ import annotations

from buildkit.kmod.loader_rules import RULES, rules_for


def test_rows_say_which_boot_proved_them():
    proven = {r.since_text: r.to_json()["proven_on"] for r in RULES}
    assert proven == {"5.4+": "Debian 5.10.0-32-amd64 (5.10.223)", "5.11+": None, "5.17+": "Debian 6.1.0-57-amd64",
                      "6.4+": "Debian 6.12.117+deb13-amd64", "7.0+": None}
    row = rules_for((5, 14)).to_json()
    assert {k: v for k, v in row.items() if k != "functions"} == {
        "since": "5.11+", "source": "taken to match 5.10 and 6.1 (not read)", "proven": False, "proven_on": None}
    # CentOS 7's 3.10 gets the oldest row read, which a 5.10 boot proved: not a proof for 3.10
    old = rules_for((3, 10))
    assert old.since == (5, 4) and old.to_json((3, 10))["proven"] is False and old.to_json((5, 10))["proven"]
    assert "nothing proves it for this kernel" in old.describe((3, 10))
    assert "proven by booting Debian 5.10.0-32-amd64" in old.describe((5, 10))


def test_second_licence_line_from_6_4_on():
    # module_augment_kernel_taints() (6.4+) reads prev_taint before the licence sets P; 6.1 and 5.10 after
    assert [r.since for r in RULES if r.license_taints_after_signature] == [(6, 4), (7, 0)]
    assert rules_for((6, 12)).messages["license_taints"] == "{mod}: module license taints kernel."


def test_every_row_cites_where_each_gate_is():
    """Issue 18: each row names the functions of its gates, in load_module()'s order (read in Debian's sources)."""
    for row in RULES:
        text = row.functions
        steps = ["module_sig_check()", "check_modstruct_version()", "check_modinfo()", "simplify_symbols()",
                 "check_version()", "verify_namespace_is_imported()", "verify_exported_symbols()"]
        at = [text.index(step) for step in steps]
        assert at == sorted(at), (row.since_text, text)
        assert row.to_json()["functions"] == text
    assert "early_mod_check()" in rules_for((6, 12)).functions and "early_mod_check()" not in rules_for((6, 1)).functions
    assert "module_augment_kernel_taints()" in rules_for((6, 12)).functions


def test_struct_module_size_is_checked_from_6_4_only():
    """elf_validity_cache_copy()'s .gnu.linkonce.this_module size check: in 6.12's sources, not in 6.1's or 5.10's
    (where a module of another struct module meets the module_layout CRC instead)."""
    assert [r.since for r in RULES if r.this_module_size] == [(6, 4), (7, 0)]
