"""Shared fixtures. Real inputs live under $BUILDKIT_FIXTURES (default /var/tmp/bk-fixtures), made by the
scripts in tests/fixtures/ (``.ci/run`` runs them first; a test that needs one runs it if missing)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIXTURES = Path(os.environ.get("BUILDKIT_FIXTURES", "/var/tmp/bk-fixtures"))
DOCKER_SOCK = "unix:///run/bk-docker.sock"  # the private engine of tests/fixtures/dockerd.sh

pytest_plugins = ["timing"]  # tests/timing.py: the seconds per test file, as a table at the end of the run


@dataclass(frozen=True)
class KernelTree:
    root: Path  # the dpkg -x root
    release: str  # e.g. 6.1.0-50-amd64
    suite: str = "bookworm"  # the Debian suite whose kernel it is (its compiler builds its modules)

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.release

    @property
    def build(self) -> Path:
        return self.modules / "build"


def _kernel(folder: str, suite: str = "bookworm", abi: str = "newest") -> KernelTree:
    """tests/fixtures/kernel.sh into $BUILDKIT_FIXTURES/FOLDER, once."""
    dest = FIXTURES / folder
    if not (dest / ".done").exists():
        subprocess.run(["sh", str(HERE / "fixtures" / "kernel.sh"), str(dest)], check=True,
                       env={**os.environ, "BUILDKIT_KSUITE": suite, "BUILDKIT_KABI": abi})
    return KernelTree(dest / "root", (dest / "abi").read_text().strip(), suite)


@pytest.fixture(scope="session")
def kernel_tree() -> KernelTree:
    """Bookworm's newest 6.1 ABI: headers, kbuild, image."""
    return _kernel("kernel")


@pytest.fixture(scope="session")
def kernel_tree_oldest() -> KernelTree:
    """The oldest bookworm 6.1 ABI the archive still offers (headers, kbuild, image), for tests across ABIs."""
    return _kernel("kernel-oldest", abi="oldest")


@pytest.fixture(scope="session")
def kernel_tree_bullseye() -> KernelTree:
    """Bullseye's 5.10 (Alibaba Cloud Linux 3 runs a 5.10), read through a private apt state of bullseye."""
    return _kernel("kernel-bullseye", "bullseye")


@pytest.fixture(scope="session")
def kernel_tree_trixie() -> KernelTree:
    """Trixie's 6.12 (merged /usr, .ko.xz modules)."""
    return _kernel("kernel-trixie", "trixie")


@pytest.fixture(scope="session")
def docker_host() -> str:
    """A Docker engine with the bookworm base image: $DOCKER_HOST, else the private engine of
    tests/fixtures/dockerd.sh, started here if need be (and stopped at the end of the session)."""
    from buildkit.container.engine import EngineError, connect

    host = os.environ.get("DOCKER_HOST") or DOCKER_SOCK
    started = False
    try:
        connect(host)
    except EngineError:
        if host != DOCKER_SOCK or shutil.which("dockerd") is None:
            pytest.fail(f"no Docker engine at {host}: apt-get install docker.io; sh tests/fixtures/dockerd.sh start")
        subprocess.run(["sh", str(HERE / "fixtures" / "dockerd.sh"), "start"], check=True)
        started = True
    subprocess.run(["sh", str(HERE / "fixtures" / "images.sh"), "bookworm"], check=True,
                   env={**os.environ, "DOCKER_HOST": host})
    yield host
    if started:
        subprocess.run(["sh", str(HERE / "fixtures" / "dockerd.sh"), "stop"], check=False)


@pytest.fixture(scope="session")
def sources() -> Path:
    """The upstream tarballs (from Debian's source packages, checked by sha256), fetched once a session."""
    dest = FIXTURES / "sources"
    subprocess.run(["sh", str(HERE / "fixtures" / "sources.sh"), str(dest)], check=True, capture_output=True)
    return dest


def readelf(path: str) -> dict:
    """What binutils says about ``path`` (readelf -V -d -l), parsed independently of pyelftools."""
    out = subprocess.run(["readelf", "-W", "-V", "-d", "-l", path], capture_output=True, text=True, check=True,
                         env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}).stdout
    dyn = re.findall(r"^\s*0x[0-9a-f]+ \((\w+)\)\s+(.*)$", out, re.M)
    get = lambda tag: [v for t, v in dyn if t == tag]  # noqa: E731
    bracket = lambda values: [re.search(r"\[(.*)\]", v)[1] for v in values]  # noqa: E731
    flags = " ".join(get("FLAGS") + get("FLAGS_1"))
    stack = re.search(r"^\s*GNU_STACK\s+.*?\s(R?W?E?)\s+0x[0-9a-f]+$", out, re.M)
    needs = out.split("Version needs section", 1)[1] if "Version needs section" in out else ""
    glibc = re.findall(r"^\s+0x[0-9a-f]+:\s+Name: GLIBC_(\d+(?:\.\d+)+)\s", needs, re.M)  # not the definitions
    relro = "GNU_RELRO" in out
    full = relro and (bool(get("BIND_NOW")) or re.search(r"\bBIND_NOW\b|\bNOW\b", flags) is not None)
    return {
        "needed": bracket(get("NEEDED")),
        "soname": (bracket(get("SONAME")) or [None])[0],
        "rpath": [p for v in bracket(get("RPATH")) for p in v.split(":") if p],
        "runpath": [p for v in bracket(get("RUNPATH")) for p in v.split(":") if p],
        "glibc": max(glibc, key=lambda v: tuple(map(int, v.split(".")))) if glibc else None,
        "relro": "full" if full else "partial" if relro else "none",
        "nx_stack": stack is not None and "E" not in stack[1],
        "textrel": bool(get("TEXTREL")) or "TEXTREL" in flags,
    }


SECOND_ENGINE = {"BK_DOCKER_SOCK": "/run/bk-docker2.sock", "BK_DOCKER_ROOT": "/var/lib/bk-docker2",
                 "BK_DOCKER_EXEC_ROOT": "/run/bk-docker2", "BK_DOCKER_PIDFILE": "/run/bk-dockerd2.pid",
                 "BK_DOCKER_LOG": "/var/log/bk-dockerd2.log"}


class SecondEngine:
    """A second private engine beside the first (tests/fixtures/dockerd.sh with its own socket and state),
    holding the first one's bookworm base image (docker save | docker load: no registry here)."""

    host = "unix://" + SECOND_ENGINE["BK_DOCKER_SOCK"]

    def __init__(self, first: str) -> None:
        self.first = first

    def _dockerd(self, action: str) -> None:
        subprocess.run(["sh", str(HERE / "fixtures" / "dockerd.sh"), action], check=True,
                       env={**os.environ, **SECOND_ENGINE})

    def start(self) -> None:
        self._dockerd("start")
        have = subprocess.run(["docker", "-H", self.host, "image", "inspect", "buildkit-base:debian-bookworm"],
                              capture_output=True)
        if have.returncode != 0:
            subprocess.run(f"docker -H {self.first} save buildkit-base:debian-bookworm | docker -H {self.host} load",
                           shell=True, check=True, capture_output=True)

    def stop(self) -> None:
        self._dockerd("stop")


@pytest.fixture()
def second_engine(docker_host):
    engine = SecondEngine(docker_host)
    engine.start()
    yield engine
    engine.stop()


PORTABLE = FIXTURES / "portable"


@pytest.fixture(scope="session")
def portable_build(sources) -> dict:
    """``buildkit python --portable`` for real (CPython 3.13.5, OpenSSL 3.0.20, SQLite 3.40.1, zlib, bzip2, xz,
    libffi on npm's glibc 2.17 sysroot), built once a session; its BUILDKIT.json record, plus the tree's path
    and the toolchain's. A prefix from an earlier run is reused when it still verifies (a no-op)."""
    import json
    import sys

    prefix = PORTABLE / "py313"
    PORTABLE.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([sys.executable, "-m", "buildkit", "python", "3.13.5", "--portable", "--prefix", str(prefix),
                          "--source-dir", str(sources), "--cache", str(PORTABLE / "cache"), "--json"],
                         capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads(run.stdout)
    record["_stderr"] = run.stderr
    record["_tree"] = os.path.realpath(prefix)
    record["_toolchain"] = str(PORTABLE / "cache" / "toolchains" / "glibc2.17-x86_64-1.0.0")
    return record


@dataclass(frozen=True)
class OldRoot:
    """A root whose only C library is glibc 2.17 (the sysroot's runtime, as CentOS 7 has it), busybox-static
    for a shell, RHEL's CA bundle path (/etc/pki/tls/cert.pem) and nothing else: no python3, no /etc/ssl."""

    root: Path

    def run(self, argv: list[str], env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
        """``argv`` inside the root (chroot, in a private mount namespace with /proc mounted; env -i + ``env``)."""
        import shlex

        inner = " ".join(shlex.quote(a) for a in ["env", "-i", "PATH=/usr/bin:/bin", "HOME=/root",
                                                   *(f"{k}={v}" for k, v in (env or {}).items()), *argv])
        script = f"mount -t proc proc {shlex.quote(str(self.root / 'proc'))} && exec chroot {shlex.quote(str(self.root))} {inner}"
        return subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", script], capture_output=True, text=True,
                              timeout=timeout)


def make_old_root(sysroot: Path, dest: Path) -> OldRoot:
    """Build :class:`OldRoot` at ``dest`` from a glibc 2.17 sysroot (``lib64/`` holds its runtime)."""
    busybox = shutil.which("busybox")
    assert busybox, "apt-get install busybox-static"
    if dest.exists():
        shutil.rmtree(dest)
    for folder in ("bin", "usr/bin", "etc/pki/tls", "tmp", "proc", "dev", "root", "opt"):
        (dest / folder).mkdir(parents=True, exist_ok=True)
    (dest / "tmp").chmod(0o1777)
    shutil.copytree(sysroot / "lib64", dest / "lib64", symlinks=True)
    (dest / "usr" / "lib64").symlink_to("../lib64")
    shutil.copy(busybox, dest / "bin" / "busybox")
    for applet in ("sh", "env", "ls", "cat", "rm", "mkdir", "cp", "readlink", "dirname", "tar", "gzip", "grep",
                   "sed", "head", "tail", "uname", "id", "true", "false", "test"):
        (dest / "bin" / applet).symlink_to("busybox")
    for name, minor in (("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)):
        os.mknod(dest / "dev" / name, 0o666 | 0o020000, os.makedev(1, minor))
    ca = next(p for p in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt") if os.path.exists(p))
    shutil.copy(ca, dest / "etc" / "pki" / "tls" / "cert.pem")
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc" / "group").write_text("root:x:0:\n")
    (dest / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    libc = sorted((dest / "lib64").glob("libc-*.so"))
    assert [p.name for p in libc] == ["libc-2.17.so"], libc
    return OldRoot(dest)


@pytest.fixture(scope="session")
def glibc217_root(portable_build, tmp_path_factory) -> OldRoot:
    sysroot = Path(portable_build["_toolchain"]) / "x86_64-unknown-linux-gnu" / "sysroot"
    return make_old_root(sysroot, tmp_path_factory.mktemp("glibc217") / "root")


# The plain session build (``good``): test_python_build's subject, test_portable's negative control.
GOOD_CPYTHON, GOOD_OPENSSL, GOOD_SQLITE = "3.11.2", "3.0.20", "3.40.1"


@pytest.fixture(scope="session")
def good(sources) -> dict:
    """The real plain build, CPython 3.11.2 with a private OpenSSL 3.0.20 and SQLite 3.40.1 (Debian's full tree).
    A prefix from an earlier run is reused when it still passes verification (the command is then a no-op); one
    that no longer does (a private library changed or deleted since) is rebuilt as buildkit says, with --clean."""
    import json
    import sys

    builds = FIXTURES / "python-builds"
    builds.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "buildkit", "python", GOOD_CPYTHON, f"--with-openssl={GOOD_OPENSSL}",
            f"--with-sqlite={GOOD_SQLITE}", "--prefix", str(builds / "py311"), "--source-dir", str(sources),
            "--cache", str(builds / "cache"), "--json"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    if run.returncode == 1 and "no longer passes its verification" in run.stderr:
        run = subprocess.run([*args, "--clean"], capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads(run.stdout)
    record["_stderr"] = run.stderr
    return record
