"""The one jinja2 set-up of buildkit's generated files (the sh build script, the Dockerfiles): strict about
undefined names, no HTML escaping, block tags that leave no blank lines, and a ``q`` filter that quotes a
value for sh."""

from __future__ import annotations

import shlex
from pathlib import Path

import jinja2

__all__ = ["environment"]


def environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["q"] = lambda value: shlex.quote(str(value))
    return env
