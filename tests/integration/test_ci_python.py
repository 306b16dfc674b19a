"""``buildkit ci python`` on a real Docker engine, with a Debian bookworm base made by debootstrap.

The builder image has the distribution's toolchain and no libssl-dev/libsqlite3-dev. In it, a plain
CPython build with the distribution's gcc reproduces the seed failure (``No module named '_ssl'``); then
one real ``buildkit ci python --optimize`` run (OpenSSL 3.0.20, SQLite 3.40.1, CPython 3.13.5 with PGO and
LTO, shared by the tests here) fixes it, verified inside the container twice (in place, then unpacked
elsewhere with the build prefix gone) and once more on this machine. It is the suite's one PGO + LTO build
(the fresh-machine test builds a plain 3.13.5, test_python_build a plain 3.11.2): the emitted script, the
container and the relocated artifact all carry the optimization, and the tests prove it from the result.
In a reduced form: the profile run trains on five regrtest files (--profile-tests), not regrtest's PGO set of
about 45, which took ~24 minutes of CI; every other step is the full one, and bench/bench_optimize.py
builds with the full profile run. Also: the second run reuses the image and refuses to overwrite the
artifact, a container killed mid-build and a base without a shell end in one line and exit 2.

The engine is ``$DOCKER_HOST``, else the private one ``tests/fixtures/dockerd.sh`` starts (and stops at the
end); the base image is made by ``tests/fixtures/images.sh``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

IMAGE = "debian:12=buildkit-base:debian-bookworm"
CPYTHON, OPENSSL, SQLITE = "3.13.5", "3.0.20", "3.40.1"
NAME = f"python-{CPYTHON}-openssl-{OPENSSL}-sqlite-{SQLITE}-debian12-x86_64"
OPT_NAME = f"python-{CPYTHON}-pgo-lto-openssl-{OPENSSL}-sqlite-{SQLITE}-debian12-x86_64"  # the --optimize build
# The reduced profile run of CI (see the module docstring): five files of regrtest's PGO set.
PROFILE_TESTS = ("test_json", "test_re", "test_struct", "test_int", "test_itertools")


def buildkit(host: str, *args: str, timeout: int = 3600) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": host}
    return subprocess.run([sys.executable, "-m", "buildkit", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope="session")
def engine(docker_host):
    from buildkit.container.engine import connect

    return connect(docker_host)


@pytest.fixture(scope="session")
def builder(engine, tmp_path_factory):
    """The python builder image of debian:12 (built once; later sessions find it by its template hash)."""
    from buildkit.container.images import parse_image
    from buildkit.container.python import prepare_image, render_options

    image = parse_image(IMAGE)
    return prepare_image(engine, image, render_options(image, "python"), tmp_path_factory.mktemp("image-logs"), print)


def test_builder_image_has_the_toolchain_but_no_system_openssl_or_sqlite(engine, builder):
    info = builder.host.info
    assert builder.host.os_id == "debian" and builder.host.version_id == "12" and builder.host.arch == "x86_64"
    assert info.openssl is None and info.sqlite is None  # no libssl-dev, no libsqlite3-dev
    assert info.compiler.startswith("cc (Debian 12.") and info.ca_file and info.ca_dir
    script = ("id -u; id -un; perl -MIPC::Cmd -e 'print qq(ipc-cmd\\n)'; "
              "command -v tclsh; command -v make; command -v gcc")
    with engine.container(builder.image_id, what="the toolchain check") as c:
        out = c.call(["/bin/sh", "-c", script]).output.split()
        # No network in the container: only the loopback interface.
        net = c.call(["/bin/sh", "-c", "ls /sys/class/net"]).output.split()
    assert out[:3] == ["1000", "build", "ipc-cmd"] and len(out) == 6
    assert net == ["lo"]
    labels = engine.api.inspect_image(builder.image_id)["Config"]["Labels"]
    assert labels["org.buildkit.template-hash"] == builder.rendered.hash


def test_distro_toolchain_alone_reproduces_no_module_named_ssl(engine, builder, sources, tmp_path):
    """The seed failure: configure and make with Debian's gcc and no OpenSSL headers -> no _ssl."""
    tarball = next(sources.glob(f"Python-{CPYTHON}.tar.*"))
    script = (f"set -e; cd /home/build; tar -xf {tarball.name}; cd Python-{CPYTHON}; "
              "./configure --prefix=/home/build/plain; make -j2; "
              "./python -c 'import ssl' || true; ./python -c 'import sqlite3' || true")
    log = tmp_path / "plain.log"
    with engine.container(builder.image_id, what="a plain CPython build") as c:
        c.copy_into([(tarball, tarball.name)], "/home/build")
        result = c.call(["/bin/sh", "-c", script], log=log, check=False)
    text = log.read_text(errors="replace")
    assert result.exit_code == 0, "\n".join(result.tail)
    assert "checking for stdlib extension module _ssl... missing" in text
    assert "ModuleNotFoundError: No module named '_ssl'" in text
    assert "ModuleNotFoundError: No module named '_sqlite3'" in text
    summary = text[text.index("The necessary bits to build these optional modules were not found"):][:300]
    assert "_ssl" in summary and "_hashlib" in summary and "Could not build the ssl module!" in summary
    assert "checking for stdlib extension module _sqlite3... disabled" in text  # no sqlite3.h


@pytest.fixture(scope="session")
def ci_run(docker_host, builder, sources, tmp_path_factory):
    """The one real build of this module: buildkit ci python --optimize (PGO + LTO) in the bookworm image."""
    out = tmp_path_factory.mktemp("ci-out")
    started = time.monotonic()
    run = buildkit(docker_host, "ci", "python", CPYTHON, f"--with-openssl={OPENSSL}", f"--with-sqlite={SQLITE}",
                   "--optimize", "--profile-tests", ",".join(PROFILE_TESTS), "--image", IMAGE, "--source-dir",
                   str(sources), "--out", str(out), "--json")
    print(f"\nbuildkit ci python {CPYTHON} --optimize: {time.monotonic() - started:.0f} s")
    return run, out, time.monotonic() - started


def test_ci_python_fixes_it_verified_inside(ci_run):
    run, out, seconds = ci_run
    assert run.returncode == 0, run.stderr[-4000:]
    artifact = out / f"{OPT_NAME}.tar.gz"
    assert artifact.is_file() and (out / f"{OPT_NAME}.json").is_file()
    results = json.loads(run.stdout)["cells"]
    assert [c["name"] for c in results] == [OPT_NAME] and results[0]["ok"] is True
    # The summary table (stderr with --json).
    table = run.stderr[run.stderr.rindex("\nimage "):]
    assert "ok (" in table and str(artifact) in table

    report = json.loads((out / f"{OPT_NAME}.json").read_text())
    assert report["verified"] is True and report["sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert report["image"]["base"] == "buildkit-base:debian-bookworm"
    assert report["container"]["openssl"] is None  # the image's own: none
    # Verified in place by the emitted script, with the interpreter it built...
    build = report["build"]
    assert build["verified"] is True
    in_place = {c["name"]: c for c in build["verification"]["checks"]}
    assert all(c["ok"] for c in in_place.values() if c["required"])
    # ...and again unpacked elsewhere, with the build prefix deleted.
    ver = report["verification"]
    assert ver["ok"] is True and OPENSSL in ver["openssl_version"]
    assert ver["sqlite_version"] == SQLITE
    root = f"/home/build/ci/check/{OPT_NAME}"
    for lib in ver["libraries"].values():
        for path in lib:
            assert path.startswith(root + "/lib/"), path
    checks = {c["name"]: c for c in ver["checks"]}
    assert checks["from smtplib import SMTP_SSL"]["ok"] and checks["CA store"]["ok"]
    # The binary floor, read on this side from the archive's own ELF files: it runs in the image it was
    # built in, and the private libraries are among what was read.
    assert checks["glibc floor"]["ok"] and checks["linked libraries (DT_NEEDED)"]["ok"], checks
    floor = ver["binaries"]
    image_glibc = re.search(r"(\d+\.\d+)", report["container"]["glibc"])[1]
    assert tuple(map(int, floor["glibc"].split("."))) <= tuple(map(int, image_glibc.split("."))), floor["glibc"]
    read = [f["path"] for f in floor["files"]]
    assert all(path.startswith(OPT_NAME + "/") for path in read), read[:5]
    assert any(os.path.basename(path).startswith("libssl.so.3") for path in read), read
    assert any(os.path.basename(path).startswith("libsqlite3.so.0") for path in read), read
    relocated = report["relocated"]
    assert relocated["openssldir"]["new"] == "/etc/ssl" and relocated["runpaths"]
    assert any(r["file"].endswith(".so") and r["new"].startswith("$ORIGIN") for r in relocated["runpaths"])


def test_ci_build_is_pgo_and_lto(ci_run):
    """The artifact really is PGO + LTO: configure was asked for both, every object was compiled with -flto,
    the profile run went through regrtest's PGO tests on parallel workers, left gcc's profile data in the
    tree, and the final compiles used it (-fprofile-use); both verifications require the check."""
    run, out, _ = ci_run
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads((out / f"{OPT_NAME}.json").read_text())
    assert report["plan"]["optimize"] is True
    cpython = report["plan"]["components"][-1]
    configure = next(s for s in cpython["steps"] if s["phase"] == "configure" and "argv" in s)
    assert {"--enable-optimizations", "--with-lto"} <= set(configure["argv"])
    make = next(s for s in cpython["steps"] if s["phase"] == "build")
    assert make["argv"][2].startswith("PROFILE_TASK=-m test --pgo -j")
    assert make["argv"][2].endswith(" ".join(PROFILE_TESTS) + " || true")  # CI's reduced run, said in the plan
    assert report["plan"]["profile_tests"] == list(PROFILE_TESTS)
    for checks in (report["build"]["verification"]["checks"], report["verification"]["checks"]):
        pgo = next(c for c in checks if c["name"] == "PGO + LTO")
        assert pgo["ok"] and pgo["required"] and pgo["detail"].startswith("PGO (-fprofile-use"), pgo
        assert "-flto" in pgo["detail"]
    log = (out / "logs" / OPT_NAME / "build.log").read_text(errors="replace")
    found = re.search(r"PGO \+ LTO: profile run (\d+)/(\d+) test files, (\d+) profile data files, "
                      r"-fprofile-use and -flto in ", log)
    assert found and found[1] == found[2] == str(len(PROFILE_TESTS)), log[-3000:]
    assert int(found[3]) > 100, log[-3000:]  # a .gcda per profiled object


def test_artifact_runs_from_anywhere_on_this_machine(ci_run, tmp_path):
    """Bookworm here too: unpack the artifact in a new place and verify it with buildkit verify."""
    run, out, _ = ci_run
    assert run.returncode == 0, run.stderr[-2000:]
    with tarfile.open(out / f"{OPT_NAME}.tar.gz") as tar:
        tar.extractall(tmp_path)
    root = tmp_path / OPT_NAME
    verify = subprocess.run([sys.executable, "-m", "buildkit", "verify", str(root / "bin" / "python3"),
                             "--expect-openssl", OPENSSL, "--expect-sqlite", SQLITE, "--private-prefix", str(root),
                             "--json"], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout[-3000:]
    data = json.loads(verify.stdout)
    assert data["ok"] and data["libraries"]["_ssl"]
    # Its own sysconfig, read here: configured for PGO + LTO, objects compiled with -flto.
    config = subprocess.run([str(root / "bin" / "python3"), "-I", "-c",
                             "import sysconfig as s; print(s.get_config_var('CONFIG_ARGS'));"
                             "print(s.get_config_var('PY_CFLAGS_NODIST'))"],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    args, cflags = config.stdout.splitlines()[:2]
    assert "'--enable-optimizations'" in args and "'--with-lto'" in args and "-flto" in cflags.split(), config
    for paths in data["libraries"].values():
        assert all(p.startswith(str(root) + "/lib/") for p in paths), paths
    pip = subprocess.run([str(root / "bin" / "pip3"), "--version"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null"})
    assert pip.returncode == 0 and str(root) in pip.stdout, pip.stderr


C_EXTENSION = {
    "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
                      '[project]\nname = "spam"\nversion = "1.0"\n',
    "setup.py": 'from setuptools import Extension, setup\nsetup(ext_modules=[Extension("spam", ["spam.c"])])\n',
    "spam.c": '#include <Python.h>\nstatic PyObject *hi(PyObject *s, PyObject *a) { return PyUnicode_FromString("hi"); }\n'
              'static PyMethodDef m[] = {{"hi", hi, METH_NOARGS, ""}, {NULL}};\n'
              'static struct PyModuleDef d = {PyModuleDef_HEAD_INIT, "spam", NULL, -1, m};\n'
              'PyMODINIT_FUNC PyInit_spam(void) { return PyModule_Create(&d); }\n',
}


def test_uv_installs_the_artifact_and_builds_c_extensions_with_it(ci_run, tmp_path):
    """The real uv (from PyPI) reads the run's catalog: 'uv python install' from a file:// URL (no download),
    'uv venv --python', and a project with a C extension built by uv pip into that venv (setuptools from the
    index) and imported; ssl and sqlite3 are the private ones. The build prefix never existed here: the
    extension compiled against the relocated tree's own sysconfig."""
    run, out, _ = ci_run
    assert run.returncode == 0, run.stderr[-2000:]
    assert [Path(p).name for p in json.loads(run.stdout)["uv_catalogs"]] == [
        "download-metadata.json", "download-metadata-debian12.json"]
    artifact = out / f"{OPT_NAME}.tar.gz"
    entry = json.loads((out / "download-metadata-debian12.json").read_text())["cpython-3.13.5-linux-x86_64-gnu"]
    assert entry["url"] == artifact.resolve().as_uri()
    assert entry["sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert (entry["major"], entry["minor"], entry["patch"], entry["libc"]) == (3, 13, 5, "gnu")
    assert entry["buildkit"]["optimized"] is True and entry["buildkit"]["openssl"] == OPENSSL
    uv = str(Path(sys.executable).parent / "uv")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "UV_PYTHON_INSTALL_DIR": str(tmp_path / "pythons"),
           "UV_PYTHON_BIN_DIR": str(tmp_path / "bin"), "UV_CACHE_DIR": str(tmp_path / "cache"), "UV_NO_CONFIG": "1",
           "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}
    catalog = str(out / "download-metadata-debian12.json")
    install = subprocess.run([uv, "python", "install", "3.13.5", "--python-downloads-json-url", catalog],
                             capture_output=True, text=True, env={**env, "UV_OFFLINE": "1"}, timeout=600)
    assert install.returncode == 0, install.stderr
    assert "cpython-3.13.5-linux-x86_64-gnu" in install.stderr
    venv = tmp_path / "a venv"
    made = subprocess.run([uv, "venv", "--python", "3.13.5", "--no-python-downloads", str(venv)],
                          capture_output=True, text=True, env={**env, "UV_OFFLINE": "1"}, timeout=600)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "c ext"
    project.mkdir()
    for name, text in C_EXTENSION.items():
        (project / name).write_text(text)
    built = subprocess.run([uv, "pip", "install", "--python", str(venv / "bin" / "python"), str(project)],
                           capture_output=True, text=True, env=env, timeout=900)
    assert built.returncode == 0, built.stderr[-3000:]
    check = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import spam, ssl, sqlite3, sys, sysconfig; print(spam.hi()); print(ssl.OPENSSL_VERSION);"
                            "print(sqlite3.sqlite_version); print(sys.base_prefix); print(sysconfig.get_config_var("
                            "'INCLUDEPY'))"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, cwd="/")
    assert check.returncode == 0, check.stderr
    hi, openssl, sqlite, base, include = check.stdout.splitlines()
    assert hi == "hi" and openssl.startswith(f"OpenSSL {OPENSSL} ") and sqlite == SQLITE
    assert base.startswith(str(tmp_path / "pythons")) and include == f"{base}/include/python3.13"


def test_second_run_reuses_the_image_and_keeps_the_artifact(docker_host, ci_run, sources):
    run, out, _ = ci_run
    assert run.returncode == 0, run.stderr[-2000:]
    artifact = out / f"{OPT_NAME}.tar.gz"
    before = hashlib.sha256(artifact.read_bytes()).hexdigest(), artifact.stat().st_mtime_ns
    started = time.monotonic()
    again = buildkit(docker_host, "ci", "python", CPYTHON, f"--with-openssl={OPENSSL}", f"--with-sqlite={SQLITE}",
                     "--optimize", "--profile-tests", ",".join(PROFILE_TESTS), "--image", IMAGE, "--source-dir",
                     str(sources), "--out", str(out))
    took = time.monotonic() - started
    assert again.returncode == 2
    errors = [line for line in again.stderr.splitlines() if line.startswith("buildkit: error:")]
    assert len(errors) == 1 and f"{artifact} already exists" in errors[0] and "nothing was built" in errors[0]
    assert "Traceback" not in again.stderr and "building buildkit-ci" not in again.stderr
    assert (hashlib.sha256(artifact.read_bytes()).hexdigest(), artifact.stat().st_mtime_ns) == before
    assert took < 60


LABEL = {"label": f"org.buildkit.what={NAME}"}


def _stop_mid_build(docker_host: str, engine, sources: Path, out: Path, stop) -> subprocess.Popen:
    """Launch ``buildkit ci python``; once its container is well inside OpenSSL's configure, call
    ``stop(proc)``; return the finished process (its stderr in ``proc.stderr_text``)."""
    env = {**os.environ, "DOCKER_HOST": docker_host}
    proc = subprocess.Popen([sys.executable, "-m", "buildkit", "ci", "python", CPYTHON, "--with-openssl", "--with-sqlite",
                             "--image", IMAGE, "--source-dir", str(sources), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            # SIGINT at its default in the child, as a terminal gives it: a run in the background
                            # of a non-interactive shell inherits it ignored (and its container would be left)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        log = out / "logs" / NAME / "build.log"
        stopped = False
        while time.monotonic() < deadline and not stopped and proc.poll() is None:
            if log.is_file() and "==> [1/3]" in log.read_text(errors="replace"):
                time.sleep(2)  # well inside OpenSSL's configure
                assert engine.api.containers(filters=LABEL), "no running container"
                stop(proc)
                stopped = True
            time.sleep(0.5)
        assert stopped, "the build never started"
        _, proc.stderr_text = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            for c in engine.api.containers(all=True, filters=LABEL):  # killed: its container is ours to remove
                engine.api.remove_container(c["Id"], force=True, v=True)
    return proc


def test_container_killed_mid_build(docker_host, engine, builder, sources, tmp_path):
    """docker kill during the build: one line, exit 2, no traceback, no artifact."""
    out = tmp_path / "out"

    def kill(_proc):
        for c in engine.api.containers(filters=LABEL):
            engine.api.kill(c["Id"])

    proc = _stop_mid_build(docker_host, engine, sources, out, kill)
    stderr = proc.stderr_text
    assert proc.returncode == 2, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("buildkit: error:")]
    assert len(errors) == 1 and "stopped from outside during the build" in errors[0], stderr[-2000:]
    assert "Traceback" not in stderr
    assert not list(out.glob("*.tar.gz")) and not list(out.glob("*.json"))
    assert (out / "logs" / NAME / "build.log").is_file()


def test_ctrl_c_mid_build_removes_the_container(docker_host, engine, builder, sources, tmp_path):
    """SIGINT (Ctrl-C) to buildkit during the build: exit 130, one line, the container removed, no artifact,
    and what was already in --out untouched."""
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "python-3.12.11-openssl-3.0.20-sqlite-3.40.1-debian12-x86_64.tar.gz"
    earlier.write_bytes(b"an artifact of an earlier run")
    proc = _stop_mid_build(docker_host, engine, sources, out, lambda p: p.send_signal(signal.SIGINT))
    stderr = proc.stderr_text
    assert proc.returncode == 130, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("buildkit: error:")]
    assert len(errors) == 1 and "interrupted" in errors[0] and "Traceback" not in stderr, stderr[-2000:]
    assert engine.api.containers(all=True, filters=LABEL) == []
    assert sorted(p.name for p in out.iterdir()) == sorted([earlier.name, "logs"])
    assert earlier.read_bytes() == b"an artifact of an earlier run"
    assert (out / "logs" / NAME / "build.log").is_file()


def test_image_without_a_shell(docker_host, engine, sources, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b'ID=debian\nVERSION_ID="12"\n'
        info = tarfile.TarInfo("etc/os-release")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    engine.api.import_image_from_data(buf.getvalue(), repository="buildkit-test", tag="noshell")
    try:
        run = buildkit(docker_host, "ci", "python", CPYTHON, "--image", "debian:12=buildkit-test:noshell",
                       "--source-dir", str(sources), "--out", str(tmp_path / "out"))
    finally:
        engine.api.remove_image("buildkit-test:noshell", force=True)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no shell (/bin/sh)" in lines[0] and "Traceback" not in run.stderr
