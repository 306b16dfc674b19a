"""buildkit.pybuild.clock, and where build_python times its own steps (a record's ``step_seconds``): each
tarball's unpacking apart from its component's seconds and summed over the components, and the switch inside
the record's total, the record written again once the link moved. On a clock that ticks one second a reading."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from buildkit.errors import CheckFailed
from buildkit.pybuild import build
from buildkit.pybuild.clock import STEPS, StepClock
from buildkit.pybuild.install import build_record
from buildkit.pybuild.plan import Plan, Request, make_plan
from buildkit.pybuild.record import BuildRecord, Modules
from tests.unit.test_plan import CENTOS7


def ticking() -> StepClock:
    """A clock whose every reading is one second after the one before (made at 0)."""
    readings = itertools.count()
    return StepClock(now=lambda: float(next(readings)))


def test_each_step_sums_its_runs_and_every_step_is_reported_in_order():
    clock = ticking()
    for _ in range(3):
        with clock.step("extract"):
            pass
    with pytest.raises(RuntimeError), clock.step("verify"):  # a step that fails took its time all the same
        raise RuntimeError
    assert clock.seconds() == {"plan": 0.0, "fetch": 0.0, "extract": 3.0, "verify": 1.0, "switch": 0.0}
    assert list(clock.seconds()) == list(STEPS) and clock.elapsed() == 9.0
    with pytest.raises(KeyError, match="'compile' is not one of buildkit's steps"), clock.step("compile"):
        pass


class Runner:
    """What build_component asks of a runner: the component's steps, here a prefix made and 7 s reported."""

    def run_component(self, comp, number: int, total: int) -> float:
        os.makedirs(comp.prefix)
        return 7.0


def test_unpacking_is_the_extract_step_not_the_components_seconds(tmp_path, monkeypatch):
    unpacked = []
    monkeypatch.setattr(build, "_extract", lambda archive, dest: unpacked.append(dest))
    plan = make_plan(Request("3.11.2", str(tmp_path / "py")), CENTOS7)  # private OpenSSL and SQLite, CPython
    clock = ticking()
    took = build._run_components(plan, plan.request, {c.package: tmp_path / c.package for c in plan.components},
                                 Runner(), clock)
    assert took == {"openssl": 7.0, "sqlite": 7.0, "cpython": 7.0}
    assert unpacked == [c.srcdir for c in plan.components] and clock.seconds()["extract"] == 3.0


def _built(tmp_path: Path) -> tuple[Plan, BuildRecord, StepClock]:
    """A plan whose build folder and work tree are there, and its record as build_python has it before the
    switch (the clock at 9 s)."""
    plan = make_plan(Request("3.11.2", str(tmp_path / "py")), CENTOS7)
    os.makedirs(plan.install_dir)
    os.makedirs(plan.work_dir)
    clock = ticking()
    for step in ("plan", "fetch", "extract", "verify"):
        with clock.step(step):
            pass
    return plan, build_record(plan, None, Modules(), clock.elapsed(), step_seconds=clock.seconds()), clock


def test_the_switch_is_timed_into_the_record_written_again_after_the_link_moved(tmp_path):
    plan, record, clock = _built(tmp_path)
    passed = SimpleNamespace(ok=True, failed=[])
    got = build._install(plan.request, plan, record, passed, None, False, clock)
    assert os.readlink(plan.request.prefix) == plan.install_dir and not os.path.exists(plan.work_dir)
    assert BuildRecord.load(plan.request.prefix) == got and got.step_seconds["switch"] == 1.0
    assert got.step_seconds == {**record.step_seconds, "switch": 1.0}
    assert got.seconds == 12.0 >= sum(got.step_seconds.values()) + sum(got.component_seconds.values())


def test_a_failed_verification_keeps_the_record_of_the_steps_so_far_and_switches_nothing(tmp_path):
    plan, record, clock = _built(tmp_path)
    failed = SimpleNamespace(ok=False, failed=[SimpleNamespace(name="SQLite version", detail="3.7.17")])
    with pytest.raises(CheckFailed, match="verification failed: SQLite version; .* was left as it was"):
        build._install(plan.request, plan, record, failed, None, False, clock)
    assert not os.path.lexists(plan.request.prefix) and os.path.isdir(plan.work_dir)
    assert BuildRecord.load(plan.install_dir) == record and record.step_seconds["switch"] == 0.0
