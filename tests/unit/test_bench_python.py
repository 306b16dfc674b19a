"""bench/bench_python.py's report on buildkit's own steps outside the compilers, from build records alone (the
benchmark itself builds CPython three times: it is run by hand)."""

from __future__ import annotations

import importlib
import platform
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

from buildkit.pybuild.record import BuildRecord

BENCH = Path(__file__).resolve().parents[2] / "bench"
COMPONENTS = {"openssl": 169.0, "sqlite": 53.0, "cpython": 158.1}  # 380.1 s in the compilers


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))  # the benchmarks import their helpers as `common`
    return importlib.import_module("bench_python")


def record(extract: float, seconds: float) -> BuildRecord:
    steps = {"plan": 0.4, "fetch": 2.0, "extract": extract, "verify": 1.5, "switch": 0.6}
    return BuildRecord(build_id="3.11.2-0123456789", seconds=seconds, component_seconds=COMPONENTS,
                       step_seconds=steps)


def test_each_run_and_the_medians_judged_against_the_target(bench):
    runs = [bench.Overhead.of(record(3.7, 389.0), 389.5), bench.Overhead.of(record(7.5, 393.0), 393.4),
            bench.Overhead.of(record(4.5, 389.9), 390.3)]
    assert runs[0].figures() == pytest.approx((8.2, 8.9, 0.7, 9.4))
    lines, ok = bench.overhead_report(runs)
    assert ok and len(lines) == 1 + 3 + 1 + 1
    assert lines[1] == ("  run 1   plan 0.40, fetch 2.00, extract 3.70, verify 1.50, switch 0.60 s:  8.20 s; "
                        "total - compilers   8.9 s (other +0.7 s); wall - compilers   9.4 s")
    assert lines[4].startswith("  median  plan 0.40, fetch 2.00, extract 4.50, verify 1.50, switch 0.60 s:  9.00 s; ")
    assert lines[-1] == "buildkit's overhead outside the compilers (its steps summed, median): 9.00 s (target <= 10 s: ok)"


def test_over_the_target(bench):
    lines, ok = bench.overhead_report([bench.Overhead.of(record(8.0, 395.0), 396.0)])
    assert not ok and lines[-1].endswith("12.50 s (target <= 10 s: over)")


def test_a_record_without_the_steps_is_refused(bench):
    old = BuildRecord(build_id="3.11.2-0123456789", seconds=389.0, component_seconds=COMPONENTS)
    with pytest.raises(ValueError, match="no step_seconds for plan, fetch, extract, verify, switch"):
        bench.Overhead.of(old, 389.5)


def test_the_extraction_path_names_this_interpreter(bench):
    path = bench.extraction_path()
    assert f"Python {platform.python_version()} " in path
    assert ("tarfile's data filter and buildkit's own checks" in path) is hasattr(tarfile, "data_filter")
