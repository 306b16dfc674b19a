"""BUILDKIT.json (buildkit.pybuild.record): one type, schema 2, the shapes written before it, and what every
writer writes read back, so that none can drift: buildkit python and --update-deps (BuildRecord.save), the
probe's --record and relocate.py (standalone: they import no buildkit), and the emitted script's one read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from buildkit.pybuild import probe_script, relocate
from buildkit.pybuild.choice import LibraryChoice
from buildkit.pybuild.install import build_record
from buildkit.pybuild.plan import Request, make_plan
from buildkit.pybuild.record import SCHEMA, BuildRecord, MissingRecord, Modules, RecordError
from buildkit.pybuild.script import render_script
from buildkit.pybuild.toolchain import Toolchain, spec_for
from buildkit.pybuild.update import make_update_plan, update_record
from buildkit.pybuild.verify import CLEAN_ENV, PROBE_MARK, PROBE_SOURCE, VerifyReport, report_from_probe
from tests.unit.test_plan import CENTOS7, MODERN

PREFIX = "/opt/py"
NEEDED = {"openssl": ("libcrypto.so.3", "libssl.so.3"), "sqlite": ("libsqlite3.so.0",)}
#: the keys of a record of buildkit python, in the order it has always written them (--json prints them so)
BUILD_KEYS = ["schema", "buildkit", "created", "build_id", "prefix", "python", "host", "openssl", "sqlite", "sources",
              "steps", "optimize", "portable", "optimization", "modules", "verification", "verified", "seconds",
              "request_id", "component_seconds", "step_seconds", "previous"]
#: buildkit's own steps of a build, as build_python records them (pybuild.clock)
STEP_SECONDS = {"plan": 0.412, "fetch": 2.06, "extract": 3.71, "verify": 1.52, "switch": 0.83}


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """The probe run as the emitted script runs it (``python -I - ... --record FILE``, its source on stdin) on
    this interpreter: its output, and the BUILDKIT.json it made."""
    record = tmp_path_factory.mktemp("probe") / "BUILDKIT.json"
    run = subprocess.run(["env", "-i", *(f"{k}={v}" for k, v in CLEAN_ENV.items()), "PIP_CONFIG_FILE=/dev/null",
                          sys.executable, "-I", "-", "--json", "--record", str(record)],
                         input=PROBE_SOURCE, capture_output=True, text=True, timeout=300)
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith(PROBE_MARK))
    return json.loads(line[len(PROBE_MARK):]), record


@pytest.fixture
def report(probed: tuple[dict, Path]) -> VerifyReport:
    return report_from_probe(sys.executable, probed[0])


def _tree(root: Path) -> Path:
    """An install in miniature: bin/ with a script whose #! names the install's python3."""
    (root / "bin").mkdir(parents=True)
    (root / "lib").mkdir()
    script = root / "bin" / "pip3"
    script.write_text(f"#!{root}/bin/python3\nimport pip\n")
    script.chmod(0o755)
    return root


def _built(report: VerifyReport, tmp_path: Path, portable: bool = False) -> BuildRecord:
    """What build_python records for a build of CPython 3.13.5 (a portable one: made relocatable in place)."""
    if portable:
        plan = make_plan(Request("3.13.5", PREFIX, toolchain=Toolchain(spec_for("2.17"), "/tc", "2.17")), MODERN)
        relocatable = relocate.relocate_in_place(str(_tree(tmp_path / "in-place")), [plan.openssl.prefix])
        optimization = None
    else:
        plan = make_plan(Request("3.13.5", PREFIX, optimize=True), CENTOS7)
        relocatable = None
        optimization = {"pgo": True, "lto": True, "profile_files": 412, "profile_tests": "44/44"}
    return build_record(plan, report, Modules(("_tkinter",), (), ("_curses",)), 1523.44, optimization,
                        request_id=plan.build_id, component_seconds={"cpython": 1490.2}, step_seconds=STEP_SECONDS,
                        relocatable=relocatable, previous=f"{PREFIX}.buildkit/builds/3.13.5-older")


def _read_back(path: str | Path) -> tuple[BuildRecord, dict]:
    """The record a file holds, and its JSON: the record writes that JSON again, key for key."""
    text = Path(path).read_text()
    record = BuildRecord.parse(text, str(path))
    assert record.to_json() == json.loads(text)
    return record, json.loads(text)


# --- the writers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("portable", [False, True])
def test_build_python_writes_schema_2_in_its_key_order(report, tmp_path, portable):
    record = _built(report, tmp_path, portable)
    got, data = _read_back(record.save(str(tmp_path)))
    assert got == record and sorted(os.listdir(tmp_path))[0] == "BUILDKIT.json"  # no temporary file left
    assert list(data) == BUILD_KEYS[:-1] + (["relocatable"] if portable else []) + ["previous"]
    assert data["schema"] == SCHEMA and data["verification"] == report.to_json() and data["verified"] == report.ok
    assert data["step_seconds"] == STEP_SECONDS and got.step_seconds == STEP_SECONDS
    plan = make_plan(Request("3.13.5", PREFIX, toolchain=Toolchain(spec_for("2.17"), "/tc", "2.17")), MODERN) \
        if portable else make_plan(Request("3.13.5", PREFIX, optimize=True), CENTOS7)
    assert data["steps"] == plan.to_json()["components"] and data["portable"] == plan.to_json()["portable"]
    assert data["openssl"] == plan.to_json()["openssl"] and data["optimize"] is not portable
    assert got.verification is not None and got.verification.executable  # VerifyReport's, not the probe's own
    if portable:
        assert data["relocatable"]["scripts"] == ["bin/pip3"] and set(data["relocatable"]["config"]) == {
            "sysconfigdata", "pkgconfig", "makefile", "scripts"}


def test_update_deps_writes_the_installed_record_with_the_new_library(report, tmp_path):
    base = replace(_built(report, tmp_path), optimize=False, optimization=None)
    plan = make_update_plan(PREFIX, f"{PREFIX}.buildkit/builds/{base.build_id}", base,
                            (LibraryChoice.parse("openssl", "3.5.7"),), NEEDED, CENTOS7)
    changed = {"rpath": [f"{plan.install_dir}/lib/python3.13/lib-dynload/_ssl.so"], "text": ["x"], "symlink": []}
    record = update_record(plan, report, changed, "3.13.5 (main)", "3.13.5 (main)", 61.0)
    got, data = _read_back(record.save(str(tmp_path)))
    assert got == record and list(data) == BUILD_KEYS + ["update"]
    assert got.step_seconds == {} and got.component_seconds == base.component_seconds  # not the base build's steps
    assert got.build_id == plan.build_id and got.previous == plan.current and got.request_id == base.request_id
    assert got.openssl is not None and got.openssl.version == "3.5.7" and got.sqlite == base.sqlite
    assert [s.version for s in got.sources if s.package == "openssl"] == ["3.5.7"]
    assert got.update is not None and got.update.base_build == base.build_id
    assert data["update"]["repointed"] == {"rpath": ["lib/python3.13/lib-dynload/_ssl.so"], "text": 1, "symlink": 0}
    # an update of that update: still the build CPython was compiled in
    again = make_update_plan(PREFIX, plan.install_dir, got, (LibraryChoice.parse("sqlite", "3.46.1"),), NEEDED,
                             CENTOS7)
    assert again.compiled_against == {"openssl": "3.0.20", "sqlite": "3.40.1"}
    second = update_record(again, report, {"rpath": [], "text": [], "symlink": []}, "v", "v", 1.0)
    assert second.update is not None and second.update.base_build == base.build_id


def test_probe_record_is_schema_2_and_read_back(probed):
    payload, path = probed
    record, data = _read_back(path)
    assert list(data) == ["schema", "verified", "verification"] and data["schema"] == probe_script.RECORD_SCHEMA
    assert record.build_id == "" and record.verified is payload["report"]["ok"]
    assert record.verification is not None and record.verification.executable is None  # the probe's own report
    assert [c.name for c in record.verification.checks] == [c["name"] for c in payload["report"]["checks"]]


def test_probe_merges_into_a_record_of_buildkit(probed, report, tmp_path):
    built = _built(report, tmp_path)
    path = built.save(str(tmp_path))
    probe_script.write_record(path, probed[0]["report"])  # what --record does after its checks
    record, _ = _read_back(path)
    assert record.steps == built.steps and record.verification is not None and record.verification.executable is None
    assert record.step_seconds == built.step_seconds  # kept as they were, like every key it does not write


def test_relocate_records_what_it_did_in_the_copy(probed, report, tmp_path):
    assert relocate.RECORD_SCHEMA == probe_script.RECORD_SCHEMA == SCHEMA
    bare = _tree(tmp_path / "bare")  # no BUILDKIT.json: relocate.py makes one
    relocate.relocate_tree(str(bare), [], "", "", "bare", str(tmp_path / "out"))
    record, data = _read_back(tmp_path / "out" / "bare" / "BUILDKIT.json")
    assert list(data) == ["schema", "relocated"] and record.relocated is not None
    assert record.relocated.scripts == ("bin/pip3",) and record.relocated.config is not None

    script = _tree(tmp_path / "script")  # buildkit ci: the emitted script's build, relocated
    shutil.copy(probed[1], script / "BUILDKIT.json")
    relocate.relocate_tree(str(script), [], "", "", "script", str(tmp_path / "out"))
    record, _ = _read_back(tmp_path / "out" / "script" / "BUILDKIT.json")
    assert record.verification is not None and record.relocated is not None

    portable = _tree(tmp_path / "portable")  # buildkit ci --portable: packed as it is
    _built(report, tmp_path, portable=True).save(str(portable))
    relocate.package_tree(str(portable), "portable", str(tmp_path / "out"), exclude=("lib",))
    assert not (tmp_path / "out" / "portable").exists()  # packed, then removed: read it from the archive
    shutil.unpack_archive(tmp_path / "out" / "portable.tar.gz", tmp_path / "unpacked")
    record, _ = _read_back(tmp_path / "unpacked" / "portable" / "BUILDKIT.json")
    assert record.relocated is not None and record.relocated.portable and record.relocated.excluded == ("lib",)
    assert record.portable is not None and record.relocatable is not None and record.step_seconds == STEP_SECONDS


@pytest.mark.skipif(shutil.which("cc") is None or shutil.which("make") is None, reason="cc and make are needed")
def test_emitted_script_finds_a_clean_build_of_its_command_by_request_id(report, tmp_path):
    """The script's one read of the record: a --clean build of the same command (another folder) whose record
    names the script's build id as request_id is what the script would build: nothing to do."""
    plan = make_plan(Request("3.11.2", str(tmp_path / "py")), MODERN)
    clean = Path(plan.state_dir, "builds", "3.11.2-clean")
    clean.mkdir(parents=True)
    replace(_built(report, tmp_path), request_id=plan.build_id, build_id="3.11.2-clean").save(str(clean))
    os.symlink(clean, tmp_path / "py")
    (tmp_path / "build.sh").write_text(render_script(plan))
    run = subprocess.run(["sh", str(tmp_path / "build.sh"), str(tmp_path)], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert run.returncode == 0 and "nothing to do" in run.stderr, run.stderr
    assert sorted(os.listdir(plan.state_dir)) == ["builds"]  # it stopped before making anything


# --- schema 1: the records written before the key ---------------------------------------------------------


def _old(record: BuildRecord, *drop: str) -> dict:
    data = record.to_json()
    for key in ("schema",) + drop:
        del data[key]
    return data


def test_first_records_read_with_what_came_later_filled_in(report, tmp_path):
    """The first shape (the first commit): no optimize, portable, optimization, request_id, component_seconds,
    previous; a verification without ca_stores and binaries."""
    data = _old(_built(report, tmp_path), "optimize", "portable", "optimization", "request_id", "component_seconds",
                "step_seconds", "previous")
    del data["verification"]["ca_stores"], data["verification"]["binaries"]
    record = BuildRecord.from_json(data)
    assert (record.optimize, record.portable, record.optimization, record.request_id, record.previous) == (
        False, None, None, "", "")
    assert record.component_seconds == {} and record.step_seconds == {} and record.verification is not None
    assert (record.verification.ca_stores, record.verification.binaries) == (None, None)
    upgraded = record.to_json()
    assert list(upgraded) == BUILD_KEYS and BuildRecord.from_json(upgraded) == record
    assert {k: v for k, v in upgraded.items() if k in data and k != "verification"} == {
        k: v for k, v in data.items() if k != "verification"}


def test_old_update_and_relocated_records(report, tmp_path, probed):
    base = replace(_built(report, tmp_path), optimize=False, optimization=None)
    plan = make_update_plan(PREFIX, f"{PREFIX}.buildkit/builds/{base.build_id}", base,
                            (LibraryChoice.parse("openssl", "3.5.7"),), NEEDED, CENTOS7)
    updated = update_record(plan, report, {"rpath": [], "text": [], "symlink": []}, "v", "v", 1.0)
    data = _old(updated, "portable", "request_id")  # an update (December) of a build made before --portable
    assert BuildRecord.from_json(data).update == updated.update

    # buildkit ci before relocate.py rewrote the configuration: "relocated" without "config", on the script's record
    script = json.loads(probed[1].read_text())
    del script["schema"]
    script["relocated"] = {"name": "n", "from": "/i", "libraries": [], "runpaths": [{"file": "bin/p", "old": "/x",
                           "new": "$ORIGIN"}], "scripts": [], "openssldir": None, "excluded": []}
    record = BuildRecord.from_json(script)
    assert record.relocated is not None and record.relocated.config is None
    assert record.to_json() == {"schema": SCHEMA, **script}


def test_schema_2_records_written_before_step_seconds(report, tmp_path):
    """step_seconds came within schema 2: a schema-2 record without it reads (as {}), and is written back with
    it, empty; every other key is still required there."""
    data = _built(report, tmp_path).to_json()
    del data["step_seconds"]
    record = BuildRecord.from_json(data)
    assert record.step_seconds == {} and record.component_seconds == {"cpython": 1490.2}
    assert record.to_json() == {**data, "step_seconds": {}} and list(record.to_json()) == BUILD_KEYS
    del data["component_seconds"]
    with pytest.raises(RecordError, match="component_seconds is missing"):
        BuildRecord.from_json(data)


def test_partial_records_read_as_schema_1():
    """Tests and hand-made files hold a few keys: schema 1 fills in the rest."""
    record = BuildRecord.from_json({"build_id": "3.13.5-0123456789", "verified": True})
    assert record.verified and record.openssl is None and record.modules == Modules()
    assert BuildRecord.from_json({"portable": None, "verified": True}).portable is None


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ('{\n  "build_id": ', "not JSON (Expecting value: line 2 column 15"),
    ("[1, 2]", "the record is a list, not an object"),
    ('{"schema": 2, "verified": true, "colour": "red"}', "unknown key 'colour'"),
    ('{"schema": "2"}', "schema is '2', not a version number"),
    ('{"build_id": 5}', "build_id is a number, not a string"),
    ('{"openssl": {"how": "bundled"}}', "openssl.how is 'bundled', not one of private, system, prefix"),
    ('{"steps": [{"package": "cpython", "steps": [{"phase": "build", "argv": ["make"], "env": {"CC": 1}}]}]}',
     "steps[0].steps[0].env.CC is a number, not a string"),
    ('{"schema": 2, "build_id": "x"}', "host is missing"),
    ('{"step_seconds": {"plan": "0.4"}}', "step_seconds.plan is a string, not a number"),
])
def test_a_bad_record_is_one_line_naming_the_file_and_the_fix(tmp_path, text, message):
    (tmp_path / "BUILDKIT.json").write_text(text)
    with pytest.raises(RecordError) as err:
        BuildRecord.load(str(tmp_path))
    line = str(err.value)
    assert line.startswith(f"{tmp_path}/BUILDKIT.json: ") and message in line, line
    assert "\n" not in line and line.endswith("--clean (buildkit writes BUILDKIT.json)")


def test_a_newer_schema_names_the_buildkit_that_wrote_it(tmp_path):
    (tmp_path / "BUILDKIT.json").write_text('{"schema": 3, "buildkit": "0.9.0", "build_id": "x"}')
    with pytest.raises(RecordError) as err:
        BuildRecord.load(str(tmp_path))
    assert str(err.value) == (f"{tmp_path}/BUILDKIT.json: schema 3, newer than this buildkit reads (up to 2); "
                              "read it with buildkit 0.9.0 (which wrote it) or newer")
    with pytest.raises(MissingRecord):
        BuildRecord.load(str(tmp_path / "absent"))


@pytest.mark.parametrize("command", [["python", "--prefix", "{prefix}", "--rollback"],
                                     ["bundle", "--python", "{prefix}", "--out", "{out}"]])
def test_the_cli_says_which_record_is_bad(tmp_path, command):
    install = tmp_path / "py.buildkit" / "builds" / "3.13.5-x"
    install.mkdir(parents=True)
    (install / "BUILDKIT.json").write_text('{"verified": true,')
    os.symlink(install, tmp_path / "py")
    argv = [a.format(prefix=tmp_path / "py", out=tmp_path) for a in command]
    run = subprocess.run([sys.executable, "-m", "buildkit", *argv], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith(f"buildkit: error: {install}/BUILDKIT.json: not JSON (")
