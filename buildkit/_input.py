"""Reading an input file the one way every command does: a pipe with nothing writing to it, a device or a
folder is one line of bad input instead of a wait forever, an endless read or a traceback."""

from __future__ import annotations

import errno
import os
import stat

from buildkit.errors import InputError

__all__ = ["read_input", "refuse_binary"]


def read_input(path: str, fix: str = "check the path and its permissions", option: str = "") -> bytes:
    """All the bytes of ``path``: a regular file, or a pipe that something writes to (``<(zcat f.gz)``).
    ``option`` (``--matrix``) goes before the path in the messages."""
    name = f"{option} {path}" if option else path
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise InputError(f"{name}: no such file", fix=fix) from None
        raise InputError(f"{name}: cannot read: {e.strerror or e}", fix=fix) from None
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise InputError(f"{name}: a folder, not a file", fix=fix)
        raise InputError(f"{name}: not a regular file (a device or socket)", fix=fix)
    with os.fdopen(fd, "rb") as f:
        first: bytes | None = b""
        if stat.S_ISFIFO(mode):
            try:
                first = os.read(fd, 1 << 16)
            except BlockingIOError:  # a writer is there, nothing written yet: wait for it
                first = None
            if first == b"":
                raise InputError(f"{name}: a pipe with nothing writing to it",
                                 fix="start the program that writes it first, or pass a file")
            os.set_blocking(fd, True)
        try:
            return (first or b"") + f.read()
        except OSError as e:
            raise InputError(f"{name}: cannot read: {e.strerror or e}", fix=fix) from None


def refuse_binary(data: bytes, path: str, what: str, fix: str) -> None:
    """A NUL byte means a binary file, not the text ``what`` names."""
    at = data.find(b"\0")
    if at >= 0:
        raise InputError(f"{path}: binary data (a NUL byte at offset {at}), not {what}", fix=fix)
