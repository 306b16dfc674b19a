"""The loader on the kernels the seed's hosts run besides bookworm's 6.1: bullseye's 5.10 (the series of
Alibaba Cloud Linux 3) and trixie's 6.12, each booted under QEMU (tests/kboot.py) with modules built by its own
compiler in a container of its suite (tests/kmodbuild.py: gcc-10, gcc-14 with pahole).

Every case of test_kboot (tests/kboot_cases.py: unknown symbols, vermagic refused and forced, the release part,
GPL-only exports, CRC mismatch, duplicate export of a loaded in-tree module, EEXIST, rmmod, kmod's insmod,
signature enforcement, a key the kernel does not hold, the once-per-boot taint lines) and the namespace,
__versions and ELF-machine gates, plus a module built for bookworm's 6.1 loaded into this kernel: buildkit's
``symvers load`` prediction of errno, every kernel line and kmod's message must be the kernel's, exactly. The
few facts asserted by hand below are where these kernels differ from 6.1, so a comparison that compared nothing
would not pass.
"""

from __future__ import annotations

import pytest
from kboot import BootResult, Step, boot, edit_modinfo, vmlinuz
from kboot_cases import (
    GATE_SOURCES,
    SOURCES,
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


@pytest.fixture(scope="module", params=["bullseye", "trixie"])
def tree(request):
    return request.getfixturevalue(f"kernel_tree_{request.param}")


@pytest.fixture(scope="module")
def mods(tree, kernel_tree, docker_host, tmp_path_factory) -> Mods:
    # sign-file of bookworm's kbuild (this host's libssl): the signature format is the same for every kernel
    return prepare_mods(tree, tmp_path_factory.mktemp(f"kboot-{tree.suite}"), docker_host,
                        kernel_tree.build / "scripts" / "sign-file")


@pytest.fixture(scope="module")
def gate_steps(tree, kernel_tree, mods, docker_host, tmp_path_factory) -> list[Step]:
    work = tmp_path_factory.mktemp(f"kboot-gates-{tree.suite}")
    build_modules(tree, work, GATE_SOURCES, docker_host)
    noimport = work / "bk_cons_ns_noimport.ko"
    assert edit_modinfo(work / "bk_cons_ns.ko", noimport, "import_ns", "BKTESX") == "BKTEST"
    nover = work / "bk_cons_nover.ko"
    edit_version_name(mods.ko["bk_cons"], nover, "bk_prov_add", "bk_prov_adx")
    arch = work / "bk_arch.ko"
    data = bytearray(mods.ko["bk_plain"].read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # e_machine: aarch64
    arch.write_bytes(bytes(data))
    bookworm = tmp_path_factory.mktemp(f"kboot-bookworm-for-{tree.suite}")
    build_modules(kernel_tree, bookworm, {"bk_61": SOURCES["bk_plain"]})
    return [
        Step("built_for_6_1", [bookworm / "bk_61.ko"]),
        Step("arch", [arch]),
        Step("providers", [mods.ko["bk_prov"], work / "bk_prov_ns.ko"]),
        Step("no_symbol_version", [nover]),
        Step("namespace_not_imported", [noimport]),
        Step("namespace_imported", [work / "bk_cons_ns.ko"]),
    ]


@pytest.fixture(scope="module")
def boots(tree, mods, gate_steps) -> list[tuple[BootResult, list[Step], bool]]:
    """Six boots: the long plain sequence, sig_enforce, three whose first load shows the once-per-boot lines,
    and the gates."""
    kernel = vmlinuz(tree)
    runs = [(default_steps(mods), ""), (enforce_steps(mods), "module.sig_enforce=1"), (proprietary_steps(mods), ""),
            (forced_steps(mods), ""), (foreign_steps(mods), ""), (gate_steps, "")]
    return [(boot(kernel, steps, append=append), steps, bool(append)) for steps, append in runs]


def test_every_boot_ran_the_kernel_meant(tree, boots):
    for result, _steps, enforce in boots:
        assert result.release == tree.release and result.uptime > 0, (result.release, result.uptime)
        assert ("module.sig_enforce=1" in result.cmdline.split()) == enforce
        print(f"{tree.release}: boot {result.seconds:.1f}s wall, /init at {result.uptime:.2f}s of guest uptime")


def test_load_predictions_match_the_kernel(tree, boots):
    """Every load of the six boots: buildkit's errno, kernel lines and kmod's message are the kernel's."""
    bad, compared = [], 0
    for result, steps, enforce in boots:
        bad += mismatches(result, steps, replay(tree, result, steps, sig_enforce=enforce))
        compared += sum(len(s.modules) for s in steps)
    assert compared == 36
    assert not bad, "\n".join(bad)


def test_where_the_kernels_differ_from_6_1(tree, mods, boots):
    """What these kernels print or decide unlike bookworm's 6.1 (test_kboot), seen in the boots above."""
    plain, enforced, proprietary = boots[0][0], boots[1][0], boots[2][0]
    gates = boots[5][0]
    assert errnos(plain.steps["cons_alone"]) == [(2, "ENOENT")]
    assert errnos(enforced.steps["unsigned"]) == [(129, "EKEYREJECTED")]
    intree = enforced.steps["signed_intree"]
    first = proprietary.steps["proprietary_first"].dmesg
    if tree.suite == "trixie":
        # 6.4+ (module_augment_kernel_taints) reads prev_taint before the licence: the first proprietary
        # module of a boot gets a second line after the signature verdict
        assert first[3:5] == ["bk_cons_prop: module verification failed: signature and/or required key missing - "
                              "tainting kernel", "bk_cons_prop: module license taints kernel."], first
        # 6.1's struct module is smaller: refused among the ELF checks, before module_layout and vermagic
        assert errnos(gates.steps["built_for_6_1"]) == [(8, "ENOEXEC")]
        assert gates.steps["built_for_6_1"].dmesg == [
            "module bk_61: .gnu.linkonce.this_module section size must match the kernel's built struct module "
            "size at run time"]
        assert " preempt " in mods.vermagic
        assert errnos(intree) == [(0, "")]  # its in-tree modules carry the build key's signature
    else:
        assert "bk_cons_prop: module license taints kernel." not in first
        # bullseye's linux-image-*-unsigned modules carry no signature (Debian signed only the signed
        # package's): under enforcement the kernel refuses its own module
        assert errnos(intree) == [(129, "EKEYREJECTED")] and intree.dmesg == ["Loading of unsigned module is rejected"]
        # 5.10 exports module_layout: a module built for another kernel is refused on its CRC
        assert errnos(gates.steps["built_for_6_1"]) == [(8, "ENOEXEC")]
        assert "bk_61: disagrees about version of symbol module_layout" in gates.steps["built_for_6_1"].dmesg
        assert " preempt " not in mods.vermagic  # bullseye's kernel is not preemptible
