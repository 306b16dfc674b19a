"""buildkit.container.spread: the scheduler alone, its engines stand-ins that answer or not (the real
engines, two dockerds and a killed container, are tests/integration/test_ci_engines.py's)."""

from __future__ import annotations

import threading

from buildkit.container.engine import ContainerGone, EngineError
from buildkit.container.spread import EngineSlot, EngineUnfit, Spread, first_answering
from buildkit.errors import BuildFailed


class StandIn:
    """What Spread asks of an engine: whether it answers, and to remove an item's containers."""

    def __init__(self, answers: bool = True) -> None:
        self.up = answers
        self.removed: list[tuple[str, str]] = []

    def answers(self) -> bool:
        return self.up

    def remove_labelled(self, key: str, value: str) -> None:
        self.removed.append((key, value))


def slot(name: str, engine: StandIn | None = None) -> EngineSlot:
    engine = engine or StandIn()
    return EngineSlot(name, lambda: engine)


def spread(slots, build, lines):
    return Spread(slots, lines.append, name=str, title=lambda item: f"{item} here", build=build,
                  failed=lambda item, e, s: (item, "failed", s.name, str(e)),
                  stranded=lambda item, why: (item, "stranded", why))


def test_every_item_built_once_over_two_engines():
    lines: list[str] = []
    done: list[tuple[str, str]] = []
    lock = threading.Lock()

    def build(s, item, say):
        say(f"building {item}")
        with lock:
            done.append((item, s.name))
        return (item, "ok", s.name)

    results = spread([slot("a"), slot("b")], build, lines).run([f"cell{i}" for i in range(6)])
    assert sorted(r[0] for r in results) == [f"cell{i}" for i in range(6)] and all(r[1] == "ok" for r in results)
    assert sorted(i for i, _ in done) == [f"cell{i}" for i in range(6)]
    taken = [line.split("] ", 1)[1] for line in lines if "==>" in line]
    assert sorted(int(t.split("[")[1].split("/")[0]) for t in taken) == [1, 2, 3, 4, 5, 6]
    assert sorted(t.split("] ", 1)[1] for t in taken) == sorted(f"cell{i} here" for i in range(6))
    assert all(line.startswith(("[a] ", "[b] ")) for line in lines)


def test_an_item_the_engine_lost_goes_to_the_other_engine_once():
    lines: list[str] = []
    dead = StandIn(answers=False)

    a_tried = threading.Event()

    def build(s, item, say):
        if s.name == "a":
            a_tried.set()
            raise ContainerGone("the container stopped")
        assert a_tried.wait(10)  # b holds its first cell until a has lost one
        return (item, "ok", s.name)

    a, b = slot("a", dead), slot("b")
    results = spread([a, b], build, lines).run(["x", "y"])
    assert sorted(results) == [("x", "ok", "b"), ("y", "ok", "b")]
    assert a.dead == "the container stopped"  # it no longer answers: it left the run
    assert any("goes back to the queue" in line and "this engine leaves the run" in line for line in lines)


def test_the_items_own_failure_stays_and_an_unfit_engine_leaves():
    lines: list[str] = []

    def build(s, item, say):
        if item == "bad":
            raise BuildFailed("make failed")
        if s.name == "arm":
            raise EngineUnfit("the engine runs aarch64")
        return (item, "ok", s.name)

    arm, x86 = slot("arm"), slot("x86")
    results = spread([arm, x86], build, lines).run(["bad", "good"])
    assert ("good", "ok", "x86") in results
    bad = [r for r in results if r[0] == "bad"]
    assert len(bad) == 1 and bad[0][1] == "failed" and bad[0][3] == "make failed"  # not retried elsewhere


def test_with_every_engine_gone_the_rest_is_stranded_with_the_reasons():
    lines: list[str] = []

    def build(s, item, say):
        raise EngineUnfit(f"{s.name} cannot")

    results = spread([slot("a"), slot("b")], build, lines).run(["x", "y", "z"])
    assert len(results) == 3
    stranded = [r for r in results if r[1] == "stranded"]
    assert stranded and all("a: a cannot" in r[2] and "b: b cannot" in r[2] for r in stranded)


def test_first_answering_skips_the_dead_and_names_them_all_when_none_answers():
    up = StandIn()
    gone = EngineSlot("gone", lambda: (_ for _ in ()).throw(EngineError("connection refused")))
    assert first_answering([gone, EngineSlot("up", lambda: up)]) is up and gone.dead == "connection refused"
    other = EngineSlot("other", lambda: (_ for _ in ()).throw(EngineError("no such host")))
    try:
        first_answering([EngineSlot("gone", gone._connect), other])
    except EngineError as e:
        assert "no engine answers: connection refused; no such host" == e.message
    else:
        raise AssertionError("no error")
