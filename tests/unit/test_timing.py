"""tests/timing.py: an inner pytest session of two files whose fixture sleeps; its table and its TSV rows."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]

SLOW = """
import time

import pytest


@pytest.fixture(scope="module")
def slow():
    time.sleep({sleep})


def test_one(slow):
    time.sleep(0.1)


def test_two(slow):
    pass
"""


def test_table_and_tsv(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(**{"tests/unit/test_a": SLOW.format(sleep=0.2),
                           "tests/integration/test_b": SLOW.format(sleep=0.7)})
    tsv = pytester.path / "timing.tsv"
    tsv.write_text("quickstart's rows\t1.0\n")
    monkeypatch.setenv("BUILDKIT_TIMING_TSV", str(tsv))
    result = pytester.runpytest("-p", "timing")
    result.assert_outcomes(passed=4)

    table = result.stdout.str().split("seconds per test file", 1)[1].splitlines()[1:]
    assert table[0].split() == ["setup", "call", "teardown", "total", "file"]
    rows = {line.split()[-1]: [float(n) for n in line.split()[:-1]] for line in table[1:4]}
    assert list(rows) == ["tests/integration/test_b.py", "tests/unit/test_a.py", "all"]
    assert 0.7 <= rows["tests/integration/test_b.py"][0] < 3  # the fixture's sleep: a setup phase, in its file
    assert 0.2 <= rows["tests/unit/test_a.py"][0] < 0.7
    assert all(0.1 <= r[1] < 1 for r in rows.values())  # test_one's own sleep: the call phase
    assert rows["all"][3] == pytest.approx(sum(r[3] for path, r in rows.items() if path != "all"), abs=0.15)

    lines = tsv.read_text().splitlines()
    assert lines[0] == "quickstart's rows\t1.0"  # appended, not overwritten
    parts = dict(line.split("\t") for line in lines[1:])
    assert list(parts) == ["pytest: setup phases (session fixtures)", "pytest: tests/integration/test_b.py",
                           "pytest: tests/unit"]
    assert 0.9 <= float(parts["pytest: setup phases (session fixtures)"]) < 6
    assert all(re.fullmatch(r"\d+\.\d", seconds) for seconds in parts.values())


def test_no_tsv_without_the_variable(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_c="def test_c():\n    pass\n")
    monkeypatch.delenv("BUILDKIT_TIMING_TSV", raising=False)
    result = pytester.runpytest("-p", "timing")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*seconds per test file*", "*  test_c.py", "*  all"])
    assert list(pytester.path.glob("*.tsv")) == []
