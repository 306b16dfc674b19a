"""Run a plan's steps on this host: one log per step, progress on stderr, the log's tail on failure.

Commands run in their own process group with a sanitised environment, so Ctrl-C stops the whole make
tree and the user's ``LD_LIBRARY_PATH``, ``CFLAGS`` or ``PYTHONPATH`` cannot leak into the build.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from typing import Callable

from buildkit._term import live_terminal
from buildkit.errors import BuildFailed, InputError
from buildkit.pybuild.plan import Component, Step
from buildkit.pybuild.recipe import Action, Command

__all__ = ["LocalRunner", "clean_env", "tail"]

_KEEP = ("HOME", "TMPDIR", "TZ", "CC", "http_proxy", "https_proxy", "no_proxy")


def clean_env(extra: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    env = {k: os.environ[k] for k in _KEEP if k in os.environ}
    env["PATH"] = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["LC_ALL"] = "C"
    env.update(extra)
    return env


def tail(path: str, lines: int = 25) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(deque(f, maxlen=lines))
    except OSError:
        return ""


class LocalRunner:
    """Executes steps; ``say`` receives progress lines (stderr by default)."""

    def __init__(self, log_dir: str, say: Callable[[str], None] | None = None, actions=None) -> None:
        self.log_dir = log_dir
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.actions = actions or {}
        self.tty = live_terminal(2)  # redraws one progress line; else a plain line every 30 s

    def log_path(self, step: Step) -> str:
        return os.path.join(self.log_dir, step.log)

    def run_component(self, comp: Component, number: int, total: int) -> float:
        start = time.monotonic()
        self.say(f"==> [{number}/{total}] {comp.package} {comp.version} -> {comp.prefix}")
        for step in comp.steps:
            self.run_step(step, comp)
        took = time.monotonic() - start
        self.say(f"    {comp.package} {comp.version} done in {took:.0f} s")
        return took

    def run_step(self, step: Step, comp: Component) -> None:
        log = self.log_path(step)
        if isinstance(step.run, Action):
            handler = self.actions.get(step.run.name)
            if handler is None:
                raise BuildFailed(f"no runner for action {step.run.name!r}")
            self.say(f"    {step.phase}: {step.run.name}")
            handler(step, comp, self)
            return
        self._command(step.run, comp.srcdir, log, step)

    def _command(self, cmd: Command, srcdir: str, log: str, step: Step) -> None:
        cwd = cmd.cwd if os.path.isabs(cmd.cwd) else os.path.join(srcdir, cmd.cwd)
        shown = " ".join(" ".join(a.split()) for a in cmd.argv)  # one line, whatever an argument holds
        self.say(f"    {step.phase}: {shown if len(shown) < 110 else shown[:107] + '...'}")
        start = time.monotonic()
        try:
            with open(log, "w", encoding="utf-8") as out:
                out.write(f"+ cd {cwd}\n+ {' '.join(f'{k}={v!r}' for k, v in cmd.env)} {shown}\n")
                out.flush()
                proc = subprocess.Popen(cmd.argv, cwd=cwd, env=clean_env(cmd.env), stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        except FileNotFoundError:
            raise InputError(f"{cmd.argv[0]}: not found (step {step.component} {step.phase})",
                             fix="install it (see 'buildkit doctor')") from None
        except OSError as e:
            raise BuildFailed(f"cannot start {cmd.argv[0]} in {cwd}: {e.strerror}") from None
        try:
            last = start
            while True:
                try:
                    code = proc.wait(timeout=1 if self.tty else 30)
                    break
                except subprocess.TimeoutExpired:
                    now = time.monotonic()
                    if self.tty or now - last >= 30:
                        last = now
                        line = tail(log, 1).strip().replace("\r", "")[:70]
                        prefix = "\r\033[K" if self.tty else ""
                        end = "" if self.tty else "\n"
                        sys.stderr.write(f"{prefix}      ... {now - start:4.0f} s  {line}{end}")
                        sys.stderr.flush()
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            raise
        if self.tty:
            sys.stderr.write("\r\033[K")
        if code != 0:
            text = tail(log)
            if "No space left on device" in text:
                raise BuildFailed(f"disk full during {step.component} {step.phase}; log kept: {log}")
            self.say(text.rstrip())
            raise BuildFailed(f"{step.component} {step.phase} failed (exit {code}): {shown[:80]}; full log kept: {log}")
