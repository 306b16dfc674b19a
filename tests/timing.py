"""Where a test run's time goes: the seconds of each test file's setup, call and teardown phases, as a table
at the end of the run. Setup is where the session fixtures make their shared real builds (kernel trees,
tarballs, images), charged to the first test that asks for them. With $BUILDKIT_TIMING_TSV set, the run's
parts are appended to that file, ``part<TAB>seconds`` a line, for the table that ``./quickstart test``
prints at its very end: all setup phases as one part, then each file's call and teardown, the files under
a directory of GROUPED as one part. Loaded by tests/conftest.py; ``pytest -p timing`` elsewhere."""

from __future__ import annotations

import os

import pytest

PHASES = ("setup", "call", "teardown")
GROUPED = ("tests/unit/",)  # these directories' files are one part of the TSV: many short files


class Timing:
    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = {}  # test file -> phase -> seconds

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path = report.nodeid.split("::", 1)[0]
        phases = self.seconds.setdefault(path, dict.fromkeys(PHASES, 0.0))
        phases[report.when] += report.duration

    def parts(self) -> list[tuple[str, float]]:
        """The TSV's rows: all setup phases, then the call and teardown of each file or GROUPED directory."""
        parts = {"pytest: setup phases (session fixtures)": sum(p["setup"] for p in self.seconds.values())}
        for path, phases in sorted(self.seconds.items()):
            part = "pytest: " + next((g.rstrip("/") for g in GROUPED if path.startswith(g)), path)
            parts[part] = parts.get(part, 0.0) + phases["call"] + phases["teardown"]
        return list(parts.items())

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.seconds:
            return
        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "seconds per test file (setup includes the session fixtures' builds)")
        write(f"{'setup':>8} {'call':>8} {'teardown':>8} {'total':>8}  file")
        whole = {ph: sum(p[ph] for p in self.seconds.values()) for ph in PHASES}
        for path, phases in [*sorted(self.seconds.items()), ("all", whole)]:
            write(" ".join(f"{phases[ph]:8.1f}" for ph in PHASES) + f" {sum(phases.values()):8.1f}  {path}")
        tsv = os.environ.get("BUILDKIT_TIMING_TSV")
        if tsv:
            with open(tsv, "a", encoding="utf-8") as out:
                out.writelines(f"{part}\t{seconds:.1f}\n" for part, seconds in self.parts())


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(Timing(), "buildkit-timing")
