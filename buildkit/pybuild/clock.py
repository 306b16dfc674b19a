"""The seconds of buildkit's own steps of a build, outside the compilers: a record's ``step_seconds``.

A build's time is its components' (configure to install, ``component_seconds``) and these steps', as Spack's
``install_times.json`` keeps one per phase:

* ``plan``: the prefix checked, the host probed, the tools and compiler required, the versions resolved and
  the build planned;
* ``fetch``: each tarball found (cache, --source-dir, mirror, upstream, Debian's archive), copied or downloaded,
  and checked by sha256 and size (and the plan made again when a fetch took another tarball than planned);
* ``extract``: each tarball unpacked, summed over the components built;
* ``verify``: the built interpreter verified in place;
* ``switch``: the record written, the prefix's link moved, the builds and libraries nothing uses removed, and
  the work tree unless --keep.

What is in no step and no component (the lock, the work folders cleared and made, a library's marker) is
the caller's to work out, as the total less both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["STEPS", "StepClock"]

STEPS = ("plan", "fetch", "extract", "verify", "switch")


class StepClock:
    """Started when made: the seconds since (:meth:`elapsed`) and those spent in each of :data:`STEPS`, read
    from ``now`` (a test's own clock)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._started = now()
        self._spent = dict.fromkeys(STEPS, 0.0)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block as step ``name``, added to what that step took before (``extract``: per component)."""
        if name not in self._spent:
            raise KeyError(f"{name!r} is not one of buildkit's steps ({', '.join(STEPS)})")
        start = self._now()
        try:
            yield
        finally:
            self._spent[name] += self._now() - start

    def elapsed(self) -> float:
        return self._now() - self._started

    def seconds(self) -> dict[str, float]:
        """Each step's seconds so far, to the millisecond, in the order of :data:`STEPS` (one not run: 0.0)."""
        return {name: round(spent, 3) for name, spent in self._spent.items()}
