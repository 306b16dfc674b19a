"""--with-openssl/--with-sqlite (issue 19 item 2): one parser (pybuild/choice.py) at the edge, one type carried to
the plan, the update and the matrix; one minimum per library (catalog.library_min) used by all three."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from buildkit import catalog
from buildkit.catalog import Source
from buildkit.container.matrix import MatrixSpec, expand, resolve_choice
from buildkit.errors import InputError
from buildkit.pybuild import build
from buildkit.pybuild.choice import AUTO, PREFIX, PRIVATE, SYSTEM, VERSION, LibraryChoice
from buildkit.pybuild.plan import Request, make_plan
from buildkit.pybuild.update import update_versions
from tests.unit.test_plan import CENTOS7, MODERN


@pytest.mark.parametrize("package, text, kind, value", [
    ("openssl", None, AUTO, ""),
    ("openssl", "private", PRIVATE, ""),
    ("sqlite", "system", SYSTEM, ""),
    ("openssl", "/opt/openssl-3", PREFIX, "/opt/openssl-3"),
    ("sqlite", "rel/sqlite", PREFIX, "rel/sqlite"),
    ("openssl", "3.0", VERSION, "3.0"),
    ("openssl", "1.1.1w", VERSION, "1.1.1w"),
    ("sqlite", "3.46.1", VERSION, "3.46.1"),
    ("sqlite", "3.99.9", VERSION, "3.99.9"),  # a version the catalog lacks is the plan's to refuse, with its nearest
])
def test_each_kind(package, text, kind, value):
    choice = LibraryChoice.parse(package, text)
    assert (choice.package, choice.kind, choice.value) == (package, kind, value)
    assert choice.text == (text or "")  # as written, for messages and commands
    assert str(choice) == (f"--with-{package}={text}" if text is not None else f"no --with-{package}")
    assert choice.from_host == (kind in (SYSTEM, PREFIX))
    assert choice.private_if_auto().kind == (PRIVATE if kind == AUTO else kind)


@pytest.mark.parametrize("package, text, message", [
    ("openssl", "latest", "--with-openssl=latest: not a version, a prefix (a path with /), private or system"),
    ("sqlite", "3.x", "--with-sqlite=3.x: not a version, a prefix (a path with /), private or system"),
    ("openssl", "System", "--with-openssl=System: not a version, a prefix (a path with /), private or system"),
    ("openssl", "", "--with-openssl=: an empty value"),
    ("sqlite", " ", "--with-sqlite= : an empty value"),
])
def test_bad_values_name_the_option_the_value_and_the_fix(package, text, message):
    with pytest.raises(InputError) as err:
        LibraryChoice.parse(package, text)
    assert err.value.message == message
    assert err.value.fix is not None
    assert f"--with-{package}={catalog.default(package)}" in err.value.fix and "buildkit python --list" in err.value.fix
    assert "\n" not in str(err.value)


def test_the_type_holds_only_what_the_grammar_makes():
    for bad in (lambda: LibraryChoice("zlib"), lambda: LibraryChoice("openssl", VERSION),
                lambda: LibraryChoice("sqlite", SYSTEM, "3.46.1"),
                lambda: Request("3.13.5", "/opt/py", LibraryChoice("sqlite"), LibraryChoice("openssl"))):
        with pytest.raises(ValueError):
            bad()


def test_one_reading_for_the_plan_and_the_matrix():
    ssl, sql = LibraryChoice.parse("openssl", "3.0"), LibraryChoice.parse("sqlite", "private")
    plan = make_plan(Request("3.11.2", "/opt/py", ssl, sql), CENTOS7)
    newest_30 = catalog.find("openssl", "3.0").version
    assert (plan.openssl.how, plan.openssl.version) == ("private", newest_30)
    assert (plan.sqlite.how, plan.sqlite.version) == ("private", catalog.default("sqlite"))
    assert (resolve_choice(ssl), resolve_choice(sql)) == (newest_30, catalog.default("sqlite"))
    (cell,) = expand(MatrixSpec(("debian:12",), ("3.11.2",), (ssl,), (LibraryChoice.parse("sqlite", "system"),)))
    assert (cell.openssl, cell.sqlite) == (newest_30, "system")
    assert (cell.choice("openssl"), cell.choice("sqlite")) == (LibraryChoice("openssl", VERSION, newest_30),
                                                               LibraryChoice("sqlite", SYSTEM))


def test_the_update_takes_versions_only():
    assert update_versions((LibraryChoice.parse("openssl", "3.5.7"), LibraryChoice.parse("sqlite", None))) == {
        "openssl": "3.5.7"}
    for text in ("private", "system", "/opt/ssl"):
        with pytest.raises(InputError, match=f"--update-deps --with-openssl={text}: name the version to update to"):
            update_versions((LibraryChoice.parse("openssl", text),))
    with pytest.raises(InputError, match="--update-deps: nothing to update"):
        update_versions((LibraryChoice("openssl"), LibraryChoice("sqlite")))


def test_library_min_is_the_one_minimum(monkeypatch):
    assert catalog.library_min("openssl", "3.9") == "1.0.2" and catalog.library_min("openssl", "3.12") == "1.1.1"
    assert catalog.library_min("sqlite", "3.11.2") == catalog.django_sqlite_min()  # Django's beats CPython's 3.7.15
    assert catalog.library_min("sqlite", "3.13.5") == "3.15.2"  # CPython's beats Django's
    # the plan, the matrix and the update all ask it
    monkeypatch.setattr(catalog, "library_min", lambda package, cpython: "9.9")
    with pytest.raises(InputError, match="is older than 9.9, which CPython 3.11.2 needs"):
        make_plan(Request("3.11.2", "/opt/py"), MODERN)
    with pytest.raises(InputError, match="is older than 9.9, which CPython 3.13.5 needs"):
        expand(MatrixSpec(("debian:12",), ("3.13.5",)))
    from tests.unit.test_update_plan import HOST, NEEDED, PREFIX, installed

    monkeypatch.undo()
    plan, record = installed()
    monkeypatch.setattr(catalog, "library_min", lambda package, cpython: "9.9")
    from buildkit.pybuild.update import make_update_plan

    with pytest.raises(InputError, match="--update-deps: OpenSSL 3.0.20 is older than 9.9"):
        make_update_plan(PREFIX, plan.install_dir, record, (LibraryChoice.parse("openssl", "3.0.20"),), NEEDED, HOST)


def test_a_fetch_that_agrees_with_the_plan_is_not_planned_again(monkeypatch, tmp_path):
    """buildkit python plans once before fetching (the tools it needs); that plan is the one fetched for, and
    planned again only when a fetch took another tarball."""
    made: list[dict[str, Source]] = []
    full = next(s for s in catalog.candidates("sqlite", "3.40.1") if s.kind == "full")

    def make(sources):
        made.append(dict(sources))
        return make_plan(Request("3.11.2", str(tmp_path / "py")), CENTOS7, sources)

    class Got:
        def __init__(self, source):
            self.source, self.path, self.origin = source, tmp_path / source.filename, "cache"

    import buildkit.sources

    monkeypatch.setattr(buildkit.sources, "fetch_first", lambda candidates, **kw: Got(candidates[0]))
    first = make({})
    plan, files = build.plan_and_fetch(make, build.FetchOptions(tmp_path), planned=first)
    assert plan is first and len(made) == 1 and set(files) == {"openssl", "sqlite", "cpython"}
    monkeypatch.setattr(buildkit.sources, "fetch_first",
                        lambda candidates, **kw: Got(full if candidates[0].package == "sqlite" else candidates[0]))
    plan, _ = build.plan_and_fetch(make, build.FetchOptions(tmp_path), planned=first)
    assert len(made) == 2 and next(c for c in plan.components if c.package == "sqlite").source == full


def buildkit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buildkit", *args], capture_output=True, text=True, cwd=cwd)


def test_each_command_says_a_bad_value_in_one_line(tmp_path):
    runs = {
        "--with-openssl=latest:": buildkit("python", "3.13.5", "--with-openssl=latest", "--prefix",
                                           str(tmp_path / "py"), "--dry-run"),
        "--with-sqlite=3.x:": buildkit("ci", "matrix", "--format", "json", "--image", "debian:12", "--python",
                                       "3.13.5", "--with-sqlite", "3.x"),
        "--update-deps --with-openssl=system:": buildkit("python", "--prefix", str(tmp_path / "py"), "--update-deps",
                                                         "--with-openssl=system"),
    }
    matrix = tmp_path / "m.toml"
    matrix.write_text('image = ["debian:12"]\npython = ["3.13.5"]\nopenssl = ["three"]\n')
    runs[f"--matrix {matrix}: --with-openssl=three:"] = buildkit("ci", "matrix", "--format", "json", "--matrix",
                                                                 str(matrix))
    for start, run in runs.items():
        assert run.returncode == 2, (start, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"buildkit: error: {start}"), lines
