"""Pure matrix planning: the cross product, versions resolved against the catalog, artifact names, matrix
files, and the GitHub Actions / GitLab workflows (parsed back as YAML)."""

from __future__ import annotations

import json
import re

import pytest

from buildkit.catalog import defaults
from buildkit.container.matrix import (
    Cell,
    MatrixSpec,
    artifact_name,
    expand,
    github_actions,
    gitlab,
    load_matrix_file,
    resolve_choice,
    to_yaml,
)
from buildkit.errors import InputError
from buildkit.pybuild.choice import LibraryChoice

DEFAULTS = defaults()

try:
    import yaml
except ImportError:  # PyYAML is not a dependency: the structure is then checked on our own reading
    yaml = None


def spec(images=("debian:12",), pythons=("3.13.5",), openssls=(), sqlites=(), include=()):
    return MatrixSpec(tuple(images), tuple(pythons), tuple(LibraryChoice.parse("openssl", v) for v in openssls),
                      tuple(LibraryChoice.parse("sqlite", v) for v in sqlites), tuple(include))


def test_cross_product_in_order():
    cells = expand(spec(("debian:12", "centos:7"), ("3.13.5", "3.11.2"), ("3.0.20", "1.1.1w")))
    assert len(cells) == 8
    assert [c.key for c in cells[:3]] == [
        "python-3.13.5-openssl-3.0.20-sqlite-3.40.1-debian12",
        "python-3.13.5-openssl-1.1.1w-sqlite-3.40.1-debian12",
        "python-3.11.2-openssl-3.0.20-sqlite-3.40.1-debian12",
    ]
    assert cells[-1].key == "python-3.11.2-openssl-1.1.1w-sqlite-3.40.1-centos7"
    assert all(isinstance(c, Cell) for c in cells)


def test_versions_resolve_to_the_catalog():
    cells = expand(spec(pythons=("3.11",), openssls=("3.0",), sqlites=("3.46",)))
    (cell,) = cells
    assert re.fullmatch(r"3\.11\.\d+", cell.cpython) and cell.cpython != "3.11"
    assert cell.openssl.startswith("3.0.") and cell.sqlite.startswith("3.46.")
    assert resolve_choice(LibraryChoice.parse("openssl", None)) == DEFAULTS["openssl"]
    assert resolve_choice(LibraryChoice.parse("openssl", "private")) == DEFAULTS["openssl"]
    assert resolve_choice(LibraryChoice.parse("sqlite", "system")) == "system"


def test_defaults_and_dedupe():
    cells = expand(spec(images=("debian:12", "debian:bookworm"), pythons=("3.13.5", "3.13.5")))
    assert [c.key for c in cells] == [f"python-3.13.5-openssl-{DEFAULTS['openssl']}-sqlite-{DEFAULTS['sqlite']}-debian12"]


def test_include_cells():
    cells = expand(spec(include=({"image": "rocky:9", "python": "3.12", "openssl": "3.5"},)))
    assert [c.image.name for c in cells] == ["debian:12", "rocky:9"]
    assert cells[1].openssl.startswith("3.5.")
    only = expand(MatrixSpec(include=({"image": "alma:8", "python": "3.11.2"},)))
    assert len(only) == 1
    with pytest.raises(InputError, match="needs image and python"):
        expand(MatrixSpec(include=({"image": "alma:8"},)))


@pytest.mark.parametrize("kwargs, message", [
    ({"images": ()}, "no image given"),
    ({"pythons": ()}, "no Python version"),
    ({"images": ("fedora:40",)}, "unknown image family"),
    ({"pythons": ("2.7",)}, "not in the catalog"),
    ({"openssls": ("1.0.2",)}, "not in the catalog"),
    ({"openssls": ("/opt/openssl",)}, "means nothing inside a container"),
    ({"images": ("debian:12", "debian:12=buildkit-base:debian-bookworm")}, "same artifact"),
])
def test_bad_matrices(kwargs, message):
    with pytest.raises(InputError, match=message):
        expand(spec(**kwargs))
    with pytest.raises(InputError, match="empty"):
        expand(MatrixSpec())


def test_artifact_name():
    assert artifact_name("3.13.5", "3.0.20", "3.40.1", "debian12", "x86_64") == \
        "python-3.13.5-openssl-3.0.20-sqlite-3.40.1-debian12-x86_64"
    assert artifact_name("3.12.14", "3.5.2", "3.46.1", "ubuntu22.04", "aarch64").endswith("-ubuntu22.04-aarch64")
    for bad in ("", "3.0/../x", "a b"):
        with pytest.raises(InputError):
            artifact_name("3.13.5", bad, "3.40.1", "debian12", "x86_64")


def test_matrix_files(tmp_path):
    toml = tmp_path / "m.toml"
    toml.write_text('python = ["3.13.5", "3.11.2"]\nopenssl = "3.0.20"\n'
                    '[[image]]\nname = "debian:12"\nbase = "buildkit-base:debian-bookworm"\n'
                    '[[image]]\nname = "rocky:9"\n'
                    '[[include]]\nimage = "centos:7"\npython = "3.12"\n')
    m = load_matrix_file(str(toml))
    assert m.images == ("debian:12=buildkit-base:debian-bookworm", "rocky:9")
    assert m.pythons == ("3.13.5", "3.11.2") and tuple(c.text for c in m.openssls) == ("3.0.20",)
    assert len(expand(m)) == 5
    # The command line replaces an axis of the file.
    assert len(expand(m.merged(MatrixSpec(pythons=("3.13.5",))))) == 3
    js = tmp_path / "m.json"
    js.write_text(json.dumps({"image": ["debian:12"], "python": "3.13.5"}))
    assert len(expand(load_matrix_file(str(js)))) == 1


@pytest.mark.parametrize("name, text, message", [
    ("bad.toml", "python = [", "not valid TOML"),
    ("bad.json", "{", "not valid JSON"),
    ("keys.toml", 'pythons = ["3.13"]', "unknown key"),
    ("img.toml", "[[image]]\nbase = 'x:1'\n", "needs name"),
    ("inc.toml", "include = 3\n", "include must be a list"),
])
def test_bad_matrix_files(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_matrix_file(str(path))
    with pytest.raises(InputError, match="missing.toml: no such file"):
        load_matrix_file(str(tmp_path / "missing.toml"))


def _load(text: str):
    if yaml is not None:
        return yaml.safe_load(text)
    pytest.skip("PyYAML is not installed")


def test_github_actions_workflow_parses():
    cells = expand(spec(("debian:12", "centos:7"), ("3.13.5", "3.11.2"), ("3.0.20",)))
    text = github_actions(cells)
    assert text.startswith("# github-actions workflow")
    # Every string is quoted; the 'on' key too (YAML 1.1 would read a bare on as true).
    assert '\n"on":\n' in text
    doc = _load(text)
    assert set(doc) == {"name", "on", "jobs"}
    job = doc["jobs"]["python"]
    include = job["strategy"]["matrix"]["include"]
    assert [i["name"] for i in include] == [c.key for c in cells]
    assert include[0] == {"name": cells[0].key, "image": "debian:12", "python": "3.13.5", "openssl": "3.0.20",
                          "sqlite": DEFAULTS["sqlite"]}
    assert job["strategy"]["fail-fast"] is False
    run = [s for s in job["steps"] if "run" in s][-1]["run"]
    assert run.startswith('buildkit ci python "${{ matrix.python }}"') and "--image \"${{ matrix.image }}\"" in run
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in job["steps"])


def test_gitlab_pipeline_parses():
    cells = expand(spec(("debian:12=buildkit-base:debian-bookworm", "rocky:9"), ("3.12",)))
    doc = _load(gitlab(cells, pip_spec="buildkit @ git+https://example.invalid/buildkit"))
    jobs = {k: v for k, v in doc.items() if k.startswith("python-")}
    assert list(jobs) == [c.key for c in cells]
    first = jobs[cells[0].key]
    assert first["extends"] == ".buildkit-cell"
    assert first["variables"]["IMAGE"] == "debian:12=buildkit-base:debian-bookworm"
    assert first["variables"]["PYTHON"] == cells[0].cpython
    template = doc[".buildkit-cell"]
    assert "$IMAGE" in template["script"][0] and template["artifacts"]["when"] == "always"
    assert doc["variables"]["BUILDKIT_PIP"].startswith("buildkit @ git+")


def test_to_yaml_quotes_what_yaml_would_misread():
    data = {"on": "yes", "version": "3.10", "list": ["no", "a: b", 'q"uote', "#x"], "n": 3, "flag": False,
            "empty": {}, "nested": [{"k": ["v"]}]}
    text = to_yaml(data)
    assert '"version": "3.10"' not in text and 'version: "3.10"' in text
    back = _load(text)
    assert back == data
