"""What Debian's bookworm kernel really does when it loads broken modules, booted under QEMU (tests/kboot.py).

The cases (tests/kboot_cases.py: tiny out-of-tree modules built once against the fixture's headers, their
broken variants made by byte edits, one copy signed with a key made here) are loaded in five boots of ~8 s each (one per module-scoped
fixture): a long plain sequence, one with ``module.sig_enforce=1``, and three short ones whose first load
shows the order of the kernel's once-per-boot taint lines. The assertions are the errno and the exact kernel log lines
observed on 6.1.0-57-amd64; they document the kernel's behaviour for buildkit's load predictions.
"""

from __future__ import annotations

import dataclasses
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from kboot import BootResult, Step, boot, edit_modinfo, vmlinuz
from kboot_cases import (
    GATE_SOURCES,
    OOT_TAINT,
    SIG_TAINT,
    Mods,
    default_steps,
    edit_version_name,
    enforce_steps,
    errnos,
    forced_steps,
    foreign_steps,
    mismatches,
    prepare_mods,
    proprietary_steps,
    replay,
)
from kmodbuild import build_modules

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mods(kernel_tree, tmp_path_factory) -> Mods:
    return prepare_mods(kernel_tree, tmp_path_factory.mktemp("kboot-mods"), None,
                        kernel_tree.build / "scripts" / "sign-file")


@pytest.fixture(scope="module")
def plain(kernel_tree, mods) -> BootResult:
    return boot(vmlinuz(kernel_tree), default_steps(mods))


@pytest.fixture(scope="module")
def enforced(kernel_tree, mods) -> BootResult:
    return boot(vmlinuz(kernel_tree), enforce_steps(mods), append="module.sig_enforce=1")


@pytest.fixture(scope="module")
def fresh_proprietary(kernel_tree, mods) -> BootResult:
    """A boot whose first load is out-of-tree, unsigned, proprietary and lacks symbols: the order of the
    kernel's once-per-boot lines."""
    return boot(vmlinuz(kernel_tree), proprietary_steps(mods))


@pytest.fixture(scope="module")
def fresh_foreign(kernel_tree, mods) -> BootResult:
    """A boot whose first load carries a signature by a key the kernel does not hold."""
    return boot(vmlinuz(kernel_tree), foreign_steps(mods))


@pytest.fixture(scope="module")
def fresh_forced(kernel_tree, mods) -> BootResult:
    """A boot whose first loads have a bad vermagic: refused, then forced."""
    return boot(vmlinuz(kernel_tree), forced_steps(mods))


def test_the_guest_is_the_fixture_kernel(kernel_tree, plain, enforced):
    for result in (plain, enforced):
        assert result.release == kernel_tree.release
        assert result.seconds < 120, result.seconds
    assert "module.sig_enforce=1" in enforced.cmdline.split()
    assert "module.sig_enforce=1" not in plain.cmdline.split()


def test_consumer_alone_unknown_symbol_and_first_taints(plain):
    step = plain.steps["cons_alone"]
    assert errnos(step) == [(2, "ENOENT")]
    # The first out-of-tree, unsigned load of the boot prints the taint lines, even though it fails.
    assert step.dmesg == [
        f"bk_cons: {OOT_TAINT}",
        f"bk_cons: {SIG_TAINT}",
        "bk_cons: Unknown symbol bk_prov_add (err -2)",
    ]
    assert [line.level for line in step.log] == [4, 5, 4]  # KERN_WARNING, KERN_NOTICE, KERN_WARNING
    assert step.tainted == 0x1000 | 0x2000  # O and E stay although nothing was loaded
    assert step.loaded == ()


def test_every_unknown_symbol_is_named(plain):
    step = plain.steps["two_unknown"]
    assert errnos(step) == [(2, "ENOENT")]
    # One line per missing symbol, in the module's symbol-table order (not the source's); no taint lines
    # any more: they are printed once per boot.
    assert step.dmesg == ["bk_two: Unknown symbol bk_prov_sub (err -2)", "bk_two: Unknown symbol bk_prov_add (err -2)"]


def test_vermagic_is_checked_before_symbols(plain, mods):
    step = plain.steps["bad_vermagic_and_unknown"]
    assert errnos(step) == [(8, "ENOEXEC")]
    assert step.dmesg == [f"bk_cons_magic: version magic '{mods.bad_vermagic}' should be '{mods.vermagic}'"]
    assert [line.level for line in step.log] == [3]


def test_bad_vermagic(plain, mods):
    step = plain.steps["bad_vermagic"]
    assert errnos(step) == [(8, "ENOEXEC")]
    assert step.dmesg == [f"bk_magic: version magic '{mods.bad_vermagic}' should be '{mods.vermagic}'"]


def test_bad_vermagic_forced_loads_and_taints(plain):
    step = plain.steps["bad_vermagic_forced"]  # finit_module(..., MODULE_INIT_IGNORE_VERMAGIC): insmod -f
    assert errnos(step) == [(0, "")]
    assert step.dmesg == ["bk_magic: bad vermagic: kernel tainted.", "Disabling lock debugging due to kernel taint"]
    assert step.tainted & 2  # F
    assert "bk_magic" in step.loaded


def test_release_part_of_vermagic_is_not_compared(plain, mods):
    # With CONFIG_MODVERSIONS the kernel compares vermagic from its first space on: the release may differ.
    assert mods.bad_release.split(" ", 1)[0] != mods.vermagic.split(" ", 1)[0]
    step = plain.steps["other_release"]
    assert errnos(step) == [(0, "")]
    assert step.dmesg == []


def test_provider_then_consumer(plain):
    step = plain.steps["prov_then_cons"]
    assert errnos(step) == [(0, ""), (0, "")]
    assert step.dmesg == []
    assert {"bk_prov", "bk_cons"} <= set(step.loaded)


def test_proprietary_module_cannot_see_gpl_only_exports(plain):
    step = plain.steps["proprietary_uses_gpl_only"]
    assert errnos(step) == [(2, "ENOENT")]
    # bk_prov_sub (EXPORT_SYMBOL) resolves; bk_prov_add (EXPORT_SYMBOL_GPL) is just "unknown".
    assert step.dmesg == [
        "bk_cons_prop: module license 'Proprietary' taints kernel.",
        "bk_cons_prop: Unknown symbol bk_prov_add (err -2)",
    ]
    assert step.tainted & 1  # P, although the load failed


def test_crc_mismatch(plain):
    step = plain.steps["crc_mismatch"]
    assert errnos(step) == [(22, "EINVAL")]
    assert step.dmesg == [
        "bk_cons_crc: disagrees about version of symbol bk_prov_add",
        "bk_cons_crc: Unknown symbol bk_prov_add (err -22)",
    ]


def test_duplicate_export_of_a_loaded_in_tree_module(plain):
    step = plain.steps["duplicate_export"]
    assert errnos(step) == [(0, ""), (8, "ENOEXEC")]
    assert step.dmesg == ["bk_dup: exports duplicate symbol crc_itu_t (owned by crc_itu_t)"]
    assert [line.level for line in step.log] == [3]


def test_load_twice_is_silent_eexist(plain):
    step = plain.steps["load_twice"]
    assert errnos(step) == [(17, "EEXIST")]
    assert step.dmesg == []


def test_rmmod(plain):
    step = plain.steps["rmmod_in_use"]
    assert [(u.name, u.errno, u.errname) for u in step.unloads] == [("bk_prov", 11, "EAGAIN")]  # used by bk_cons
    assert step.dmesg == []
    step = plain.steps["rmmod"]
    assert [(u.name, u.errno, u.errname) for u in step.unloads] == [
        ("bk_noexit", 16, "EBUSY"),  # a module_init and no module_exit: never unloadable
        ("bk_cons", 0, ""),
        ("bk_prov", 0, ""),
        ("bk_prov", 2, "ENOENT"),
    ]
    assert step.dmesg == []
    assert "bk_prov" not in step.loaded and "bk_noexit" in step.loaded


def test_kmod_insmod_messages(plain, mods):
    step = plain.steps["insmod_unknown"]
    assert [(load.status, load.output) for load in step.loads] == [
        (1, ("insmod: ERROR: could not insert module bk_cons.ko: Unknown symbol in module",))
    ]
    assert step.dmesg == ["bk_cons: Unknown symbol bk_prov_add (err -2)"]
    step = plain.steps["insmod_bad_vermagic"]
    assert [(load.status, load.output) for load in step.loads] == [
        (1, ("insmod: ERROR: could not insert module bk_cons_magic.ko: Invalid module format",))
    ]
    assert step.dmesg == [f"bk_cons_magic: version magic '{mods.bad_vermagic}' should be '{mods.vermagic}'"]
    step = plain.steps["insmod_ok"]
    assert [(load.status, load.output) for load in step.loads] == [(0, ())]
    assert step.dmesg == []


@pytest.mark.parametrize("name", ["unsigned", "unsigned_bad_vermagic", "unsigned_unknown", "unsigned_forced"])
def test_sig_enforce_rejects_unsigned_first(enforced, name):
    # The signature is checked before anything else (vermagic, symbols), even with IGNORE_VERMAGIC; the
    # line names no module and no taint line follows.
    step = enforced.steps[name]
    assert errnos(step) == [(129, "EKEYREJECTED")]
    assert step.dmesg == ["Loading of unsigned module is rejected"]
    assert [line.level for line in step.log] == [5]
    assert step.tainted == 0 and step.loaded == ()


def test_sig_enforce_loads_debian_signed_modules(enforced):
    # The in-tree modules of linux-image-*-unsigned carry Debian's build-key signature, which this kernel trusts.
    step = enforced.steps["signed_intree"]
    assert errnos(step) == [(0, "")]
    assert step.dmesg == []
    step = enforced.steps["insmod_unsigned"]
    assert [(load.status, load.output) for load in step.loads] == [
        (1, ("insmod: ERROR: could not insert module bk_plain.ko: Key was rejected by service",))
    ]
    assert step.dmesg == ["Loading of unsigned module is rejected"]


def test_sig_enforce_rejects_a_key_the_kernel_does_not_hold(enforced):
    # mod_verify_sig(): -ENOKEY, "module with unavailable key"; kmod's insmod says strerror(EKEYREJECTED).
    step = enforced.steps["foreign_key"]
    assert errnos(step) == [(129, "EKEYREJECTED")]
    assert step.dmesg == ["Loading of module with unavailable key is rejected"]
    step = enforced.steps["insmod_foreign_key"]
    assert [(load.status, load.output) for load in step.loads] == [
        (1, ("insmod: ERROR: could not insert module bk_plain.ko: Key was rejected by service",))
    ]


def test_a_key_the_kernel_does_not_hold_taints_as_unsigned(fresh_foreign):
    step = fresh_foreign.steps["foreign_key_first"]
    assert errnos(step) == [(0, "")]
    assert step.dmesg == [f"bk_plain: {OOT_TAINT}", f"bk_plain: {SIG_TAINT}"]
    assert step.tainted == 0x1000 | 0x2000  # O, E


def test_order_of_the_first_taint_lines(fresh_proprietary):
    step = fresh_proprietary.steps["proprietary_first"]
    assert errnos(step) == [(2, "ENOENT")]
    # vermagic, out-of-tree, license (check_modinfo), then the signature verdict, then the symbols.
    assert step.dmesg == [
        f"bk_cons_prop: {OOT_TAINT}",
        "bk_cons_prop: module license 'Proprietary' taints kernel.",
        "Disabling lock debugging due to kernel taint",
        f"bk_cons_prop: {SIG_TAINT}",
        "bk_cons_prop: Unknown symbol bk_prov_sub (err -2)",
        "bk_cons_prop: Unknown symbol bk_prov_add (err -2)",
    ]
    assert [line.level for line in step.log] == [4, 4, 4, 5, 4, 4]
    assert step.tainted == 0x1000 | 0x2000 | 1  # O, E, P


def test_bad_vermagic_fails_before_any_taint(fresh_forced, mods):
    step = fresh_forced.steps["bad_vermagic_first"]
    assert errnos(step) == [(8, "ENOEXEC")]
    assert step.dmesg == [f"bk_magic: version magic '{mods.bad_vermagic}' should be '{mods.vermagic}'"]
    assert step.tainted == 0  # so the next out-of-tree load still prints the taint lines
    step = fresh_forced.steps["forced_first"]
    assert errnos(step) == [(0, "")]
    assert step.dmesg == [
        "bk_magic: bad vermagic: kernel tainted.",
        "Disabling lock debugging due to kernel taint",
        f"bk_magic: {OOT_TAINT}",
        f"bk_magic: {SIG_TAINT}",
    ]
    assert step.tainted == 0x1000 | 0x2000 | 2  # O, E, F


def test_every_boot_ran_the_kernel_meant(kernel_tree, plain, enforced, fresh_proprietary, fresh_forced, fresh_foreign):
    """Each boot is of the kernel under test (uname -r inside is its release) and ran the initramfs' /init; the
    times are printed, not judged (speed is for benchmarks)."""
    for result in (plain, enforced, fresh_proprietary, fresh_forced, fresh_foreign):
        assert result.release == kernel_tree.release and result.uptime > 0, (result.release, result.uptime)
        print(f"boot: {result.seconds:.1f}s wall, /init at {result.uptime:.2f}s of guest uptime")


# --- buildkit symvers load, judged by the booted kernel ------------------------------------------------------


def test_load_predictions_match_the_kernel(kernel_tree, mods, plain, enforced, fresh_proprietary, fresh_forced,
                                          fresh_foreign):
    """Every load of the five boots: buildkit's errno and kernel log lines are the kernel's, exactly."""
    boots = [
        (plain, default_steps(mods), False),
        (enforced, enforce_steps(mods), True),
        (fresh_proprietary, proprietary_steps(mods), False),
        (fresh_forced, forced_steps(mods), False),
        (fresh_foreign, foreign_steps(mods), False),
    ]
    bad = []
    compared = 0
    for result, steps, enforce in boots:
        bad += mismatches(result, steps, replay(kernel_tree, result, steps, sig_enforce=enforce))
        compared += sum(len(s.modules) for s in steps)
    assert compared >= 28
    assert not bad, "\n".join(bad)


def test_trusted_key_changes_the_prediction(kernel_tree, mods):
    # The kernel does not hold the test key (test_sig_enforce_rejects_a_key_the_kernel_does_not_hold); a user
    # whose kernel does (a MOK) names its certificate, and the verdict follows.
    from buildkit.kmod.load import Loader
    from buildkit.kmod.target import read_target

    target = read_target(str(kernel_tree.root))
    refused = Loader(target, sig_enforce=True).load(str(mods.foreign))
    held = Loader(target, sig_enforce=True, trusted_keys=[str(mods.foreign_cert)]).load(str(mods.foreign))
    assert (refused.errno, held.errno) == (129, 0)
    assert "buildkit test signing key" in refused.problems[0].message
    assert held.dmesg == [f"bk_plain: {OOT_TAINT}"] and [p.kind for p in held.problems] == ["taint"]
    # sign-file -k names the key by its subject key identifier instead of issuer and serial.
    by_skid = mods.foreign.with_name("bk_plain_skid.ko")
    subprocess.run([str(kernel_tree.build / "scripts" / "sign-file"), "-k", "sha256",
                    str(mods.foreign_cert.with_suffix(".pem")), str(mods.foreign_cert), str(mods.ko["bk_plain"]),
                    str(by_skid)], check=True, capture_output=True)
    refused = Loader(target, sig_enforce=True).load(str(by_skid))
    held = Loader(target, sig_enforce=True, trusted_keys=[str(mods.foreign_cert)]).load(str(by_skid))
    assert (refused.errno, held.errno) == (129, 0) and "subject key id" in refused.problems[0].message
    # A target without its modules (a symvers.gz, headers alone) does not tell which keys the kernel holds: said.
    unknown = Loader(dataclasses.replace(target, modules_dir=None), sig_enforce=True).load(str(mods.foreign))
    assert unknown.errno == 0 and [p.kind for p in unknown.problems] == ["taint", "trust"]


def test_trusted_key_must_be_a_certificate(kernel_tree, mods):
    import sys

    cmd = [sys.executable, "-m", "buildkit", "symvers", "load", str(mods.foreign), "--kernel", str(kernel_tree.root)]
    for bad in (mods.ko["bk_plain"], kernel_tree.root / "no-such.der"):
        run = subprocess.run(cmd + ["--trusted-key", str(bad)], capture_output=True, text=True)
        assert run.returncode == 2 and run.stdout == "", run.stderr
        assert run.stderr.count("\n") == 1 and str(bad) in run.stderr and "Traceback" not in run.stderr


# --- the other gates: module_layout (another ABI), namespaces, a symbol missing from __versions, ELF machine --

@dataclass(frozen=True)
class GateMods:
    prov: Path
    prov_ns: Path
    cons_ns: Path
    cons_ns_noimport: Path  # import_ns=BKTEST edited to BKTESX
    cons_nover: Path  # bk_prov_add renamed in __versions
    arch: Path  # e_machine edited to aarch64 (183)
    old_abi: Path  # built against the oldest bookworm ABI's headers
    old_release: str


@pytest.fixture(scope="module")
def gate_mods(kernel_tree, kernel_tree_oldest, mods, tmp_path_factory) -> GateMods:
    work = tmp_path_factory.mktemp("kboot-gates")
    build_modules(kernel_tree, work, GATE_SOURCES)
    noimport = work / "bk_cons_ns_noimport.ko"
    assert edit_modinfo(work / "bk_cons_ns.ko", noimport, "import_ns", "BKTESX") == "BKTEST"
    nover = work / "bk_cons_nover.ko"
    edit_version_name(mods.ko["bk_cons"], nover, "bk_prov_add", "bk_prov_adx")
    arch = work / "bk_arch.ko"
    data = bytearray(mods.ko["bk_plain"].read_bytes())
    data[18:20] = (183).to_bytes(2, "little")
    arch.write_bytes(bytes(data))
    old = tmp_path_factory.mktemp("kboot-old-abi")
    build_modules(kernel_tree_oldest, old, {"bk_old": 'MODULE_LICENSE("GPL");\n'})
    return GateMods(mods.ko["bk_prov"], work / "bk_prov_ns.ko", work / "bk_cons_ns.ko", noimport, nover, arch,
                    old / "bk_old.ko", kernel_tree_oldest.release)


def gate_steps(g: GateMods) -> list[Step]:
    return [
        Step("other_abi", [g.old_abi]),
        Step("arch", [g.arch]),
        Step("providers", [g.prov, g.prov_ns]),
        Step("no_symbol_version", [g.cons_nover]),
        Step("namespace_not_imported", [g.cons_ns_noimport]),
        Step("namespace_imported", [g.cons_ns]),
    ]


@pytest.fixture(scope="module")
def gates(kernel_tree, gate_mods) -> BootResult:
    return boot(vmlinuz(kernel_tree), gate_steps(gate_mods))


def test_other_gates_as_the_kernel_prints_them(kernel_tree, gate_mods, gates):
    steps = gate_steps(gate_mods)
    assert gate_mods.old_release != kernel_tree.release
    assert errnos(gates.steps["other_abi"]) == [(8, "ENOEXEC")]
    assert "bk_old: disagrees about version of symbol module_layout" in gates.steps["other_abi"].dmesg
    assert errnos(gates.steps["arch"]) == [(8, "ENOEXEC")]
    assert errnos(gates.steps["no_symbol_version"]) == [(22, "EINVAL")]
    assert errnos(gates.steps["namespace_not_imported"]) == [(22, "EINVAL")]
    assert errnos(gates.steps["namespace_imported"]) == [(0, "")]
    bad = mismatches(gates, steps, replay(kernel_tree, gates, steps))
    assert not bad, "\n".join(bad)
