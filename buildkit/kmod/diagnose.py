"""Explain the modpost messages of a kbuild log (kernels 5.x - 6.x) and say how to fix each one.

``parse_log`` finds the messages, ``log_context`` reads what the log says about the build (KERNELDIR, M=,
kernel version) and ``explain`` attaches a fix to each message. All three are pure functions of the log
lines, except that ``explain`` looks at the disk to call an optional *resolver* (the exact fixes of
``buildkit.kmod.resolve``) when the module directory named in the log exists, and to read the kernel
version of a KERNELDIR whose path does not show it.

Message formats, as ``scripts/mod/modpost.c`` and ``scripts/Makefile.modpost`` print them:

=================  ===========================================================================  ========
kind               message (after ``ERROR: ``/``WARNING: ``/``FATAL: `` and, from 5.8, ``modpost: ``)  kernels
=================  ===========================================================================  ========
undefined          ``"sym" [dir/mod.ko] undefined!``                                            all
                   ``"sym" [dir/mod.ko] was exported without definition``                       6.0+
gpl-only           ``GPL-incompatible module mod.ko uses GPL-only symbol 'sym'`` (FATAL <= 5.12)  all
                   ``... uses future GPL-only symbol 'sym'`` / ``... marked UNUSED 'sym'``      <= 5.12
namespace          ``module mod uses symbol sym from namespace NS, but does not import it.``   5.4+
license            ``missing MODULE_LICENSE() in dir/mod.o`` (a warning before 5.13)            all
duplicate          ``dir/mod: 'sym' exported twice. Previous export was in vmlinux`` (or x.ko)   all
crc                ``"sym" [mod.ko] has no CRC!``;                                              all
                   ``EXPORT symbol "sym" [mod.ko] version generation failed, ...``
symvers-missing    ``Symbol version dump <path>`` / ``is missing; modules will have no ...``    <= 5.4
                   ``Symbol version dump "<path>" is missing.``                                5.5-5.16
                   ``Module.symvers is missing.`` (6.13+: ``<objtree>/Module.symvers ...``)     5.17+
                   ``Symbol info of vmlinux is missing. Unresolved symbol check ... skipped.``  5.8-5.12
                   ``<file>.symvers: No such file or directory`` (a KBUILD_EXTRA_SYMBOLS file)  5.13+
suppressed         ``suppressed N unresolved symbol warnings because there were too many)``    5.13+
=================  ===========================================================================  ========

Other modpost lines (section mismatches, ``is COMMON symbol``, ``missing MODULE_DESCRIPTION()``, BTF
notes...) are not problems of symbol resolution and are left out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

from buildkit.errors import BuildkitError
from buildkit.kmod.kernel import GPL_COMPATIBLE, import_ns_line, kernel_version_from_tree

__all__ = [
    "GPL_COMPATIBLE",
    "KINDS",
    "Explanation",
    "LogContext",
    "LogMessage",
    "Resolver",
    "explain",
    "import_ns_line",
    "index_reports",
    "kernel_version_from_path",
    "kernel_version_from_tree",
    "log_context",
    "parse_log",
    "read_log",
]

KINDS = ("undefined", "gpl-only", "namespace", "license", "duplicate", "crc", "symvers-missing", "suppressed")
# modpost's license_is_gpl_compatible() (include/linux/license.h).

# Symbols only vmlinux exports and that nearly every module uses: undefined, they mean that kbuild read no
# Module.symvers for the kernel at all rather than that one provider is missing.
_CORE_SYMBOLS = frozenset(
    {
        "module_layout",
        "__fentry__",
        "mcount",
        "_mcount",
        "__gnu_mcount_nc",
        "_printk",
        "printk",
        "__x86_return_thunk",
        "__stack_chk_fail",
        "__stack_chk_guard",
        "kfree",
        "kmalloc_caches",
    }
)

Resolver = Callable[[str, "str | None"], Mapping[Any, Any]]


@dataclass(frozen=True)
class LogMessage:
    """One modpost problem found in a log.

    ``module`` is the module's file name without ``.ko``/``.o`` (``vmlinux`` for the kernel);
    ``module_path`` the path the message gives, when it gives one with a directory.
    ``variant`` refines the kind: ``no-definition`` (undefined), ``future``/``unused`` (gpl-only),
    ``no-crc``/``no-version`` (crc), ``dump``/``vmlinux``/``unreadable``/``hint`` (symvers-missing).
    ``other`` is the previous exporter (duplicate) or the missing file (symvers-missing).
    """

    kind: str
    severity: str  # error | warning
    line: int  # 1-based line number in the log
    text: str  # the log line, stripped
    symbol: str | None = None
    module: str | None = None
    module_path: str | None = None
    namespace: str | None = None
    other: str | None = None
    count: int | None = None
    variant: str = ""


@dataclass(frozen=True)
class LogContext:
    """What the log tells about the build it comes from."""

    kerneldir: str | None = None  # the tree 'make -C' ran in (headers dir)
    m_dir: str | None = None  # the external module's directory (M=)
    kernel_version: tuple[int, int] | None = None  # (major, minor), from the paths in the log


@dataclass(frozen=True)
class Explanation:
    message: LogMessage
    fix: str
    source: str = "generic"  # generic | resolver

    def to_json(self) -> dict[str, object]:
        m = self.message
        return {
            "line": m.line,
            "kind": m.kind,
            "severity": m.severity,
            "symbol": m.symbol,
            "module": m.module,
            "message": m.text,
            "fix": self.fix,
        }


# --- reading ---------------------------------------------------------------------------------------------


def read_log(path: str) -> list[str]:
    """The lines of a log file (any encoding: undecodable bytes are replaced)."""
    from buildkit._input import read_input, refuse_binary

    data = read_input(path, fix="check the path, or pipe the log in on stdin")
    refuse_binary(data, path, "a build log", fix="save make's output as text: make 2>&1 | tee build.log")
    return data.decode("utf-8", errors="replace").splitlines()


# --- parsing ---------------------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# The level modpost prints (FATAL: until 6.3); "modpost: " follows it from 5.8 on.
_LEVEL = re.compile(r"\b(?P<level>ERROR|WARNING|FATAL): (?:modpost: )?(?P<body>.*)$")
_SEVERITY = {"ERROR": "error", "FATAL": "error", "WARNING": "warning"}

_UNDEFINED = re.compile(r'^"(?P<sym>[^"]+)" \[(?P<mod>[^\]]+)\] undefined!')
_NO_DEFINITION = re.compile(r'^"(?P<sym>[^"]+)" \[(?P<mod>[^\]]+)\] was exported without definition')
_NO_CRC = re.compile(r'^"(?P<sym>[^"]+)" \[(?P<mod>[^\]]+)\] has no CRC')
_NO_VERSION = re.compile(r'^EXPORT symbol "(?P<sym>[^"]+)" \[(?P<mod>[^\]]+)\] version generation failed')
_GPL = re.compile(
    r"^GPL-incompatible module (?P<mod>\S+) uses (?P<future>future )?GPL-only symbol "
    r"(?P<unused>marked UNUSED )?'(?P<sym>[^']+)'"
)
_NAMESPACE = re.compile(
    r"^module (?P<mod>\S+) uses symbol (?P<sym>\S+) from namespace (?P<ns>\S+?),? but does not import it"
)
_LICENSE = re.compile(r"^missing MODULE_LICENSE\(\) in (?P<path>\S+)")
_DUPLICATE = re.compile(r"^(?P<mod>\S+): '(?P<sym>[^']+)' exported twice\. Previous export was in (?P<prev>\S+)")
_SUPPRESSED = re.compile(r"^suppressed (?P<n>\d+) unresolved symbol warnings")
_DUMP_QUOTED = re.compile(r'^Symbol version dump "(?P<path>[^"]+)" is missing')
_DUMP_OLD = re.compile(r"^Symbol version dump (?P<path>\S+)\s*$")  # <= 5.4: "is missing; ..." follows
_SYMVERS_MISSING = re.compile(r"^(?P<path>\S*Module\.symvers) is missing")
_VMLINUX_MISSING = re.compile(r"^Symbol info of vmlinux is missing")
# modpost's perror() when a -i dump (KBUILD_EXTRA_SYMBOLS, 5.13+) cannot be read: no level, no prefix.
_UNREADABLE_DUMP = re.compile(
    r"^(?P<path>\S*symvers): (?P<why>No such file or directory|Permission denied|Is a directory)\s*$"
)
# The lines kbuild prints under a missing-dump warning.
_HINT = re.compile(
    r"^\s*(?:is missing; modules will have no dependencies|Modules may not have dependencies or modversions"
    r"|You may get many unresolved symbol|You can set KBUILD_MODPOST_WARN|if you want to proceed at your own"
    r"|if you know what you are doing|.*\bmodules_prepare\b)"
)
_HINT_ALONE = re.compile(r"^\s*Modules may not have dependencies or modversions")


def _stem(name: str) -> str:
    """``/tmp/c1/cons.ko`` -> ``cons``: the module's file name without suffix, as modpost prints it."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    base = re.sub(r"\.(ko(\.(gz|xz|zst|bz2))?|o)$", "", base)
    return re.sub(r"\.lto$", "", base)


def _path(name: str) -> str | None:
    return name if "/" in name else None


def _clean(line: str) -> str:
    return _ANSI.sub("", line).rstrip("\r\n").rstrip()


def _modpost_message(body: str, severity: str, lineno: int, text: str) -> LogMessage | None:
    """The message of one ``LEVEL: [modpost: ]body`` line, or None if it is not a symbol problem."""
    for pattern, kind, variant in (
        (_UNDEFINED, "undefined", ""),
        (_NO_DEFINITION, "undefined", "no-definition"),
        (_NO_CRC, "crc", "no-crc"),
        (_NO_VERSION, "crc", "no-version"),
    ):
        m = pattern.match(body)
        if m:
            mod = m["mod"]
            return LogMessage(kind, severity, lineno, text, m["sym"], _stem(mod), _path(mod), variant=variant)
    m = _GPL.match(body)
    if m:
        variant = "future" if m["future"] else "unused" if m["unused"] else ""
        return LogMessage("gpl-only", severity, lineno, text, m["sym"], _stem(m["mod"]), _path(m["mod"]),
                          variant=variant)
    m = _NAMESPACE.match(body)
    if m:
        return LogMessage("namespace", severity, lineno, text, m["sym"], _stem(m["mod"]), _path(m["mod"]),
                          namespace=m["ns"])
    m = _LICENSE.match(body)
    if m:
        return LogMessage("license", severity, lineno, text, None, _stem(m["path"]), _path(m["path"]))
    m = _DUPLICATE.match(body)
    if m:
        return LogMessage("duplicate", severity, lineno, text, m["sym"], _stem(m["mod"]), _path(m["mod"]),
                          other=m["prev"])
    m = _SUPPRESSED.match(body)
    if m:
        return LogMessage("suppressed", severity, lineno, text, count=int(m["n"]))
    m = _DUMP_QUOTED.match(body) or _SYMVERS_MISSING.match(body)
    if m:
        return LogMessage("symvers-missing", severity, lineno, text, other=m["path"], variant="dump")
    if _VMLINUX_MISSING.match(body):
        return LogMessage("symvers-missing", severity, lineno, text, other="vmlinux", variant="vmlinux")
    return None


def parse_log(lines: Iterable[str]) -> list[LogMessage]:
    """The modpost problems in a kbuild log, in log order; every other line is ignored."""
    cleaned = [_clean(line) for line in (lines.splitlines() if isinstance(lines, str) else lines)]
    found: list[LogMessage] = []
    i = 0
    while i < len(cleaned):
        line = cleaned[i]
        lineno = i + 1
        i += 1
        text = line.strip()
        level = _LEVEL.search(line)
        if level:
            severity = _SEVERITY[level["level"]]
            body = level["body"].strip()
            old = _DUMP_OLD.match(body)
            if old and i < len(cleaned) and "is missing" in cleaned[i]:
                # <= 5.4 splits it over two lines: "WARNING: Symbol version dump ./Module.symvers"
                # and "           is missing; modules will have no dependencies and modversions."
                found.append(LogMessage("symvers-missing", severity, lineno, text, other=old["path"], variant="dump"))
            else:
                message = _modpost_message(body, severity, lineno, text)
                if message is None:
                    continue
                found.append(message)
            if found[-1].kind == "symvers-missing":
                while i < len(cleaned) and _HINT.match(cleaned[i]):
                    i += 1  # the hints are part of the warning
            continue
        m = _UNREADABLE_DUMP.match(text)
        if m:
            found.append(LogMessage("symvers-missing", "error", lineno, text, other=m["path"], variant="unreadable"))
            continue
        if _HINT_ALONE.match(line):
            # The hint without its warning line (a filtered log): the dump is missing all the same.
            found.append(LogMessage("symvers-missing", "warning", lineno, text, variant="hint"))
            while i < len(cleaned) and _HINT.match(cleaned[i]):
                i += 1
    return found


# --- context ---------------------------------------------------------------------------------------------

_MAKE_C = re.compile(r"(?:^|[\s;&|(])(?:\S*/)?g?make\b(?P<args>.*)$")
_DASH_C = re.compile(r"(?:^|\s)(?:-C\s*|--directory=)(?P<dir>[^\s;&|)]+)")
_M_ARG = re.compile(r"(?:^|\s)(?:M|SUBDIRS|KBUILD_EXTMOD)=(?P<dir>[^\s;&|)]+)")
_KDIR_ARG = re.compile(r"(?:^|\s)(?:KERNELDIR|KDIR|KERNEL_DIR|KSRC|KERNEL_SRC|KERNELSRC)=(?P<dir>[^\s;&|)]+)")
_ENTERING = re.compile(r"Entering directory [`'\"](?P<dir>[^'`\"]+)['\"]")
_MODPOST = re.compile(r"^\s*MODPOST\s+(?P<path>\S+/Module\.symvers)\s*$")
_BUILT = re.compile(r"^\s*(?:CC|LD|BTF) \[M\]\s+(?P<path>/\S+\.(?:o|ko))\s*$")
_MAKEFILE_IN_TREE = re.compile(r"(?P<tree>/[^\s:\[\]]+?)/(?:scripts/Makefile\.\w+|Makefile):\d+:")
_VERSION_IN_NAME = re.compile(
    r"^(?:v|linux|kernel)?(?:[-_](?:headers|source|src|kbuild|devel))?[-_]?(?P<major>[2-9])\.(?P<minor>\d{1,2})"
    r"(?=$|[-.+_~])",
    re.I,
)


def _unquote(value: str) -> str:
    return value.strip("'\"")


def kernel_version_from_path(path: str | None) -> tuple[int, int] | None:
    """(major, minor) if a directory name in ``path`` shows it: ``linux-headers-6.1.0-50-amd64``,
    ``/lib/modules/5.15.0-91-generic/build``, ``linux-6.13.7``."""
    if not path:
        return None
    for part in reversed(path.split("/")):
        m = _VERSION_IN_NAME.match(part)
        if m:
            return int(m["major"]), int(m["minor"])
    return None


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def log_context(lines: Iterable[str], messages: Sequence[LogMessage] | None = None) -> LogContext:
    """KERNELDIR, M= and the kernel version, as far as the log shows them.

    KERNELDIR: the ``-C`` of an echoed ``make`` command, a ``KERNELDIR=``/``KDIR=`` argument, else the
    first ``Entering directory`` that is not the module's. M=: the ``M=`` argument, else the directory of
    the ``MODPOST <dir>/Module.symvers`` line (5.10+), else of a module path in the messages or of a
    ``CC [M]``/``LD [M]`` line. The version comes from the KERNELDIR path, else from the path of the
    kernel Makefiles that make's error lines name.
    """
    cleaned = [_clean(line) for line in (lines.splitlines() if isinstance(lines, str) else lines)]
    if messages is None:
        messages = parse_log(cleaned)
    kdir_arg = m_arg = modpost_dir = built_dir = None
    entering: list[str] = []
    trees: list[str] = []
    for line in cleaned:
        make = _MAKE_C.search(line)
        if make and "Entering directory" not in line and "Leaving directory" not in line:
            args = make["args"]
            for pattern, slot in ((_DASH_C, "k"), (_KDIR_ARG, "k"), (_M_ARG, "m")):
                found = pattern.search(args)
                if not found or "$" in found["dir"]:
                    continue  # unexpanded $(PWD) and the like say nothing
                if slot == "k" and kdir_arg is None:
                    kdir_arg = _unquote(found["dir"])
                elif slot == "m" and m_arg is None:
                    m_arg = _unquote(found["dir"])
        e = _ENTERING.search(line)
        if e:
            entering.append(e["dir"])
        mp = _MODPOST.match(line)
        if mp and modpost_dir is None:
            modpost_dir = os.path.dirname(mp["path"])
        b = _BUILT.match(line)
        if b and built_dir is None:
            built_dir = os.path.dirname(b["path"])
        t = _MAKEFILE_IN_TREE.search(line)
        if t:
            trees.append(t["tree"])
    message_dir = next(
        (os.path.dirname(m.module_path) for m in messages if m.module_path and m.module_path.startswith("/")),
        None,
    )
    m_dir = m_arg or modpost_dir or message_dir or built_dir
    kerneldir = kdir_arg
    if kerneldir is None:
        kerneldir = next((d for d in entering if not (m_dir and _under(d, m_dir))), None)
    if m_dir and not m_dir.startswith("/") and kerneldir:
        m_dir = os.path.normpath(os.path.join(kerneldir, m_dir))
    version = kernel_version_from_path(kerneldir)
    if version is None:
        version = next(filter(None, (kernel_version_from_path(t) for t in trees)), None)
    return LogContext(kerneldir=kerneldir, m_dir=m_dir, kernel_version=version)


# --- fixes -----------------------------------------------------------------------------------------------


_UNDEFINED_FIX = (
    "the symbol must be exported (EXPORT_SYMBOL) by vmlinux or a module whose Module.symvers kbuild reads: "
    "build the providing module first and pass KBUILD_EXTRA_SYMBOLS=/path/to/provider/Module.symvers, "
    "or check the spelling"
)
_KERNEL_SYMVERS_FIX = (
    "build against a tree that has one: the distro's headers package (linux-headers-$(uname -r), "
    "kernel-devel) ships it and a full 'make' of the tree writes it ('make modules_prepare' alone does not)"
)


def _is_kernel_dump(message: LogMessage, context: LogContext) -> bool:
    """Whether a missing dump is the kernel's own Module.symvers (not a KBUILD_EXTRA_SYMBOLS file)."""
    path = message.other
    if message.variant in ("vmlinux", "hint") or not path:
        return True
    if message.variant == "unreadable":
        return bool(context.kerneldir) and _under(path, context.kerneldir)  # type: ignore[arg-type]
    if "/" not in path.lstrip("./"):
        return True
    if context.kerneldir and _under(path, context.kerneldir):
        return True
    return not path.startswith("/")


def _generic_fix(msg: LogMessage, context: LogContext, version: tuple[int, int] | None,
                 kernel_dump_line: int | None) -> str:
    sym, mod = msg.symbol, msg.module or "the module"
    if msg.kind == "undefined":
        if msg.variant == "no-definition":
            return f"{mod} has EXPORT_SYMBOL({sym}) but does not define {sym}: define it there or drop the export"
        if kernel_dump_line is not None:
            return (f"kbuild read no Module.symvers for the kernel (line {kernel_dump_line}), so every kernel "
                    f"symbol looks undefined: fix that first; if {sym} is still undefined then, export it from a "
                    "module and pass that module's Module.symvers in KBUILD_EXTRA_SYMBOLS")
        if sym in _CORE_SYMBOLS or (sym or "").startswith("__x86_indirect_thunk_"):
            return (f"{sym} is exported by vmlinux itself, so kbuild read no Module.symvers for the kernel; "
                    f"{_KERNEL_SYMVERS_FIX}")
        return _UNDEFINED_FIX
    if msg.kind == "gpl-only":
        allowed = ", ".join(f'"{x}"' for x in GPL_COMPATIBLE)
        what = "will become GPL-only (EXPORT_SYMBOL_GPL_FUTURE)" if msg.variant == "future" else "is EXPORT_SYMBOL_GPL"
        return (f"{sym} {what}: give {mod} a GPL-compatible MODULE_LICENSE (one of {allowed}) if the code "
                f"really is under that licence, or stop using {sym}")
    if msg.kind == "namespace":
        ns = msg.namespace or "NS"
        if version is None:
            line = f'{import_ns_line(ns, None)} (kernels >= 6.13: {import_ns_line(ns, (6, 13))})'
        else:
            line = import_ns_line(ns, version)
        return f"add {line} to {mod}'s source (next to MODULE_LICENSE)"
    if msg.kind == "license":
        return (f'add MODULE_LICENSE("GPL"); (or the licence the code is really under) to {mod}\'s source; '
                "only GPL-compatible licences may use EXPORT_SYMBOL_GPL symbols")
    if msg.kind == "duplicate":
        if msg.other == "vmlinux":
            return (f"the kernel already exports {sym}: rename {mod}'s {sym} (or make it static and drop its "
                    "EXPORT_SYMBOL) and use the kernel's")
        return (f"{sym} is exported by both {mod} and {msg.other}: keep one exporter: drop the EXPORT_SYMBOL "
                "from one module, or stop passing a stale copy of this module's Module.symvers in "
                "KBUILD_EXTRA_SYMBOLS")
    if msg.kind == "crc":
        if msg.variant == "no-version":
            return (f"genksyms could not compute a CRC for {sym}: make its full prototype visible where "
                    f"EXPORT_SYMBOL({sym}) is (include its header; for assembly declare it in "
                    "<asm/asm-prototypes.h>), then rebuild")
        return (f"the exporter of {sym} carries no CRC for it: rebuild the providing module against this "
                "kernel tree (same CONFIG_MODVERSIONS) so its Module.symvers has one, and pass that file in "
                "KBUILD_EXTRA_SYMBOLS")
    if msg.kind == "symvers-missing":
        if _is_kernel_dump(msg, context):
            where = context.kerneldir or "KERNELDIR"
            return (f"{where} has no Module.symvers, so modpost cannot check or version the module's symbols; "
                    f"{_KERNEL_SYMVERS_FIX}")
        return (f"{msg.other} (from KBUILD_EXTRA_SYMBOLS) does not exist: build the providing module first "
                "(its 'make' writes Module.symvers) or fix the path")
    if msg.kind == "suppressed":
        return (f"modpost hid {msg.count} more undefined symbols: fix the ones listed (they usually share one "
                "cause, such as a missing Module.symvers or KBUILD_EXTRA_SYMBOLS), then rebuild to see the rest")
    return ""


def _resolver_fix(problems: Mapping[Any, Any], msg: LogMessage) -> str | None:
    """The fix a resolver gave for this message: keys ``(kind, symbol)`` (``(kind, module)`` for a
    problem without a symbol) or a bare symbol/module name; values with a ``fix`` attribute or key."""
    key = msg.symbol or msg.module
    if key is None:
        return None
    for candidate in ((msg.kind, key), key):
        try:
            problem = problems.get(candidate)
        except TypeError:
            continue
        if problem is None:
            continue
        kind = problem.get("kind") if isinstance(problem, Mapping) else getattr(problem, "kind", None)
        if kind in KINDS and kind != msg.kind:
            continue
        fix = problem.get("fix") if isinstance(problem, Mapping) else getattr(problem, "fix", None)
        if isinstance(fix, str) and fix:
            return fix
    return None


def index_reports(reports: Iterable[Any]) -> dict[tuple[str, str], Any]:
    """Turn ``resolve.check``-style reports (each with ``name`` and ``problems``, each problem with ``kind``,
    ``symbol`` and ``fix``) into the mapping ``explain`` expects from a resolver."""
    index: dict[tuple[str, str], Any] = {}
    for report in reports:
        for problem in getattr(report, "problems", ()):
            key = getattr(problem, "symbol", None) or getattr(report, "name", None)
            if key:
                index.setdefault((problem.kind, key), problem)
    return index


def explain(
    messages: Sequence[LogMessage],
    context: LogContext | None = None,
    resolver: Resolver | None = None,
) -> list[Explanation]:
    """A fix for each message.

    When ``resolver`` is given and the log's module directory exists, it is called once as
    ``resolver(m_dir, kerneldir)`` and its fixes (exact KBUILD_EXTRA_SYMBOLS path, MODULE_IMPORT_NS line,
    did-you-mean...) replace the generic ones for the messages it covers (see ``_resolver_fix`` for the
    mapping it returns; ``index_reports`` builds one from ``resolve.check`` reports). A resolver that raises
    a BuildkitError leaves the generic fixes. Otherwise each kind gets its generic fix, worded for the
    kernel version when the log or KERNELDIR shows it.
    """
    context = context or LogContext()
    version = context.kernel_version or kernel_version_from_tree(context.kerneldir)
    kernel_dump_line = next(
        (m.line for m in messages if m.kind == "symvers-missing" and _is_kernel_dump(m, context)), None
    )
    problems: Mapping[Any, Any] = {}
    if resolver is not None and context.m_dir and os.path.isdir(context.m_dir):
        try:
            problems = resolver(context.m_dir, context.kerneldir) or {}
        except BuildkitError:
            problems = {}  # the tree cannot be resolved (no modules built, no KERNELDIR): generic fixes
    out = []
    for msg in messages:
        exact = _resolver_fix(problems, msg) if problems else None
        if exact:
            out.append(Explanation(msg, exact, "resolver"))
        else:
            out.append(Explanation(msg, _generic_fix(msg, context, version, kernel_dump_line)))
    return out
