"""Pure planning of ``buildkit ci``: the matrix of cells, artifact names, and CI workflows that fan it out.

A cell is one image x one CPython x one OpenSSL x one SQLite. The OpenSSL and SQLite axes are
:class:`~buildkit.pybuild.choice.LibraryChoice` values (the command line's ``--with-openssl``, a matrix file's
``openssl``, both read by :meth:`LibraryChoice.parse`). Versions are resolved against the catalog here (``3.12``
-> the newest 3.12 it knows), and a pair that cannot work (an OpenSSL too old for that CPython) is refused before
anything runs. Nothing here touches Docker, the network or the disk, except :func:`load_matrix_file`, which
reads the one file it is given.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from buildkit import __version__, catalog
from buildkit.container.images import ImageRef, parse_image
from buildkit.errors import InputError
from buildkit.pybuild.choice import AUTO, PREFIX, PRIVATE, SYSTEM, VERSION, LibraryChoice

__all__ = [
    "Cell",
    "MatrixSpec",
    "artifact_name",
    "expand",
    "github_actions",
    "gitlab",
    "load_matrix_file",
    "resolve_choice",
    "to_yaml",
]


@dataclass(frozen=True)
class Cell:
    image: ImageRef
    cpython: str  # an exact catalog version
    openssl: str  # an exact catalog version, or "system" (SYSTEM)
    sqlite: str

    @property
    def key(self) -> str:
        """The cell's name before the image runs (the architecture is not known yet)."""
        return f"python-{self.cpython}-openssl-{self.openssl}-sqlite-{self.sqlite}-{self.image.spec.label}"

    def to_json(self) -> dict[str, str]:
        return {"image": self.image.arg, "python": self.cpython, "openssl": self.openssl, "sqlite": self.sqlite}

    def choice(self, package: str) -> LibraryChoice:
        """The cell's OpenSSL or SQLite as a build asks for it: the image's own, or that exact version."""
        value = self.openssl if package == "openssl" else self.sqlite
        return LibraryChoice(package, SYSTEM) if value == SYSTEM else LibraryChoice(package, VERSION, value)


def artifact_name(cpython: str, openssl: str, sqlite: str, distro: str, arch: str, optimized: bool = False) -> str:
    """``python-<v>[-pgo-lto]-openssl-<v>-sqlite-<v>-<distro>-<arch>`` (the artifact is this plus ``.tar.gz``);
    ``-pgo-lto`` marks an ``--optimize`` build, so a plain and an optimized artifact never share a name."""
    parts = {"python": cpython, "openssl": openssl, "sqlite": sqlite, "distro": distro, "arch": arch}
    for what, value in parts.items():
        if not value or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+]*", value):
            raise InputError(f"cannot name an artifact with {what} {value!r}")
    tag = "-pgo-lto" if optimized else ""
    return f"python-{cpython}{tag}-openssl-{openssl}-sqlite-{sqlite}-{distro}-{arch}"


def resolve_choice(wanted: LibraryChoice) -> str:
    """A cell's value: not given or ``private``, the default version; ``system``; else the catalog's newest match
    of the version. A prefix is refused: it names a folder of this machine."""
    if wanted.kind in (AUTO, PRIVATE):
        return catalog.default(wanted.package)
    if wanted.kind == SYSTEM:
        return SYSTEM
    if wanted.kind == PREFIX:
        raise InputError(f"{wanted}: a prefix on this machine means nothing inside a container",
                         fix=f"pass a version ({wanted.option}=3.0) or system")
    return catalog.find(wanted.package, wanted.value).version


def _check_cell(cell: Cell) -> None:
    from buildkit.pybuild.plan import choose

    for package in ("openssl", "sqlite"):
        wanted = cell.choice(package)
        if wanted.kind != SYSTEM:
            choose(wanted, None, cell.cpython)


@dataclass(frozen=True)
class MatrixSpec:
    images: tuple[str, ...] = ()
    pythons: tuple[str, ...] = ()
    openssls: tuple[LibraryChoice, ...] = ()
    sqlites: tuple[LibraryChoice, ...] = ()
    include: tuple[dict[str, str], ...] = ()

    def merged(self, other: MatrixSpec) -> MatrixSpec:
        """``other``'s axes where it has them (the command line wins over the file), includes of both."""
        return MatrixSpec(other.images or self.images, other.pythons or self.pythons, other.openssls or self.openssls,
                          other.sqlites or self.sqlites, self.include + other.include)


def expand(spec: MatrixSpec, resolve: Callable[[str], dict[str, str]] | None = None) -> tuple[Cell, ...]:
    """Every cell of images x pythons x openssls x sqlites, then the ``include`` cells; duplicates once.
    ``resolve``: how a plain image reference's /etc/os-release is read (see parse_image)."""
    cells: list[Cell] = []
    if spec.images or spec.pythons:
        if not spec.images:
            raise InputError("no image given",
                             fix="pass --image IMAGE (e.g. debian:12), or image = [...] in the matrix file")
        if not spec.pythons:
            raise InputError("no Python version given",
                             fix="pass VERSION (e.g. 3.13), or python = [...] in the matrix file")
    images = [parse_image(i, resolve) for i in spec.images]
    pythons = [catalog.find("cpython", v).version for v in spec.pythons]
    openssls = [resolve_choice(v) for v in (spec.openssls or (LibraryChoice("openssl"),))]
    sqlites = [resolve_choice(v) for v in (spec.sqlites or (LibraryChoice("sqlite"),))]
    for image in images:
        for py in pythons:
            for ossl in openssls:
                for sql in sqlites:
                    cells.append(Cell(image, py, ossl, sql))
    for entry in spec.include:
        unknown = set(entry) - {"image", "python", "openssl", "sqlite"}
        if unknown or "image" not in entry or "python" not in entry:
            raise InputError(f"matrix include entry {entry!r}: needs image and python (and optionally openssl, sqlite)")
        cells.append(Cell(parse_image(entry["image"], resolve), catalog.find("cpython", entry["python"]).version,
                          resolve_choice(LibraryChoice.parse("openssl", entry.get("openssl"))),
                          resolve_choice(LibraryChoice.parse("sqlite", entry.get("sqlite")))))
    seen: dict[tuple, Cell] = {}
    for cell in cells:
        seen.setdefault((cell.image.name, cell.image.base, cell.cpython, cell.openssl, cell.sqlite), cell)
    unique = tuple(seen.values())
    keys: dict[str, Cell] = {}
    for cell in unique:
        if cell.key in keys:
            raise InputError(f"two cells would make the same artifact {cell.key}: {keys[cell.key].image.arg} and "
                             f"{cell.image.arg}", fix="run them with different --out folders")
        keys[cell.key] = cell
        _check_cell(cell)
    if not unique:
        raise InputError("the matrix is empty", fix="pass --image and a Python VERSION, or a --matrix file")
    return unique


def _str_list(value: Any, key: str, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, int, float)):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise InputError(f"{path}: {key} must be a string or a list of strings")
    return tuple(str(v) for v in value)


def load_matrix_file(path: str) -> MatrixSpec:
    """A matrix file, TOML (``.toml``) or JSON::

        image = ["debian:12", "centos:7"]          # or [[image]] tables: name = "...", base = "..."
        python = ["3.13", "3.11.2"]
        openssl = ["3.0"]                           # optional; "system" for the image's own
        sqlite = ["3.40.1"]                         # optional
        [[include]]                                 # extra cells
        image = "rocky:9"
        python = "3.12"
    """
    from buildkit._input import read_input

    raw = read_input(path, fix="pass a TOML or JSON matrix file", option="--matrix")
    if not raw.strip():
        raise InputError(f"--matrix {path}: an empty file", fix="list image and python in it (see --help)")
    try:
        if path.endswith(".json"):
            data = json.loads(raw)
        else:
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - exercised on 3.9/3.10 only
                import tomli as tomllib
            data = tomllib.loads(raw.decode("utf-8"))
    except Exception as e:
        raise InputError(f"--matrix {path}: not valid {'JSON' if path.endswith('.json') else 'TOML'}: "
                         f"{' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise InputError(f"--matrix {path}: expected a table of axes")
    unknown = set(data) - {"image", "python", "openssl", "sqlite", "include"}
    if unknown:
        raise InputError(f"--matrix {path}: unknown key(s) {', '.join(sorted(unknown))}",
                         fix="use image, python, openssl, sqlite, include")
    images: list[str] = []
    raw_images = data.get("image")
    for item in (raw_images if isinstance(raw_images, list) else [raw_images] if raw_images else []):
        if isinstance(item, dict):
            if "name" not in item:
                raise InputError(f"--matrix {path}: an [[image]] table needs name (and optionally base)")
            images.append(f"{item['name']}={item['base']}" if item.get("base") else str(item["name"]))
        else:
            images.append(str(item))
    include = data.get("include") or []
    if not isinstance(include, list) or not all(isinstance(e, dict) for e in include):
        raise InputError(f"--matrix {path}: include must be a list of tables")
    pythons = _str_list(data.get("python"), "python", path)
    axes = {package: _str_list(data.get(package), package, path) for package in ("openssl", "sqlite")}
    try:
        openssls, sqlites = (tuple(LibraryChoice.parse(package, v) for v in values) for package, values in axes.items())
    except InputError as e:  # the value is the file's
        raise InputError(f"--matrix {path}: {e.message}", fix=e.fix) from None
    return MatrixSpec(tuple(images), pythons, openssls, sqlites,
                      tuple({k: str(v) for k, v in e.items()} for e in include))


# --- CI workflows ---------------------------------------------------------------------------------------

_YAML_BOOLISH = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if value is None:
        return "null"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) and key.lower() not in _YAML_BOOLISH else json.dumps(key)


def to_yaml(data: Any, indent: int = 0) -> str:
    """Block-style YAML of dicts, lists and scalars; every string quoted, so nothing is read as a number,
    a boolean or a date (``on:`` included)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(data, dict):
        for k, v in data.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{_key(k)}:")
                lines.append(to_yaml(v, indent + 2))
            elif isinstance(v, (dict, list)):
                lines.append(f"{pad}{_key(k)}: {'{}' if isinstance(v, dict) else '[]'}")
            else:
                lines.append(f"{pad}{_key(k)}: {_scalar(v)}")
    elif isinstance(data, list):
        for v in data:
            if isinstance(v, dict) and v:
                inner = to_yaml(v, indent + 2).splitlines()
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            elif isinstance(v, list) and v:
                lines.append(f"{pad}-")
                lines.append(to_yaml(v, indent + 2))
            else:
                lines.append(f"{pad}- {_scalar(v)}")
    else:
        lines.append(pad + _scalar(data))
    return "\n".join(lines)


def _cell_command(python: str, openssl: str, sqlite: str, image: str, out: str) -> str:
    return (f'buildkit ci python "{python}" --with-openssl="{openssl}" --with-sqlite="{sqlite}" '
            f'--image "{image}" --out {out}')


def _header(fmt: str, cells: Sequence[Cell]) -> str:
    return (f"# {fmt} workflow written by buildkit {__version__} (`buildkit ci matrix --format {fmt}`): one job per\n"
            f"# cell, {len(cells)} in all, each running `buildkit ci python` in its image on the runner's Docker\n"
            "# engine. Set BUILDKIT_PIP to how your runners install buildkit.\n")


def github_actions(cells: Sequence[Cell], *, pip_spec: str | None = None, out: str = "dist") -> str:
    include = [{"name": c.key, **c.to_json()} for c in cells]
    workflow = {
        "name": "buildkit ci",
        "on": {"workflow_dispatch": {}, "push": {"branches": ["main"]}},
        "jobs": {
            "python": {
                "name": "${{ matrix.name }}",
                "runs-on": "ubuntu-24.04",
                "timeout-minutes": 90,
                "strategy": {"fail-fast": False, "matrix": {"include": include}},
                "env": {"BUILDKIT_PIP": pip_spec or f"buildkit=={__version__}"},
                "steps": [
                    {"uses": "actions/checkout@v4"},
                    {"uses": "actions/setup-python@v5", "with": {"python-version": "3.12"}},
                    {"name": "install buildkit", "run": 'python -m pip install "$BUILDKIT_PIP"'},
                    {"name": "build and verify in the image",
                     "run": _cell_command("${{ matrix.python }}", "${{ matrix.openssl }}", "${{ matrix.sqlite }}",
                                          "${{ matrix.image }}", out)},
                    {"name": "upload", "if": "always()", "uses": "actions/upload-artifact@v4",
                     "with": {"name": "${{ matrix.name }}", "path": f"{out}/", "if-no-files-found": "error"}},
                ],
            }
        },
    }
    return _header("github-actions", cells) + to_yaml(workflow) + "\n"


def gitlab(cells: Sequence[Cell], *, pip_spec: str | None = None, out: str = "dist") -> str:
    doc: dict[str, Any] = {
        "stages": ["build"],
        "variables": {"BUILDKIT_PIP": pip_spec or f"buildkit=={__version__}"},
        ".buildkit-cell": {
            "stage": "build",
            "image": "python:3.12-bookworm",
            "services": [{"name": "docker:27-dind", "alias": "docker"}],
            "variables": {"DOCKER_HOST": "tcp://docker:2375", "DOCKER_TLS_CERTDIR": ""},
            "timeout": "90m",
            "before_script": ['python3 -m pip install "$BUILDKIT_PIP"'],
            "script": [_cell_command("$PYTHON", "$OPENSSL", "$SQLITE", "$IMAGE", out)],
            "artifacts": {"when": "always", "paths": [f"{out}/"]},
        },
    }
    for c in cells:
        j = c.to_json()
        doc[c.key] = {"extends": ".buildkit-cell", "variables": {"IMAGE": j["image"], "PYTHON": j["python"],
                                                                 "OPENSSL": j["openssl"], "SQLITE": j["sqlite"]}}
    return _header("gitlab", cells) + to_yaml(doc) + "\n"


def cells_json(cells: Iterable[Cell]) -> list[dict[str, str]]:
    return [{"name": c.key, **c.to_json()} for c in cells]
