"""``buildkit python`` for real: OpenSSL 3.0.20, SQLite 3.40.1 (Debian's full tree) and CPython 3.11.2
from the tarballs we hold, built once per session and shared by every test here.

The private OpenSSL (3.0.20) differs from the system's (Debian's 3.0.x security updates are older), so the
tests prove which library the interpreter really loads. Two more builds reproduce the traps: an OpenSSL
too old for CPython (the seed failure: no _ssl) and OpenSSL's lib64 layout (headers of one OpenSSL,
library of another).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import FIXTURES, GOOD_CPYTHON, GOOD_OPENSSL, GOOD_SQLITE

from buildkit.pybuild.clock import STEPS

pytestmark = pytest.mark.integration

CPYTHON, OPENSSL, SQLITE = GOOD_CPYTHON, GOOD_OPENSSL, GOOD_SQLITE  # the session build `good` (tests/conftest.py)
BUILDS = FIXTURES / "python-builds"


def buildkit(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buildkit", *args], capture_output=True, text=True, timeout=timeout)


def common(prefix: Path, sources: Path) -> list[str]:
    return ["--prefix", str(prefix), "--source-dir", str(sources), "--cache", str(BUILDS / "cache"), "--json"]


def clean_python(python: str, code: str) -> subprocess.CompletedProcess:
    """Run code under env -i: no LD_LIBRARY_PATH, no SSL_CERT_FILE, no PIP_*."""
    return subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", python, "-I", "-c", code], capture_output=True, text=True)


def test_verified_with_the_private_libraries(good):
    assert good["verified"] is True
    checks = {c["name"]: c for c in good["verification"]["checks"]}
    assert all(c["ok"] for c in checks.values() if c.get("required", True)), checks
    assert good["openssl"]["how"] == "private" and good["openssl"]["version"] == OPENSSL
    assert good["sqlite"]["how"] == "private" and good["sqlite"]["version"] == SQLITE
    libs = good["verification"]["libraries"]
    openssl_prefix, sqlite_prefix = good["openssl"]["prefix"], good["sqlite"]["prefix"]
    for module in ("_ssl", "_hashlib"):
        assert libs[module] and all(p.startswith(openssl_prefix + "/lib/") for p in libs[module]), libs
    assert libs["_sqlite3"] and all(p.startswith(sqlite_prefix + "/lib/") for p in libs["_sqlite3"]), libs


def test_runs_without_ld_library_path(good):
    code = (
        "import ssl, sqlite3, smtplib; from smtplib import SMTP_SSL;"
        "c = sqlite3.connect(':memory:'); c.create_function('f', 1, lambda x: x, deterministic=True);"
        "print(ssl.OPENSSL_VERSION); print(sqlite3.sqlite_version);"
        "print(ssl.create_default_context().cert_store_stats()['x509_ca'] > 0 or bool(ssl.get_default_verify_paths().capath))"
    )
    run = clean_python(good["python"], code)
    assert run.returncode == 0, run.stderr
    openssl, sqlite, cas = run.stdout.split("\n")[:3]
    assert openssl.startswith(f"OpenSSL {OPENSSL} ")
    assert sqlite == SQLITE
    assert cas == "True"
    system = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout
    assert OPENSSL not in system  # the test proves linkage only if the system's OpenSSL is another one


def test_private_openssl_layout_and_rpath(good):
    openssl = Path(good["openssl"]["prefix"])
    assert (openssl / "lib" / "libssl.so.3").exists() and not (openssl / "lib64").exists()
    assert (openssl / "ssl" / "cert.pem").exists() or (openssl / "ssl" / "certs").is_dir()
    run = subprocess.run(["env", "-i", str(openssl / "bin" / "openssl"), "version"], capture_output=True, text=True)
    assert run.stdout.startswith(f"OpenSSL {OPENSSL} ")
    ssl_so = next(Path(good["python"]).resolve().parents[1].glob("lib/python3.11/lib-dynload/_ssl*.so"))
    dynamic = subprocess.run(["readelf", "-d", str(ssl_so)], capture_output=True, text=True).stdout
    assert f"{openssl}/lib" in dynamic


def system_lib_dir() -> str:
    multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True).stdout.strip()
    return f"/usr/lib/{multiarch}" if multiarch else "/usr/lib64"


def test_private_libraries_win_over_ld_library_path(good):
    """The issue's reproduction: LD_LIBRARY_PATH naming the system's libraries (as on hosts with Oracle
    clients or /usr/local/lib) must not swap the private OpenSSL and SQLite for the system's."""
    system = system_lib_dir()
    assert any(Path(system).glob("libssl.so.*")), f"no system libssl in {system} to be tempted by"
    code = "import ssl, sqlite3; print(ssl.OPENSSL_VERSION); print(sqlite3.sqlite_version)"
    run = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", f"LD_LIBRARY_PATH={system}", good["python"], "-I", "-c",
                          code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    openssl, sqlite = run.stdout.split("\n")[:2]
    assert openssl.startswith(f"OpenSSL {OPENSSL} ") and sqlite == SQLITE
    openssl_prefix = Path(good["openssl"]["prefix"])
    install = Path(good["python"]).resolve().parents[1]
    for elf in [*install.glob("lib/python3.11/lib-dynload/_ssl*.so"), *install.glob("lib/python3.11/lib-dynload/_hashlib*.so"),
                *install.glob("lib/python3.11/lib-dynload/_sqlite3*.so"), openssl_prefix / "bin" / "openssl",
                openssl_prefix / "lib" / "libssl.so.3"]:
        dynamic = subprocess.run(["readelf", "-d", str(elf)], capture_output=True, text=True).stdout
        assert "(RPATH)" in dynamic and "(RUNPATH)" not in dynamic, f"{elf}:\n{dynamic}"
    tool = subprocess.run(["env", "-i", f"LD_LIBRARY_PATH={system}", str(openssl_prefix / "bin" / "openssl"), "version"],
                          capture_output=True, text=True)
    assert tool.stdout.startswith(f"OpenSSL {OPENSSL} "), tool.stdout + tool.stderr
    checks = {c["name"]: c for c in good["verification"]["checks"]}
    for module in ("_ssl", "_hashlib", "_sqlite3"):
        check = checks[f"{module} libraries, LD_LIBRARY_PATH set"]
        assert check["ok"] and "LD_LIBRARY_PATH=" in check["detail"] and str(Path(system)) in check["detail"], check


def test_provenance_record(good):
    install = Path(good["python"]).resolve().parents[1]
    record = json.loads((install / "BUILDKIT.json").read_text())
    assert {s["package"]: s["sha256"] for s in record["sources"]}["cpython"] == (
        "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849"
    )
    assert record["host"]["compiler"] and record["host"]["glibc"]
    configure = next(s for c in record["steps"] if c["package"] == "cpython" for s in c["steps"] if s["phase"] == "configure")
    assert "--with-openssl-rpath=auto" not in configure["argv"] and "LIBSQLITE3_LIBS" in configure["env"]
    assert configure["env"]["LDFLAGS"].startswith("-Wl,--disable-new-dtags -Wl,-rpath,")
    prefix = Path(record["prefix"])
    assert prefix.is_symlink() and prefix.resolve() == install


def test_record_times_buildkits_own_steps(good):
    """step_seconds: each of buildkit's own steps outside the compilers, all inside the record's total beside the
    components' configure..install (each figure rounded: 0.1 s each for the total and the three components)."""
    steps = good.get("step_seconds") or {}
    assert set(steps) == set(STEPS), (f"{steps}: the session's prefix {good['prefix']} was built before buildkit "
                                      "timed its steps? remove it, and the session builds it again")
    assert all(isinstance(v, (int, float)) and v >= 0 for v in steps.values()), steps
    outside = good["seconds"] - sum(good["component_seconds"].values())
    assert sum(steps.values()) < outside + 0.1 * (1 + len(good["component_seconds"])), (steps, good["seconds"],
                                                                                         good["component_seconds"])
    assert steps["extract"] > 0 and steps["verify"] > 0, steps  # three tarballs unpacked, the interpreter verified


def test_same_command_again_is_a_noop(good, sources):
    prefix = BUILDS / "py311"
    run = buildkit("python", CPYTHON, f"--with-openssl={OPENSSL}", f"--with-sqlite={SQLITE}", *common(prefix, sources))
    assert run.returncode == 0, run.stderr
    assert "==>" not in run.stderr  # nothing was built
    assert json.loads(run.stdout)["build_id"] == good["build_id"]


def test_rerun_verifies_again_and_refuses_a_broken_install(good, sources):
    """The record says what was true when the prefix was built: a rerun checks again. With the private libssl
    gone the same command stops with one line naming the failed checks and --clean, and changes nothing."""
    prefix = BUILDS / "py311"
    args = ["python", CPYTHON, f"--with-openssl={OPENSSL}", f"--with-sqlite={SQLITE}", *common(prefix, sources)]
    installed = os.readlink(prefix)
    libssl = Path(good["openssl"]["prefix"], "lib", "libssl.so.3")
    moved = libssl.with_name("libssl.so.3.moved-by-test")
    os.rename(libssl, moved)
    try:
        broken = buildkit(*args)
    finally:
        os.rename(moved, libssl)
    assert broken.returncode == 1, broken.stderr[-3000:]
    last = broken.stderr.strip().splitlines()[-1]
    assert "Traceback" not in broken.stderr
    assert last.startswith(f"buildkit: error: {prefix} runs build ") and "no longer passes its verification" in last
    assert "_ssl libraries" in last and "nothing was changed" in last and "--clean" in last
    assert os.readlink(prefix) == installed
    again = buildkit(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["verified"] is True


@pytest.fixture(scope="session")
def old_openssl_failure(good, sources, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The seed failure: CPython 3.11 against an OpenSSL 1.0.2 (headers only: what CentOS 7 has, as far as
    configure's check goes). make exits 0; only its summary says _ssl was not built."""
    old = tmp_path_factory.mktemp("openssl-1.0.2")
    (old / "include" / "openssl").mkdir(parents=True)
    (old / "lib").mkdir()
    (old / "include" / "openssl" / "opensslv.h").write_text(
        '#define OPENSSL_VERSION_NUMBER 0x1000215fL\n#define OPENSSL_VERSION_TEXT "OpenSSL 1.0.2u  20 Dec 2019"\n'
    )
    prefix = BUILDS / "py311"
    before = os.readlink(prefix)
    run = buildkit("python", CPYTHON, f"--with-openssl={old}", f"--with-sqlite={SQLITE}", "--keep",
                   *common(prefix, sources))
    assert os.readlink(prefix) == before  # the previous install is untouched
    return run, prefix


def test_old_openssl_is_a_failed_build_with_the_reason(old_openssl_failure, good):
    run, prefix = old_openssl_failure
    assert run.returncode == 1, run.stderr[-2000:]
    last = run.stderr.strip().splitlines()[-1]
    assert "Could not build the ssl module" in last and "OpenSSL 1.1.1 or newer" in last, last
    assert clean_python(good["python"], "import ssl").returncode == 0


def test_doctor_explains_the_seed_failure(old_openssl_failure, good):
    run, prefix = old_openssl_failure
    log = Path(re.search(r"full log kept: (\S+-cpython-build\.log)", run.stderr)[1])
    tree = Path(str(prefix) + ".buildkit") / "work" / log.parent.name / "cpython"
    # the interpreter that failed build left in its tree, the tree itself, and its make log
    for target in (tree / "python", tree, log):
        out = buildkit("doctor", str(target), "--json")
        assert out.returncode == 1, out.stderr
        problems = [f for f in json.loads(out.stdout)["findings"] if f["problem"]]
        assert any("ssl" in f["title"].lower() or "openssl" in f["title"].lower() for f in problems), (target, problems)
        # a tree and its interpreter tell the version and prefix; a bare log only the series
        want = "buildkit python 3.11" if target == log else f"buildkit python {CPYTHON} "
        assert any(want in f["fix"] and (target == log or f"--prefix {prefix}" in f["fix"]) for f in problems), (
            target, problems)


def test_emitted_script_on_the_verified_prefix_and_with_bad_sources(good, sources, tmp_path):
    """The sh script of the same plan: a no-op on the verified prefix; without the right tarballs it stops
    before building anything, naming the file and its sha256, exit 2, the prefix untouched."""
    prefix = BUILDS / "py311"
    script = tmp_path / "build.sh"
    run = buildkit("python", CPYTHON, f"--with-openssl={OPENSSL}", f"--with-sqlite={SQLITE}", "--emit-script",
                   str(script), *common(prefix, sources)[:-1])
    assert run.returncode == 0, run.stderr
    noop = subprocess.run(["sh", str(script), str(sources)], capture_output=True, text=True)
    assert noop.returncode == 0 and "already built and verified" in noop.stderr, noop.stderr

    other = tmp_path / "py"
    run = buildkit("python", CPYTHON, f"--with-openssl={OPENSSL}", f"--with-sqlite={SQLITE}", "--emit-script",
                   str(script), "--prefix", str(other))
    assert run.returncode == 0, run.stderr
    bad = tmp_path / "bad-sources"
    bad.mkdir()
    (bad / "openssl-3.0.20.tar.gz").write_bytes(b"not the tarball")
    env = dict(os.environ, PATH="/usr/bin:/bin")  # no network tools reach upstream here either way
    out = subprocess.run(["sh", str(script), str(bad)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "openssl-3.0.20.tar.gz" in out.stderr and "c80a01dfc70ece4dc21168932c37739042d404d46ccc81a5986dd75314ecda6f" in out.stderr
    assert not other.exists()


def test_full_disk_is_one_line_and_leaves_no_prefix(sources, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=30M", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        run = buildkit("python", CPYTHON, f"--with-openssl={OPENSSL}", f"--with-sqlite={SQLITE}",
                       *common(mnt / "py", sources)[:-1])
        assert run.returncode in (1, 2) and "Traceback" not in run.stderr
        last = run.stderr.strip().splitlines()[-1]
        assert last.startswith("buildkit: error: disk full"), last
        assert not (mnt / "py").exists()
    finally:
        subprocess.run(["umount", str(mnt)])


C_EXTENSION = {
    "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
                      '[project]\nname = "spam"\nversion = "1.0"\n',
    "setup.py": 'from setuptools import Extension, setup\nsetup(ext_modules=[Extension("spam", ["spam.c"])])\n',
    "spam.c": '#include <Python.h>\nstatic PyObject *where(PyObject *s, PyObject *a) { return PyUnicode_FromString(__FILE__); }\n'
              'static PyMethodDef m[] = {{"where", where, METH_NOARGS, ""}, {NULL}};\n'
              'static struct PyModuleDef d = {PyModuleDef_HEAD_INIT, "spam", NULL, -1, m};\n'
              'PyMODINIT_FUNC PyInit_spam(void) { return PyModule_Create(&d); }\n',
}

RELOCATED_CHECK = r'''
set -eu
mount -t tmpfs none "$BUILD_STATE"   # the build prefix is gone for everything below
R="$1"
"$R/bin/python3" -I -c 'import json, sys, sysconfig
print(json.dumps({k: sysconfig.get_config_var(k) for k in ("prefix", "exec_prefix", "INCLUDEPY", "LIBDIR", "LIBPL",
                                                          "LDSHARED", "CONFINCLUDEPY", "LIBPC")}))'
"$R/bin/python3-config" --includes --ldflags
PKG_CONFIG_PATH="$R/lib/pkgconfig" pkg-config --cflags --libs python3 sqlite3 openssl
"$R"/lib/python3.*/config-*/python-config.py --includes
ln -s "$R" "$3/nospace"  # make cannot take a path with a space
printf 'buildkit-show:\n\t@echo $(prefix)\n' | make -s -f "$3"/nospace/lib/python3.*/config-*/Makefile -f - buildkit-show
"$R/bin/python3" -m venv "$R/../a venv"
PIP_CONFIG_FILE=/dev/null "$R/../a venv/bin/pip" install -q --disable-pip-version-check "$2" >&2
cd / && "$R/../a venv/bin/python" -c 'import spam, ssl, sqlite3; print(spam.__file__); print(ssl.OPENSSL_VERSION)
print(sqlite3.sqlite_version)'
'''


def test_relocated_tree_keeps_its_build_configuration(good, tmp_path):
    """relocate.py (what ``buildkit ci python`` runs on its builds) on this real build: unpacked under a
    path with a space, with the build prefix hidden (a tmpfs over it, in a mount namespace of its own),
    sysconfig, python3-config, the .pc files, the config Makefile and every script point at the new
    place, and a C extension project builds with pip in a venv of it and imports."""
    from buildkit.pybuild import relocate

    install = Path(good["python"]).resolve().parent.parent
    deps = [good[lib]["prefix"] for lib in ("openssl", "sqlite")]
    out = tmp_path / "out dir"
    run = subprocess.run([sys.executable, "-I", relocate.__file__, "--install", str(install), "--name", "py",
                          "--out", str(out), *[a for d in deps for a in ("--dep", d)], "--openssl-prefix", deps[0],
                          "--openssldir", "/etc/ssl", "--exclude", "lib/python3.11/test"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    config = json.loads(run.stdout.split(relocate.MARK, 1)[1])["config"]
    assert config["sysconfigdata"] == ["lib/python3.11/_sysconfigdata__linux_x86_64-linux-gnu.py"]
    assert {"lib/pkgconfig/python-3.11.pc", "lib/pkgconfig/openssl.pc", "lib/pkgconfig/sqlite3.pc"} <= set(
        config["pkgconfig"])
    assert "lib/python3.11/config-3.11-x86_64-linux-gnu/python-config.py" in config["scripts"]
    unpacked = tmp_path / "un packed"
    unpacked.mkdir()
    with tarfile.open(out / "py.tar.gz") as tar:
        tar.extractall(unpacked)
    root = unpacked / "py"
    project = tmp_path / "c ext"
    project.mkdir()
    for name, text in C_EXTENSION.items():
        (project / name).write_text(text)
    state = install.parent.parent  # PREFIX.buildkit: builds/, deps/, work/
    check = subprocess.run(["unshare", "--mount", "sh", "-c", RELOCATED_CHECK, "check", str(root), str(project), str(tmp_path)],
                           capture_output=True, text=True, timeout=900, env={**os.environ, "BUILD_STATE": str(state)})
    assert check.returncode == 0, check.stderr[-3000:]
    lines = check.stdout.splitlines()
    values = json.loads(lines[0])
    for key in ("prefix", "exec_prefix"):
        assert values[key] == str(root)
    for key in ("INCLUDEPY", "LIBDIR", "LIBPL", "CONFINCLUDEPY", "LIBPC"):
        assert values[key].startswith(str(root) + "/"), (key, values[key])
    # the build's rpath words are gone from the flags (runpaths of the tree find its libraries)
    assert values["LDSHARED"].split() == ["gcc", "-shared", "-Wl,--disable-new-dtags"], values["LDSHARED"]
    assert lines[1] == f"-I{root}/include/python3.11 -I{root}/include/python3.11"
    assert lines[2].startswith(f"-L{root}/lib/python3.11/config-3.11-x86_64-linux-gnu -L{root}/lib ")
    pc_root = f"{root}/lib/pkgconfig/../.."  # pkg-config escapes the space with a backslash: a shell reads it
    assert set(shlex.split(lines[3])) == {f"-I{pc_root}/include/python3.11", f"-I{pc_root}/include",
                                               f"-L{pc_root}/lib", "-lsqlite3", "-lssl", "-lcrypto"}, lines[3]
    assert lines[4] == f"-I{root}/include/python3.11 -I{root}/include/python3.11"
    assert lines[5] == f"{tmp_path}/nospace"
    assert lines[6] == f"{unpacked}/a venv/lib/python3.11/site-packages/spam.cpython-311-x86_64-linux-gnu.so"
    assert lines[7].startswith(f"OpenSSL {OPENSSL} ") and lines[8] == SQLITE
    assert str(install) not in check.stdout
