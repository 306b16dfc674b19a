"""What each kernel version's module loader checks, in which order, and the exact lines it prints.

All per-version behaviour of ``symvers load`` is here, as data; ``load.py`` only walks it. Read from the
kernel sources (``kernel/module/{main,version,signing}.c`` from 5.19 on, ``kernel/module.c`` before) of
Debian's 5.10, 6.1, 6.12 and a 7.x tree, and upstream's 6.6; 5.4 and 5.15 are taken to match their
neighbours. The integration tests boot Debian's 5.10, 6.1 and 6.12 kernels and compare every line printed
here with what they really printed; each row names the boot that proved it (``proven_on``), or none.

The format strings use ``{mod}`` for the module's name (the loader prints it first; ``kernel/module/`` has
no ``pr_fmt``), ``{sym}``, ``{ns}``, ``{owner}`` and so on.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TypedDict

__all__ = ["GATES", "LoaderRules", "rules_for", "KMOD_INSMOD_TEXT", "errno_name", "insmod_line", "modprobe_line"]

# Gate names, as load.py implements them.
SIG, ELF, LAYOUT, VERMAGIC, TAINTS, DUPNAME, UNSIGNED, SYMBOLS, DUPEXPORT = (
    "signature", "elf", "module_layout", "vermagic", "taints", "duplicate-name", "unsigned-taint", "symbols",
    "duplicate-export")
GATES = (SIG, ELF, LAYOUT, VERMAGIC, TAINTS, DUPNAME, UNSIGNED, SYMBOLS, DUPEXPORT)

MESSAGES = {
    # reason: "unsigned module", or "module with unavailable key" (signed by a key the kernel does not hold)
    "sig_rejected": "Loading of {reason} is rejected",
    "elf_arch": "Invalid architecture in ELF header: {machine}",
    "elf_invalid": "Module has invalid ELF structures",
    "elf_type": "Invalid ELF header type: {type} != 1",
    # elf_validity_cache_index_mod() (5.17+'s detailed ELF checks): built against another struct module
    "this_module_size": "module {mod}: .gnu.linkonce.this_module section size must match the kernel's built struct "
                        "module size at run time",
    "no_versions_taint": "{mod}: {sym}: kernel tainted.",
    "lockdep_off": "Disabling lock debugging due to kernel taint",
    "disagrees": "{mod}: disagrees about version of symbol {sym}",
    "no_version": "{mod}: no symbol version for {sym}",
    "vermagic": "{mod}: version magic '{have}' should be '{want}'",
    "bad_vermagic_taint": "{mod}: bad vermagic: kernel tainted.",
    "out_of_tree": "{mod}: loading out-of-tree module taints kernel.",
    "license_taint": "{mod}: module license '{license}' taints kernel.",
    # 6.4+ module_augment_kernel_taints(): after the signature verdict, when this module set P (prev_taint is
    # read before its licence is); before 6.4 prev_taint was read after set_license(), so only a name-based
    # P (ndiswrapper, driverloader, lve) printed it
    "license_taints": "{mod}: module license taints kernel.",
    "unsigned_taint": "{mod}: module verification failed: signature and/or required key missing - tainting kernel",
    "unknown_symbol": "{mod}: Unknown symbol {sym} (err {err})",
    "namespace": "{mod}: module uses symbol ({sym}) from namespace {ns}, but does not import it.",
    "inherit_gpl": "{mod}: module using GPL-only symbols uses symbols {sym} from proprietary module {owner}.",
    "inherit_taint": "{mod}: module uses symbols {sym} from proprietary module {owner}, inheriting taint.",
    "duplicate_export": "{mod}: exports duplicate symbol {sym} (owned by {owner})",
}


class LoaderJson(TypedDict):
    """A :class:`LoaderRules` row as ``symvers load --json`` names it."""

    since: str
    source: str
    functions: str
    proven: bool
    proven_on: str | None


@dataclass(frozen=True)
class LoaderRules:
    """The loader of kernels ``since`` and later (until the next entry)."""

    since: tuple[int, int]
    order: tuple[str, ...]  # the gates in the order load_module() meets them
    detailed_elf_errors: bool  # per-check ELF messages (6.1: yes); else one "invalid ELF structures" line
    inherit_names_symbol: bool  # "uses symbols %s from proprietary module" names the symbol (5.11+)
    gpl_flag_table: bool  # 7.x: GPL-ness in __kflagstab; modules with only __ksymtab_gpl are warned about
    license_taints_after_signature: bool  # 6.4+: "module license taints kernel." when the module set P
    this_module_size: bool  # 6.4+: .gnu.linkonce.this_module must be sizeof(struct module), before module_layout
    messages: dict[str, str]
    source: str  # where it was read: version, files
    functions: str  # where each gate is, in load_module()'s order
    proven_on: str  # the kernel booted under QEMU whose every loader line matched (tests/integration/test_kboot*)

    @property
    def since_text(self) -> str:
        return f"{self.since[0]}.{self.since[1]}+"

    def to_json(self, version: tuple[int, int] | None = None) -> LoaderJson:
        """The row as ``symvers load --json`` gives it; a ``version`` older than the row (CentOS 7's 3.10
        gets the oldest row read) is never called proven."""
        proven = bool(self.proven_on) and (version is None or version >= self.since)
        return {"since": self.since_text, "source": self.source, "functions": self.functions, "proven": proven,
                "proven_on": self.proven_on if proven else None}

    def describe(self, version: tuple[int, int]) -> str:
        """One line for the text output: the row, where it was read, and what proved it."""
        if version < self.since:
            return (f"loader of {self.since_text} (the oldest read) used for {version[0]}.{version[1]}: "
                    f"{self.source}; nothing proves it for this kernel: the lines are predictions")
        if self.proven_on:
            return f"loader of {self.since_text}: read from {self.source}; proven by booting {self.proven_on}"
        return f"loader of {self.since_text}: {self.source}; no boot has proven it: the lines are predictions"


def _msgs(**changes: str) -> dict[str, str]:
    return {**MESSAGES, **changes}


_ORDER_5 = (SIG, ELF, LAYOUT, VERMAGIC, TAINTS, DUPNAME, UNSIGNED, SYMBOLS, DUPEXPORT)
# 6.4 (early_mod_check): the name is looked up before anything is allocated, and the taints are added
# after it (module_augment_kernel_taints), the unsigned one among them.
_ORDER_64 = (SIG, ELF, LAYOUT, VERMAGIC, DUPNAME, TAINTS, UNSIGNED, SYMBOLS, DUPEXPORT)

# Where each gate is, read in Debian's patched sources (apt-get source linux: bullseye 5.10.223-1, bookworm
# 6.1.176-1, trixie 6.12.107-1).
# Debian's module-disable-matching-missing-version-crc.patch (check_version) is in all three:
# FATAL_NO_SYMBOL_VERSION below.
_FUNCTIONS_510 = (
    "load_module(): module_sig_check(); elf_validity_check() (no message: 'Module has invalid ELF structures' in "
    "load_module()); setup_load_info(); check_modstruct_version() (module_layout); layout_and_allocate() -> "
    "check_modinfo() (vermagic via same_magic(), out-of-tree and licence taints via set_license()); "
    "add_unformed_module() (duplicate name); the unsigned taint, inline; simplify_symbols() -> resolve_symbol_wait() "
    "-> resolve_symbol() -> find_symbol(), inherit_taint(), check_version(), verify_namespace_is_imported(); "
    "complete_formation() -> verify_exported_symbols()")
_FUNCTIONS_61 = _FUNCTIONS_510.replace(
    "elf_validity_check() (no message: 'Module has invalid ELF structures' in load_module())",
    "elf_validity_check() (a message a check)").replace(
    "check_modstruct_version() (module_layout)", "check_modstruct_version() (version.c: module_layout)").replace(
    "check_version()", "check_version() (version.c)").replace("module_sig_check()", "module_sig_check() (signing.c)")
_FUNCTIONS_612 = (
    "load_module(): module_sig_check() (signing.c); elf_validity_cache_copy() (ELF, architecture, "
    ".gnu.linkonce.this_module's size); early_mod_check() -> check_modstruct_version() (version.c), check_modinfo() "
    "(vermagic), module_patient_check_exists() (duplicate name); layout_and_allocate(); add_unformed_module(); "
    "module_augment_kernel_taints() (out-of-tree, unsigned, licence and the 'module license taints kernel.' line); "
    "simplify_symbols() -> resolve_symbol_wait() -> resolve_symbol() -> find_symbol(), inherit_taint(), "
    "check_version() (version.c), verify_namespace_is_imported(); complete_formation() -> verify_exported_symbols()")

RULES = (
    LoaderRules(since=(5, 4), order=_ORDER_5, detailed_elf_errors=False, inherit_names_symbol=False,
                gpl_flag_table=False, license_taints_after_signature=False, this_module_size=False,
                messages=_msgs(inherit_gpl="{mod}: module using GPL-only symbols uses symbols from proprietary module "
                                           "{owner}.",
                               inherit_taint="{mod}: module uses symbols from proprietary module {owner}, inheriting "
                                             "taint."),
                source="Debian 5.10.223 kernel/module.c (5.4 taken to match)", functions=_FUNCTIONS_510,
                proven_on="Debian 5.10.0-32-amd64 (5.10.223)"),
    LoaderRules(since=(5, 11), order=_ORDER_5, detailed_elf_errors=False, inherit_names_symbol=True,
                gpl_flag_table=False, license_taints_after_signature=False, this_module_size=False, messages=MESSAGES,
                source="taken to match 5.10 and 6.1 (not read)", functions=_FUNCTIONS_510, proven_on=""),
    LoaderRules(since=(5, 17), order=_ORDER_5, detailed_elf_errors=True, inherit_names_symbol=True,
                gpl_flag_table=False, license_taints_after_signature=False, this_module_size=False, messages=MESSAGES,
                source="Debian 6.1.192 kernel/module/ (main.c, version.c)", functions=_FUNCTIONS_61,
                proven_on="Debian 6.1.0-57-amd64"),
    # early_mod_check(), module_augment_kernel_taints() and the this_module size check came together (6.4's
    # module series; read in 6.6 and 6.12, 6.1 has none of them)
    LoaderRules(since=(6, 4), order=_ORDER_64, detailed_elf_errors=True, inherit_names_symbol=True,
                gpl_flag_table=False, license_taints_after_signature=True, this_module_size=True, messages=MESSAGES,
                source="6.6 and Debian 6.12.117 kernel/module/main.c",
                functions=_FUNCTIONS_612, proven_on="Debian 6.12.117+deb13-amd64"),
    LoaderRules(since=(7, 0), order=_ORDER_64, detailed_elf_errors=True, inherit_names_symbol=True,
                gpl_flag_table=True, license_taints_after_signature=True, this_module_size=True, messages=MESSAGES,
                source="Debian 7.2.13 kernel/module/", functions=_FUNCTIONS_612, proven_on=""),
)


def rules_for(version: tuple[int, int]) -> LoaderRules:
    chosen = RULES[0]
    for rules in RULES:
        if version >= rules.since:
            chosen = rules
    return chosen


# Debian's module-disable-matching-missing-version-crc.patch: a symbol missing from __versions fails the
# load ("no symbol version for", err -22) where upstream warns once and accepts it.
FATAL_NO_SYMBOL_VERSION = {"debian": True, "upstream": False, "rhel": False}  # rhel: upstream's, not booted

# kmod's tools/insmod.c mod_strerror(); every other errno is glibc's strerror().
KMOD_INSMOD_TEXT = {
    errno.ENOEXEC: "Invalid module format",
    errno.ENOENT: "Unknown symbol in module",
    errno.ESRCH: "Module has wrong symbol version",
    errno.EINVAL: "Invalid parameters",
}
# tools/modprobe.c: EEXIST and ENOENT have their own words, the rest is strerror().
KMOD_MODPROBE_TEXT = {
    errno.EEXIST: "Module already in kernel",
    errno.ENOENT: "Unknown symbol in module, or unknown parameter (see dmesg)",
}


def errno_name(number: int) -> str:
    return errno.errorcode.get(number, str(number))


def _strerror(number: int) -> str:
    import os

    return os.strerror(number)


def insmod_line(path: str, number: int) -> str:
    """What kmod's insmod prints for a refused module (nothing when it loaded)."""
    if not number:
        return ""
    return f"insmod: ERROR: could not insert module {path}: {KMOD_INSMOD_TEXT.get(number, _strerror(number))}"


def modprobe_line(name: str, number: int) -> str:
    if not number:
        return ""
    return f"modprobe: ERROR: could not insert '{name}': {KMOD_MODPROBE_TEXT.get(number, _strerror(number))}"
