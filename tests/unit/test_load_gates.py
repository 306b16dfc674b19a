"""buildkit.kmod.load on hand-written modules and a hand-written kernel (a headers folder with its
Module.symvers, release and config, and one in-tree module): every gate of the loader, in the kernel's
order, fast. What the gates print was taken from booted kernels (tests/integration/test_kboot*.py); these
tests pin the walk so that an edit gets an answer in a second, not after a QEMU boot.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from kofile import write_ko

from buildkit.kmod.load import MODULE_INIT_IGNORE_VERMAGIC, Loader
from buildkit.kmod.target import read_target

STRUCT_MODULE = 896  # sizeof(struct module) of the made-up kernel (6.1's, as it happens)
CRCS = {"module_layout": 0x1111, "printk": 0x2222, "gpl_fn": 0x3333, "ns_fn": 0x4444, "plain_fn": 0x5555}
SYMVERS = [  # crc, symbol, owner, type, namespace
    ("module_layout", "vmlinux", "EXPORT_SYMBOL", ""),
    ("printk", "vmlinux", "EXPORT_SYMBOL", ""),
    ("gpl_fn", "vmlinux", "EXPORT_SYMBOL_GPL", ""),
    ("ns_fn", "vmlinux", "EXPORT_SYMBOL_GPL", "BK_NS"),
    ("plain_fn", "vmlinux", "EXPORT_SYMBOL", ""),
]


def make_kernel(root: Path, release: str) -> Path:
    """ROOT/usr/src/linux-headers-REL (Module.symvers, .config, kernel.release) and ROOT/lib/modules/REL with
    one in-tree module; returns the modules folder."""
    headers = root / "usr" / "src" / f"linux-headers-{release}"
    (headers / "include" / "config").mkdir(parents=True)
    (headers / "include" / "config" / "kernel.release").write_text(release + "\n")
    (headers / ".config").write_text("CONFIG_X86_64=y\nCONFIG_SMP=y\nCONFIG_PREEMPT_BUILD=y\nCONFIG_MODULE_UNLOAD=y\n"
                                     "CONFIG_MODVERSIONS=y\nCONFIG_MODULE_SIG=y\nCONFIG_MODULE_FORCE_LOAD=y\n")
    (headers / "Module.symvers").write_text("".join(f"0x{CRCS[s]:08x}\t{s}\t{owner}\t{kind}\t{ns}\n"
                                                    for s, owner, kind, ns in SYMVERS))
    modules = root / "lib" / "modules" / release
    write_ko(modules / "kernel" / "lib" / "intree.ko", modinfo={"name": "intree", "intree": "Y", "license": "GPL",
                                                                  "vermagic": vermagic(release)},
             this_module=STRUCT_MODULE)
    (modules / "modules.order").write_text("kernel/lib/intree.ko\n")
    (modules / "build").symlink_to(headers)
    return modules


def vermagic(release: str) -> str:
    return f"{release} SMP preempt mod_unload modversions "


@pytest.fixture(params=["6.1.0-99-amd64", "6.12.99-amd64"])
def kernel(request, tmp_path):
    return read_target(str(make_kernel(tmp_path / "root", request.param)))


def module(tmp, name, *, uses=(), license="GPL", release=None, versions=None, crcs=None, extra=None, **kw) -> str:
    """An out-of-tree module built against ``release``'s headers (every symbol it uses in its __versions with
    the kernel's CRC unless told otherwise)."""
    info = {"name": name, "license": license, "vermagic": vermagic(release), **(extra or {})}
    used = ("module_layout", *uses)
    return str(write_ko(tmp / f"{name}.ko", undefined=tuple(uses), versions=versions if versions is not None else used,
                        crcs={**CRCS, **(crcs or {})}, modinfo=info, this_module=kw.pop("this_module", STRUCT_MODULE),
                        **kw))


def test_a_module_that_resolves_loads_with_the_first_taints(kernel, tmp_path):
    loader = Loader(kernel)
    result = loader.load(module(tmp_path, "good", uses=("printk", "gpl_fn"), release=kernel.release))
    assert (result.errno, result.dmesg) == (0, [
        "good: loading out-of-tree module taints kernel.",
        "good: module verification failed: signature and/or required key missing - tainting kernel"])
    again = loader.load(module(tmp_path, "good2", uses=("printk",), release=kernel.release))
    assert (again.errno, again.dmesg) == (0, [])  # once per boot
    assert loader.load(module(tmp_path, "good", uses=("printk",), release=kernel.release)).errno == errno.EEXIST


def test_signature_is_the_first_gate(kernel, tmp_path):
    bad = module(tmp_path, "m", uses=("nothing",), release="5.0.0", machine=183)
    result = Loader(kernel, sig_enforce=True).load(bad)
    assert (result.errno, result.dmesg) == (errno.EKEYREJECTED, ["Loading of unsigned module is rejected"])


def test_elf_machine_then_struct_module_then_module_layout_then_vermagic(kernel, tmp_path):
    arch = Loader(kernel).load(module(tmp_path, "arm", release=kernel.release, machine=183))
    assert (arch.errno, arch.dmesg) == (errno.ENOEXEC, ["Invalid architecture in ELF header: 183"])
    size = Loader(kernel).load(module(tmp_path, "size", release="5.0.0", this_module=STRUCT_MODULE + 64,
                                      crcs={"module_layout": 0x9999}))
    if kernel.version >= (6, 4):  # elf_validity_cache_copy() checks it, before module_layout
        assert (size.errno, size.dmesg) == (errno.ENOEXEC, [
            "module size: .gnu.linkonce.this_module section size must match the kernel's built struct module size at "
            "run time"])
    else:  # 6.1 has no such check: the module_layout CRC refuses it
        assert (size.errno, size.dmesg) == (errno.ENOEXEC, ["size: disagrees about version of symbol module_layout"])
    layout = Loader(kernel).load(module(tmp_path, "layout", release="5.0.0", crcs={"module_layout": 0x9999}))
    assert (layout.errno, layout.dmesg) == (errno.ENOEXEC, ["layout: disagrees about version of symbol module_layout"])
    magic = Loader(kernel).load(module(tmp_path, "magic", release=kernel.release,
                                       extra={"vermagic": f"{kernel.release} SMP mod_unload modversions "}))
    assert (magic.errno, magic.dmesg) == (errno.ENOEXEC, [
        f"magic: version magic '{kernel.release} SMP mod_unload modversions ' should be '{vermagic(kernel.release)}'"])
    forced = Loader(kernel).load(module(tmp_path, "magic", release=kernel.release,
                                        extra={"vermagic": f"{kernel.release} SMP mod_unload modversions "}),
                                 MODULE_INIT_IGNORE_VERMAGIC)
    assert forced.errno == 0 and forced.dmesg[:2] == ["magic: bad vermagic: kernel tainted.",
                                                      "Disabling lock debugging due to kernel taint"]
    # the release part of vermagic is not compared when the module has symbol versions
    other = Loader(kernel).load(module(tmp_path, "other", release="9.9.9-other"))
    assert other.errno == 0


def test_symbols_every_failure_and_the_last_errno(kernel, tmp_path):
    result = Loader(kernel).load(module(tmp_path, "syms", uses=("printk", "missing_fn", "gpl_fn", "ns_fn"),
                                        release=kernel.release, crcs={"gpl_fn": 0x7777}))
    assert result.dmesg[2:] == [
        "syms: Unknown symbol missing_fn (err -2)",
        "syms: disagrees about version of symbol gpl_fn",
        "syms: Unknown symbol gpl_fn (err -22)",
        "syms: module uses symbol (ns_fn) from namespace BK_NS, but does not import it.",
        "syms: Unknown symbol ns_fn (err -22)",
    ]
    assert result.errno == errno.EINVAL  # the last failure's
    assert [p.kind for p in result.problems if p.kind != "taint"] == ["undefined", "crc", "namespace"]
    imported = Loader(kernel).load(module(tmp_path, "imp", uses=("ns_fn",), release=kernel.release,
                                          extra={"import_ns": "BK_NS"}))
    assert imported.errno == 0


def test_debian_refuses_a_symbol_missing_from_versions(kernel, tmp_path):
    # the headers are not Debian's (no Debian marks): upstream's rule, a warning once and accepted
    result = Loader(kernel).load(module(tmp_path, "nover", uses=("printk",), release=kernel.release,
                                        versions=("module_layout",)))
    assert kernel.vendor == "upstream" and result.errno == 0


def test_proprietary_module_and_gpl_only_exports(kernel, tmp_path):
    result = Loader(kernel).load(module(tmp_path, "prop", uses=("plain_fn", "gpl_fn"), license="Proprietary",
                                        release=kernel.release))
    lines = ["prop: loading out-of-tree module taints kernel.", "prop: module license 'Proprietary' taints kernel.",
             "Disabling lock debugging due to kernel taint",
             "prop: module verification failed: signature and/or required key missing - tainting kernel"]
    if kernel.version >= (6, 4):  # module_augment_kernel_taints(): seen on the booted 6.12
        lines.append("prop: module license taints kernel.")
    assert result.dmesg == lines + ["prop: Unknown symbol gpl_fn (err -2)"]
    assert result.errno == errno.ENOENT and "gpl-only" in [p.kind for p in result.problems]


def test_every_problem_goes_on_past_the_refusing_gate(kernel, tmp_path):
    path = module(tmp_path, "all", uses=("printk", "missing_fn"), release="5.0.0",
                  crcs={"module_layout": 0x9999, "printk": 0x8888})
    plain = Loader(kernel).load(path)
    every = Loader(kernel, every_problem=True).load(path)
    assert plain.errno == every.errno == errno.ENOEXEC
    assert plain.dmesg == every.dmesg == ["all: disagrees about version of symbol module_layout"]
    assert [p.kind for p in plain.problems] == ["module_layout"]
    assert [(p.kind, p.symbol) for p in every.problems if p.kind != "taint"] == [
        ("module_layout", "module_layout"), ("crc", "printk"), ("undefined", "missing_fn")]


def test_a_module_named_in_non_utf8_bytes_is_reported_by_its_bytes(tmp_path):
    """symvers load's text report: a file name that is not UTF-8 comes out as its bytes, no traceback."""
    import os
    import subprocess
    import sys

    modules = make_kernel(tmp_path / "root", "6.1.0-99-amd64")
    path = module(tmp_path, "named", uses=("printk",), release="6.1.0-99-amd64")
    odd = os.fsencode(str(tmp_path)) + b"/caf\xe9-\xff.ko"
    os.rename(path, odd)
    run = subprocess.run([sys.executable, "-m", "buildkit", "symvers", "load", odd, "--kernel", str(modules)],
                         capture_output=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert b"Traceback" not in run.stderr and run.returncode == 0, run.stderr.decode("utf-8", "replace")[-2000:]
    assert b"named: loads  (" + odd + b"; depends: -)" in run.stdout
