"""The error contract of every command, swept: each leaf of click's command tree x classes of bad input.

A command joins by itself: a leaf of the tree with no entry in ``SWEEP`` fails
:func:`test_every_command_is_in_the_sweep`. Each entry is an argv with ``{F}`` where the input goes (or a
reason it takes no input file). The contract asserted, from the README: exit 0, 1 or 2 by meaning (2 for bad
input), never a traceback, never a wait forever (a FIFO nobody writes to), an error that is one
``buildkit: error:`` line naming the file (as its bytes, even when they are not UTF-8), and nothing written
outside the folders the command was given. Output to ``/dev/full`` and to a closed pipe, and Ctrl-C, are
swept over every command's ``--help`` and over a reader blocked on input.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from buildkit.cli import cli

SYMVERS = "0x12345678\tfoo\tdrivers/x/prov\tEXPORT_SYMBOL\t\n0x9abcdef0\tbar\tvmlinux\tEXPORT_SYMBOL_GPL\t\n"

# command -> argv after "buildkit" ({F}: the input; {D}: a scratch folder the command may write), or why none
SWEEP: dict[str, list[str] | str] = {
    "symvers show": ["symvers", "show", "{F}"],
    "symvers diff": ["symvers", "diff", "{F}", "{GOOD}"],
    "symvers diagnose": ["symvers", "diagnose", "{F}"],
    "symvers deps": ["symvers", "deps", "{F}"],
    "symvers load": ["symvers", "load", "{F}", "--kernel", "{KERNEL}"],
    "symvers who-exports": ["symvers", "who-exports", "foo", "--symvers", "{F}"],
    "symvers check": ["symvers", "check", "M={F}", "KERNELDIR={D}"],
    "verify": ["verify", "{F}"],
    "doctor": ["doctor", "{F}"],
    "python": ["python", "3.13.5", "--prefix", "{D}/py", "--emit-script", "{D}/build.sh", "--source-dir", "{F}"],
    "fetch": ["fetch", "cpython@3.13.5", "--source-dir", "{F}", "--dest", "{D}/dest"],
    "bundle": ["bundle", "--python", "{F}", "--out", "{D}/out"],
    "ci matrix": ["ci", "matrix", "--format", "json", "--matrix", "{F}"],
    "ci python": "needs a Docker engine before its input matters (tests/integration/test_ci_*.py)",
    "ci symvers": "needs a Docker engine before its input matters (tests/integration/test_ci_symvers.py)",
    "ci render": "takes an image name, no input file; its -o is an output (tests/unit/test_container_images.py)",
}


def leaves(group: click.Group, path: tuple[str, ...] = ()) -> list[str]:
    ctx = click.Context(group)
    found = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        found += leaves(cmd, (*path, name)) if isinstance(cmd, click.Group) else [" ".join((*path, name))]
    return found


def test_every_command_is_in_the_sweep():
    assert sorted(leaves(cli)) == sorted(SWEEP), "a new command needs its SWEEP entry (an argv with {F}, or why not)"


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x55]) + data[middle + 1:]


# class -> how to make it at path P (returns the path to pass)
def make_input(kind: str, where: Path) -> Path:
    body = (SYMVERS * 200).encode()
    path = where / f"input-{kind}"
    if kind == "missing":
        return path
    if kind == "directory":
        path.mkdir()
        return path
    if kind == "fifo":
        os.mkfifo(path)
        return path
    if kind == "non-utf8-name":
        path = Path(os.fsdecode(bytes(where) + b"/caf\xe9-\xff.symvers"))
        path.write_bytes(body)
        return path
    data = {
        "empty": b"",
        "nul-bytes": b"\0" * 4096,
        "non-utf8-bytes": b"\xff\xfe\xe9 not text \x80\x81\n" * 50,
        "gz-truncated": _gz(body)[:200],
        "gz-bitflip": _flip(_gz(body)),
        "gz-of-garbage": _gz(os.urandom(4096)),
        "xz-truncated": lzma.compress(body)[:200],
        "bz2-truncated": bz2.compress(body)[:200],
        "zst-truncated": __import__("zstandard").ZstdCompressor().compress(body)[:200],  # a dependency (.ko.zst)
        "long-line": b"x" * (100 << 20),
    }[kind]
    path.write_bytes(data)
    return path


KINDS = ["missing", "empty", "directory", "fifo", "nul-bytes", "non-utf8-bytes", "non-utf8-name", "gz-truncated",
         "gz-bitflip", "gz-of-garbage", "xz-truncated", "bz2-truncated", "zst-truncated"]


def run_buildkit(argv: list[str], cwd: Path, timeout: int = 60, **kw) -> subprocess.CompletedProcess:
    home = cwd.parent / "home"  # the user's own caches (~/.cache/buildkit) may be written: not the cwd
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "LC_ALL": "C.UTF-8", "TERM": "dumb"}
    kw.setdefault("capture_output", True)
    return subprocess.run([sys.executable, "-m", "buildkit", *argv], cwd=cwd, timeout=timeout, env=env, **kw)


def check_contract(run: subprocess.CompletedProcess, name: str, given: Path, cwd: Path) -> None:
    err = run.stderr.decode("utf-8", "surrogateescape")
    assert b"Traceback" not in run.stderr, f"{name}: a traceback:\n{err[-2000:]}"
    assert run.returncode in (0, 1, 2), f"{name}: exit {run.returncode}\n{err[-1000:]}"
    if run.returncode == 2:
        errors = [line for line in run.stderr.splitlines() if line.startswith(b"buildkit: error:")]
        assert len(errors) == 1, f"{name}: {len(errors)} error lines:\n{err[-1000:]}"
        # as its bytes; click's own messages (an option's Path check) show undecodable bytes as U+FFFD
        raw = os.fsencode(given.name)
        assert raw in errors[0] or raw.decode("utf-8", "replace").encode() in errors[0], \
            f"{name}: the error does not name {given.name!r}: {errors[0]!r}"
    assert sorted(p.name for p in cwd.iterdir()) == [], f"{name}: wrote into the working folder"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", [c for c, argv in SWEEP.items() if isinstance(argv, list)])
def test_bad_input_keeps_the_contract(command, kind, tmp_path):
    scratch, cwd = tmp_path / "scratch", tmp_path / "cwd"
    scratch.mkdir()
    cwd.mkdir()
    good = tmp_path / "good.symvers"
    good.write_text(SYMVERS)
    given = make_input(kind, tmp_path)
    kernel = tmp_path / "kernel"  # a kernel as symvers load takes one: headers with Module.symvers and release
    (kernel / "include" / "config").mkdir(parents=True)
    (kernel / "include" / "config" / "kernel.release").write_text("6.1.0-test-amd64\n")
    (kernel / "include" / "config" / "auto.conf").write_text("CONFIG_SMP=y\nCONFIG_MODULE_UNLOAD=y\nCONFIG_MODVERSIONS=y\n")
    (kernel / "Module.symvers").write_text(SYMVERS)
    argv = [a.replace("{F}", str(given)).replace("{D}", str(scratch)).replace("{GOOD}", str(good))
            .replace("{KERNEL}", str(kernel)) for a in SWEEP[command]]
    try:
        run = run_buildkit(argv, cwd)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command} with a {kind} input: no answer in 60 s (waiting on it forever?)")
    check_contract(run, f"{command} [{kind}]", given, cwd)


@pytest.mark.parametrize("command", ["symvers show", "symvers diagnose", "symvers who-exports", "symvers diff"])
def test_a_100_mb_line_keeps_the_contract(command, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    good = tmp_path / "good.symvers"
    good.write_text(SYMVERS)
    given = make_input("long-line", tmp_path)
    argv = [a.replace("{F}", str(given)).replace("{GOOD}", str(good)) for a in SWEEP[command]]
    check_contract(run_buildkit(argv, cwd, timeout=120), f"{command} [100 MB line]", given, cwd)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
@pytest.mark.parametrize("command", ["symvers show", "symvers diagnose", "doctor", "symvers who-exports"])
def test_an_unreadable_file_keeps_the_contract(command, tmp_path):
    """As a user who may not read it (nobody): root reads everything, so the test drops to uid 65534 (in a
    folder that user may enter: pytest's own are root's alone)."""
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="bk-sweep-", dir="/tmp"))
    tmp_path.chmod(0o755)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    cwd.chmod(0o777)
    given = tmp_path / "secret.symvers"
    given.write_text(SYMVERS)
    given.chmod(0o000)
    argv = [a.replace("{F}", str(given)) for a in SWEEP[command]]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LC_ALL": "C.UTF-8",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                          "buildkit", *argv], cwd=cwd, capture_output=True, timeout=60, env=env)
    try:
        check_contract(run, f"{command} [unreadable]", given, cwd)
        assert run.returncode == 2 and (b"Permission denied" in run.stderr or b"not readable" in run.stderr), run.stderr
    finally:
        shutil.rmtree(tmp_path)


def every_leaf() -> list[list[str]]:
    return [c.split() for c in SWEEP]


@pytest.mark.parametrize("argv", every_leaf(), ids=" ".join)
def test_output_to_a_full_disk_or_a_closed_pipe(argv, tmp_path):
    """Every command's help (the one output every command has) to /dev/full: one line, exit 2; into a pipe
    closed after its first line: exit 0, nothing on stderr."""
    with open("/dev/full", "wb") as full:
        run = run_buildkit([*argv, "--help"], tmp_path, capture_output=False, stdout=full, stderr=subprocess.PIPE)
    assert run.returncode == 2 and run.stderr.count(b"\n") == 1, run.stderr
    assert run.stderr.startswith(b"buildkit: error: cannot write the output: No space left on device"), run.stderr
    proc = subprocess.Popen([sys.executable, "-m", "buildkit", *argv, "--help"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path)
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""


def sigint_as_a_terminal_gives_it() -> None:
    """In the child: SIGINT at its default, as a terminal's foreground job has it. A run started in the
    background of a non-interactive shell (``./.ci/run &``) inherits SIGINT ignored, and Python then keeps
    ignoring it: Ctrl-C cannot be tested in a process that cannot receive it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("command", ["symvers show", "symvers diagnose"])
def test_ctrl_c_while_reading_is_exit_130(command, tmp_path):
    """A reader blocked on a pipe whose writer says nothing yet, stopped with SIGINT: one line, exit 130."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # a writer that never writes: the reader waits
    try:
        argv = [a.replace("{F}", str(fifo)) for a in SWEEP[command]]
        proc = subprocess.Popen([sys.executable, "-m", "buildkit", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=tmp_path, preexec_fn=sigint_as_a_terminal_gives_it)
        time.sleep(1.5)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        # click puts a newline after the terminal's ^C first
        assert proc.stderr.read().lstrip(b"\n") == b"buildkit: interrupted\n"
    finally:
        os.close(writer)
