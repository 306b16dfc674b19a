"""Work spread over several Docker engines: one item per engine at a time, each engine a thread.

An item the engine lost (its container gone, the connection dropped, the engine unfit for it) goes back to
the queue once, for another engine; an engine that no longer answers leaves the run. A failure inside the
item's own work stays that item's failure. Ctrl-C removes the containers of the items being built (only
the main thread sees it) and raises. What an item is and how it is built is the caller's
(:mod:`buildkit.container.python` builds matrix cells with it).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from buildkit.container.engine import ContainerGone, Engine, EngineError, Say
from buildkit.errors import BuildkitError

__all__ = ["EngineSlot", "EngineUnfit", "Spread", "first_answering"]

Item = TypeVar("Item")
Result = TypeVar("Result")


class EngineUnfit(EngineError):
    """The engine cannot do this work (another architecture): it leaves the run, the item stays."""


class EngineSlot:
    """One engine of a run: its name as given (URL or docker context), connected on first use; ``dead``
    says why it left the run."""

    def __init__(self, name: str, connect: Callable[[], Engine]) -> None:
        self.name = name
        self._connect = connect
        self.engine: Engine | None = None
        self.dead = ""

    def get(self) -> Engine:
        if self.engine is None:
            self.engine = self._connect()
        return self.engine

    def answers(self) -> bool:
        """Whether the engine still answers (a failed item is the engine's fault only when it does not)."""
        try:
            return self.get().answers()
        except EngineError:
            return False


def first_answering(slots: Sequence[EngineSlot]) -> Engine:
    """The first engine that answers; the ones before it leave the run (``dead`` says why)."""
    errors = []
    for slot in slots:
        try:
            return slot.get()
        except EngineError as e:
            slot.dead = str(e)
            errors.append(e)
    if len(errors) == 1:
        raise errors[0]
    raise EngineError("no engine answers: " + "; ".join(e.message for e in errors), fix=errors[0].fix)


class Spread(Generic[Item, Result]):
    """The items over the engines of ``slots``.

    ``build(slot, item, say)`` does one item on that slot's engine (``say`` prefixes the engine's name) and
    returns its result; it raises :class:`ContainerGone` or an :class:`EngineError` when the engine lost it,
    another :class:`BuildkitError` when the item itself failed. ``failed(item, error, slot)`` is the result
    of an item that failed for good; ``stranded(item, reasons)`` that of an item no engine is left to build.
    ``name(item)`` names it in messages and is the ``org.buildkit.what`` label of its containers;
    ``title(item)`` is what the "==> [n/total]" line says of it."""

    def __init__(self, slots: Sequence[EngineSlot], say: Say, *, name: Callable[[Item], str],
                 title: Callable[[Item], str], build: Callable[[EngineSlot, Item, Say], Result],
                 failed: Callable[[Item, BuildkitError, EngineSlot], Result],
                 stranded: Callable[[Item, str], Result]) -> None:
        self.slots = list(slots)
        self.say = say
        self.name, self.title, self.build, self.failed, self.stranded = name, title, build, failed, stranded
        self._queue: collections.deque[Item] = collections.deque()
        self._changed = threading.Condition()
        self._results: list[Result] = []
        self._shunned: dict[str, set[str]] = {}  # item name -> engines that lost it
        self._running: dict[str, tuple[EngineSlot, str]] = {}  # slot name -> (slot, item name)
        self._stopping = threading.Event()  # Ctrl-C: containers being removed, nothing goes back to the queue
        self._total = 0
        self._taken = 0

    def run(self, items: Sequence[Item]) -> list[Result]:
        """Every item's result, in the order they finished (items no engine could build last)."""
        self._queue.extend(items)
        self._total = len(items)
        threads = [threading.Thread(target=self._worker, args=(slot,), name=f"engine {slot.name}", daemon=True)
                   for slot in self.slots]
        for thread in threads:
            thread.start()
        try:
            while any(thread.is_alive() for thread in threads):
                for thread in threads:
                    thread.join(0.5)
        except KeyboardInterrupt:
            self._cancel()
            raise
        for item in list(self._queue):  # every engine that could build these left the run or lost them
            lost = self._shunned.get(self.name(item), set())
            reasons = "; ".join([f"{s.name}: {s.dead}" for s in self.slots if s.dead]
                                + [f"{s.name} lost it" for s in self.slots if not s.dead and s.name in lost])
            self._results.append(self.stranded(item, reasons))
        return self._results

    def _take(self, slot: EngineSlot) -> Item | None:
        """The next item this engine may build; waits while another engine's item could still come back."""
        with self._changed:
            while not slot.dead:
                item = next((i for i in self._queue if slot.name not in self._shunned.get(self.name(i), ())), None)
                if item is not None:
                    self._queue.remove(item)
                    self._taken += 1
                    self.say(f"[{slot.name}] ==> [{self._taken}/{self._total}] {self.title(item)}")
                    self._running[slot.name] = (slot, self.name(item))
                    return item
                if not self._queue or not self._running:
                    return None
                self._changed.wait()
            return None

    def _worker(self, slot: EngineSlot) -> None:
        tag = f"[{slot.name}] "

        def say_here(line: str) -> None:
            self.say(tag + line)

        while (item := self._take(slot)) is not None:
            try:
                result = self.build(slot, item, say_here)
                with self._changed:
                    self._results.append(result)
            except (ContainerGone, BuildkitError) as e:
                if self._stopping.is_set():
                    return
                self._lost(slot, item, e, say_here)
            finally:
                with self._changed:
                    self._running.pop(slot.name, None)
                    self._changed.notify_all()

    def _lost(self, slot: EngineSlot, item: Item, e: BuildkitError, say_here: Say) -> None:
        name = self.name(item)
        lost = isinstance(e, (ContainerGone, EngineError))  # the engine's doing, not the item's
        dead = isinstance(e, EngineUnfit) or (lost and not slot.answers())
        with self._changed:
            if dead:
                slot.dead = str(e)
            others = [s for s in self.slots if s is not slot and not s.dead]
            leaves = "; this engine leaves the run" if dead else ""
            if lost and others and not self._shunned.get(name):
                self._shunned.setdefault(name, set()).add(slot.name)
                self._queue.append(item)
                say_here(f"{name}: the engine failed ({e}); the cell goes back to the queue for another engine{leaves}")
            else:
                self._results.append(self.failed(item, e, slot))
                if lost:
                    say_here(f"{name}: the engine failed ({e}){leaves}")

    def _cancel(self) -> None:
        """Ctrl-C: nothing more is taken, and the containers of the items being built are removed."""
        self._stopping.set()
        with self._changed:
            self._queue.clear()
            busy = list(self._running.values())
            self._changed.notify_all()
        for slot, name in busy:
            try:
                slot.get().remove_labelled("org.buildkit.what", name)
            except (BuildkitError, OSError):
                pass  # the engine is gone too: nothing of ours is left on it to remove
