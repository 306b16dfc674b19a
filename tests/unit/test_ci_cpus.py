"""``buildkit ci python --cpus N`` without an engine: the option reaches CiOptions, the default make jobs follow
it, a --cpus the engine does not have is one line before anything is made, and a build container asks the
engine for N CPUs (HostConfig.NanoCpus). tests/integration/test_ci_cpus_quota.py checks the quota on a real engine."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_container_engine import FakeAPI, FakeEngine

from buildkit.cli import cli
from buildkit.container import python as cipy
from buildkit.container.images import parse_image
from buildkit.container.matrix import Cell
from buildkit.container.python import CiOptions, build_container, cpus_beyond, default_jobs, run_cells
from buildkit.errors import InputError
from buildkit.pybuild.build import FetchOptions


class Recording(FakeAPI):
    """Remembers the host config a container was created with."""

    def __init__(self) -> None:
        super().__init__([], 0, True)
        self.host_config: dict = {}

    def create_container(self, image, **kw):
        self.host_config = kw["host_config"]
        return super().create_container(image, **kw)


def engine_of(ncpu: int, api: FakeAPI | None = None) -> FakeEngine:
    engine = FakeEngine(api or Recording())
    engine._info = {"NCPU": ncpu, "Architecture": "x86_64"}
    return engine


def options(tmp_path: Path, **kw) -> CiOptions:
    return CiOptions(tmp_path / "out", FetchOptions(tmp_path / "cache"), **kw)


@pytest.mark.parametrize("cpus, engine_cpus, jobs", [(None, 2, 2), (1, 2, 1), (2, 2, 2), (4, 2, 2), (None, 1, 1)])
def test_default_jobs_are_the_cpus_a_container_may_use(cpus, engine_cpus, jobs):
    assert default_jobs(cpus, engine_cpus) == jobs


@pytest.mark.parametrize("cpus, ncpu, said", [
    (None, 2, ""), (1, 2, ""), (2, 2, ""),
    (3, 2, "--cpus 3: the engine at unix:///fake.sock has 2 CPUs"),
    (2, 1, "--cpus 2: the engine at unix:///fake.sock has 1 CPU"),
])
def test_cpus_beyond_names_the_value_and_the_engines_count(cpus, ncpu, said):
    assert cpus_beyond(cpus, engine_of(ncpu)) == said


@pytest.mark.parametrize("cpus, nano", [(1, 1_000_000_000), (2, 2_000_000_000), (None, None)])
def test_a_build_container_asks_the_engine_for_its_cpus(tmp_path, cpus, nano):
    api = Recording()
    with build_container(engine_of(2, api), "img", "cell", options(tmp_path, cpus=cpus)):
        pass
    assert api.host_config["nano_cpus"] == nano and api.host_config["network_mode"] == "none"
    assert api.removed


def test_run_cells_refuses_more_cpus_than_the_engine_has_before_anything_is_made(tmp_path):
    cell = Cell(parse_image("debian:12"), "3.13.5", "3.0.20", "3.40.1")
    with pytest.raises(InputError) as err:
        run_cells([cell], options(tmp_path, cpus=3), engine_of(2), lambda line: None)
    assert err.value.message == "--cpus 3: the engine at unix:///fake.sock has 2 CPUs"
    assert err.value.fix == "pass --cpus 2 or fewer, or leave --cpus out (no limit)"
    assert not (tmp_path / "out").exists()


def invoke_ci_python(monkeypatch, tmp_path: Path, *extra: str) -> tuple[object, list[CiOptions]]:
    """``buildkit ci python`` up to run_cells, which only records the options it was given."""
    seen: list[CiOptions] = []

    def record(cells, opts, slots, say, started=None):
        seen.append(opts)
        return []

    monkeypatch.setattr(cipy, "run_cells", record)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # the command's SIGTERM handler stays its own
    args = ["ci", "python", "3.13.5", "--image", "debian:12", "--out", str(tmp_path / "out"),
            "--engine", "unix:///nonexistent/buildkit-test.sock", *extra]
    return CliRunner().invoke(cli, args, prog_name="buildkit"), seen


def test_cli_cpus_reaches_the_options(monkeypatch, tmp_path):
    result, seen = invoke_ci_python(monkeypatch, tmp_path, "--cpus", "1", "--jobs", "3")
    assert result.exit_code == 0, result.output
    assert [(o.cpus, o.jobs) for o in seen] == [(1, 3)]
    result, seen = invoke_ci_python(monkeypatch, tmp_path)
    assert [(o.cpus, o.jobs) for o in seen] == [(None, None)]


def test_cli_cpus_below_one_is_one_line():
    run = subprocess.run([sys.executable, "-m", "buildkit", "ci", "python", "3.13.5", "--image", "debian:12",
                          "--out", "/tmp/x", "--cpus", "0"], capture_output=True, text=True)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "--cpus" in lines[0] and "0 is not in the range x>=1" in lines[0], run.stderr


def test_cli_help_says_what_cpus_models():
    out = " ".join(CliRunner().invoke(cli, ["ci", "python", "--help"], terminal_width=200).output.split())
    assert "--cpus N Hold each build container to N of its engine's CPUs" in out
    assert "--cpus 1 on two engines of one 2-core machine models two 1-core hosts" in out
