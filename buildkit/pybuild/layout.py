"""The folders of an install, all under ``PREFIX.buildkit`` (``PREFIX`` is what the user passed)::

    PREFIX -> PREFIX.buildkit/builds/<id>        a symlink, swapped atomically once <id> is verified
    PREFIX.buildkit/builds/<id>/                 CPython, BUILDKIT.json
    PREFIX.buildkit/deps/openssl-3.0.20-<hash>/  private OpenSSL (reused by later builds), ssl/ -> host CAs
    PREFIX.buildkit/deps/sqlite-3.40.1-<hash>/   private SQLite
    PREFIX.buildkit/work/<id>/                   source trees (kept with --keep or on failure)
    PREFIX.buildkit/logs/<id>/                   one log per step, kept
    PREFIX.buildkit/lock                         one buildkit at a time per prefix

Planning names them (:mod:`buildkit.pybuild.plan`), the install moves between them
(:mod:`buildkit.pybuild.install`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Layout"]


@dataclass(frozen=True)
class Layout:
    """The folders of one prefix's install, all under ``PREFIX.buildkit`` (see the module docstring)."""

    state_dir: str

    @classmethod
    def of(cls, prefix: str) -> Layout:
        return cls(os.path.abspath(prefix) + ".buildkit")

    def build_dir(self, build_id: str) -> str:
        return os.path.join(self.state_dir, "builds", build_id)

    def work_dir(self, build_id: str) -> str:
        return os.path.join(self.state_dir, "work", build_id)

    def log_dir(self, build_id: str) -> str:
        return os.path.join(self.state_dir, "logs", build_id)

    def dep_dir(self, name: str) -> str:
        """A private library's prefix, ``deps/<package>-<version>-<hash>``."""
        return os.path.join(self.state_dir, "deps", name)
