"""The loader cases that tests/kboot.py boots, shared by the kernels they run on (test_kboot.py: bookworm's
6.1, in detail; test_kboot_kernels.py: bullseye's 5.10 and trixie's 6.12, judged by the same comparison).

Tiny out-of-tree modules are built once per kernel with its own compiler (tests/kmodbuild.py); the broken
variants are byte edits of the built .ko files (kboot.edit_modinfo / edit_version_crc), and one copy is signed
by kbuild's sign-file with a key made here. ``replay`` runs buildkit's loader over the same steps and
``mismatches`` lists every errno, kernel line or kmod message where buildkit and the booted kernel differ.
"""

from __future__ import annotations

import lzma
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from kboot import (
    MODULE_INIT_IGNORE_VERMAGIC,
    BootResult,
    KbootError,
    Step,
    StepResult,
    edit_modinfo,
    edit_version_crc,
    tools,
)
from kmodbuild import build_modules

SOURCES = {
    # The provider: one GPL-only and one plain export.
    "bk_prov": """
int bk_prov_add(int a, int b) { return a + b; }
EXPORT_SYMBOL_GPL(bk_prov_add);
int bk_prov_sub(int a, int b) { return a - b; }
EXPORT_SYMBOL(bk_prov_sub);
MODULE_LICENSE("GPL");
""",
    "bk_cons": """
extern int bk_prov_add(int, int);
static int __init c_init(void) { return bk_prov_add(1, 2) - 3; }
static void __exit c_exit(void) { }
module_init(c_init);
module_exit(c_exit);
MODULE_LICENSE("GPL");
""",
    # Both exports; its license becomes "Proprietary" by an edit (modpost refuses to link a proprietary
    # module that uses a GPL-only export, so it cannot be built as such).
    "bk_cons_prop": """
extern int bk_prov_add(int, int);
extern int bk_prov_sub(int, int);
static int __init c_init(void) { return bk_prov_sub(bk_prov_add(1, 2), 3); }
module_init(c_init);
MODULE_LICENSE("GPL and additional rights");
""",
    "bk_two": """
extern int bk_prov_add(int, int);
extern int bk_prov_sub(int, int);
static int __init c_init(void) { return bk_prov_add(1, 2) - bk_prov_sub(5, 2); }
module_init(c_init);
MODULE_LICENSE("GPL");
""",
    "bk_cons_magic": """
extern int bk_prov_add(int, int);
static int __init c_init(void) { return bk_prov_add(1, 2) - 3; }
module_init(c_init);
MODULE_LICENSE("GPL");
""",
    "bk_cons_crc": """
extern int bk_prov_add(int, int);
static int __init c_init(void) { return bk_prov_add(1, 2) - 3; }
module_init(c_init);
MODULE_LICENSE("GPL");
""",
    # An init and no exit: the kernel refuses to unload it.
    "bk_noexit": """
static int __init n_init(void) { return 0; }
module_init(n_init);
MODULE_LICENSE("GPL");
""",
    "bk_plain": 'MODULE_LICENSE("GPL");\n',
    "bk_magic": 'MODULE_LICENSE("GPL");\n',
    "bk_rel": 'MODULE_LICENSE("GPL");\n',
    # An export that the in-tree lib/crc-itu-t.ko already has (modpost allows it for external modules).
    "bk_dup": """
u16 crc_itu_t(u16 crc, const u8 *buffer, size_t len) { return crc; }
EXPORT_SYMBOL(crc_itu_t);
MODULE_LICENSE("GPL");
""",
}
OOT_TAINT = "loading out-of-tree module taints kernel."
SIG_TAINT = "module verification failed: signature and/or required key missing - tainting kernel"


GATE_SOURCES = {
    "bk_prov_ns": """
int bk_ns_fn(int a) { return a; }
EXPORT_SYMBOL_NS_GPL(bk_ns_fn, BKTEST);
MODULE_LICENSE("GPL");
""",
    "bk_cons_ns": """
extern int bk_ns_fn(int);
static int __init c_init(void) { return bk_ns_fn(0); }
module_init(c_init);
MODULE_IMPORT_NS(BKTEST);
MODULE_LICENSE("GPL");
""",
}


def edit_version_name(src: Path, dst: Path, symbol: str, new: str) -> None:
    """Copy a .ko, renaming ``symbol``'s entry in __versions (as if built without the exporter's CRC)."""
    from kboot import _sections

    data = bytearray(Path(src).read_bytes())
    off, size = _sections(bytes(data))["__versions"]
    for entry in range(off, off + size, 64):
        if bytes(data[entry + 8:entry + 64]).split(b"\0", 1)[0].decode() == symbol:
            data[entry + 8:entry + 8 + len(new)] = new.encode()
            Path(dst).write_bytes(bytes(data))
            return
    raise ValueError(f"{src}: no {symbol} in __versions")


@dataclass(frozen=True)
class Mods:
    ko: dict[str, Path]
    vermagic: str  # the headers' vermagic, e.g. "6.1.0-57-amd64 SMP preempt mod_unload modversions "
    bad_vermagic: str  # the same without "mod_unload " (as built for a kernel without module unloading)
    bad_release: str  # the same with another release: the kernel does not compare it (CONFIG_MODVERSIONS)
    crc_itu_t: Path  # in-tree, signed by Debian's build key
    foreign: Path  # bk_plain signed with a key made here, which the kernel does not hold
    foreign_cert: Path  # that key's certificate (DER)


def sign_with_new_key(sign_file: Path, module: Path, work: Path) -> tuple[Path, Path]:
    """A copy of ``module`` signed by kbuild's scripts/sign-file with a fresh key (made by openssl)."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a signing key: apt-get install openssl")
    key, cert, signed = work / "bk-test-key.pem", work / "bk-test-key.der", work / "foreign" / module.name
    signed.parent.mkdir()
    subprocess.run(["openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=buildkit test signing key/", "-keyout", str(key), "-outform", "DER",
                    "-out", str(cert)], check=True, capture_output=True)
    subprocess.run([str(sign_file), "sha256", str(key), str(cert), str(module), str(signed)],
                   check=True, capture_output=True)
    return signed, cert


def in_tree(tree, relative: str, work: Path) -> Path:
    """An in-tree module of ``tree`` (``kernel/lib/crc-itu-t.ko``), decompressed into ``work`` if the tree
    has it as ``.ko.xz`` (trixie): the guest loads it with finit_module, like any other file."""
    plain = tree.modules / "kernel" / relative
    if plain.exists():
        return plain
    packed = plain.with_name(plain.name + ".xz")
    out = work / plain.name
    out.write_bytes(lzma.decompress(packed.read_bytes()))
    return out


def prepare_mods(tree, work: Path, docker_host: str | None, sign_file: Path) -> Mods:
    """SOURCES built against ``tree`` and edited into the broken variants; ``sign_file``: any kbuild's
    scripts/sign-file (the signature format is the same for every kernel here; this host runs bookworm's)."""
    try:
        tools()
    except KbootError as e:
        pytest.fail(str(e))
    if shutil.which("make") is None:
        pytest.fail("make is needed: apt-get install build-essential")
    build_modules(tree, work, SOURCES, docker_host)
    ko = {name: work / f"{name}.ko" for name in SOURCES}
    edit_modinfo(ko["bk_cons_prop"], ko["bk_cons_prop"], "license", "Proprietary")
    vermagic = edit_modinfo(ko["bk_plain"], work / "probe.ko", "vermagic", "x")
    assert vermagic.startswith(tree.release + " ") and " mod_unload " in vermagic, vermagic
    bad_vermagic = vermagic.replace("mod_unload ", "")
    bad_release = "9" * len(tree.release) + vermagic[len(tree.release):]
    for name in ("bk_magic", "bk_cons_magic"):
        edit_modinfo(ko[name], ko[name], "vermagic", bad_vermagic)
    edit_modinfo(ko["bk_rel"], ko["bk_rel"], "vermagic", bad_release)
    edit_version_crc(ko["bk_cons_crc"], ko["bk_cons_crc"], "bk_prov_add")
    crc_itu_t = in_tree(tree, "lib/crc-itu-t.ko", work)
    foreign, cert = sign_with_new_key(sign_file, ko["bk_plain"], work)
    return Mods(ko, vermagic, bad_vermagic, bad_release, crc_itu_t, foreign, cert)


def default_steps(m: Mods) -> list[Step]:
    k = m.ko
    return [
        Step("cons_alone", [k["bk_cons"]]),
        Step("two_unknown", [k["bk_two"]]),
        Step("bad_vermagic_and_unknown", [k["bk_cons_magic"]]),
        Step("bad_vermagic", [k["bk_magic"]]),
        Step("bad_vermagic_forced", [k["bk_magic"]], flags=MODULE_INIT_IGNORE_VERMAGIC),
        Step("other_release", [k["bk_rel"]]),
        Step("prov_then_cons", [k["bk_prov"], k["bk_cons"]]),
        Step("proprietary_uses_gpl_only", [k["bk_cons_prop"]]),
        Step("crc_mismatch", [k["bk_cons_crc"]]),
        Step("duplicate_export", [m.crc_itu_t, k["bk_dup"]]),
        Step("load_twice", [k["bk_prov"]]),
        Step("no_exit", [k["bk_noexit"]]),
        Step("rmmod_in_use", rmmod=["bk_prov"]),
        Step("rmmod", rmmod=["bk_noexit", "bk_cons", "bk_prov", "bk_prov"]),
        Step("insmod_unknown", [k["bk_cons"]], tool="insmod"),
        Step("insmod_bad_vermagic", [k["bk_cons_magic"]], tool="insmod"),
        Step("insmod_ok", [k["bk_prov"]], tool="insmod"),
    ]


def enforce_steps(m: Mods) -> list[Step]:
    k = m.ko
    return [
        Step("unsigned", [k["bk_plain"]]),
        Step("unsigned_bad_vermagic", [k["bk_magic"]]),
        Step("unsigned_unknown", [k["bk_cons"]]),
        Step("unsigned_forced", [k["bk_magic"]], flags=MODULE_INIT_IGNORE_VERMAGIC),
        Step("signed_intree", [m.crc_itu_t]),
        Step("insmod_unsigned", [k["bk_plain"]], tool="insmod"),
        Step("foreign_key", [m.foreign]),
        Step("insmod_foreign_key", [m.foreign], tool="insmod"),
    ]


def foreign_steps(m: Mods) -> list[Step]:
    return [Step("foreign_key_first", [m.foreign])]


def proprietary_steps(m: Mods) -> list[Step]:
    """A boot's first load: out-of-tree, unsigned, proprietary and short of symbols (the once-per-boot lines)."""
    return [Step("proprietary_first", [m.ko["bk_cons_prop"]])]


def forced_steps(m: Mods) -> list[Step]:
    """A boot's first loads have a bad vermagic: refused, then forced."""
    return [Step("bad_vermagic_first", [m.ko["bk_magic"]]),
            Step("forced_first", [m.ko["bk_magic"]], flags=MODULE_INIT_IGNORE_VERMAGIC)]


def errnos(step: StepResult) -> list[tuple[int | None, str]]:
    return [(load.errno, load.errname) for load in step.loads]


def replay(kernel_tree, result: BootResult, steps: list[Step], *, sig_enforce: bool = False) -> dict[str, list]:
    """buildkit's loader over the same steps, in the same order (unloads taken from what the kernel did)."""
    from buildkit.kmod.load import Loader
    from buildkit.kmod.target import read_target

    loader = Loader(read_target(str(kernel_tree.root)), sig_enforce=sig_enforce)
    predicted = {}
    for step in steps:
        for unload in result.steps[step.name].unloads:
            if unload.errno == 0:
                loader.unload(unload.name)
        predicted[step.name] = [loader.load(str(m), step.flags) for m in step.modules]
    return predicted


def mismatches(result: BootResult, steps: list[Step], predicted: dict[str, list]) -> list[str]:
    bad = []
    for step in steps:
        if not step.modules:
            continue
        real, mine = result.steps[step.name], predicted[step.name]
        lines = [line for p in mine for line in p.dmesg]
        if lines != real.dmesg:
            bad.append(f"{step.name}: dmesg\n  kernel:   {real.dmesg}\n  buildkit: {lines}")
        for load, p, module in zip(real.loads, mine, step.modules):
            if step.tool == "ldmod":
                if (load.errno, load.errname) != (p.errno, p.error):
                    bad.append(f"{step.name}: {module.name}: kernel errno {load.errno} {load.errname}, "
                               f"buildkit {p.errno} {p.error}")
            else:  # kmod's own insmod, given the file's name in the guest
                said = tuple(line for line in [p.insmod.replace(str(module), module.name)] if line)
                if (load.status, load.output) != (1 if p.errno else 0, said):
                    bad.append(f"{step.name}: insmod printed {load.output} (exit {load.status}), buildkit {said}")
    return bad
