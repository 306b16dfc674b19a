"""Will it load? The target kernel's module loader, walked offline over module files.

For each module, in the order given (as ``insmod`` would load them, each after the ones before it that
loaded), the gates of :mod:`buildkit.kmod.loader_rules` for the target's version run in the kernel's
order; the first that refuses ends the load with its errno, the lines before it are what the kernel
printed. The kernel's state carries over from one module to the next: the modules loaded (their exports,
their taint), and the once-per-boot messages already printed. It starts as a kernel just booted, with the
``--loaded`` modules in it.

Nothing is written and nothing needs root: only the target's files are read.
"""

from __future__ import annotations

import errno
import functools
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Optional, TypedDict

from buildkit.errors import InputError
from buildkit.kmod.kernel import GPL_COMPATIBLE, import_ns_line
from buildkit.kmod.lazymod import (
    SIG_MARKER,
    LazyModule,
    expand_modules,
    module_arguments,
    read_export_table,
    read_for_load,
)
from buildkit.kmod.loader_rules import (
    DUPEXPORT,
    DUPNAME,
    ELF,
    FATAL_NO_SYMBOL_VERSION,
    LAYOUT,
    SIG,
    SYMBOLS,
    TAINTS,
    UNSIGNED,
    VERMAGIC,
    errno_name,
    insmod_line,
    modprobe_line,
    rules_for,
)
from buildkit.kmod.modfile import GPL_ONLY_TYPES, ModuleInfo, module_name, read_module
from buildkit.kmod.signature import Keyring, certificate_needles, file_signature
from buildkit.kmod.target import KernelTarget

__all__ = ["LoadProblem", "LoadResult", "Loaded", "KernelState", "Loader", "predict", "SIG_MARKER", "LazyModule",
           "expand_modules", "module_arguments", "read_for_load"]

_RECORDS = re.compile(rb"(?s).{64}")  # struct modversion_info: 64 bytes each
_ET_REL = 1


#: An export's (crc, type, namespace), as a module in the kernel has it.
ExportDetails = tuple[Optional[int], str, str]


class LoadProblemJson(TypedDict):
    kind: str
    symbol: str
    message: str
    fix: str


class LoadResultJson(TypedDict):
    """A :class:`LoadResult` as ``symvers load --json`` gives it."""

    name: str
    path: str
    loads: bool
    errno: int
    error: str
    dmesg: list[str]
    insmod: str
    modprobe: str
    depends: list[str]
    problems: list[LoadProblemJson]


class LoadProblem(NamedTuple):  # a tuple: an upgrade check makes tens of thousands
    kind: str  # signature, arch, module_layout, vermagic, exists, undefined, gpl-only, crc, no-version,
    #            namespace, duplicate-export, taint (a warning: the module still loads)
    symbol: str
    message: str
    fix: str

    def to_json(self) -> LoadProblemJson:
        return {"kind": self.kind, "symbol": self.symbol, "message": self.message, "fix": self.fix}


@dataclass
class LoadResult:
    name: str
    path: str
    errno: int = 0
    dmesg: list[str] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)  # refusals (and taints, kind "taint")
    depends: list[str] = field(default_factory=list)  # the modules its symbols come from
    modprobe_errno: int | None = None  # with its in-tree dependencies loaded first, as modprobe does

    @property
    def loads(self) -> bool:
        return self.errno == 0

    @property
    def error(self) -> str:
        return errno_name(self.errno) if self.errno else ""

    @property
    def insmod(self) -> str:
        return insmod_line(self.path, self.errno)

    @property
    def modprobe(self) -> str:
        return modprobe_line(self.name, self.errno if self.modprobe_errno is None else self.modprobe_errno)

    def to_json(self) -> LoadResultJson:
        return {"name": self.name, "path": self.path, "loads": self.loads, "errno": self.errno, "error": self.error,
                "dmesg": self.dmesg, "insmod": self.insmod, "modprobe": self.modprobe, "depends": self.depends,
                "problems": [p.to_json() for p in self.problems]}


class Loaded:
    """A module in the kernel: the names it exports, each export's (crc, type, namespace) read only when a
    later module uses it, and whether it taints P."""

    def __init__(self, name: str, names: Iterable[str],
                 details: Mapping[str, ExportDetails] | Callable[[], Mapping[str, ExportDetails]] | None = None,
                 proprietary: bool = False) -> None:
        self.name = name
        self.names = frozenset(names)
        self._details: Mapping[str, ExportDetails] | Callable[[], Mapping[str, ExportDetails]] = (
            {} if details is None else details)
        self.proprietary = proprietary

    @classmethod
    def of(cls, info: ModuleInfo, proprietary: bool = False) -> Loaded:
        return cls(info.name, [e.name for e in info.exports], {e.name: (e.crc, e.type, e.namespace)
                                                               for e in info.exports}, proprietary)

    def export_table(self) -> Mapping[str, ExportDetails]:
        if callable(self._details):
            self._details = self._details()
        return self._details

    def export(self, symbol: str) -> ExportDetails:
        return self.export_table()[symbol]


@dataclass
class KernelState:
    """What carries over between loads: modules in the kernel, taints, messages printed once per boot."""

    loaded: dict[str, Loaded] = field(default_factory=dict)
    taints: set[str] = field(default_factory=set)  # O, P, E, F
    unsigned_noticed: bool = False  # pr_notice_once
    owner_of: dict[str, str] = field(default_factory=dict)  # symbol -> loaded module exporting it

    def add(self, module: Loaded) -> None:
        self.loaded[module.name] = module
        for sym in module.names:
            self.owner_of.setdefault(sym, module.name)

    def copy(self) -> KernelState:
        return KernelState(dict(self.loaded), set(self.taints), self.unsigned_noticed, dict(self.owner_of))


class _Refused(Exception):
    def __init__(self, number: int) -> None:
        self.errno = number


def _same_magic(have: str, want: str, has_crcs: bool) -> bool:
    """kernel/module/version.c same_magic(): the release token is skipped for a module with CRCs."""
    if has_crcs:
        have = have[len(have.split(" ", 1)[0]):]
        want = want[len(want.split(" ", 1)[0]):]
    return have == want


def _rebuild(target: KernelTarget, module: LazyModule | ModuleInfo) -> str:
    headers = target.build_dir or f"/lib/modules/{target.release}/build"
    source = os.path.dirname(os.path.abspath(module.path))
    return f"rebuild it against the target's headers: make -C {headers} M={source} modules"


class _Walk:
    """One module through the gates of one kernel."""

    def __init__(self, target: KernelTarget, state: KernelState, module: LazyModule, sig_enforce: bool,
                 providers: Callable[[str], str | None], flags: int, keyring: Callable[[], Keyring],
                 every: bool = False) -> None:
        """``every``: walk the gates after a refusal too (their problems listed, no kernel line: the kernel
        stops at the first), as depmod -e reports every symbol of a module."""
        self.t = target
        self.every = every
        self.lines: list[str] = []  # every line said, the kernel's dmesg and those past a refusal
        self.refused = 0
        self.state = state
        self.m = module
        # insmod -f: the module counts as unsigned, its vermagic and/or __versions as absent
        self.signed = module.signed and not flags
        self.vermagic_of = None if flags & MODULE_INIT_IGNORE_VERMAGIC else module.vermagic
        self.has_versions = bool(module.versions_blob) and not flags & MODULE_INIT_IGNORE_MODVERSIONS
        self.m_type = module.type
        self.sig_enforce = sig_enforce
        self.rules = rules_for(target.version)
        self.providers = providers
        self.keyring = keyring
        self._held: tuple[bool | None, str] | None = None
        self._proprietary_before = False  # P already set when this module's taints began (6.4+ reads it)
        self.proprietary = (module.license or "") not in GPL_COMPATIBLE  # P; inherited from a P exporter too
        self.result = LoadResult(module.name, module.path)

    @functools.cached_property
    def rebuild(self) -> str:
        """The rebuild fix, made once a module (an upgrade names it for each of thousands of symbols)."""
        return _rebuild(self.t, self.m)

    def say(self, key: str, **values: object) -> str:
        line = self.rules.messages[key].format(mod=self.m.name, **values)
        self.lines.append(line)
        if not self.refused:
            self.result.dmesg.append(line)
        return line

    def problem(self, kind: str, symbol: str, message: str, fix: str) -> None:
        self.result.problems.append(LoadProblem(kind, symbol, message, fix))

    def taint(self, letter: str, key: str | None, **values: object) -> None:
        """Add a taint; its line is printed only when the kernel did not have it (test_taint)."""
        if letter in self.state.taints:
            return
        self.state.taints.add(letter)
        if key:
            self.say(key, **values)
        if letter in ("P", "F") and not self.state.taints & ({"P", "F"} - {letter}):
            self.say("lockdep_off")  # the first taint that makes lockdep unreliable

    def run(self) -> LoadResult:
        gates = {SIG: self.signature, ELF: self.elf, LAYOUT: self.module_layout, VERMAGIC: self.vermagic,
                 TAINTS: self.taints, DUPNAME: self.duplicate_name, UNSIGNED: self.unsigned,
                 SYMBOLS: self.symbols, DUPEXPORT: self.duplicate_exports}
        kept = None
        for gate in self.rules.order:
            try:
                gates[gate]()
            except _Refused as refused:
                if not self.every:
                    self.result.errno = refused.errno
                    return self.result
                if not self.refused:  # the kernel's answer; its taints are those met so far
                    self.refused = self.result.errno = refused.errno
                    kept = (set(self.state.taints), self.state.unsigned_noticed)
        if kept is not None:
            self.state.taints, self.state.unsigned_noticed = kept
        m = self.m
        if not self.refused or m.name not in self.state.loaded:  # --every-problem: its exports count, as in depmod
            self.state.add(Loaded(m.name, m.export_names, lambda: read_export_table(m.path),
                                  proprietary=self.proprietary))
        return self.result

    # --- the gates ----------------------------------------------------------------------------------

    def key_held(self) -> tuple[bool | None, str]:
        """Whether the kernel holds the key that signed the module (None: its files do not tell), and
        that signer's name."""
        if self._held is None:
            keyring = self.keyring()
            held = keyring.holds(self.m.signature)
            signer = keyring.signer(self.m.signature) if held is not True else None
            self._held = (held, signer.name if signer else "a key named by no readable PKCS#7 message")
        return self._held

    def signature(self) -> None:
        if not (self.sig_enforce or self.t.sig_force):
            return
        if self.signed and self.key_held()[0] is not False:
            return
        why = "module.sig_enforce=1" if self.sig_enforce else "CONFIG_MODULE_SIG_FORCE=y"
        if self.signed:  # mod_verify_sig(): -ENOKEY
            line = self.say("sig_rejected", reason="module with unavailable key")
            self.problem("signature", "", f"{line}: signed by {self.key_held()[1]}, a key {self.t.release} does "
                         "not hold", f"have the kernel trust that key ({why}): its certificate enrolled with "
                         "mokutil --import KEY.der, then a reboot; or sign it with a key the kernel holds: "
                         f"{self._sign_file()} sha256 KEY.priv KEY.der {self.m.path}")
        else:
            line = self.say("sig_rejected", reason="unsigned module")
            self.problem("signature", "", line,
                         f"sign it with a key the kernel trusts ({why}): {self._sign_file()} sha256 KEY.priv KEY.der "
                         f"{self.m.path}, the key enrolled with mokutil --import KEY.der")
        raise _Refused(errno.EKEYREJECTED)

    def _sign_file(self) -> str:
        if self.t.build_dir:
            return os.path.join(self.t.build_dir, "scripts", "sign-file")
        # no headers of this kernel at hand: where its headers package puts the tool (RHEL's kernel-devel,
        # Debian's linux-kbuild), not a path relative to wherever the user stands
        series = ".".join(self.t.release.split(".")[:2])
        return (f"/usr/src/kernels/{self.t.release}/scripts/sign-file (RHEL: kernel-devel-{self.t.release}; "
                f"Debian: /usr/lib/linux-kbuild-{series}/scripts/sign-file)")

    def elf(self) -> None:
        if self.m.machine == self.t.machine and self.m_type == _ET_REL:
            self._struct_module()
            return
        if self.rules.detailed_elf_errors:
            line = (self.say("elf_arch", machine=self.m.machine) if self.m_type == _ET_REL
                    else self.say("elf_type", type=self.m_type))
        else:
            line = self.say("elf_invalid")
        self.problem("arch", "", line, f"build it for the target's architecture (ELF machine {self.t.machine}): "
                     + self.rebuild)
        raise _Refused(errno.ENOEXEC)

    def _struct_module(self) -> None:
        """A module built against another struct module (another kernel's headers): refused among the ELF
        checks of 6.4+ (elf_validity_cache_copy()), before module_layout and vermagic are looked at; older
        loaders do not check it (6.1 meets the module_layout CRC instead)."""
        want = self.t.struct_module_size if self.rules.this_module_size else None
        have = self.m.this_module_size
        if want is None or have is None or have == want:
            return
        line = self.say("this_module_size")
        self.problem("module_layout", "", f"{line} (module {have} bytes, kernel {want})",
                     f"it was built for another kernel than {self.t.release}; " + self.rebuild)
        raise _Refused(errno.ENOEXEC)

    def _check_version(self, sym: str, crc: int | None) -> str | None:
        """version.c check_version(): None when accepted, else the problem kind (its line printed)."""
        if crc is None:
            return None
        if not self.has_versions:
            self.taint("F", "no_versions_taint", sym=sym) if self.t.enabled("CONFIG_MODULE_FORCE_LOAD") else None
            return None if self.t.enabled("CONFIG_MODULE_FORCE_LOAD") else "no-versions"
        have = self.m.version_of(sym)
        if have is None:
            if FATAL_NO_SYMBOL_VERSION.get(self.t.vendor, False):
                self.say("no_version", sym=sym)
                return "no-version"
            return None  # upstream: pr_warn_once and accept
        if have != crc:
            self.say("disagrees", sym=sym)
            return "crc"
        return None

    def module_layout(self) -> None:
        want = self.t.module_layout_crc
        if want is None or not self.t.enabled("CONFIG_MODVERSIONS"):
            return
        kind = self._check_version("module_layout", want)
        if kind is None:
            return
        have = self.m.version_of("module_layout") if self.has_versions else None
        detail = f" (module 0x{have:08x}, kernel 0x{want:08x})" if have is not None else ""
        self.problem("module_layout", "module_layout",
                     (self.lines[-1] if kind != "no-versions" else "module_layout: no __versions") + detail,
                     f"it was built for another kernel ABI than {self.t.release}; " + self.rebuild)
        raise _Refused(errno.ENOEXEC)

    def vermagic(self) -> None:
        have = self.vermagic_of
        if have is None:
            if self.t.enabled("CONFIG_MODULE_FORCE_LOAD"):
                self.taint("F", "bad_vermagic_taint")
                return
            raise _Refused(errno.ENOEXEC)
        if _same_magic(have, self.t.vermagic, self.has_versions):
            return
        line = self.say("vermagic", have=have, want=self.t.vermagic)
        self.problem("vermagic", "", line, self.rebuild)
        raise _Refused(errno.ENOEXEC)

    def taints(self) -> None:
        self._proprietary_before = "P" in self.state.taints
        if self.m.info("intree") is None:
            self.taint("O", "out_of_tree")
            self.problem("taint", "", "out-of-tree module: taints the kernel (O)", "none needed; expected for a module "
                         "built outside the kernel tree")
        if self.proprietary:
            licence = self.m.license or "unspecified"
            self.taint("P", "license_taint", license=licence)
            self.problem("taint", "", f"module license '{licence}' taints the kernel (P); GPL-only symbols are "
                         "out of its reach", 'MODULE_LICENSE("GPL") or another GPL-compatible licence, if the code '
                         "allows it")

    def duplicate_name(self) -> None:
        if self.m.name in self.state.loaded:
            self.problem("exists", "", f"a module named {self.m.name} is already loaded (no kernel message)",
                         f"rmmod {self.m.name} first, or do not load it twice")
            raise _Refused(errno.EEXIST)

    def unsigned(self) -> None:
        self._signature_taint()
        if self.rules.license_taints_after_signature and not self._proprietary_before and "P" in self.state.taints:
            self.say("license_taints")

    def _signature_taint(self) -> None:
        if self.signed:
            held, signer = self.key_held()
            if held:
                return
            if held is None:
                self.problem("trust", "", f"signed by {signer}; which keys {self.t.release} holds is not told by "
                             "its files (no signed in-tree module, no --trusted-key): taken as one it holds",
                             "name the kernel's /lib/modules/VER (its in-tree modules carry its build key's "
                             "signature), or the key's certificate with --trusted-key")
                return
            self.problem("taint", "", f"signed by {signer}, a key {self.t.release} does not hold: taints the kernel "
                         "(E) as an unsigned module does; refused under module.sig_enforce=1 or Secure Boot",
                         "enroll the key's certificate (mokutil --import KEY.der, then reboot; name it with "
                         "--trusted-key if the kernel holds it already), or sign it with a key the kernel holds")
        else:
            self.problem("taint", "", "unsigned module: taints the kernel (E); refused under module.sig_enforce=1 or "
                         "Secure Boot", f"sign it: {self._sign_file()} sha256 KEY.priv KEY.der {self.m.path}")
        self.state.taints.add("E")
        if not self.state.unsigned_noticed:
            self.state.unsigned_noticed = True
            self.say("unsigned_taint")

    def symbols(self) -> None:
        """simplify_symbols(): every undefined symbol, all failures reported, the last one's errno wins."""
        last = 0
        settled = self._settle()
        todo: Sequence[str]
        owners: dict[bytes, str]  # undefined symbol -> the loaded module it is taken from
        if settled is None:
            self.m.versions  # noqa: B018 - decoded once here: every symbol is looked up in it
            todo, owners = self.m.undefined, {}
        else:
            todo, owners = settled
            if len(todo) > 8 and self.has_versions:
                self.m.versions  # noqa: B018 - a module of another ABI: decoded once, not searched a symbol at a time
        used_gpl_only = False
        imports = set(self.m.import_ns)
        for sym in todo:
            if sym == "_GLOBAL_OFFSET_TABLE_":
                continue
            gpl = not self.proprietary
            found = self._find(sym, gpl)
            if found is None:
                if sym in self.m.weak:
                    continue
                last = self._unknown_symbol(sym, errno.ENOENT)
                self._unknown(sym, gpl)
                continue
            owner, crc, kind, ns = found
            if kind in GPL_ONLY_TYPES:
                used_gpl_only = True
            if owner != "vmlinux" and self.state.loaded[owner].proprietary:
                if used_gpl_only:
                    self.say("inherit_gpl", sym=sym, owner=owner)
                    last = self._unknown_symbol(sym, errno.ENOENT)
                    self.problem("gpl-only", sym, self.lines[-2],
                                 f"{owner} is proprietary: a module using GPL-only symbols cannot use it")
                    continue
                self.say("inherit_taint", sym=sym, owner=owner)
                self.proprietary = True
            bad = self._check_version(sym, crc)
            if bad is not None:
                last = self._unknown_symbol(sym, errno.EINVAL)
                self._version_problem(sym, bad, owner, crc)
                continue
            if ns and ns not in imports:
                self.say("namespace", sym=sym, ns=ns)
                last = self._unknown_symbol(sym, errno.EINVAL)
                self.problem("namespace", sym, self.lines[-2],
                             f"add {import_ns_line(ns, self.t.version)} to {self.m.name}'s source and rebuild")
                continue
            if owner != "vmlinux":
                owners[sym.encode("latin-1")] = owner
        if owners:  # the modules its symbols came from, in the order of the first symbol taken from each
            self.result.depends = list(dict.fromkeys(owners[n] for n in self.m.undefined_raw if n in owners))
        if last:
            raise _Refused(-last)

    def _settle(self) -> tuple[list[str], dict[bytes, str]] | None:
        """Split the undefined symbols into those the loader takes without a word and the rest, which
        the loop walks one by one, in order: ``(rest, {settled symbol: module it came from})``; None when
        every symbol must take the loop (GPL rules in play: their order matters).

        A module's ``__versions`` record (64 bytes: CRC, name) equal to the one the target's own build
        writes for a vmlinux export with no namespace settles that symbol: found as a set, in C. A record
        whose CRC is the one a loaded module exports the symbol with (vmlinux not exporting it, no
        namespace) settles it too. What is left (missing, mismatched, namespaced symbols) takes the loop.
        """
        if self.proprietary or not self.has_versions:
            return None
        blob = self.m.versions_blob
        if not blob or len(blob) % 64:
            return None
        vmlinux = self.t.version_records(self.m.is64, self.m.order)
        records = _RECORDS.findall(blob)
        settled = set(map(vmlinux.get, records))
        size = 8 if self.m.is64 else 4
        endian: Literal["little", "big"] = "little" if self.m.order == "<" else "big"
        # records vmlinux did not settle, of symbols vmlinux does not export (its copy would be the one
        # taken, and the loop says why it does not match)
        in_vmlinux = self.t.vmlinux_names
        others = {name: r for r in records if r not in vmlinux
                  for name in [r[size:].split(b"\0", 1)[0]] if name not in in_vmlinux}
        owners: dict[bytes, str] = {}
        owner_of, loaded = self.state.owner_of, self.state.loaded
        for name, record in others.items():
            sym = name.decode("latin-1")
            owner = owner_of.get(sym)
            if owner is None:
                continue
            provider = loaded[owner]
            if provider.proprietary:
                return None
            have, _kind, ns = provider.export(sym)
            if not ns and (have is None or have == int.from_bytes(record[:size], endian) & 0xFFFFFFFF):
                owners[name] = owner
        rest = [name.decode("latin-1") for name in self.m.undefined_raw if name not in settled and name not in owners]
        for sym in rest:  # a proprietary exporter makes the order of every symbol matter
            owner = owner_of.get(sym)
            if owner is not None and loaded[owner].proprietary:
                return None
        return rest, owners

    def _unknown_symbol(self, sym: str, number: int) -> int:
        """resolve_symbol_wait()'s failure line; its -errno (the last one is what the load returns)."""
        self.say("unknown_symbol", sym=sym, err=-number)
        return -number

    def _find(self, sym: str, gpl: bool) -> tuple[str, int | None, str, str] | None:
        """find_symbol(): vmlinux, then the modules in the kernel; GPL-only exports only for GPL modules."""
        entry = self.t.export(sym)
        if entry is not None and entry.in_vmlinux and (gpl or entry.type not in GPL_ONLY_TYPES):
            return "vmlinux", entry.crc, entry.type, entry.namespace
        owner = self.state.owner_of.get(sym)
        if owner is not None:
            crc, kind, ns = self.state.loaded[owner].export(sym)
            if gpl or kind not in GPL_ONLY_TYPES:
                return owner, crc, kind, ns
        return None

    def _unknown(self, sym: str, gpl: bool) -> None:
        line = self.lines[-1]
        entry = self.t.export(sym)
        loaded_owner = self.state.owner_of.get(sym)
        if not gpl and ((entry is not None and entry.in_vmlinux and entry.type in GPL_ONLY_TYPES)
                        or (loaded_owner is not None)):
            who = "the kernel" if entry is not None and entry.in_vmlinux else (loaded_owner or "?")
            self.problem("gpl-only", sym, line,
                         f"{sym} is EXPORT_SYMBOL_GPL in {who} and {self.m.name}'s licence is "
                         f"'{self.m.license or 'unspecified'}': use MODULE_LICENSE(\"GPL\") (or another of "
                         f"{', '.join(GPL_COMPATIBLE)}) if the code allows it")
            return
        provider = self.providers(sym)
        if provider:
            self.problem("undefined", sym, line, provider)
            return
        owner = _in_tree_owner(self.t, sym)
        if owner is not None:
            self.problem("undefined", sym, line, f"load {owner} first (modprobe {owner}; insmod does not load "
                                                  "dependencies)")
            return
        self.problem("undefined", sym, line, f"{sym} is not exported by {self.t.release} nor by any module loaded "
                                             "before it: " + self.rebuild + " and fix what modpost reports")

    def _version_problem(self, sym: str, kind: str, owner: str, crc: int | None) -> None:
        message = self.lines[-2]
        if kind == "crc":
            have = self.m.version_of(sym)
            message += f" (module 0x{have:08x}, {'kernel' if owner == 'vmlinux' else owner} 0x{crc:08x})"
            if owner == "vmlinux":
                fix = self.rebuild
            else:
                fix = (f"{owner} changed since {self.m.name} was built: rebuild {self.m.name} with "
                       f"KBUILD_EXTRA_SYMBOLS naming the Module.symvers of the {owner} that is loaded")
            self.problem("crc", sym, message, fix)
        else:
            self.problem("no-version", sym, message, f"{sym} has no CRC in {self.m.name}'s __versions (built without "
                         "the exporter's Module.symvers): " + self.rebuild)

    def duplicate_exports(self) -> None:
        for name in sorted(self.m.export_names):  # the module's __ksymtab is sorted by name
            entry = self.t.export(name)
            owner = "kernel" if entry is not None and entry.in_vmlinux else self.state.owner_of.get(name)
            if owner is None:
                continue
            line = self.say("duplicate_export", sym=name, owner=owner)
            self.problem("duplicate-export", name, line,
                         f"{owner} already exports {name}: rename it in {self.m.name} or make it static"
                         + ("" if owner == "kernel" else f", or unload {owner} first"))
            raise _Refused(errno.ENOEXEC)


def preload(target: KernelTarget, state: KernelState, name: str) -> None:
    """Put in-tree module ``name`` (and what its modinfo says it depends on) into the kernel, as loaded."""
    files = target.module_files()
    pending = [name]
    while pending:
        current = pending.pop().replace("-", "_")
        if current in state.loaded:
            continue
        exports = {e.symbol: (e.crc, e.type, e.namespace) for e in target.exports_of(current)}
        path = files.get(current)
        if not exports and path is None:
            raise InputError(f"--loaded {name}: no module {current} in {target.release}",
                             fix="name an in-tree module of the target (as lsmod shows it) or a module file")
        state.add(Loaded(current, exports, exports))
        if path is not None:
            pending.extend(_depends_of(path))


@functools.cache
def _depends_of(path: str) -> tuple[str, ...]:
    """The ``depends=`` of an in-tree module, read once a run (its .modinfo only: every refused module of a
    long argument list asks again for the same providers)."""
    try:
        return read_for_load(path).depends
    except InputError:
        return ()


MODULE_INIT_IGNORE_MODVERSIONS = 1  # insmod --force-modversion
MODULE_INIT_IGNORE_VERMAGIC = 2  # insmod --force-vermagic (-f is both)


class Loader:
    """A kernel that modules are loaded into one after another (``insmod``), and unloaded from."""

    def __init__(self, target: KernelTarget, *, loaded: Sequence[str] = (), sig_enforce: bool = False,
                 modules: Sequence[LazyModule] = (), trusted_keys: Sequence[str] = (),
                 every_problem: bool = False) -> None:
        """``trusted_keys``: certificates (PEM or DER) of keys the kernel holds besides the one that signed its
        in-tree modules (a MOK, DKMS's mok.pub). ``every_problem``: each module's problems at every gate, not
        only up to the one that refuses it, and a refused module's exports stay for the modules after it (what
        depmod -e reports for a tree); the verdict, errno and kernel lines stay the kernel's."""
        self.target = target
        self.every_problem = every_problem
        self.sig_enforce = sig_enforce
        self.certificates: dict[bytes, str] = {}  # read now: a bad file is an error before anything is loaded
        for path in trusted_keys:
            self.certificates.update(certificate_needles(path))
        self._keyring: Keyring | None = None
        self.state = KernelState()
        self.tried: set[str] = set()
        self._given = list(modules)  # the run's modules: who could provide a missing symbol
        self._exporters: dict[str, LazyModule] | None = None
        for item in loaded:
            if os.path.isfile(item):
                info = read_module(item)
                self.state.add(Loaded.of(info, proprietary=(info.license or "") not in GPL_COMPATIBLE))
            else:
                preload(target, self.state, item.replace("-", "_"))

    def keyring(self) -> Keyring:
        """The keys the kernel holds, read the first time a signed module needs them."""
        if self._keyring is None:
            self._keyring = Keyring.of(self.target.modules_dir, self.certificates, self.target.vmlinuz)
        return self._keyring

    def expect(self, paths: Sequence[str]) -> None:
        """``paths``, a few of the module files about to be read: when one is signed by a key that neither
        the in-tree modules nor the named certificates show, the image's certificates will be needed, and
        their reading starts now, in a thread beside the reading of the modules (an upgrade's old modules
        are signed by the old build key)."""
        for path in paths:
            message = file_signature(path)
            if message and not self.keyring().names(message):
                self.keyring().prefetch()
                return

    def load_all(self, modules: Sequence[str | LazyModule]) -> list[LoadResult]:
        """Load ``modules`` in order, each able to provide what a later one misses: one result each."""
        self._given = [m if isinstance(m, LazyModule) else read_for_load(m) for m in modules]
        self._exporters = None
        return [self.load(m) for m in self._given]

    def _provider(self, current: LazyModule) -> Callable[[str], str | None]:
        def provider(sym: str) -> str | None:
            if self._exporters is None:  # made once some symbol is missing
                self._exporters = {}
                for given in self._given:
                    for name in given.export_names:
                        self._exporters.setdefault(name, given)
            other = self._exporters.get(sym)
            if other is None or other.name == current.name:
                return None
            if other.name in self.tried:
                return f"{other.name} ({other.path}) exports it but did not load: fix {other.name} first"
            return f"{other.name} ({other.path}) exports it: load it before {current.name}"
        return provider

    def load(self, module: str | LazyModule, flags: int = 0) -> LoadResult:
        """``finit_module(fd, "", flags)``: the kernel's answer, its state updated."""
        info = module if isinstance(module, LazyModule) else read_for_load(module)
        # A refused load changes only the taints: what it met is the state with the taints it found.
        taints, noticed = set(self.state.taints), self.state.unsigned_noticed
        result = _Walk(self.target, self.state, info, self.sig_enforce, self._provider(info), flags,
                       self.keyring, self.every_problem).run()
        self.tried.add(info.name)
        if not result.loads:
            before = KernelState(self.state.loaded, taints, noticed, self.state.owner_of)
            result.modprobe_errno = _as_modprobe(self.target, before, info, self.sig_enforce, result, self.keyring)
        return result

    def unload(self, name: str) -> None:
        """The module left the kernel (its taints stay, as the kernel's do)."""
        gone = self.state.loaded.pop(name, None)
        if gone is not None:
            self.state.owner_of = {sym: owner for sym, owner in self.state.owner_of.items() if owner != name}
            for other in self.state.loaded.values():
                for sym in other.names:
                    self.state.owner_of.setdefault(sym, other.name)


def predict(paths: Sequence[str | LazyModule], target: KernelTarget, *, loaded: Sequence[str] = (),
            sig_enforce: bool = False, trusted_keys: Sequence[str] = (), every_problem: bool = False
            ) -> list[LoadResult]:
    """Load ``paths`` in order into ``target`` (with ``loaded`` already in it): one result per module."""
    loader = Loader(target, loaded=loaded, sig_enforce=sig_enforce, trusted_keys=trusted_keys,
                    every_problem=every_problem)
    return loader.load_all(paths)


def _as_modprobe(target: KernelTarget, before: KernelState, info: LazyModule, sig_enforce: bool,
                 result: LoadResult, keyring: Callable[[], Keyring]) -> int:
    """modprobe loads the in-tree modules a module needs first: the errno it would meet then."""
    needed = {module_of for p in result.problems if p.kind == "undefined"
              for module_of in [_in_tree_owner(target, p.symbol)] if module_of}
    if not needed:
        return result.errno
    state = before.copy()
    for name in sorted(needed):
        preload(target, state, name)
    return _Walk(target, state, info, sig_enforce, lambda sym: None, 0, keyring).run().errno


def _in_tree_owner(target: KernelTarget, symbol: str) -> str | None:
    entry = target.export(symbol)
    if entry is None or entry.in_vmlinux:
        return None
    return module_name(entry.module)

