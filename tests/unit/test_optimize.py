"""--optimize (PGO + LTO): the toolchain check up front, the evidence read after the build, the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from buildkit.cli import cli
from buildkit.container.matrix import artifact_name
from buildkit.errors import InputError
from buildkit.pybuild.build import optimization_evidence
from buildkit.pybuild.host import require_optimizer

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")


@needs_gcc
def test_this_hosts_gcc_links_with_lto_and_profile_generation(monkeypatch):
    monkeypatch.setenv("CC", "gcc")
    version = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    require_optimizer(version)  # raises when gcc's LTO plugin or libgcov is missing


def test_a_compiler_that_cannot_link_is_one_line_with_the_fix(monkeypatch):
    monkeypatch.setenv("CC", "false")
    with pytest.raises(InputError) as err:
        require_optimizer("cc (Debian 12.2.0-14) 12.2.0")
    assert err.value.message == ("--optimize: false cannot link with -flto -fuse-linker-plugin -ffat-lto-objects "
                                 "-fprofile-generate (exit 1)")
    assert "LTO plugin" in err.value.fix


def test_clang_without_llvm_profdata_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no llvm-profdata anywhere
    monkeypatch.setenv("CC", "clang")
    with pytest.raises(InputError, match="--optimize with clang needs llvm-profdata, which is not on PATH"):
        require_optimizer("Debian clang version 14.0.6")


def test_evidence_from_the_tree_and_the_build_log(tmp_path):
    tree = tmp_path / "cpython"
    (tree / "Objects").mkdir(parents=True)
    for name in ("abstract", "longobject"):
        (tree / "Objects" / f"{name}.gcda").write_bytes(b"adcg")
    log = tmp_path / "build.log"
    log.write_text(
        "0:00:01 load avg: 1.93 [ 1/44] test_array\n"
        "0:03:10 load avg: 2.10 [44/44] test_xml_etree_c\n"
        "gcc -c -fno-strict-overflow -Wsign-compare -DNDEBUG -g -O3 -Wall -flto -fuse-linker-plugin "
        "-ffat-lto-objects -flto-partition=none -fprofile-use -fprofile-correction -o Objects/abstract.o "
        "Objects/abstract.c\n")
    assert optimization_evidence(str(tree), str(log)) == {"pgo": True, "lto": True, "profile_files": 2,
                                                          "profile_tests": "44/44"}
    log.write_text("0:00:01 load avg: 1.93 [ 1/44] test_array\n0:00:02 load avg: 1.93 [ 2/44] test_base64\n"
                   "Fatal Python error: Segmentation fault\n")  # the run stopped: the check must see 2/44
    assert optimization_evidence(str(tree), str(log))["profile_tests"] == "2/44"
    log.write_text("gcc -c -O3 -Wall -o Objects/abstract.o Objects/abstract.c\n")
    assert optimization_evidence(str(tmp_path / "empty"), str(log)) == {
        "pgo": False, "lto": False, "profile_files": 0, "profile_tests": "0/0"}


def test_cli_dry_run_json_says_optimize_and_the_id_differs(tmp_path):
    runner = CliRunner()
    args = ["python", "3.13.5", "--with-openssl", "--with-sqlite", "--prefix", str(tmp_path / "py"), "--dry-run",
            "--json"]
    plain = json.loads(runner.invoke(cli, args).output)
    opt = json.loads(runner.invoke(cli, [*args, "--optimize"]).output)
    assert (plain["optimize"], opt["optimize"]) == (False, True)
    assert plain["build_id"] != opt["build_id"]
    make = next(s for s in opt["components"][-1]["steps"] if s["phase"] == "build")
    assert make["argv"][2].startswith("PROFILE_TASK=-m test --pgo -j")


def test_profile_tests_shorten_the_training_run_and_are_part_of_the_identity(tmp_path):
    runner = CliRunner()
    args = ["python", "3.13.5", "--with-openssl", "--with-sqlite", "--prefix", str(tmp_path / "py"), "--dry-run",
            "--json", "--optimize"]
    full = json.loads(runner.invoke(cli, args).output)
    short = json.loads(runner.invoke(cli, [*args, "--profile-tests", "test_json, test_re"]).output)
    make = next(s for s in short["components"][-1]["steps"] if s["phase"] == "build")
    assert make["argv"][2] == "PROFILE_TASK=-m test --pgo -j2 --timeout=$(TESTTIMEOUT) test_json test_re || true" \
        or make["argv"][2].endswith("--timeout=$(TESTTIMEOUT) test_json test_re || true")
    assert short["profile_tests"] == ["test_json", "test_re"] and full["profile_tests"] is None
    assert short["build_id"] != full["build_id"]
    for extra, message in ((["--profile-tests", "json"], "json is not a regrtest file name"),
                           (["--profile-tests", ","], "no test is not a regrtest file name")):
        run = subprocess.run([sys.executable, "-m", "buildkit", *args, *extra], capture_output=True, text=True)
        assert run.returncode == 2 and message in run.stderr and len(run.stderr.splitlines()) == 1, run.stderr
    plain = [a for a in args if a != "--optimize"] + ["--profile-tests", "test_json"]
    run = subprocess.run([sys.executable, "-m", "buildkit", *plain], capture_output=True, text=True)
    assert run.returncode == 2 and "--profile-tests is an option of --optimize" in run.stderr


def test_ci_artifacts_of_plain_and_optimized_builds_have_different_names():
    plain = artifact_name("3.13.5", "3.0.20", "3.40.1", "debian12", "x86_64")
    opt = artifact_name("3.13.5", "3.0.20", "3.40.1", "debian12", "x86_64", optimized=True)
    assert plain == "python-3.13.5-openssl-3.0.20-sqlite-3.40.1-debian12-x86_64"
    assert opt == "python-3.13.5-pgo-lto-openssl-3.0.20-sqlite-3.40.1-debian12-x86_64"


def test_ci_python_help_offers_optimize():
    out = CliRunner().invoke(cli, ["ci", "python", "--help"]).output
    assert "--optimize" in out and "PGO + LTO" in out


def test_build_without_an_lto_toolchain_stops_before_fetching_anything(tmp_path):
    """The whole command, for real: exit 2, one line naming the compiler and the fix, nothing made."""
    import os
    import sys

    env = {**os.environ, "CC": "false"}
    run = subprocess.run([sys.executable, "-m", "buildkit", "python", "3.13.5", "--optimize", "--with-openssl",
                          "--with-sqlite", "--prefix", str(tmp_path / "py"), "--cache", str(tmp_path / "cache"),
                          "--no-debian"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2
    assert run.stderr.startswith("buildkit: error: --optimize: false cannot link with -flto ")
    assert "LTO plugin" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "py.buildkit").exists() and not (tmp_path / "cache").exists()


def test_dry_run_reads_as_a_shell_would(tmp_path):
    """Issue 17 item 8: an audit before running as root. The make line's PROFILE_TASK is one quoted word (not
    'make ... || true'), each sha256 is whole, and the verification and the switch are said."""
    import shlex

    from buildkit import catalog

    run = subprocess.run([sys.executable, "-m", "buildkit", "python", "3.13.5", "--with-openssl", "--with-sqlite",
                          "--optimize", "--prefix", str(tmp_path / "py"), "--dry-run"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    make = next(line for line in run.stdout.splitlines() if "PROFILE_TASK" in line)
    words = shlex.split(make.split(None, 1)[1])
    assert words[:2] == ["make", "-j2"] and words[2].startswith("PROFILE_TASK=-m test --pgo")
    assert words[2].endswith("|| true") and len(words) == 3
    assert f"sha256 {catalog.find('cpython', '3.13.5').sha256}]" in run.stdout
    assert run.stdout.splitlines()[-1].startswith(f"then      verify {tmp_path}/py.buildkit/builds/3.13.5-")
    assert f"switch {tmp_path / 'py'} -> " in run.stdout
