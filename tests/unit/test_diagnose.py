"""buildkit.kmod.diagnose and `buildkit symvers diagnose`, on the logs in data/logs (see its README)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from buildkit.cli import cli
from buildkit.errors import InputError
from buildkit.kmod.diagnose import (
    GPL_COMPATIBLE,
    KINDS,
    LogContext,
    LogMessage,
    explain,
    import_ns_line,
    index_reports,
    kernel_version_from_path,
    kernel_version_from_tree,
    log_context,
    parse_log,
    read_log,
)

LOGS = Path(__file__).resolve().parent / "data" / "logs"
UNDEFINED_FIX = (
    "the symbol must be exported (EXPORT_SYMBOL) by vmlinux or a module whose Module.symvers kbuild reads: "
    "build the providing module first and pass KBUILD_EXTRA_SYMBOLS=/path/to/provider/Module.symvers, "
    "or check the spelling"
)
KDIR_61 = "/var/tmp/bk-fixtures/kernel/root/usr/src/linux-headers-6.1.0-50-amd64"


def load(name: str) -> tuple[list[str], list[LogMessage], LogContext]:
    lines = read_log(str(LOGS / name))
    messages = parse_log(lines)
    return lines, messages, log_context(lines, messages)


def summary(messages: list[LogMessage]) -> list[tuple]:
    return [(m.line, m.kind, m.severity, m.symbol, m.module) for m in messages]


def fixes(name: str, **kw) -> list[str]:
    _, messages, context = load(name)
    return [e.fix for e in explain(messages, context, **kw)]


# --- parse_log on real 6.1 output --------------------------------------------------------------------------


def test_61_undefined_without_provider_symvers():
    _, messages, context = load("6.1-undefined.log")
    assert summary(messages) == [
        (4, "undefined", "error", "prov_add", "cons"),
        (5, "undefined", "error", "prov_gpl", "cons"),
    ]
    assert messages[0].module_path == "/nonexistent/bk/c1/cons.ko"
    assert messages[0].text == 'ERROR: modpost: "prov_add" [/nonexistent/bk/c1/cons.ko] undefined!'
    assert context == LogContext(kerneldir=KDIR_61, m_dir="/nonexistent/bk/c1", kernel_version=(6, 1))
    assert fixes("6.1-undefined.log") == [UNDEFINED_FIX, UNDEFINED_FIX]


def test_61_with_extra_symbols():
    _, messages, context = load("6.1-extra-symbols.log")
    assert summary(messages) == [
        (4, "gpl-only", "error", "prov_gpl", "cons"),
        (5, "namespace", "error", "prov_ns", "cons"),
        (6, "undefined", "error", "printk_typo", "cons"),
    ]
    assert messages[0].module_path is None  # modpost prints only "cons.ko"
    assert messages[1].namespace == "BKTEST"
    assert context.kerneldir == KDIR_61 and context.m_dir == "/nonexistent/bk/c1" and context.kernel_version == (6, 1)
    gpl, ns, undef = fixes("6.1-extra-symbols.log")
    assert all(f'"{lic}"' in gpl for lic in GPL_COMPATIBLE) and "prov_gpl" in gpl
    assert ns == "add MODULE_IMPORT_NS(BKTEST); to cons's source (next to MODULE_LICENSE)"
    assert undef == UNDEFINED_FIX


def test_61_license_and_exported_twice():
    _, messages, context = load("6.1-license-duplicate.log")
    assert summary(messages) == [
        (5, "license", "error", None, "dup"),
        (6, "duplicate", "error", "jiffies_to_msecs", "dup"),
    ]
    assert messages[0].module_path == "/tmp/bkdiag/nolic/dup.o"
    assert messages[1].other == "vmlinux"
    assert context.m_dir == "/tmp/bkdiag/nolic"
    lic, dup = fixes("6.1-license-duplicate.log")
    assert lic.startswith('add MODULE_LICENSE("GPL");') and "dup's source" in lic
    assert "kernel already exports jiffies_to_msecs" in dup


def test_61_kerneldir_without_module_symvers():
    _, messages, context = load("6.1-no-module-symvers.log")
    kinds = [m.kind for m in messages]
    assert kinds == ["symvers-missing"] + ["undefined"] * 10 + ["suppressed"]
    missing = messages[0]
    assert (missing.line, missing.severity, missing.other) == (4, "warning", "Module.symvers")
    # With -w (no Module.symvers) modpost only warns.
    assert {m.severity for m in messages} == {"warning"}
    assert messages[-1].count == 8
    assert context.kerneldir == "/tmp/bkdiag/kdir" and context.m_dir == "/tmp/bkdiag/many"
    out = fixes("6.1-no-module-symvers.log")
    assert "/tmp/bkdiag/kdir has no Module.symvers" in out[0] and "modules_prepare" in out[0]
    assert all("no Module.symvers for the kernel (line 4)" in f for f in out[1:11])
    assert "hid 8 more undefined symbols" in out[-1]


def test_61_extra_symbols_file_missing():
    _, messages, _ = load("6.1-extra-symbols-missing.log")
    assert [(m.line, m.kind, m.severity, m.other, m.variant) for m in messages] == [
        (3, "symvers-missing", "error", "/tmp/bkdiag/nope/Module.symvers", "unreadable")
    ]
    (fix,) = fixes("6.1-extra-symbols-missing.log")
    assert fix.startswith("/tmp/bkdiag/nope/Module.symvers (from KBUILD_EXTRA_SYMBOLS) does not exist")


# --- other eras ----------------------------------------------------------------------------------------------


def test_54_formats_without_modpost_prefix():
    _, messages, context = load("5.4-legacy.log")
    assert summary(messages) == [
        (7, "license", "warning", None, "other"),  # the "see include/linux/module.h" line is skipped
        (9, "duplicate", "warning", "jiffies_to_msecs", "cons"),
        (10, "namespace", "warning", "prov_ns", "cons"),
        (11, "undefined", "warning", "prov_add", "cons"),
        (12, "crc", "warning", "prov_crc", "cons"),
        (13, "crc", "warning", "cons_helper", "cons"),
        (14, "gpl-only", "warning", "prov_future", "cons"),
        (15, "gpl-only", "error", "prov_gpl", "cons"),  # FATAL: modpost: ...
    ]
    assert [m.variant for m in messages if m.kind in ("crc", "gpl-only")] == ["no-crc", "no-version", "future", ""]
    assert context.kerneldir == "/lib/modules/5.4.0-150-generic/build"
    assert context.m_dir == "/home/u/drv" and context.kernel_version == (5, 4)
    out = fixes("5.4-legacy.log")
    assert out[2] == "add MODULE_IMPORT_NS(BKTEST); to cons's source (next to MODULE_LICENSE)"
    assert out[3] == UNDEFINED_FIX
    assert "CONFIG_MODVERSIONS" in out[4] and "<asm/asm-prototypes.h>" in out[5]
    assert "will become GPL-only" in out[6] and "is EXPORT_SYMBOL_GPL" in out[7]


def test_54_two_line_symbol_version_dump():
    _, messages, context = load("5.4-dump-missing.log")
    assert [(m.line, m.kind, m.severity, m.other) for m in messages] == [
        (4, "symvers-missing", "warning", "./Module.symvers")
    ]
    assert context.kerneldir == "/usr/src/linux-headers-5.4.0-150-generic" and context.m_dir == "/home/u/drv"
    assert "/usr/src/linux-headers-5.4.0-150-generic has no Module.symvers" in fixes("5.4-dump-missing.log")[0]


def test_510_dump_missing_and_noise():
    _, messages, context = load("5.10-dump-missing.log")
    assert [(m.line, m.kind, m.variant) for m in messages] == [
        (5, "symvers-missing", "dump"),
        (7, "symvers-missing", "vmlinux"),
        (8, "license", ""),
    ]
    assert context.kernel_version == (5, 10)


def test_510_extra_dump_missing_and_fatal_gpl():
    _, messages, context = load("5.10-gpl-fatal.log")
    assert summary(messages) == [
        (3, "symvers-missing", "warning", None, None),
        (5, "namespace", "error", "prov_ns", "cons"),
        (7, "gpl-only", "error", "prov_gpl", "cons"),
    ]
    assert context.kerneldir == "/usr/src/linux-headers-5.10.0-28-amd64" and context.m_dir == "/src/cons"
    missing = fixes("5.10-gpl-fatal.log")[0]
    assert missing.startswith("/src/prov/Module.symvers (from KBUILD_EXTRA_SYMBOLS) does not exist")


def test_515_in_tree_suppressed_and_ko_duplicate():
    _, messages, context = load("5.15-intree.log")
    assert [m.kind for m in messages] == ["undefined"] * 10 + ["license", "duplicate", "suppressed"]
    assert messages[0].module_path == "drivers/misc/bkdemo/bkdemo.ko"
    dup = messages[11]
    assert (dup.symbol, dup.module, dup.other, dup.severity) == (
        "bk_shared", "bkhelper", "drivers/misc/bkdemo/bkdemo.ko", "warning")
    assert messages[12].count == 4
    assert context == LogContext(kerneldir="/home/u/src/linux-5.15.131", m_dir=None, kernel_version=(5, 15))
    assert "exported by both bkhelper and drivers/misc/bkdemo/bkdemo.ko" in fixes("5.15-intree.log")[11]


def test_68_crc_and_exported_without_definition():
    _, messages, context = load("6.8-crc.log")
    assert [(m.line, m.kind, m.variant, m.symbol) for m in messages] == [
        (6, "crc", "no-version", "cons_asm_copy"),
        (8, "crc", "no-crc", "prov_nocrc"),
        (10, "undefined", "no-definition", "prov_add"),
        (11, "namespace", "", "dma_buf_get"),
    ]
    assert context.kernel_version == (6, 8)
    out = fixes("6.8-crc.log")
    assert "does not define prov_add" in out[2]
    assert out[3] == "add MODULE_IMPORT_NS(DMA_BUF); to cons's source (next to MODULE_LICENSE)"


def test_613_string_namespace_and_objtree_symvers_missing():
    _, messages, context = load("6.13-symvers-missing.log")
    assert [(m.line, m.kind, m.symbol) for m in messages] == [
        (6, "symvers-missing", None),
        (11, "undefined", "__fentry__"),
        (12, "undefined", "_printk"),
        (13, "namespace", "dma_buf_get"),
    ]
    assert messages[0].other == "/home/u/linux-6.13.7/Module.symvers"
    assert messages[1].module_path is None and messages[1].module == "cons"
    assert context == LogContext(kerneldir="/home/u/linux-6.13.7", m_dir="/home/u/drv", kernel_version=(6, 13))
    out = fixes("6.13-symvers-missing.log")
    assert "line 6" in out[1]
    assert out[3] == 'add MODULE_IMPORT_NS("DMA_BUF"); to cons\'s source (next to MODULE_LICENSE)'


def test_noise_only_log_has_no_messages():
    lines, messages, _ = load("clean.log")
    assert lines and messages == []


def test_every_log_parses_to_known_kinds():
    for log in sorted(LOGS.glob("*.log")):
        for m in parse_log(read_log(str(log))):
            assert m.kind in KINDS and m.severity in ("error", "warning"), (log.name, m)


# --- parsing details -----------------------------------------------------------------------------------------


def test_prefixes_colours_and_crlf():
    lines = [
        "\x1b[31mERROR: modpost: \"a_sym\" [/m/x-y.ko] undefined!\x1b[0m\r",
        "2024-05-01T10:00:00Z modpost: WARNING: modpost: suppressed 3 unresolved symbol warnings"
        " because there were too many)",
        "ERROR: Kernel configuration is invalid.",
        "drivers/x.c:1:2: error: 'foo' undeclared",
    ]
    messages = parse_log(lines)
    assert [(m.kind, m.symbol, m.module, m.count) for m in messages] == [
        ("undefined", "a_sym", "x-y", None),
        ("suppressed", None, None, 3),
    ]
    assert messages[0].text == 'ERROR: modpost: "a_sym" [/m/x-y.ko] undefined!'


def test_hint_lines_belong_to_the_warning_and_stand_alone():
    with_header = parse_log([
        "WARNING: Module.symvers is missing.",
        "         Modules may not have dependencies or modversions.",
        "         You may get many unresolved symbol warnings.",
    ])
    assert [(m.kind, m.line) for m in with_header] == [("symvers-missing", 1)]
    alone = parse_log(["Modules may not have dependencies or modversions."])
    assert [(m.kind, m.variant, m.severity) for m in alone] == [("symvers-missing", "hint", "warning")]


def test_gpl_only_marked_unused_and_vmlinux_exporter():
    (m,) = parse_log(["FATAL: modpost: GPL-incompatible module old.ko uses GPL-only symbol marked UNUSED 'u_sym'"])
    assert (m.kind, m.variant, m.symbol, m.module, m.severity) == ("gpl-only", "unused", "u_sym", "old", "error")
    (v,) = parse_log(['WARNING: modpost: EXPORT symbol "memcpy" [vmlinux] version generation failed,'
                      " symbol will not be versioned."])
    assert (v.kind, v.module, v.module_path) == ("crc", "vmlinux", None)


def test_kernel_version_from_path():
    assert kernel_version_from_path(KDIR_61) == (6, 1)
    assert kernel_version_from_path("/lib/modules/5.15.0-91-generic/build") == (5, 15)
    assert kernel_version_from_path("/home/u/linux-6.13.7") == (6, 13)
    assert kernel_version_from_path("/usr/src/kernels/4.18.0-513.el8.x86_64") == (4, 18)
    assert kernel_version_from_path("/opt/python3.11/gcc-12.2/kdir") is None
    assert kernel_version_from_path(None) is None


def test_kernel_version_from_tree(tmp_path):
    (tmp_path / "include" / "config").mkdir(parents=True)
    (tmp_path / "include" / "config" / "kernel.release").write_text("6.14.2-arch1\n")
    assert kernel_version_from_tree(str(tmp_path)) == (6, 14)
    common = tmp_path / "common"
    common.mkdir()
    (common / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 6\nSUBLEVEL = 30\n")
    arch = tmp_path / "arch"
    arch.mkdir()
    (arch / "Makefile").write_text(f"include {common}/Makefile\n")
    assert kernel_version_from_tree(str(arch)) == (6, 6)
    assert kernel_version_from_tree(str(tmp_path / "absent")) is None


def test_namespace_fix_follows_kernel_version(tmp_path):
    (tmp_path / "include" / "config").mkdir(parents=True)
    (tmp_path / "include" / "config" / "kernel.release").write_text("6.15.0\n")
    lines = [f"make: Entering directory '{tmp_path}'",
             "ERROR: modpost: module cons uses symbol f from namespace NS, but does not import it."]
    messages = parse_log(lines)
    context = log_context(lines, messages)
    assert context.kernel_version is None  # the path does not show it; explain reads the tree
    assert explain(messages, context)[0].fix.startswith('add MODULE_IMPORT_NS("NS");')
    unknown = explain(messages, LogContext())[0].fix
    assert unknown.startswith('add MODULE_IMPORT_NS(NS); (kernels >= 6.13: MODULE_IMPORT_NS("NS");)')
    assert import_ns_line("X", (6, 12)) == "MODULE_IMPORT_NS(X);"


def test_core_symbol_undefined_points_at_kernel_symvers():
    (e,) = explain(parse_log(['ERROR: modpost: "module_layout" [/m/a.ko] undefined!']))
    assert "vmlinux itself" in e.fix and "modules_prepare" in e.fix


def test_context_from_make_command_and_relative_m():
    lines = ["make -C /usr/src/linux-6.6.30 M=drivers/foo modules",
             "make[1]: Entering directory '/usr/src/linux-6.6.30'"]
    assert log_context(lines) == LogContext("/usr/src/linux-6.6.30", "/usr/src/linux-6.6.30/drivers/foo", (6, 6))
    assert log_context(["make -C $(KDIR) M=$(PWD) modules"]) == LogContext()
    backtick = ["make[1]: Entering directory `/usr/src/linux-headers-5.4.0-1-amd64'"]
    assert log_context(backtick).kerneldir == "/usr/src/linux-headers-5.4.0-1-amd64"


# --- the resolver hook -----------------------------------------------------------------------------------------


def test_resolver_fixes_replace_generic_ones(tmp_path):
    lines = [
        f"make -C {KDIR_61} M={tmp_path} modules",
        f'ERROR: modpost: "prov_add" [{tmp_path}/cons.ko] undefined!',
        "ERROR: modpost: GPL-incompatible module cons.ko uses GPL-only symbol 'prov_gpl'",
        "ERROR: modpost: module cons uses symbol prov_gpl from namespace NS, but does not import it.",
        f"ERROR: modpost: missing MODULE_LICENSE() in {tmp_path}/cons.o",
    ]
    calls = []

    def resolver(m_dir, kerneldir):
        calls.append((m_dir, kerneldir))
        return {
            "prov_add": SimpleNamespace(kind="undefined", fix="pass KBUILD_EXTRA_SYMBOLS=/src/prov/Module.symvers"),
            ("namespace", "prov_gpl"): {"kind": "namespace", "fix": "add MODULE_IMPORT_NS(NS); to cons.c"},
            ("license", "cons"): SimpleNamespace(kind="license", fix='add MODULE_LICENSE("GPL"); to cons.c'),
        }

    messages = parse_log(lines)
    out = explain(messages, log_context(lines, messages), resolver=resolver)
    assert calls == [(str(tmp_path), KDIR_61)]
    assert [(e.source, e.fix) for e in out] == [
        ("resolver", "pass KBUILD_EXTRA_SYMBOLS=/src/prov/Module.symvers"),
        ("generic", out[1].fix),  # the namespace problem of prov_gpl is not a gpl-only fix
        ("resolver", "add MODULE_IMPORT_NS(NS); to cons.c"),
        ("resolver", 'add MODULE_LICENSE("GPL"); to cons.c'),
    ]
    assert "EXPORT_SYMBOL_GPL" in out[1].fix


def test_resolver_not_called_without_module_dir(tmp_path):
    def resolver(m_dir, kerneldir):
        raise AssertionError("called")

    messages = parse_log(['ERROR: modpost: "x" [/no/such/dir/cons.ko] undefined!'])
    context = LogContext(kerneldir=None, m_dir=str(tmp_path / "absent"))
    assert explain(messages, context, resolver=resolver)[0].fix == UNDEFINED_FIX


def test_resolver_errors_leave_generic_fixes(tmp_path):
    def resolver(m_dir, kerneldir):
        raise InputError(f"M={m_dir}: no modules built there")

    messages = parse_log(['ERROR: modpost: "x" [/m/cons.ko] undefined!'])
    out = explain(messages, LogContext(m_dir=str(tmp_path)), resolver=resolver)
    assert (out[0].source, out[0].fix) == ("generic", UNDEFINED_FIX)


def test_index_reports():
    problem = SimpleNamespace(kind="undefined", symbol="s", fix="f")
    licence = SimpleNamespace(kind="license", symbol=None, fix="l")
    index = index_reports([SimpleNamespace(name="cons", problems=(problem, licence))])
    assert index == {("undefined", "s"): problem, ("license", "cons"): licence}


# --- the command line -----------------------------------------------------------------------------------------


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buildkit", "symvers", "diagnose", *args],
                          input=stdin, capture_output=True, text=True)


def test_cli_text_output_and_exit_1():
    result = run(str(LOGS / "6.1-undefined.log"))
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        'line 4: ERROR: modpost: "prov_add" [/nonexistent/bk/c1/cons.ko] undefined!',
        f"  fix: {UNDEFINED_FIX}",
        'line 5: ERROR: modpost: "prov_gpl" [/nonexistent/bk/c1/cons.ko] undefined!',
        f"  fix: {UNDEFINED_FIX}",
    ]
    assert result.stderr == ""


def test_cli_json_shape_from_stdin():
    result = run("--json", stdin=(LOGS / "6.1-extra-symbols.log").read_text())
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["messages"]
    assert [list(m) for m in data["messages"]] == [
        ["line", "kind", "severity", "symbol", "module", "message", "fix"]] * 3
    assert [(m["line"], m["kind"], m["symbol"], m["module"]) for m in data["messages"]] == [
        (4, "gpl-only", "prov_gpl", "cons"),
        (5, "namespace", "prov_ns", "cons"),
        (6, "undefined", "printk_typo", "cons"),
    ]
    assert data["messages"][1]["fix"].startswith("add MODULE_IMPORT_NS(BKTEST);")


def test_cli_clean_log_exits_0():
    result = run(str(LOGS / "clean.log"))
    assert (result.returncode, result.stdout.strip()) == (0, "no modpost problems in the log")
    assert json.loads(run("--json", "-", stdin="nothing to see\n").stdout) == {"messages": []}


@pytest.mark.parametrize("bad, why", [("/nonexistent/build.log", "no such file"), (".", "a folder, not a file")])
def test_cli_unreadable_log_is_one_line_exit_2(bad, why):
    result = run(bad)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"buildkit: error: {bad}: {why}; ")
    assert "Traceback" not in result.stderr


def test_cli_runner_and_help():
    runner = CliRunner()
    log = (LOGS / "6.1-license-duplicate.log").read_bytes()
    result = runner.invoke(cli, ["symvers", "diagnose", "-"], input=log)
    assert result.exit_code == 1
    assert "line 5: ERROR: modpost: missing MODULE_LICENSE() in /tmp/bkdiag/nolic/dup.o" in result.output
    help_text = runner.invoke(cli, ["symvers", "diagnose", "--help"]).output
    assert "2>&1 | buildkit symvers diagnose" in help_text and "--json" in help_text
