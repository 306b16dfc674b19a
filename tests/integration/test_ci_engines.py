"""``buildkit ci python --engine A --engine B``: the cells of a matrix spread over two real engines (two
private dockerds side by side, tests/conftest.py), each engine with its own builder image, one cell at a
time on each; an engine that dies mid-build fails only its cell, which goes back to the queue for the
other engine. The run is stopped once that is seen (full builds are test_ci_python's and the benchmark's).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration

IMAGE = "debian:12=buildkit-base:debian-bookworm"
LABEL = "org.buildkit.ci"


CELLS = {"python-3.13.5-openssl-3.0.20-sqlite-3.40.1-debian12-x86_64",
         "python-3.11.2-openssl-3.0.20-sqlite-3.40.1-debian12-x86_64"}


def building(host: str) -> list[str]:
    """The cells whose build containers run on the engine at ``host``. Only cells: an engine new to the
    builder image also runs a short probe container with the same label. One list call, no inspect per
    container (a container removed in between would raise)."""
    import docker

    client = docker.APIClient(base_url=host)
    try:
        names = [(c.get("Labels") or {}).get("org.buildkit.what", "") for c in client.containers(filters={"label": LABEL})]
    finally:
        client.close()
    return [name for name in names if name in CELLS]


def test_two_engines_share_the_matrix_and_a_dead_engine_gives_its_cell_back(docker_host, second_engine, sources,
                                                                            tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/not-used.sock"}  # only --engine counts
    log = tmp_path / "stderr.log"
    with open(log, "w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "buildkit", "ci", "python", "3.13.5", "3.11.2",
                                 "--with-openssl", "--with-sqlite", "--image", IMAGE, "--source-dir", str(sources),
                                 "--out", str(out), "--jobs", "1", "--engine", docker_host, "--engine",
                                 second_engine.host], stdout=subprocess.DEVNULL, stderr=err_file, text=True, env=env)
    try:
        deadline = time.monotonic() + 900  # the second engine builds its own builder image first
        on_both = None
        while time.monotonic() < deadline and proc.poll() is None:
            first, second = building(docker_host), building(second_engine.host)
            if first and second:
                on_both = (first, second)
                break
            time.sleep(2)
        assert on_both, "the two cells never ran at the same time on the two engines: " + log.read_text()[-3000:]
        assert {on_both[0][0], on_both[1][0]} == CELLS
        lost = on_both[1][0]
        building_there = f"[{second_engine.host}]     | ==> ["  # build.sh runs: the engine dies mid-build
        while time.monotonic() < deadline and proc.poll() is None and building_there not in log.read_text():
            time.sleep(0.5)
        assert building_there in log.read_text(), log.read_text()[-3000:]
        second_engine.stop()  # the engine dies under its cell
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None and "goes back to the queue" not in log.read_text():
            time.sleep(1)
        assert on_both[0] == building(docker_host)  # the first engine's cell goes on
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=180)
    lines = log.read_text().splitlines()
    err = "\n".join(lines)
    assert any(line.startswith(f"[{docker_host}] ==> [") for line in lines), err[-3000:]
    assert any(line.startswith(f"[{second_engine.host}] ==> [") for line in lines), err[-3000:]
    assert any(f"[{second_engine.host}] {lost}: the engine failed" in line and "goes back to the queue" in line
               for line in lines), err[-3000:]
    assert proc.returncode == 130 and "interrupted" in lines[-1], err[-2000:]
    assert building(docker_host) == []  # SIGTERM, like Ctrl-C, removed what ran
