"""``--emit-script``: the plan as a POSIX sh script for a host with no buildkit and no modern Python
(a CentOS 7 box with sh, make, gcc and perl). Rendered with jinja2 from ``buildkit/templates``; it does
the same checksum checks, the same steps, the same verification and the same atomic switch."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from buildkit import __version__
from buildkit.errors import InputError
from buildkit.pybuild.plan import Plan
from buildkit.pybuild.recipe import Action
from buildkit.pybuild.toolchain import PLACEHOLDER, SPECS
from buildkit.templating import environment

__all__ = ["render_script", "sh_quote", "write_script"]

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def sh_quote(value: str) -> str:
    """``value`` quoted for sh, the toolchain's placeholder (a portable plan) becoming ``"$TOOLCHAIN"``."""
    if PLACEHOLDER not in value:
        return shlex.quote(value)
    return '"$TOOLCHAIN"'.join(shlex.quote(part) if part else "" for part in value.split(PLACEHOLDER))


def _command_line(run) -> str:
    if isinstance(run, Action):
        return " ".join(["action_" + run.name.replace("-", "_")] + [sh_quote(a) for a in run.args])
    env = [f"{k}={sh_quote(v)}" for k, v in run.env]
    return " ".join((["env"] + env if env else []) + [sh_quote(a) for a in run.argv])


def render_script(plan: Plan) -> str:
    from buildkit.pybuild.verify import PROBE_SOURCE

    components = []
    for comp in plan.components:
        steps = []
        for step in comp.steps:
            cwd = step.run.cwd if not isinstance(step.run, Action) and step.run.cwd else comp.srcdir
            steps.append({"phase": step.phase, "log": step.log, "cwd": cwd, "line": _command_line(step.run),
                          "action": isinstance(step.run, Action)})
        components.append({"package": comp.package, "version": comp.version, "source": comp.source,
                           "prefix": comp.prefix, "srcdir": comp.srcdir, "steps": steps,
                           "reusable": comp.package != "cpython"})
    tc = plan.request.toolchain
    if tc is not None and tc.root != PLACEHOLDER:
        raise ValueError("a portable plan for a script names the toolchain by its placeholder (script_toolchain)")
    tools = ["cc", "make", "tar"] + (["gcc", "xz", "readelf"] if tc else [])
    if plan.openssl.how == "private":
        tools.append("perl")
    if any(c.package == "sqlite" and c.source.kind == "full" for c in plan.components):
        tools.append("tclsh")
    if any(c.source.filename.endswith(".deb") for c in plan.components):
        tools.append("ar")  # a Debian package's files are its ar member data.tar.*
    from buildkit.catalog import compiler_needs

    gcc_needs = compiler_needs(plan.components[-1].version, "0")  # every need of this version, "stop" first
    return environment(TEMPLATES).get_template("build-python.sh.j2").render(
        gcc_needs=gcc_needs, toolchain=tc, specs=SPECS, relocate=_relocate_source() if tc else "",
        plan=plan, components=components, tools=tools, version=__version__, probe=PROBE_SOURCE,
        # absolute, as the state folder beside it is (planned with abspath): a relative PREFIX would put the
        # final link relative to wherever the script runs
        prefix=os.path.abspath(plan.request.prefix),
        expect_openssl=plan.openssl.version, expect_sqlite=plan.sqlite.version,
        private_prefixes=" ".join(plan.private_prefixes),
    )


def _relocate_source() -> str:
    from buildkit.pybuild import relocate

    return Path(relocate.__file__).read_text(encoding="utf-8")


def write_script(plan: Plan, path: str) -> None:
    text = render_script(plan)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, 0o755)
    except OSError as e:
        raise InputError(f"{path}: cannot write the script: {e.strerror}", fix="choose another path") from None
