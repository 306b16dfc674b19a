"""A click group whose commands are imported only when one is looked up (after Hatch's ``cli/lazy.py``).

``buildkit symvers check`` imports :mod:`buildkit.cli.symvers` and nothing of ``python`` or ``ci``: start-up
stays fast however many commands there are. ``buildkit --help`` lists them all, and so imports them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import click


class LazyGroup(click.Group):
    """``lazy_commands`` maps a command name to ``"module:attribute"``, the click command to import for it."""

    def __init__(self, *args, lazy_commands: Mapping[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        module_name, _, attribute = self.lazy_commands[cmd_name].partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise TypeError(f"{module_name}:{attribute} is not the click command {cmd_name!r}")
        return command
