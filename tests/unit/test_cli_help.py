"""``buildkit --help`` teaches the whole tool, every command's --help works, and an unknown command is one line."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from buildkit.cli import cli

COMMANDS = ("symvers", "python", "verify", "doctor", "fetch", "ci", "bundle")


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under ``group``, as argument tuples (``("symvers", "check")``)."""
    ctx = click.Context(group)
    paths = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths += command_paths(command, (*prefix, name))
    return paths


def test_root_help_names_every_command_with_an_example():
    result = CliRunner().invoke(cli, ["--help"], prog_name="buildkit")
    assert result.exit_code == 0, result.output
    assert sorted(cli.list_commands(click.Context(cli))) == sorted(COMMANDS)
    intro = result.output.split("\nOptions:")[0]  # the group's own text, before click's lists
    for name in COMMANDS:
        assert f"\n  {name} " in intro, name  # a line that says what it is for
        assert f"buildkit {name} " in intro, name  # and an example of it


@pytest.mark.parametrize("args", command_paths(cli), ids=" ".join)
def test_every_command_has_help(args):
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="buildkit")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: buildkit {' '.join(args)} ")


@pytest.mark.parametrize("args, where", [(("nosuch",), "buildkit"), (("symvers", "nosuch"), "buildkit symvers"),
                                         (("ci", "nosuch"), "buildkit ci")])
def test_unknown_command_is_one_line(args, where):
    run = subprocess.run([sys.executable, "-m", "buildkit", *args], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr == f"buildkit: error: No such command 'nosuch'. (see '{where} --help')\n"


def test_bare_buildkit_is_help_and_a_typo_gets_a_suggestion():
    """Issue 17 item 9 (part): no 'error: Usage:' for the help one asked for; 'did you mean' at the root too."""
    bare = subprocess.run([sys.executable, "-m", "buildkit"], capture_output=True, text=True)
    assert bare.returncode == 0 and bare.stdout.startswith("Usage: buildkit ") and bare.stderr == "", bare
    typo = subprocess.run([sys.executable, "-m", "buildkit", "pyhton"], capture_output=True, text=True)
    assert typo.returncode == 2 and "Did you mean 'python'?" in typo.stderr, typo.stderr


def test_python_help_names_the_defaults_the_planner_uses():
    """The help says what a series and no VERSION mean in numbers: they must be the planner's own."""
    from click.testing import CliRunner

    from buildkit.catalog import defaults, find
    from buildkit.cli import cli

    DEFAULTS = defaults()

    text = " ".join(CliRunner().invoke(cli, ["python", "--help"]).output.split())
    assert f"(3.13: its newest release in the catalog, {find('cpython', '3.13').version})" in text
    assert f"the default is {DEFAULTS['cpython']}," in text
    assert f"(bare: {DEFAULTS['openssl']}, {DEFAULTS['sqlite']})" in text
