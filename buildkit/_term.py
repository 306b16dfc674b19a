"""Whether progress may redraw a line (``\\r``, ``ESC[K``): only on a terminal that understands it."""

from __future__ import annotations

import os


def live_terminal(fd: int = 2) -> bool:
    """``fd`` is a terminal and ``$TERM`` is not ``dumb`` (Emacs shells, some CI consoles): else progress is
    written as plain lines, or not at all."""
    try:
        if not os.isatty(fd):
            return False
    except (OSError, ValueError):
        return False
    return os.environ.get("TERM", "") not in ("", "dumb")
