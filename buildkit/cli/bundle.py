"""``buildkit bundle``: buildkit and a portable Python in one tarball (:mod:`buildkit.pybuild.bundle`)."""

from __future__ import annotations

import click

from buildkit.cli.output import CONTEXT, print_json, say


@click.command("bundle", context_settings=CONTEXT)
@click.option("--python", "python", required=True, type=click.Path(file_okay=False), metavar="TREE",
              help="A verified portable build: the PREFIX of 'buildkit python --portable --prefix PREFIX'.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Where buildkit-<version>-x86_64-linux-gnu.tar.gz goes (never overwritten).")
@click.option("--json", "as_json", is_flag=True, help="Print what the bundle holds as JSON.")
def bundle_cmd(python: str, out: str, as_json: bool) -> None:
    """buildkit for a host without a modern Python (CentOS 7's is 3.6): one tarball with a portable Python,
    buildkit and its dependencies (manylinux2014 wheels, the versions installed here), and bin/buildkit.

    \b
    On the old host: tar -xzf buildkit-*-x86_64-linux-gnu.tar.gz, then run
    buildkit-*/bin/buildkit (or link it into PATH). It needs glibc >= the portable build's floor (2.17).

    \b
    Exit status: 0 written, 1 pip could not get the wheels, 2 bad input.

    \b
    Example:
      buildkit python --portable --prefix /opt/py-portable
      buildkit bundle --python /opt/py-portable --out dist/
    """
    from buildkit.pybuild.bundle import bundle

    contents = bundle(python, out, say)
    if as_json:
        print_json(contents)
    else:
        click.echo(f"{contents['archive']}  ({contents['size'] / 1e6:.0f} MB, sha256 {contents['sha256'][:16]}...; "
                   f"Python {contents['python']}, glibc >= {contents['glibc_floor']})")
