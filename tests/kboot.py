"""Boot Debian's own kernel under QEMU (TCG) and record what it did for a sequence of module loads.

``boot(vmlinuz, [Step("a", [prov_ko, cons_ko]), Step("b", rmmod=["cons"])], append="module.sig_enforce=1")``
builds an initramfs (busybox-static, a static ``ldmod`` compiled here from kboot_ldmod.c, the modules), boots
it once, and returns per step: the errno of each ``finit_module(2)`` / ``delete_module(2)`` and the kernel log
lines that step produced (``dmesg -r -c`` before and after it; timestamps stripped, text kept as printed).
Steps run in order in one boot, so modules loaded by an earlier step stay loaded; within a step the unloads
(``rmmod``) run first, then the loads. Mind that the kernel prints its once-per-boot lines (``loading
out-of-tree module taints kernel.``, ``module verification failed: ...``) only in the first step that earns
them. What the guest needs is checked by tests/fixtures/qemu.sh; nothing is installed here.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
LDMOD_C = HERE / "kboot_ldmod.c"
QEMU_SH = HERE / "fixtures" / "qemu.sh"
# tsc=unstable: under TCG the kernel's delayed TSC recalibration ("tsc: Refined TSC clocksource calibration",
# "clocksource: Switched to clocksource tsc") lands ~2 s into the boot, in the middle of the first steps' logs;
# with the TSC set aside (hpet is used) the log stays quiet after /init starts (checked for 30 s).
BASE_APPEND = "console=ttyS0 quiet panic=-1 tsc=unstable"
MODULE_INIT_IGNORE_MODVERSIONS = 1
MODULE_INIT_IGNORE_VERMAGIC = 2
_TIMESTAMP = re.compile(r"\[\s*\d+\.\d+\] ?")
_RAW = re.compile(r"<(\d+)>(.*)")


class KbootError(RuntimeError):
    """The guest could not be built, booted or understood; the message ends with the console's tail."""


@dataclass(frozen=True)
class Step:
    """One step of a boot: ``rmmod`` names are unloaded first, then ``modules`` are loaded in order, then
    ``shell`` (busybox sh, output kept) runs.

    ``tool`` is ``"ldmod"`` (finit_module, errno recorded) or ``"insmod"`` (kmod's own insmod: its output
    and exit status recorded, errno unknown). ``params`` and ``flags`` (MODULE_INIT_IGNORE_*) apply to every
    load of the step; ``flags`` only with ldmod.
    """

    name: str
    modules: Sequence[Path] = ()
    rmmod: Sequence[str] = ()
    tool: str = "ldmod"
    params: str = ""
    flags: int = 0
    shell: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "modules", tuple(Path(m) for m in self.modules))
        object.__setattr__(self, "rmmod", tuple(self.rmmod))
        if self.tool not in ("ldmod", "insmod"):
            raise ValueError(f"Step {self.name!r}: tool must be 'ldmod' or 'insmod', not {self.tool!r}")
        if self.flags and self.tool != "ldmod":
            raise ValueError(f"Step {self.name!r}: flags need tool='ldmod'")


@dataclass(frozen=True)
class Load:
    """One module load: ``errno`` 0 when loaded, else the positive errno (``None`` for kmod's insmod)."""

    module: Path  # as given in Step.modules
    errno: int | None
    errname: str  # "" when loaded (or unknown), else e.g. "ENOENT"
    strerror: str = ""
    status: int = 0  # exit status of the tool (ldmod: 0 or 1; insmod: kmod's)
    output: tuple[str, ...] = ()  # what kmod's insmod printed (stdout and stderr); empty for ldmod


@dataclass(frozen=True)
class Unload:
    """One ``delete_module(name, O_NONBLOCK)``, as rmmod does it."""

    name: str
    errno: int
    errname: str
    strerror: str = ""


@dataclass(frozen=True)
class LogLine:
    """One kernel log line: syslog level 0-7 (3 = KERN_ERR, 4 = KERN_WARNING, ...), facility, text."""

    level: int
    facility: int
    text: str
    stamp: float | None = None  # the [seconds] the kernel printed, when it did


@dataclass(frozen=True)
class StepResult:
    name: str
    unloads: tuple[Unload, ...]
    loads: tuple[Load, ...]
    log: tuple[LogLine, ...]
    tainted: int = 0  # /proc/sys/kernel/tainted at the end of the step
    loaded: tuple[str, ...] = ()  # the names in /proc/modules at the end of the step
    shell_output: tuple[str, ...] = ()  # what Step.shell printed

    @property
    def dmesg(self) -> list[str]:
        """The kernel log lines of this step, without timestamps, as the kernel printed them."""
        return [line.text for line in self.log]


@dataclass(frozen=True)
class BootResult:
    steps: Mapping[str, StepResult]
    console: str = field(repr=False)  # the whole serial output, for failure messages
    seconds: float  # wall time from starting qemu to its exit
    uptime: float  # the guest's /proc/uptime when /init started: the kernel's own boot time
    release: str  # uname -r in the guest
    cmdline: str  # /proc/cmdline in the guest
    boot_log: tuple[LogLine, ...] = field(default=(), repr=False)  # the kernel log up to /init

    def tail(self, lines: int = 60) -> str:
        return console_tail(self.console, lines)


def console_tail(console: str, lines: int = 60) -> str:
    """The last lines of a serial console, led by the kernel's panic line if it panicked."""
    text = console.replace("\r", "").splitlines()
    panic = next((line for line in text if "Kernel panic - not syncing" in line), "")
    panic = panic[panic.find("Kernel panic"):].strip()
    return (f"(the kernel panicked: {panic})\n" if panic else "") + "\n".join(text[-lines:])


def vmlinuz(kernel_tree) -> Path:
    """The kernel image of a tests/conftest.py KernelTree (anything with .root and .release)."""
    return Path(kernel_tree.root) / "boot" / f"vmlinuz-{kernel_tree.release}"


@functools.cache
def tools() -> dict[str, str]:
    """Paths of qemu, busybox (static), gcc, kmod (may be "") from tests/fixtures/qemu.sh, which names the
    Debian packages to install when something is missing."""
    run = subprocess.run(["sh", str(QEMU_SH)], capture_output=True, text=True)
    if run.returncode != 0:
        raise KbootError(run.stderr.strip() or f"{QEMU_SH} failed ({run.returncode})")
    return dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)


@functools.cache
def ldmod() -> Path:
    """kboot_ldmod.c compiled static, once per process (in a temporary folder removed at exit)."""
    out = Path(tempfile.mkdtemp(prefix="kboot-ldmod-")) / "ldmod"
    atexit.register(shutil.rmtree, out.parent, True)
    run = subprocess.run([tools()["gcc"], "-static", "-O2", "-Wall", "-o", str(out), str(LDMOD_C)],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise KbootError(f"gcc -static {LDMOD_C} failed:\n{run.stderr}")
    return out


class _Cpio:
    """A cpio "newc" archive as the kernel's initramfs unpacker reads it (parents before children)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._seen: set[str] = set()
        self._ino = 0

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        self._ino += 1
        nlink = 2 if mode & 0o170000 == 0o040000 else 1
        raw = name.encode() + b"\0"
        fields = [self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(raw), 0]
        head = b"070701" + b"".join(b"%08X" % f for f in fields) + raw
        self._parts += [head, b"\0" * (-len(head) % 4), data, b"\0" * (-len(data) % 4)]

    def dir(self, path: str) -> None:
        path = path.strip("/")
        if not path or path in self._seen:
            return
        self.dir(os.path.dirname(path))
        self._seen.add(path)
        self._entry(path, 0o040755)

    def _new(self, path: str) -> str:
        path = path.strip("/")
        if path in self._seen:
            raise KbootError(f"initramfs: {path} added twice")
        self.dir(os.path.dirname(path))
        self._seen.add(path)
        return path

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(self._new(path), 0o100000 | mode, data)

    def symlink(self, path: str, target: str) -> None:
        if path.strip("/") not in self._seen:
            self._entry(self._new(path), 0o120777, target.encode())

    def chardev(self, path: str, major: int, minor: int) -> None:
        self._entry(self._new(path), 0o020600, rdev=(major, minor))

    def bytes(self) -> bytes:
        self._ino += 1
        trailer = b"070701" + b"".join(b"%08X" % f for f in [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0]) + b"TRAILER!!!\0"
        return b"".join(self._parts) + trailer + b"\0" * (-len(trailer) % 4)


def _shared_libs(binary: str) -> list[str]:
    """The files ldd names for a binary (the loader included), as absolute paths."""
    run = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
    libs = []
    for line in run.stdout.splitlines():
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m:
            libs.append(m[1])
    return libs


def _init_script(steps: Sequence[Step], places: Mapping[Path, str]) -> str:
    q = shlex.quote
    out = [
        "#!/bin/sh",
        "export PATH=/bin:/sbin:/usr/bin:/usr/sbin",
        "mount -t proc proc /proc",
        "mount -t sysfs sysfs /sys",
        "mount -t devtmpfs devtmpfs /dev",
        "exec </dev/console >/dev/console 2>&1",
        "dmesg -n 1  # kernel messages stay off the console: each step reads its own with dmesg",
        'read up _ </proc/uptime; echo "@@BK begin $up $(uname -r)"',
        'echo "@@BK cmdline $(cat /proc/cmdline)"',
        'echo "@@BK bootlog"', "dmesg -r -c | sed 's/^/@@BK| /'", 'echo "@@BK bootlog end"',
    ]
    for i, step in enumerate(steps):
        out += [f'echo "@@BK step {i}"', "dmesg -c >/dev/null"]
        if step.rmmod:
            out.append("/bin/ldmod " + " ".join(f"-r {q(n)}" for n in step.rmmod))
        for mod in step.modules:
            where = places[mod.resolve()]
            folder, base = os.path.dirname(where), os.path.basename(where)
            if step.tool == "ldmod":
                out.append(f"(cd {q(folder)} && /bin/ldmod -p {q(step.params)} -f {step.flags} {q(base)})")
            else:
                out.append(
                    f"(cd {q(folder)} && out=$(/kmod/insmod {q(base)} {q(step.params)} 2>&1); rc=$?; "
                    f"[ -z \"$out\" ] || printf '%s\\n' \"$out\" | sed 's/^/@@BK> /'; echo \"@@BK insmod {q(base)} $rc\")"
                )
        if step.shell:
            out.append(f"( {step.shell}\n) 2>&1 | sed 's/^/@@BK$ /'")
        out.append('echo "@@BK state $(cat /proc/sys/kernel/tainted) $(cut -d" " -f1 /proc/modules | tr "\\n" " ")"')
        out += ['echo "@@BK dmesg"', "dmesg -r -c | sed 's/^/@@BK| /'", f'echo "@@BK end {i}"']
    out += ['echo "@@BK done"', "poweroff -f", ""]
    return "\n".join(out)


def initramfs(steps: Sequence[Step]) -> bytes:
    """The initramfs of a boot: busybox and its applet links, ldmod, kmod (if a step uses insmod), the
    modules (each distinct file once, as /m/<n>/<its name>) and /init."""
    t = tools()
    img = _Cpio()
    for d in ("dev", "proc", "sys", "tmp", "root"):
        img.dir(d)
    img.chardev("dev/console", 5, 1)
    img.file("bin/busybox", Path(t["busybox"]).read_bytes(), 0o755)
    applets = subprocess.run([t["busybox"], "--list-full"], capture_output=True, text=True, check=True).stdout
    img.symlink("bin/sh", "/bin/busybox")
    for applet in applets.split():
        img.symlink(applet, "/bin/busybox")
    img.file("bin/ldmod", ldmod().read_bytes(), 0o755)
    if any(s.tool == "insmod" for s in steps):
        if not t.get("kmod"):
            raise KbootError("a step uses kmod's insmod but kmod is not installed: apt-get install kmod")
        img.file("kmod/kmod", Path(t["kmod"]).read_bytes(), 0o755)
        img.symlink("kmod/insmod", "/kmod/kmod")
        for lib in _shared_libs(t["kmod"]):
            img.file(lib, Path(lib).resolve().read_bytes(), 0o755)
    places: dict[Path, str] = {}
    for step in steps:
        for mod in step.modules:
            real = mod.resolve()
            if real not in places:
                if not real.is_file():
                    raise KbootError(f"Step {step.name!r}: no module file {mod}")
                if any(c.isspace() for c in real.name):
                    raise KbootError(f"Step {step.name!r}: {real.name!r}: module file names may not hold spaces")
                places[real] = f"/m/{len(places)}/{real.name}"
                img.file(places[real], real.read_bytes())
    img.file("init", _init_script(steps, places).encode(), 0o755)
    return img.bytes()


def _errno_fields(rest: str) -> tuple[str, int, str, str]:
    """'ARG ERRNO ERRNAME STRERROR...' of an ldmod line."""
    arg, num, name, *msg = rest.split(" ", 3)
    return arg, int(num), "" if name == "OK" else name, msg[0] if msg else ""


def _log_line(mark: str) -> LogLine:
    """'@@BK| <prio>[ stamp] text' (a line of ``dmesg -r``) as a LogLine, the timestamp dropped."""
    raw = mark[6:]
    r = _RAW.match(raw)
    prio, text = (int(r[1]), r[2]) if r else (6, raw)
    t = _TIMESTAMP.match(text)
    stamp = float(t[0].strip("[] ")) if t else None
    return LogLine(prio & 7, prio >> 3, text[t.end():] if t else text, stamp)


def parse(console: str, steps: Sequence[Step]) -> tuple[dict[str, StepResult], float, str, str, tuple[LogLine, ...]]:
    """The step results, the guest's uptime at /init, its release, cmdline and boot log, from the serial
    output."""
    tail = console_tail(console)
    lines = console.replace("\r", "").split("\n")
    marks = [line[line.index("@@BK"):] for line in lines if "@@BK" in line]
    if not any(m.startswith("@@BK begin ") for m in marks):
        raise KbootError(f"the guest's /init never started (no '@@BK begin'); console tail:\n{tail}")
    begin = next(m for m in marks if m.startswith("@@BK begin ")).split()
    uptime, release = float(begin[2]), begin[3] if len(begin) > 3 else ""
    cmdline = next((m[len("@@BK cmdline "):] for m in marks if m.startswith("@@BK cmdline ")), "")
    boot_log: tuple[LogLine, ...] = ()
    if "@@BK bootlog" in marks and "@@BK bootlog end" in marks:
        a, b = marks.index("@@BK bootlog"), marks.index("@@BK bootlog end")
        boot_log = tuple(_log_line(m) for m in marks[a + 1:b] if m.startswith("@@BK|"))
    results: dict[str, StepResult] = {}
    pos = 0
    for i, step in enumerate(steps):
        try:
            pos = marks.index(f"@@BK step {i}", pos)
            end = marks.index(f"@@BK end {i}", pos)
        except ValueError:
            raise KbootError(f"step {i} ({step.name!r}) did not finish in the guest; console tail:\n{tail}") from None
        unloads, loads, log, output, shell = [], [], [], [], []
        tainted, loaded = 0, ()
        in_log = False
        for m in marks[pos + 1:end]:
            if m == "@@BK dmesg":
                in_log = True
            elif m.startswith("@@BK|"):
                log.append(_log_line(m))
            elif in_log:
                continue
            elif m.startswith("@@BK$"):
                shell.append(m[6:])
            elif m.startswith("@@BK state "):
                tainted, *names = m.split()[2:]
                tainted, loaded = int(tainted), tuple(names)
            elif m.startswith("@@BK unload "):
                name, num, errname, msg = _errno_fields(m[len("@@BK unload "):])
                unloads.append(Unload(name, num, errname, msg))
            elif m.startswith("@@BK load "):
                _, num, errname, msg = _errno_fields(m[len("@@BK load "):])
                mod = step.modules[len(loads)]
                loads.append(Load(mod, num, errname, msg, status=int(num != 0)))
            elif m.startswith("@@BK> ") or m == "@@BK>":
                output.append(m[6:])
            elif m.startswith("@@BK insmod "):
                status = int(m.rsplit(" ", 1)[1])
                loads.append(Load(step.modules[len(loads)], None, "", "", status=status, output=tuple(output)))
                output = []
        if len(loads) != len(step.modules) or len(unloads) != len(step.rmmod):
            raise KbootError(f"step {i} ({step.name!r}): {len(loads)}/{len(step.modules)} loads and "
                             f"{len(unloads)}/{len(step.rmmod)} unloads reported; console tail:\n{tail}")
        results[step.name] = StepResult(step.name, tuple(unloads), tuple(loads), tuple(log), tainted, loaded,
                                        tuple(shell))
        pos = end
    if "@@BK done" not in marks[pos:]:
        raise KbootError(f"the guest did not reach the end of /init; console tail:\n{tail}")
    return results, uptime, release, cmdline, boot_log


def _sections(data: bytes) -> dict[str, tuple[int, int]]:
    """Section name -> (file offset, size) of an ELF64 little-endian file (a .ko)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not an ELF64 little-endian file")
    shoff = int.from_bytes(data[0x28:0x30], "little")
    shentsize, shnum, shstrndx = (int.from_bytes(data[o:o + 2], "little") for o in (0x3A, 0x3C, 0x3E))
    heads = [data[shoff + i * shentsize:shoff + (i + 1) * shentsize] for i in range(shnum)]

    def where(h: bytes) -> tuple[int, int]:
        return int.from_bytes(h[0x18:0x20], "little"), int.from_bytes(h[0x20:0x28], "little")

    stroff, _ = where(heads[shstrndx])
    out = {}
    for h in heads:
        start = stroff + int.from_bytes(h[0:4], "little")
        out[data[start:data.index(b"\0", start)].decode()] = where(h)
    return out


def edit_modinfo(src: Path, dst: Path, key: str, value: str) -> str:
    """Copy a .ko, replacing the value of ``key=`` in its .modinfo (the first one) by ``value``, which may
    not be longer than the old one (the rest is NUL padding, which the kernel skips). Returns the old value.
    The module's signature, if any, no longer matches afterwards."""
    data = bytearray(Path(src).read_bytes())
    off, size = _sections(bytes(data))[".modinfo"]
    start = data.find(key.encode() + b"=", off, off + size)
    if start < 0 or (start > off and data[start - 1] != 0):
        raise ValueError(f"{src}: no {key}= in .modinfo")
    vstart = start + len(key) + 1
    vend = data.index(b"\0", vstart)
    old, new = data[vstart:vend].decode(), value.encode()
    if len(new) > vend - vstart:
        raise ValueError(f"{src}: {key}={value!r} is longer than {key}={old!r}")
    data[vstart:vend] = new + b"\0" * (vend - vstart - len(new))
    Path(dst).write_bytes(bytes(data))
    return old


def edit_version_crc(src: Path, dst: Path, symbol: str, crc: int | None = None) -> int:
    """Copy a .ko, replacing the CRC its __versions section records for ``symbol`` (default: the old CRC
    with its lowest bit flipped). Returns the old CRC."""
    data = bytearray(Path(src).read_bytes())
    off, size = _sections(bytes(data))["__versions"]
    for entry in range(off, off + size, 64):  # struct modversion_info { unsigned long crc; char name[56]; }
        name = bytes(data[entry + 8:entry + 64]).split(b"\0", 1)[0].decode()
        if name == symbol:
            old = int.from_bytes(data[entry:entry + 8], "little")
            data[entry:entry + 8] = (old ^ 1 if crc is None else crc).to_bytes(8, "little")
            Path(dst).write_bytes(bytes(data))
            return old
    raise ValueError(f"{src}: no {symbol} in __versions")


def boot(kernel: Path, steps: Sequence[Step], *, append: str = "", timeout: int = 120,
         memory: int = 512) -> BootResult:
    """Boot ``kernel`` (a vmlinuz) with ``BASE_APPEND <append>``, run ``steps`` and power off. Raises
    KbootError on a timeout, a guest that did not get through its /init, or unreadable output."""
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ValueError(f"step names must be unique: {names}")
    if not Path(kernel).is_file():
        raise KbootError(f"no kernel image at {kernel}")
    with tempfile.TemporaryDirectory(prefix="kboot-") as tmp:
        img = Path(tmp) / "initramfs.cpio"
        img.write_bytes(initramfs(steps))
        cmdline = f"{BASE_APPEND} {append}".strip()
        cmd = [tools()["qemu"], "-accel", "tcg", "-m", str(memory), "-smp", "1", "-nographic", "-no-reboot",
               "-nic", "none", "-kernel", str(kernel), "-initrd", str(img), "-append", cmdline]
        start = time.monotonic()
        try:
            run = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode("utf-8", "replace")
            started = re.findall(r"@@BK step (\d+)", out)
            where = f" (in step {steps[int(started[-1])].name!r})" if started else ""
            raise KbootError(f"qemu did not power off within {timeout}s{where}; console tail:\n{console_tail(out)}"
                             ) from None
        seconds = time.monotonic() - start
    console = run.stdout.decode("utf-8", "replace")
    if run.returncode != 0:
        raise KbootError(f"qemu exited with {run.returncode}; console tail:\n{console_tail(console)}")
    results, uptime, release, guest_cmdline, boot_log = parse(console, steps)
    return BootResult(results, console, seconds, uptime, release, guest_cmdline, boot_log)


__all__ = [
    "MODULE_INIT_IGNORE_MODVERSIONS", "MODULE_INIT_IGNORE_VERMAGIC", "BootResult", "KbootError", "Load", "LogLine",
    "Step", "StepResult", "Unload", "boot", "console_tail", "edit_modinfo", "edit_version_crc", "initramfs", "ldmod",
    "parse", "tools", "vmlinuz",
]
