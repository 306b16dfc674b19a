"""The shape of the package, read from the source with ``ast`` (nothing is imported): kmod/ stands alone, only
buildkit/cli/ imports click or buildkit.cli, and ``buildkit symvers`` loads none of the build or container code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "buildkit"
#: what kmod/ must never import: it reads and resolves symbols, and knows nothing of builds, containers or the CLI
NOT_FOR_KMOD = ("buildkit.pybuild", "buildkit.container", "buildkit.sources", "buildkit.cli")
#: outside buildkit/cli/, only ``python -m buildkit`` may reach the command line
CLI_ENTRY_POINTS = {PACKAGE / "__main__.py"}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, function-level ones too; ``from a import b``
    yields ``a`` and ``a.b`` (b may be a module)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def is_under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def test_the_import_reader_sees_relative_and_nested_imports(tmp_path):
    pkg = tmp_path / "buildkit" / "kmod"
    pkg.mkdir(parents=True)
    (pkg / "x.py").write_text("def f():\n    from ..cli import main\n    import click\nfrom . import elf\n")
    assert set(imports(pkg / "x.py", tmp_path)) == {(2, "buildkit.cli"), (2, "buildkit.cli.main"), (3, "click"),
                                         (4, "buildkit.kmod"), (4, "buildkit.kmod.elf")}


def test_kmod_imports_nothing_of_builds_containers_sources_or_the_cli():
    files = python_files("buildkit/kmod")
    assert files, "buildkit/kmod has no modules?"
    bad = [f"{path.relative_to(ROOT)}:{line}: {name}"
           for path in files for line, name in imports(path) if is_under(name, NOT_FOR_KMOD)]
    assert not bad, "buildkit/kmod must stand alone:\n" + "\n".join(bad)


def test_only_the_cli_imports_click_or_the_cli():
    cli = PACKAGE / "cli"
    files = [p for p in python_files("buildkit", "recipes", "containers", "bench")
             if cli not in p.parents and p not in CLI_ENTRY_POINTS]
    bad = [f"{path.relative_to(ROOT)}:{line}: {name}"
           for path in files for line, name in imports(path) if is_under(name, ("click", "buildkit.cli"))]
    assert not bad, "only buildkit/cli/ may import click or buildkit.cli:\n" + "\n".join(bad)


LOADED_BY = """
import json, sys
from buildkit.cli import main
sys.argv = ["buildkit", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
print("MODULES " + json.dumps(sorted(sys.modules)))
"""


def loaded_by(*args: str) -> list[str]:
    """The modules ``buildkit ARGS`` has imported when it is done."""
    run = subprocess.run([sys.executable, "-c", LOADED_BY, *args], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1].removeprefix("MODULES "))


@pytest.mark.parametrize("args", [("symvers", "show", "--help"), ("symvers", "check", "--help")])
def test_symvers_commands_load_no_build_or_container_code(args):
    loaded = loaded_by(*args)
    assert "buildkit.cli.symvers" in loaded
    heavy = ("buildkit.container", "buildkit.pybuild", "buildkit.sources", "buildkit.cli.python", "buildkit.cli.ci",
             "buildkit.cli.fetch", "docker", "jinja2")
    assert [m for m in loaded if is_under(m, heavy)] == []


def test_root_help_loads_every_command_group():
    loaded = loaded_by("--help")
    assert {"buildkit.cli.symvers", "buildkit.cli.python", "buildkit.cli.fetch", "buildkit.cli.ci"} <= set(loaded)


def test_plain_symvers_check_imports_no_click(tmp_path):
    """The check build scripts run after every make starts without click (buildkit.cli.checkrun), and its
    answer is the click command's: same stdout, stderr and exit status."""
    kdir = tmp_path / "headers"
    kdir.mkdir()
    (kdir / "Module.symvers").write_text("0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n")
    m_dir = tmp_path / "empty"
    m_dir.mkdir()
    args = ["symvers", "check", f"M={m_dir}", f"KERNELDIR={kdir}"]
    probe = LOADED_BY.replace("    assert not e.code, e.code\n", "    print('EXIT', e.code)\n")
    fast = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=ROOT)
    loaded = json.loads(fast.stdout.splitlines()[-1].removeprefix("MODULES "))
    assert "click" not in loaded and "buildkit.cli.root" not in loaded
    assert fast.stdout.splitlines()[0] == "EXIT 2"  # an empty M=: bad input
    via_click = "import sys; sys.argv = ['buildkit', *sys.argv[1:]]; from buildkit.cli.root import run; run()"
    for case in (args, args + ["--json"], args + ["--search", str(m_dir), "--no-default-search"]):
        slow = subprocess.run([sys.executable, "-c", via_click, *case], capture_output=True, text=True, cwd=ROOT)
        quick = subprocess.run([sys.executable, "-m", "buildkit", *case], capture_output=True, text=True, cwd=ROOT)
        assert (quick.returncode, quick.stdout, quick.stderr) == (slow.returncode, slow.stdout, slow.stderr)
        assert quick.returncode == 2 and quick.stderr.startswith("buildkit: error: ")


#: the floors of the house, lowest first: a module imports only from its own floor or below (README, "How it
#: fits together"). kmod/ is on the first floor beside catalog/, and imports neither it nor anything above.
FLOORS = {
    "buildkit.errors": 0, "buildkit._input": 0, "buildkit._term": 0, "buildkit.templating": 0, "buildkit": 0,
    "buildkit.catalog": 1, "buildkit.kmod": 1, "buildkit.sources": 2, "buildkit.pybuild": 3,
    "buildkit.container": 4, "buildkit.cli": 5, "buildkit.__main__": 5,
}


def floor_of(name: str) -> int | None:
    best = max((key for key in FLOORS if name == key or name.startswith(key + ".")), key=len, default=None)
    return FLOORS[best] if best is not None else None


def test_imports_point_down_only():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        here = floor_of(name)
        for line, target in imports(path):
            there = floor_of(target)
            if not target.startswith("buildkit") or there is None or target == "buildkit":
                continue
            if there > here and not target.startswith(name.rsplit(".", 1)[0] + "."):
                upward.append(f"{path.relative_to(ROOT)}:{line}: {name} (floor {here}) imports {target} (floor {there})")
    assert upward == []


def test_the_wheel_lists_every_package_and_installs_recipes_and_containers_inside_buildkit():
    """pyproject's explicit package list (recipes/ and containers/ install as buildkit.recipes and
    buildkit.containers) names every package of the tree: a new subpackage left out would be missing from
    the wheel, and only the wheel test would tell."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    tree = {module_name(p.parent) for p in PACKAGE.rglob("__init__.py") if "__pycache__" not in p.parts}
    assert set(setup["packages"]) == tree | {"buildkit.recipes", "buildkit.containers"}
    assert setup["package-dir"] == {"buildkit.recipes": "recipes", "buildkit.containers": "containers"}
    import buildkit.containers
    import buildkit.recipes

    assert Path(buildkit.recipes.__file__).parent == ROOT / "recipes"  # a checkout finds them beside buildkit/
    assert buildkit.containers.TEMPLATES == ROOT / "containers"
    assert "recipes" not in sys.modules and "containers" not in sys.modules
