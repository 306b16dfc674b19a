"""The README's set-up, as a new user runs it, on fresh minimal Debian machines.

Each machine is a container of a ``debootstrap --variant=minbase`` image (bookworm, trixie; made by
``tests/fixtures/images.sh``): no python3, no pip, PEP 668. The repository is copied in as a fresh clone
would have it (tracked and unignored files of this work tree) and ``./quickstart`` runs with nothing done
before it. On bookworm that is the whole main job: the default Python built and verified; on trixie the
install step (``./quickstart install``, the first half of both README commands). Then, on both:
``buildkit`` is on PATH from its own virtual environment (not the system's site-packages),
``buildkit --version`` and ``buildkit symvers show`` on the kernel fixture's real ``Module.symvers``
work, and a second run finds everything in place and changes nothing.

Network: the containers use the host's network, for apt, pip and Debian's source packages only; the
build itself reaches nothing. Where this host trusts extra CAs for its egress to the package registries
(``/usr/local/share/ca-certificates``, ``$PIP_CERT``), the container gets the same: that is the network
the machine sits on, not a set-up step (a machine on the open internet needs none of it).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_SCRIPTS = ROOT / "tests" / "fixtures"
SRC = "/src/buildkit"
EXTRA_CAS = Path("/usr/local/share/ca-certificates")
PREFIX = "/opt/buildkit/python"  # quickstart's default for the main job


def _tree() -> list[str]:
    """What a fresh clone holds: the tracked and the new, unignored files of this work tree."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         check=True, capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def _network_env() -> dict[str, str]:
    env = {}
    if any(EXTRA_CAS.glob("*.crt")):
        env["PIP_CERT"] = "/etc/ssl/certs/ca-certificates.crt"  # Debian's bundle, extra CAs included
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


class Machine:
    """A fresh machine: one container, root, the host's network, the repository in /src/buildkit."""

    def __init__(self, container, suite: str, logs: Path) -> None:
        self.c = container
        self.suite = suite
        self.logs = logs

    def sh(self, script: str, *, log: str | None = None, check: bool = True):
        path = self.logs / f"{self.suite}-{log}.log" if log else None
        result = self.c.call(["/bin/sh", "-c", script], cwd="/", env=_network_env(), log=path, check=False)
        if check and result.exit_code != 0:
            tail = "\n".join(result.tail[-40:])
            pytest.fail(f"{self.suite}: `{script}` exited {result.exit_code}; log {path}:\n{tail}")
        return result


@pytest.fixture(scope="module")
def engine(docker_host):
    from buildkit.container.engine import connect

    subprocess.run(["sh", str(FIXTURE_SCRIPTS / "images.sh"), "bookworm", "trixie"], check=True,
                   env={**os.environ, "DOCKER_HOST": docker_host})
    return connect(docker_host)


def _boot(engine, suite: str, logs: Path):
    container = engine.container(f"buildkit-base:debian-{suite}", what=f"fresh {suite}", user="root", workdir="/",
                                 network="host")
    container.__enter__()
    machine = Machine(container, suite, logs)
    machine.sh(f"mkdir -p {SRC} {EXTRA_CAS}")
    assert machine.sh("command -v python3 pip pip3 || true").output.strip() == "", "the base image is not minimal"
    container.copy_into([(ROOT / p, p) for p in _tree()], SRC, owner=(0, 0))
    cas = sorted(EXTRA_CAS.glob("*.crt"))
    if cas:
        container.copy_into([(ca, ca.name) for ca in cas], str(EXTRA_CAS), owner=(0, 0))
    return machine


def _machine_after(engine, tmp_path_factory, suite: str, command: str, log: str):
    machine = _boot(engine, suite, tmp_path_factory.mktemp("fresh-logs"))
    machine.first = machine.sh(f"cd {SRC} && {command}", log=log, check=False)
    return machine


@pytest.fixture(scope="module")
def bookworm(engine, tmp_path_factory):
    """Fresh bookworm, after the README's first command: ./quickstart (install + the main job)."""
    machine = _machine_after(engine, tmp_path_factory, "bookworm", "./quickstart", "quickstart")
    yield machine
    machine.c.__exit__(None, None, None)


@pytest.fixture(scope="module")
def trixie(engine, tmp_path_factory):
    """Fresh trixie, after the install step: ./quickstart install."""
    machine = _machine_after(engine, tmp_path_factory, "trixie", "./quickstart install", "install")
    yield machine
    machine.c.__exit__(None, None, None)


@pytest.fixture(params=["bookworm", "trixie"])
def machine(request):
    machine = request.getfixturevalue(request.param)
    if machine.first.exit_code != 0:
        pytest.fail(f"{machine.suite}: ./quickstart exited {machine.first.exit_code}:\n" + "\n".join(machine.first.tail))
    return machine


def test_main_job_builds_and_verifies_the_default_python_on_bookworm(bookworm):
    result = bookworm.first
    assert result.exit_code == 0, "\n".join(result.tail)
    from buildkit.catalog import defaults

    DEFAULTS = defaults()

    out = bookworm.sh(f"{PREFIX}/bin/python3 -c 'import ssl, sqlite3, sys; "
                      "from smtplib import SMTP_SSL; "
                      "print(sys.version.split()[0], ssl.OPENSSL_VERSION.split()[1], sqlite3.sqlite_version)'").output
    assert out.split() == [DEFAULTS["cpython"], DEFAULTS["openssl"], DEFAULTS["sqlite"]]
    # The verification table ends the main job; every required check passed (exit 0) and the private
    # libraries are the ones loaded.
    log = (bookworm.logs / "bookworm-quickstart.log").read_text()
    assert f"OpenSSL {DEFAULTS['openssl']}" in log and "_ssl libraries" in log
    assert "FAIL" not in log


def test_buildkit_is_on_path_from_its_own_environment(machine):
    out = machine.sh("command -v buildkit; readlink /usr/local/bin/buildkit; buildkit --version").output.split("\n")
    assert out[0] == "/usr/local/bin/buildkit"
    assert out[1] == "/opt/buildkit/venv/bin/buildkit"
    from buildkit import __version__

    assert out[2] == f"buildkit, version {__version__}"
    # Not in the system's site-packages, and no pip of the system's was needed (PEP 668 stays intact).
    assert machine.sh("/usr/bin/python3 -c 'import buildkit'", check=False).exit_code != 0
    assert machine.sh("/usr/bin/python3 -m pip --version", check=False).exit_code != 0
    assert machine.sh("test -f /usr/lib/python3*/EXTERNALLY-MANAGED", check=False).exit_code == 0


def test_symvers_show_on_a_real_module_symvers(machine, kernel_tree):
    from buildkit.kmod.symvers import read_symvers

    symvers = kernel_tree.build / "Module.symvers"
    machine.c.copy_into([(symvers, "Module.symvers")], "/tmp", owner=(0, 0))
    out = machine.sh("buildkit symvers show /tmp/Module.symvers").output.splitlines()
    table = read_symvers(str(symvers))
    assert out[0] == f"# /tmp/Module.symvers: {len(table.entries)} symbols, layout {table.layout}"
    assert len(out) == len(table.entries) + 1
    assert len(table.entries) > 20000  # the real one, not a sample


def test_second_run_is_quick_and_changes_nothing(machine):
    snapshot = ("find /opt/buildkit/venv /usr/local/bin -printf '%p %y %s %T@\\n' | LC_ALL=C sort | sha256sum; "
                "stat -c %Y /var/lib/dpkg/status")
    before = machine.sh(snapshot).output
    again = machine.sh(f"cd {SRC} && ./quickstart install")
    assert "apt packages: all present" in again.output
    assert "/opt/buildkit/venv is up to date" in again.output
    assert machine.sh(snapshot).output == before


def _another_python() -> str:
    """An interpreter with venv other than Debian's /usr/bin/python3 when this host has one (this kind of
    machine has its own), else Debian's: what PYTHON= names must be what the environment is made from. A
    wrapper on PATH (a pyenv shim) is asked for the interpreter it runs."""
    debian = os.path.realpath("/usr/bin/python3")
    ask = "import os, sys, venv, ensurepip; print(os.path.realpath(sys.executable))"
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(folder, "python3")
        if not os.access(candidate, os.X_OK):
            continue
        run = subprocess.run([candidate, "-c", ask], capture_output=True, text=True)
        real = run.stdout.strip()
        if run.returncode == 0 and real and real != debian:
            return real
    return debian


def test_python_picks_the_interpreter_and_bad_values_are_one_line(tmp_path):
    """On this host: PYTHON= makes the environment from that interpreter; a bad one is one line, exit 2."""
    env = {**os.environ, "BUILDKIT_VENV": str(tmp_path / "venv"), "BUILDKIT_BINDIR": str(tmp_path / "bin")}
    bad = subprocess.run(["./quickstart", "install"], cwd=ROOT, env={**env, "PYTHON": "/no/such/python3"},
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "quickstart: PYTHON=/no/such/python3: not found; name an interpreter (>= 3.9), e.g. PYTHON=/usr/bin/python3")
    usage = subprocess.run(["./quickstart", "nosuch"], cwd=ROOT, capture_output=True, text=True)
    assert (usage.returncode, usage.stderr.strip()) == (
        2, "quickstart: unknown command 'nosuch'; usage: ./quickstart [install|test]")

    base = _another_python()
    done = subprocess.run(["./quickstart", "install"], cwd=ROOT, env={**env, "PYTHON": base},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    venv_python = tmp_path / "venv" / "bin" / "python"
    got = subprocess.run([str(venv_python), "-c", "import sys, os; print(os.path.realpath(sys._base_executable), "
                          "sys.prefix)"], capture_output=True, text=True, check=True).stdout.split()
    assert got == [base, str(tmp_path / "venv")]
    link = tmp_path / "bin" / "buildkit"
    assert os.readlink(link) == str(tmp_path / "venv" / "bin" / "buildkit")
    assert subprocess.run([str(link), "--version"], capture_output=True, text=True).returncode == 0
