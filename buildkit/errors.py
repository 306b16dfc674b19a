"""One error hierarchy for buildkit.

Every error carries the exit code the CLI returns and a one-line message that names the bad input and,
where there is one, the fix. Library code raises; only ``buildkit.cli`` catches and exits.
"""

from __future__ import annotations

__all__ = ["BuildkitError", "InputError", "CheckFailed", "BuildFailed", "Interrupted"]


class BuildkitError(Exception):
    """Base class: ``str(err)`` is the one line shown to the user."""

    exit_code = 2

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message if fix is None else f"{message}; {fix}")


class InputError(BuildkitError, ValueError):
    """Bad input: a file that cannot be read or parsed, a bad argument, a missing directory."""

    exit_code = 2


class CheckFailed(BuildkitError):
    """A check ran and found problems (modpost errors, failed verification)."""

    exit_code = 1


class BuildFailed(BuildkitError):
    """A build step failed; the message names the step and the log that was kept."""

    exit_code = 1


class Interrupted(BuildkitError):
    """Ctrl-C or SIGTERM during a build: the child processes were stopped, nothing was switched."""

    exit_code = 130
