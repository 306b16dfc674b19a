"""``buildkit python --portable`` for real, judged by what has the final word: binutils' readelf over every ELF
file, and a root whose only C library is glibc 2.17 (CentOS 7's) running the tree and the whole verification.

The build (conftest's ``portable_build``) is made once a session; the plain build of test_python_build
(``good``, made on this Debian 12) is the negative control: it cannot start in the same root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import readelf

from buildkit.pybuild.probe_script import DJANGO_SQLITE_MIN
from buildkit.pybuild.verify import PROBE_MARK, PROBE_SOURCE, report_from_probe

pytestmark = pytest.mark.integration

GLIBC_RUNTIME = ("libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
                 "libcrypt.so.1", "ld-linux-x86-64.so.2", "libgcc_s.so.1")
SPACED = "/opt/py portable"  # where the tree goes in the old root: a folder with a space in its name


def version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def elf_files(root: str) -> list[str]:
    out = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    out.append(path)
    return out


def check(record: dict, name: str) -> dict:
    return next(c for c in record["verification"]["checks"] if c["name"] == name)


def test_floor_is_glibc_217_by_buildkit_and_by_readelf(portable_build):
    tree = portable_build["_tree"]
    floor = check(portable_build, "glibc floor")
    assert floor["ok"], floor
    said = re.search(r"runs on hosts with glibc >= ([\d.]+) \(target <= 2\.17\)", floor["detail"])
    assert said and version_key(said[1]) <= (2, 17), floor["detail"]
    assert check(portable_build, "linked libraries (DT_NEEDED)")["ok"]
    files = elf_files(tree)
    assert len(files) > 60, files  # the interpreter and every extension module
    worst = "0"
    for path in files:
        info = readelf(path)
        if info["glibc"] and version_key(info["glibc"]) > version_key(worst):
            worst = info["glibc"]
        assert set(info["needed"]) <= set(GLIBC_RUNTIME), (path, info["needed"])
        assert not info["runpath"] and all(p.startswith("$ORIGIN") for p in info["rpath"]), (path, info)
    assert version_key(worst) <= (2, 17) and worst == said[1], (worst, said[1])


def test_auditwheel_agrees_manylinux2014(portable_build, tmp_path):
    """PyPA's own judge of a glibc floor: every ELF file of the tree packed into a throwaway wheel, and
    auditwheel's manylinux policies over it: manylinux_2_17 (manylinux2014), no library outside the policy."""
    import zipfile

    tree, name = portable_build["_tree"], "bkportable"
    wheel = tmp_path / f"{name}-1.0-cp313-cp313-linux_x86_64.whl"
    info = f"{name}-1.0.dist-info"
    files = elf_files(tree)
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for path in files:
            z.write(path, f"{name}/{os.path.relpath(path, tree)}")
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: buildkit-tests\nRoot-Is-Purelib: false\n"
                   "Tag: cp313-cp313-linux_x86_64\n")
        z.writestr(f"{info}/RECORD", "".join(f"{n},,\n" for n in z.namelist()) + f"{info}/RECORD,,\n")
    auditwheel = Path(sys.executable).with_name("auditwheel")
    run = subprocess.run([str(auditwheel), "show", "--json", str(wheel)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    show = json.loads(run.stdout)
    assert show["overall_tag"] == show["sym_tag"] == "manylinux_2_17_x86_64", show
    assert show["external_libs"] == {} and not show["unsupported_isa"], show
    versions = [v for vs in show["versioned_symbols"].values() for v in vs if v.startswith("GLIBC_")]
    assert max(version_key(v[len("GLIBC_"):]) for v in versions) <= (2, 17)


def test_build_configuration_names_the_targets_compiler(portable_build):
    """pip builds C extensions on the target with its own gcc, not with this host's sysroot command."""
    tree = Path(portable_build["_tree"])
    texts = [p.read_text() for p in tree.glob("lib/python3.13/_sysconfigdata_*.py")]
    texts += [p.read_text() for p in tree.glob("lib/python3.13/config-3.13-*/Makefile")]
    assert len(texts) == 2
    for text in texts:
        assert "--sysroot" not in text and portable_build["_toolchain"] not in text
    out = subprocess.run([str(tree / "bin" / "python3"), "-I", "-c",
                          "import sysconfig; print(sysconfig.get_config_var('CC')); print(sysconfig.get_config_var('LDSHARED'))"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "gcc" and out[1].startswith("gcc -shared"), out


def test_nothing_in_the_tree_needs_the_build_folders(portable_build):
    """Copy the tree anywhere and delete the build folder: no script's #! line names it, and no text file names
    the library prefixes it was built against (sysconfig, the Makefile, .pc files, python3.13-config now name
    the tree). What stays is what CPython itself records of its build tree and does not use once installed
    (abs_srcdir, abs_builddir, coverage paths), and python3.13-config's own prefix, which it uses only as the
    pattern it replaces by where it really is."""
    tree = Path(portable_build["_tree"])
    state = str(tree.parent.parent)  # PREFIX.buildkit
    named = []
    for path in tree.rglob("*"):
        if path.is_symlink() or not path.is_file() or path.name == "BUILDKIT.json" or path.suffix == ".pyc":
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        if f"{state}/deps/".encode() in data:
            named.append(f"{path.relative_to(tree)}: a library prefix")
        if data.startswith(b"#!") and state.encode() in data.split(b"\n", 1)[0]:
            named.append(f"{path.relative_to(tree)}: its #! line")
    assert not named, named
    assert portable_build["relocatable"]["scripts"], portable_build["relocatable"]
    config = (tree / "bin" / "python3.13-config").read_text()
    assert "prefix_real=$(installed_prefix" in config  # found from its own place, the build's prefix a pattern


def test_no_host_header_or_library_reaches_a_compile_or_link_line(portable_build):
    """Every compile and link line of every step names the sysroot; none names the host's /usr/include, /usr/lib
    or /usr/local (which a leak through pkg-config, setup.py or a configure search would add)."""
    tree = portable_build["_tree"]
    logs = Path(tree).parent.parent / "logs" / os.path.basename(tree)
    assert logs.is_dir(), logs
    compile_lines = 0
    leaks = []
    host = re.compile(r"(?:-I|-L|-isystem\s*|-Wl,-rpath,)(/usr/(?:local/)?(?:include|lib)\S*)")
    for log in sorted(logs.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if re.match(r"^\S*gcc\s", line) or " gcc --sysroot=" in line[:40]:
                compile_lines += 1
                if "--sysroot=" not in line:
                    leaks.append(f"{log.name}: no sysroot: {line[:160]}")
            for m in host.finditer(line):
                leaks.append(f"{log.name}: {m[1]}: {line[:160]}")
    assert compile_lines > 500, compile_lines
    assert not leaks, leaks[:10]


def portable_openssl(portable_build) -> Path:
    """The portable build's own openssl tool (static, on the same sysroot): the probe's TLS checks make their CA
    with it, as CentOS 7 would with its own /usr/bin/openssl."""
    tool = Path(portable_build["openssl"]["prefix"]) / "bin" / "openssl"
    assert tool.is_file(), portable_build["openssl"]
    return tool


def probe_report(python: str, output: str):
    """The verification report of a probe run elsewhere (its ``--json`` line on stdout)."""
    line = next((x for x in reversed(output.splitlines()) if x.startswith(PROBE_MARK)), None)
    assert line, output[-3000:]
    return report_from_probe(python, json.loads(line[len(PROBE_MARK):]))


def copy_tree(portable_build, root) -> Path:
    dest = root.root / SPACED.lstrip("/")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(portable_build["_tree"], dest, symlinks=True)
    return dest


def test_runs_on_glibc_217_and_the_plain_build_does_not(portable_build, glibc217_root, good):
    root = glibc217_root
    copy_tree(portable_build, root)
    shutil.copy(portable_openssl(portable_build), root.root / "usr" / "bin" / "openssl")
    python = f"{SPACED}/bin/python3"
    probe = root.run([python, "-I", "-c", PROBE_SOURCE, "--json", "--django-sqlite-min", DJANGO_SQLITE_MIN,
                      "--expect-openssl", "3.0.20", "--expect-sqlite", "3.40.1"])
    report = probe_report(python, probe.stdout + probe.stderr)
    failed = [(c.name, c.detail) for c in report.checks if c.required and not c.ok]
    assert not failed, failed
    shown = {c.name: c.detail for c in report.checks}
    assert "TLSv1.3" in shown["TLS 1.3 handshake"] and "TLSv1.2" in shown["TLS 1.2 handshake"], shown
    code = ("import platform, ssl, sqlite3, zlib, bz2, lzma, ctypes, uuid, decimal, readline, curses, json\n"
            "ctx = ssl.create_default_context()\n"
            "print(json.dumps({'libc': platform.libc_ver(), 'cafile': ssl.get_default_verify_paths().cafile,\n"
            "  'cas': ctx.cert_store_stats()['x509_ca'], 'sqlite': sqlite3.sqlite_version,\n"
            "  'ctypes': ctypes.CDLL(None).strlen(b'buildkit'), 'uuid': str(uuid.uuid4())[14],\n"
            "  'lzma': lzma.decompress(lzma.compress(b'x')).decode(), 'decimal': str(decimal.Decimal(1) / 8)}))")
    run = root.run([python, "-I", "-c", code])
    assert run.returncode == 0, run.stderr[-2000:]
    pip = root.run([f"{SPACED}/bin/pip3", "--version"])  # a script of bin/: its #! line followed the tree
    assert pip.returncode == 0 and f"from {SPACED}/lib/python3.13/site-packages/pip" in pip.stdout, pip
    facts = json.loads(run.stdout)
    assert facts["libc"] == ["glibc", "2.17"]
    assert facts["cafile"] == "/etc/pki/tls/cert.pem" and facts["cas"] > 100, facts  # RHEL's bundle, found
    assert (facts["sqlite"], facts["ctypes"], facts["uuid"], facts["lzma"], facts["decimal"]) == \
        ("3.40.1", 8, "4", "x", "0.125")

    # The negative control: the plain build of this Debian 12 cannot even start there, and its verification said
    # so beforehand (its glibc floor is the version the loader asks for first, or newer).
    plain = Path(good["python"]).with_name("python3.11")  # the interpreter of the plain build, bin/python3.11
    shutil.copy(plain, root.root / "usr" / "bin" / "python3.11-plain")
    refused = root.run(["/usr/bin/python3.11-plain", "-c", "pass"])
    missing = re.findall(r"version `GLIBC_([\d.]+)' not found", refused.stderr)
    assert refused.returncode != 0 and missing, refused.stderr
    floor = re.search(r"glibc >= ([\d.]+)", check(good, "glibc floor")["detail"])
    assert floor and max(map(version_key, missing)) <= version_key(floor[1]) and version_key(floor[1]) > (2, 17)


def test_newer_kernel_calls_are_there_on_glibc_217(portable_build, glibc217_root):
    """The sysroot's Linux 3.10 headers have no number for getrandom or pidfd_open; the build's linux-uapi
    (Debian bullseye's linux-libc-dev 5.10) gives them, so os has both, and they work where the running kernel
    has them (this host's, under the glibc 2.17 root). memfd_create and copy_file_range are glibc functions
    (2.27), which no glibc 2.17 build can link: they stay out, as on CentOS 7's own Python 3."""
    root = glibc217_root
    copy_tree(portable_build, root)
    code = ("import os, json\n"
            "names = ('getrandom', 'pidfd_open', 'memfd_create', 'copy_file_range')\n"
            "fd = os.pidfd_open(os.getpid())\n"
            "print(json.dumps({'has': [n for n in names if hasattr(os, n)], 'random': len(os.getrandom(16)),\n"
            "                  'pidfd': fd > 2}))")
    run = root.run([f"{SPACED}/bin/python3", "-I", "-c", code])
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout) == {"has": ["getrandom", "pidfd_open"], "random": 16, "pidfd": True}
    tree = portable_build["_tree"]
    configure = next((Path(tree).parent.parent / "logs" / os.path.basename(tree)).glob("*-cpython-configure.log"))
    assert "checking for the Linux getrandom() syscall... yes" in configure.read_text()


def test_a_hostile_environment_changes_nothing(portable_build, glibc217_root):
    """LD_LIBRARY_PATH naming another libssl, PYTHONHOME and PYTHONPATH elsewhere: -I ignores the PYTHON* ones,
    and a static OpenSSL has no libssl to replace."""
    root = glibc217_root
    copy_tree(portable_build, root)
    code = "import ssl, sqlite3; print(ssl.OPENSSL_VERSION, sqlite3.sqlite_version)"
    run = root.run([f"{SPACED}/bin/python3", "-I", "-c", code],
                   env={"LD_LIBRARY_PATH": "/nonexistent/lib:/lib64", "PYTHONPATH": "/nonexistent"})
    words = run.stdout.split()
    assert run.returncode == 0 and (words[1], words[-1]) == ("3.0.20", "3.40.1"), (run.stdout, run.stderr)


@pytest.mark.parametrize(("args", "message"), [
    (["--with-openssl=system"], "--portable with --with-openssl=system: a library of this host defeats it"),
    (["--glibc", "2.12"], "--glibc 2.12: no toolchain here reaches a glibc that old"),
    (["3.11.2"], "--portable builds CPython 3.12 and newer, not 3.11.2"),
])
def test_bad_portable_input_is_one_line_before_any_fetch(args, message, tmp_path):
    run = subprocess.run([sys.executable, "-m", "buildkit", "python", "--portable", "--prefix", str(tmp_path / "p"),
                          "--cache", str(tmp_path / "cache"), *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert not (tmp_path / "cache").exists()  # refused before the toolchain was fetched


def test_centos7s_own_gcc_is_judged_by_its_version_line(portable_build, tmp_path):
    """The toolchain's gcc 4.8.5 (CentOS 7's compiler) against the catalog's compiler data, in buildkit and in
    the emitted script: 3.13.5 goes on (gcc 4.8.5 built it, bench/probe_gcc.py) with the note that mimalloc is
    left out; the script stops at the prefix check after it, so nothing is fetched."""
    from buildkit.pybuild.host import gcc_version, require_compiler

    gcc = Path(portable_build["_toolchain"]) / "bin" / "x86_64-unknown-linux-gnu-gcc"
    line = subprocess.run([str(gcc), "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    assert gcc_version(line) == "4.8.5"
    said: list[str] = []
    require_compiler("3.13.5", line, said.append)
    assert len(said) == 1 and "without mimalloc" in said[0]

    script = tmp_path / "build.sh"
    prefix = tmp_path / "taken"
    subprocess.run([sys.executable, "-m", "buildkit", "python", "3.13.5", "--with-openssl", "--with-sqlite",
                    "--prefix", str(prefix), "--emit-script", str(script)], check=True, capture_output=True)
    prefix.mkdir()  # taken after the script was written: it stops there, after the compiler check
    (prefix / "file").write_text("not buildkit's\n")
    run = subprocess.run(["sh", str(script), str(tmp_path)], capture_output=True, text=True,
                         env={**os.environ, "CC": str(gcc)}, timeout=120)
    assert run.returncode == 2 and "note: gcc 4.8.5: CPython is built without mimalloc" in run.stderr, run.stderr
    assert "was not made by buildkit" in run.stderr and "downloading" not in run.stderr


CEXT_SETUP = """from setuptools import Extension, setup
setup(name="bkcext", version="1.0", ext_modules=[Extension("bkcext", ["bkcext.c"])])
"""
CEXT_SOURCE = """#include <Python.h>
static PyObject *twice(PyObject *self, PyObject *arg) { return PyNumber_Add(arg, arg); }
static PyMethodDef methods[] = {{"twice", twice, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "bkcext", NULL, -1, methods};
PyMODINIT_FUNC PyInit_bkcext(void) { return PyModule_Create(&module); }
"""


@pytest.fixture(scope="module")
def setuptools_wheel(tmp_path_factory) -> Path:
    """setuptools' wheel from PyPI (through this host's pip configuration), for pip's isolated build offline."""
    dest = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps", "-q", "-d", str(dest),
                    "setuptools"], check=True, capture_output=True)
    wheel = next(dest.glob("setuptools-*.whl"))
    return wheel


@pytest.mark.parametrize("suite", ["bullseye", "bookworm", "trixie"])
def test_runs_in_fresh_debian_and_pip_builds_a_c_extension_there(portable_build, docker_host, setuptools_wheel, suite,
                                                                  tmp_path):
    """A minbase container of each suite (glibc 2.31, 2.36, 2.41), with only gcc, libc6-dev and ca-certificates
    added (apt, the host's network): the tree, copied in, verifies itself against Debian's CA store, and pip
    builds a C extension with that distribution's gcc (offline: --no-index, setuptools from a local wheel)."""
    from buildkit.container.engine import connect

    subprocess.run(["sh", str(Path(__file__).resolve().parents[1] / "fixtures" / "images.sh"), suite], check=True,
                   env={**os.environ, "DOCKER_HOST": docker_host}, capture_output=True)
    engine = connect(docker_host)
    src = tmp_path / "bkcext"
    src.mkdir()
    (src / "setup.py").write_text(CEXT_SETUP)
    (src / "bkcext.c").write_text(CEXT_SOURCE)
    tree = Path(portable_build["_tree"])
    with engine.container(f"buildkit-base:debian-{suite}", what=f"portable on {suite}", user="root", workdir="/",
                          network="host") as c:
        def sh(script: str, check: bool = True):
            result = c.call(["/bin/sh", "-c", script], check=False)
            assert not check or result.exit_code == 0, (script, result.output[-3000:], result.tail)
            return result

        assert sh("command -v gcc python3 || true").output.strip() == ""  # a minimal system
        sh("apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
           "--no-install-recommends gcc libc6-dev ca-certificates >/dev/null")
        sh(f"mkdir -p '{SPACED}' /w")
        c.copy_into([(tree, ".")], SPACED, owner=(0, 0))
        probe = tmp_path / "probe.py"
        probe.write_text(PROBE_SOURCE)
        c.copy_into([(src / "setup.py", "bkcext/setup.py"), (src / "bkcext.c", "bkcext/bkcext.c"),
                     (setuptools_wheel, setuptools_wheel.name), (probe, "probe.py")], "/w", owner=(0, 0))
        c.copy_into([(portable_openssl(portable_build), "openssl")], "/usr/bin", owner=(0, 0))
        py = f"'{SPACED}/bin/python3'"
        # The whole verification, as in the old root (the portable OpenSSL's tool makes the TLS checks' CA).
        run = sh(f"env -i PATH=/usr/bin:/bin {py} -I /w/probe.py --json --django-sqlite-min {DJANGO_SQLITE_MIN} "
                 "--expect-openssl 3.0.20 --expect-sqlite 3.40.1", check=False)
        report = probe_report(f"{SPACED}/bin/python3", run.output)
        failed = [(c.name, c.detail) for c in report.checks if c.required and not c.ok]
        assert not failed, failed
        libc = sh(f"{py} -c 'import platform; print(platform.libc_ver()[1])'").output.strip().splitlines()[-1]
        assert version_key(libc) >= (2, 31), libc
        pip = sh(f"env -i PATH=/usr/bin:/bin {py} -m pip install --no-index --find-links /w /w/bkcext 2>&1",
                 check=False)
        assert pip.exit_code == 0, pip.output[-3000:]
        twice = sh(f"cd / && env -i PATH=/usr/bin:/bin {py} -c 'import bkcext; print(bkcext.twice(21))'")
        assert twice.output.strip().splitlines()[-1] == "42"
        cc = sh(f"{py} -c 'import sysconfig; print(sysconfig.get_config_var(\"CC\"))'").output.strip()
        assert cc.splitlines()[-1] == "gcc"


@pytest.fixture(scope="module")
def bundle_archive(portable_build, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bundle")
    run = subprocess.run([sys.executable, "-m", "buildkit", "bundle", "--python", portable_build["_tree"], "--out",
                          str(out), "--json"], capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_bundle_runs_buildkit_where_there_is_no_python(bundle_archive, glibc217_root, kernel_tree):
    """The bundle, unpacked in the glibc 2.17 root (no python3 there, as on CentOS 7 none >= 3.9): buildkit runs
    its own Python; symvers reads a real Module.symvers; python --dry-run plans a build."""
    import tarfile

    root = glibc217_root
    assert not (root.root / "usr" / "bin" / "python3").exists() and not (root.root / "bin" / "python3").exists()
    archive = Path(bundle_archive["archive"])
    assert archive.name == f"buildkit-{bundle_archive['buildkit']}-x86_64-linux-gnu.tar.gz"
    assert bundle_archive["glibc_floor"] == "2.17" and bundle_archive["python"] == "3.13"
    dest = root.root / "opt" / "bk bundle"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    shutil.copy(kernel_tree.build / "Module.symvers", root.root / "tmp" / "Module.symvers")
    tool = f"/opt/bk bundle/{archive.name[:-len('.tar.gz')]}/bin/buildkit"
    version = root.run([tool, "--version"])
    assert version.returncode == 0 and bundle_archive["buildkit"] in version.stdout, version.stderr
    show = root.run([tool, "symvers", "show", "/tmp/Module.symvers", "--json"])
    assert show.returncode == 0, show.stderr[-2000:]
    assert len(json.loads(show.stdout)[0]["symbols"]) > 10000
    plan = root.run([tool, "python", "--dry-run", "--prefix", "/tmp/py"])
    assert plan.returncode == 0 and "CPython 3.13.5 -> /tmp/py" in plan.stdout, plan.stderr[-2000:]


def test_bundle_builds_python_in_a_minbase_bullseye_with_no_python(bundle_archive, docker_host, sources, tmp_path):
    """Issue 16 item 6: in a minbase bullseye container (glibc 2.31, no python3), with only the build tools a
    CPython build needs added by apt (gcc, make, the -dev packages of the system's OpenSSL 1.1.1 and SQLite
    3.34: the quickest full build there is), the bundle's buildkit makes a whole 'buildkit python' build with
    no network: fetch from --source-dir, configure, make, install, verify, switch."""
    from buildkit.container.engine import connect

    subprocess.run(["sh", str(Path(__file__).resolve().parents[1] / "fixtures" / "images.sh"), "bullseye"],
                   check=True, env={**os.environ, "DOCKER_HOST": docker_host}, capture_output=True)
    engine = connect(docker_host)
    tools = "buildkit-test:bullseye-build-tools"
    with engine.container("buildkit-base:debian-bullseye", what="bullseye build tools", user="root", workdir="/",
                          network="host") as c:  # apt: the host's network, for this image only
        assert c.call(["/bin/sh", "-c", "command -v python3 python3.9 || true"]).output.strip() == ""
        done = c.call(["/bin/sh", "-c", "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get "
                       "install -y -q --no-install-recommends gcc make libc6-dev libssl-dev libsqlite3-dev "
                       "zlib1g-dev libffi-dev ca-certificates >/dev/null"], check=False)
        assert done.exit_code == 0, done.tail
        engine.api.commit(c.id, repository=tools.split(":")[0], tag=tools.split(":")[1])
    archive = Path(bundle_archive["archive"])
    top = archive.name[:-len(".tar.gz")]
    tarball = next(sources.glob("Python-3.11.2.t*"))
    with engine.container(tools, what="a build by the bundle", user="root", workdir="/") as c:  # network none
        assert c.call(["/bin/sh", "-c", "command -v python3 || true"]).output.strip() == ""
        c.copy_into([(archive, archive.name), (tarball, f"src/{tarball.name}")], "/opt", owner=(0, 0))
        c.call(["tar", "-xzf", f"/opt/{archive.name}", "-C", "/opt"])
        log = tmp_path / "build.log"
        run = c.call([f"/opt/{top}/bin/buildkit", "python", "3.11.2", "--with-openssl=system", "--with-sqlite=system",
                      "--prefix", "/opt/py", "--source-dir", "/opt/src", "--no-debian", "--json"], log=log,
                     check=False)
        assert run.exit_code == 0, log.read_text()[-3000:]
        ran = c.call(["/opt/py/bin/python3", "-c", "import ssl, sqlite3, platform; print(ssl.OPENSSL_VERSION, "
                      "sqlite3.sqlite_version, platform.libc_ver()[1])"]).output.split()
    assert ran[0] == "OpenSSL" and ran[1].startswith("1.1.1"), ran  # bullseye's own, as asked
    assert ran[-2].startswith("3.34") and ran[-1] == "2.31", ran


def test_extraction_tests_run_on_the_portable_313_with_tarfiles_data_filter(portable_build, tmp_path):
    """Issue 20 item 3: CI's own interpreter (Debian's 3.11.2) has no tarfile data filter, so the extraction tests
    that use it are skipped there. The portable build is a 3.13.5 with the filter: tests/unit/test_fetch.py and
    tests/unit/test_extract_policy.py (source archives and container copies through one policy) run in a venv of
    it (pytest and buildkit's dependencies from PyPI), none skipped."""
    import re

    python = Path(portable_build["_tree"]) / "bin" / "python3"
    venv = tmp_path / "venv313"
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True, capture_output=True)
    root = Path(__file__).resolve().parents[2]
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          "pytest", str(root)], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-3000:]
    # not into the CI run's own timing table (tests/timing.py appends to $BUILDKIT_TIMING_TSV when it is set)
    env = {k: v for k, v in os.environ.items() if k != "BUILDKIT_TIMING_TSV"}
    run = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                          "tests/unit/test_fetch.py", "tests/unit/test_extract_policy.py"], cwd=root, capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stdout[-3000:]
    summary = run.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and "skipped" not in summary, summary
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import tarfile; print(hasattr(tarfile, 'data_filter'))"],
                           capture_output=True, text=True)
    assert check.stdout.strip() == "True"
