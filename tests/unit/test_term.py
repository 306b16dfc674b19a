"""Progress redraws a line only on a terminal that understands it (issue 17 item 9: TERM=dumb got \\r and ESC[K)."""

from __future__ import annotations

import os

from buildkit._term import live_terminal


def test_a_dumb_terminal_gets_no_redrawn_lines(monkeypatch):
    master, slave = os.openpty()
    try:
        monkeypatch.setenv("TERM", "xterm-256color")
        assert live_terminal(slave)
        monkeypatch.setenv("TERM", "dumb")
        assert not live_terminal(slave)
        monkeypatch.delenv("TERM")
        assert not live_terminal(slave)
    finally:
        os.close(master)
        os.close(slave)
    read, write = os.pipe()
    try:
        monkeypatch.setenv("TERM", "xterm")
        assert not live_terminal(write)  # a pipe is no terminal
    finally:
        os.close(read)
        os.close(write)
    assert not live_terminal(12345)  # a closed descriptor
