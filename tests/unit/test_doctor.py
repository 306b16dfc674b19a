"""buildkit.pybuild.doctor and `buildkit doctor`: the text fixtures of data/cpython (see its README, written
from the CPython 3.11.2 and 3.13.5 sources), build trees made from them, and the real /usr/bin/python3."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from buildkit.cli import cli
from buildkit.errors import InputError
from buildkit.pybuild import doctor as doctor_mod
from buildkit.pybuild import probe_script
from buildkit.pybuild.doctor import (
    ConfigureFacts,
    Finding,
    MakeSummary,
    doctor,
    doctor_text,
    parse_configure,
    parse_make_summary,
)
from buildkit.pybuild.verify import report_from_probe
from tests.unit.facts import base_facts

DATA = Path(__file__).resolve().parent / "data" / "cpython"
DEBIAN_PYTHON = "/usr/bin/python3"


def text(name: str) -> str:
    return (DATA / name).read_text()


def titles(findings: list[Finding]) -> list[str]:
    return [f.title for f in findings]


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.problem]


def only(findings: list[Finding], words: str) -> Finding:
    hits = [f for f in findings if words in f.title]
    assert len(hits) == 1, titles(findings)
    return hits[0]


# --- parse_make_summary ---------------------------------------------------------------------------------

def test_summary_311_mixed_openssl() -> None:
    s = parse_make_summary(text("make-3.11-mixed-openssl.log"))
    assert s.style == "setup.py"
    assert s.missing == ("_dbm", "_gdbm", "_tkinter", "_uuid", "nis")
    assert s.removed == ("_hashlib", "_ssl")
    assert s.disabled == ("_sqlite3",)
    assert s.failed == ()
    assert s.import_errors["_hashlib"].endswith(
        "_hashlib.cpython-311-x86_64-linux-gnu.so: undefined symbol: EVP_MD_get_type")
    assert s.import_errors["_ssl"].endswith("undefined symbol: SSL_get1_peer_certificate")
    assert s.ssl_message and s.rpath_hint and not s.ok and s.found


def test_summary_311_missing_and_failed() -> None:
    s = parse_make_summary(text("make-3.11-missing.log"))
    assert s.missing == ("_bz2", "_ctypes", "_dbm", "_gdbm", "_hashlib", "_lzma", "_ssl", "_tkinter", "_uuid",
                         "readline", "zlib")
    assert s.failed == ("_curses",)
    assert s.removed == () and s.disabled == ()  # "built by the Makefile instead" is read and dropped
    assert s.build_errors == {"_curses": "command '/usr/bin/gcc' failed with exit code 1"}
    assert s.ssl_message and not s.rpath_hint


def test_summary_313_rpath() -> None:
    s = parse_make_summary(text("make-3.13-rpath.log"))
    assert s.style == "check_extension_modules"
    assert s.missing == ("_dbm", "_gdbm", "_tkinter")
    assert s.removed == ("_hashlib", "_ssl")
    assert s.import_errors == {
        "_hashlib": "libcrypto.so.3: cannot open shared object file: No such file or directory",
        "_ssl": "libssl.so.3: cannot open shared object file: No such file or directory",
    }
    assert s.ssl_message and s.rpath_hint


def test_summary_313_sqlite_and_lines_input() -> None:
    s = parse_make_summary(text("make-3.13-sqlite-missing.log").splitlines(keepends=True))
    assert s == MakeSummary(missing=("_sqlite3",), style="check_extension_modules")
    assert s.ok  # a missing module is not a failure of the build itself
    assert json.loads(json.dumps(s.to_json()))["missing"] == ["_sqlite3"]


def test_summary_edge_cases() -> None:
    assert parse_make_summary("") == MakeSummary()
    assert not parse_make_summary("gcc -c foo.c\nmake: Nothing to be done\n").found
    # A second run of make replaces a list; ANSI colours and CRLF are ignored.
    log = ("Failed to build these modules:\n_ctypes   _curses\n\n"
           "\x1b[31mFailed to build these modules:\x1b[0m\r\n_curses\r\n\r\n")
    assert parse_make_summary(log).failed == ("_curses",)
    disabled = ("The following modules are *disabled* in configure script:\n_sqlite3\n\n"
                "The following modules are *disabled* in Modules/Setup files:\n_tkinter\n")
    assert parse_make_summary(disabled).disabled == ("_tkinter",)


# --- parse_configure ------------------------------------------------------------------------------------

def test_configure_313_lib64() -> None:
    cfg = parse_configure(text("config-3.13-lib64.log"))
    assert cfg.version == "3.13"
    assert cfg.arg("--with-openssl") == "/opt/py313/openssl"
    assert cfg.arg("--prefix") == "/opt/py313"
    assert cfg.env_arg("LDFLAGS") == "-Wl,-rpath,/opt/py313/lib"
    assert cfg.check(r"whether compiling and linking against OpenSSL works") == "no"
    assert cfg.check(r"for --with-openssl-rpath") == ""
    assert cfg.check(r"for include/openssl/ssl\.h in .*") == "yes"
    assert cfg.check(r"for sqlite3 >= [\d.]+") == "yes"
    assert cfg.module_state("_ssl") == "missing" and cfg.module_state("_sqlite3") == "yes"
    assert cfg.variables["OPENSSL_LDFLAGS"] == "-L/opt/py313/openssl/lib"
    assert cfg.variables["ac_cv_working_openssl_ssl"] == "no"
    assert cfg.variables["LIBSQLITE3_CFLAGS"] == "-I/opt/py313/sqlite/include -I$(srcdir)/Modules/_sqlite"


def test_configure_output_form_and_makefile() -> None:
    out = ("checking for --with-openssl-rpath... auto\n"
           "checking whether OpenSSL provides required ssl module APIs... (cached) yes\n"
           "checking for stdlib extension module _ssl... yes\n")
    cfg = parse_configure(out, text("Makefile-3.13.excerpt"))
    assert cfg.check("for --with-openssl-rpath") == "auto"
    assert cfg.check("whether OpenSSL provides required ssl module APIs") == "yes"
    assert cfg.module_state("_ssl") == "yes"  # configure's output wins over the Makefile
    assert cfg.module_state("_hashlib") == "missing"  # from the Makefile
    assert cfg.version == "3.13"
    assert cfg.arg("--with-openssl") == "@PREFIX@/openssl"  # from CONFIG_ARGS
    assert parse_configure("") == ConfigureFacts() and not ConfigureFacts().found


# --- doctor on logs -------------------------------------------------------------------------------------

def test_doctor_mixed_openssl_log() -> None:
    findings = doctor(str(DATA / "make-3.11-mixed-openssl.log"))
    mixed = only(findings, "mixed OpenSSL: compiled against OpenSSL 3 headers, loads an OpenSSL 1.1 library")
    assert mixed.problem
    assert "undefined symbol: EVP_MD_get_type" in mixed.detail and "SSL_get1_peer_certificate" in mixed.detail
    assert mixed.fix.startswith(
        "take headers and libraries from one OpenSSL: buildkit python 3.11.2 --with-openssl --with-sqlite --prefix")
    assert "--with-openssl-rpath=auto" in mixed.fix
    sqlite = only(findings, "SQLite headers (sqlite3.h) not found")
    assert "libsqlite3-dev" in sqlite.fix and "sqlite-devel" in sqlite.fix
    optional = only(findings, "optional modules not built")
    assert not optional.problem and "nis (libnsl-dev / libnsl2-devel)" in optional.detail
    assert [f.problem for f in findings] == [True, True, False]  # problems first


def test_doctor_missing_log() -> None:
    findings = doctor(str(DATA / "make-3.11-missing.log"))
    ssl = only(findings, "OpenSSL not found: _ssl and _hashlib were not built")
    assert "buildkit python 3.11.2 --with-openssl --with-sqlite --prefix" in ssl.fix
    assert "apt-get install libssl-dev" in ssl.fix and "dnf install openssl-devel" in ssl.fix
    assert "openssl11-devel" in ssl.fix and "pkg-config --cflags openssl11" in ssl.fix
    curses = only(findings, "_curses failed to build")
    assert curses.fix == "install libncurses-dev (Debian/Ubuntu) or ncurses-devel (RHEL/Fedora) and rebuild"
    optional = only(findings, "optional modules not built")
    assert "apt-get install libbz2-dev libffi-dev" in optional.fix and "dnf install bzip2-devel" in optional.fix


def test_doctor_rpath_log() -> None:
    findings = doctor(str(DATA / "make-3.13-rpath.log"))
    rpath = only(findings, "OpenSSL shared libraries not found at run time")
    assert "_ssl: libssl.so.3: cannot open shared object file" in rpath.detail
    assert "_hashlib: libcrypto.so.3: cannot open shared object file" in rpath.detail
    assert "--with-openssl-rpath=auto" in rpath.fix and "lib64" in rpath.fix
    assert len(problems(findings)) == 1


def test_doctor_sqlite_missing_log_without_version() -> None:
    [finding] = problems(doctor(str(DATA / "make-3.13-sqlite-missing.log")))
    assert "3.7.15 up to 3.12, 3.15.2 from 3.13" in finding.title
    assert finding.fix.startswith("buildkit python X.Y.Z --with-openssl --with-sqlite --prefix")


def test_doctor_config_logs() -> None:
    lib64 = doctor(str(DATA / "config-3.13-lib64.log"))
    link = only(lib64, "configure could not link against OpenSSL")
    assert "/usr/bin/ld: cannot find -lssl" in link.detail
    assert "OpenSSL 3 installs to lib64" in link.detail and "--libdir=lib" in link.fix
    assert link.fix.startswith("buildkit python 3.13 --with-openssl --with-sqlite --prefix") and "--prefix /opt/py313" in link.fix
    assert only(lib64, "SQLite found by configure").problem is False

    old_ssl = doctor(str(DATA / "config-3.11-old-openssl.log"))
    old = only(old_ssl, "OpenSSL too old: CPython needs OpenSSL >= 1.1.1")
    assert '#error "OpenSSL >= 1.1.1 is required"' in old.detail and "openssl11-devel" in old.fix
    assert len(problems(old_ssl)) == 1  # no rpath complaint: --with-openssl was not given

    old_sqlite = doctor(str(DATA / "config-3.13-old-sqlite.log"))
    sq = only(old_sqlite, "SQLite 3.7.17 is older than CPython 3.13 needs (3.15.2)")
    assert "Requested 'sqlite3 >= 3.15.2' but version of SQLite is 3.7.17" in sq.detail
    assert sq.fix.startswith("build against a private SQLite: buildkit python 3.13 ")
    assert not any("rpath" in t for t in titles(old_sqlite))  # --with-openssl-rpath=auto was given


def test_doctor_rpath_missing_in_configure_output() -> None:
    out = ("checking for include/openssl/ssl.h in /opt/p/openssl... yes\n"
           "checking whether compiling and linking against OpenSSL works... yes\n"
           "checking for --with-openssl-rpath... \n"
           "checking for stdlib extension module _ssl... yes\n")
    findings = doctor_text(out + "  $ ./configure --with-openssl=/opt/p/openssl\n")
    rpath = only(findings, "--with-openssl=/opt/p/openssl without --with-openssl-rpath")
    assert rpath.fix.startswith("add --with-openssl-rpath=auto")


def test_doctor_seed_errors() -> None:
    findings = doctor(str(DATA / "seed-errors.log"))
    assert len(findings) == 2 and all(f.problem for f in findings)
    ssl = only(findings, "this Python has no ssl module")
    lines = ssl.detail.splitlines()
    assert lines[0].startswith("seed-errors.log line 2: WARNING: pip is configured with locations that require TLS/SSL")
    assert lines[1] == "seed-errors.log line 10: ModuleNotFoundError: No module named '_ssl'"
    assert lines[2].startswith("seed-errors.log line 15: ImportError: cannot import name 'SMTP_SSL' from 'smtplib'")
    assert "SMTP_SSL only when 'import ssl' works" in lines[2]
    sq = only(findings, "SQLite older than 3.8.3")
    assert "line 20: django.db.utils.NotSupportedError: deterministic=True requires SQLite 3.8.3 or higher" in sq.detail
    assert "private SQLite >= 3.8.3" in sq.fix


def test_doctor_runtime_import_errors_in_a_log() -> None:
    log = ("Traceback (most recent call last):\n"
           "ImportError: /opt/py/lib/python3.11/lib-dynload/_hashlib.cpython-311-x86_64-linux-gnu.so: "
           "undefined symbol: EVP_MD_get_type\n"
           "ImportError: libsqlite3.so.0: cannot open shared object file: No such file or directory\n"
           "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed\n"
           "configure: error: --with-openssl-rpath \"/opt/x\" is not a directory\n")
    findings = doctor_text(log, source="app.log")
    assert "mixed OpenSSL: compiled against OpenSSL 3 headers, loads an OpenSSL 1.1 library" in titles(findings)
    assert "SQLite shared libraries not found at run time: no rpath to their directory" in titles(findings)
    ca = only(findings, "TLS certificate verification fails")
    assert "/etc/pki/tls/certs/ca-bundle.crt" in ca.fix
    conf = only(findings, "configure failed: --with-openssl-rpath")
    assert conf.detail == "app.log line 5" and "lib or lib64" in conf.fix


def test_doctor_clean_log_has_nothing() -> None:
    assert doctor_text("make: Nothing to be done for 'all'.\n") == []


# --- doctor on build trees ------------------------------------------------------------------------------

def make_tree(tmp_path: Path, config: str, *, ssl_state: str = "missing", lib64: bool = True) -> tuple[Path, Path]:
    prefix = tmp_path / "prefix"
    tree = tmp_path / "Python-3.13.5"
    (tree / "Include").mkdir(parents=True)
    (tree / "Include" / "patchlevel.h").write_text('#define PY_VERSION              "3.13.5"\n')
    (tree / "config.log").write_text(text(config).replace("/opt/py313", str(prefix)))
    makefile = text("Makefile-3.13.excerpt").replace("@PREFIX@", str(prefix))
    (tree / "Makefile").write_text(makefile.replace("MODULE__SSL_STATE=missing", f"MODULE__SSL_STATE={ssl_state}"))
    (tree / "pyconfig.h").write_text("/* pyconfig.h.  Generated from pyconfig.h.in by configure.  */\n")
    libdir = prefix / "openssl" / ("lib64" if lib64 else "lib")
    libdir.mkdir(parents=True)
    (libdir / "libssl.so.3").write_bytes(b"")
    (libdir / "libcrypto.so.3").write_bytes(b"")
    (prefix / "openssl" / "include" / "openssl").mkdir(parents=True)
    (prefix / "openssl" / "include" / "openssl" / "opensslv.h").write_text('# define OPENSSL_VERSION_STR "3.0.20"\n')
    (prefix / "sqlite" / "include").mkdir(parents=True)
    (prefix / "sqlite" / "include" / "sqlite3.h").write_text('#define SQLITE_VERSION        "3.46.1"\n')
    return tree, prefix


def test_doctor_build_tree_lib64(tmp_path: Path) -> None:
    tree, prefix = make_tree(tmp_path, "config-3.13-lib64.log")
    findings = doctor(str(tree))
    link = only(findings, "its libraries are in lib64, configure looked in lib")
    assert f"{prefix}/openssl/lib has no libssl.so but {prefix}/openssl/lib64 has" in link.detail
    assert link.fix.startswith("buildkit python 3.13.5 --with-openssl --with-sqlite --prefix") and f"--prefix {prefix}" in link.fix
    sq = only(findings, "SQLite 3.46.1 found by configure")  # version read from the header configure used
    assert not sq.problem and str(prefix / "sqlite" / "include") in sq.title


def test_doctor_build_tree_removed_module(tmp_path: Path) -> None:
    tree, prefix = make_tree(tmp_path, "config-3.13-old-sqlite.log", ssl_state="yes", lib64=False)
    libdir = tree / "build" / "lib.linux-x86_64-3.13"
    libdir.mkdir(parents=True)
    (tree / "pybuilddir.txt").write_text("build/lib.linux-x86_64-3.13")
    (libdir / "_ssl_failed.cpython-313-x86_64-linux-gnu.so").write_bytes(b"not an ELF file")
    findings = doctor(str(tree))
    removed = only(findings, "_ssl was built but does not import")
    assert "build tree (built but removed): _ssl: build/lib.linux-x86_64-3.13/_ssl_failed.cpython-313" in removed.detail
    assert only(findings, "OpenSSL 3.0.20 found by configure").problem is False
    assert "SQLite 3.7.17 is older than CPython 3.13.5 needs (3.15.2)" in titles(findings)


def test_doctor_build_tree_removed_module_ldd(tmp_path: Path) -> None:
    """A real extension module whose libssl the loader cannot find: ldd names it."""
    if shutil.which("ldd") is None or shutil.which("cc") is None:
        pytest.skip("needs ldd and a C compiler")
    tree, prefix = make_tree(tmp_path, "config-3.13-old-sqlite.log", ssl_state="yes", lib64=False)
    libdir = tree / "build" / "lib.linux-x86_64-3.13"
    libdir.mkdir(parents=True)
    (tmp_path / "fake.c").write_text("int bk_fake(void) { return 1; }\n")
    (tmp_path / "mod.c").write_text("int bk_fake(void); int PyInit__ssl(void) { return bk_fake(); }\n")
    fake = tmp_path / "fakelib"
    fake.mkdir()
    subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname,libbkfakessl.so.3", "-o", str(fake / "libbkfakessl.so.3"),
                    str(tmp_path / "fake.c")], check=True)
    (fake / "libbkfakessl.so").symlink_to("libbkfakessl.so.3")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(libdir / "_ssl_failed.cpython-313-x86_64-linux-gnu.so"),
                    str(tmp_path / "mod.c"), f"-L{fake}", "-lbkfakessl"], check=True)
    findings = doctor(str(tree))
    rpath = only(findings, "OpenSSL shared libraries not found at run time")
    assert "libbkfakessl.so.3: cannot open shared object file" in rpath.detail
    assert "ldd: libbkfakessl.so.3 => not found" in rpath.detail


def test_doctor_not_a_tree(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a CPython build tree"):
        doctor(str(tmp_path))
    with pytest.raises(InputError, match="no such file, directory or interpreter"):
        doctor(str(tmp_path / "missing.log"))


# --- doctor on interpreters -----------------------------------------------------------------------------

@pytest.mark.skipif(not os.path.exists(DEBIAN_PYTHON), reason="no /usr/bin/python3")
def test_doctor_debian_python() -> None:
    own = json.loads(subprocess.run(
        [DEBIAN_PYTHON, "-I", "-c", "import json, ssl, sqlite3; print(json.dumps([ssl.OPENSSL_VERSION.split()[1], "
         "sqlite3.sqlite_version]))"], stdout=subprocess.PIPE, check=True).stdout)
    findings = doctor(DEBIAN_PYTHON)
    assert problems(findings) == [], findings
    ssl = only(findings, f"OpenSSL {own[0]} (")
    assert "libssl.so.3" in ssl.title and ssl.detail.startswith("/usr/bin/python3 (3.")
    assert only(findings, f"SQLite {own[1]} (").problem is False


@pytest.mark.skipif(not os.path.exists(DEBIAN_PYTHON), reason="no /usr/bin/python3")
def test_doctor_prefix_directory(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3").symlink_to(DEBIAN_PYTHON)
    assert problems(doctor(str(tmp_path))) == []


def fake_report(monkeypatch: pytest.MonkeyPatch, facts: dict, prefixes_seen: list | None = None) -> None:
    def fake_verify(python, *, expect_openssl=None, expect_sqlite=None, private_prefixes=()):
        if prefixes_seen is not None:
            prefixes_seen.extend(private_prefixes)
        report = probe_script.judge(facts, expect_openssl, expect_sqlite, private_prefixes)
        return report_from_probe(python, {"facts": facts, "report": report})

    monkeypatch.setattr("buildkit.pybuild.verify.verify", fake_verify)


def broken_facts(install: Path) -> dict:
    """A buildkit install whose _ssl cannot find libssl.so.3 (it is in openssl/lib64), with no CA
    certificates and SQLite 3.7.17."""
    facts = base_facts(executable=str(install / "bin" / "python3.11"), prefix=str(install))
    err = "ImportError: libssl.so.3: cannot open shared object file: No such file or directory"
    facts["imports"] = dict(facts["imports"], _ssl={"ok": False, "error": err, "file": None},
                            ssl={"ok": False, "error": err, "file": None})
    del facts["openssl"], facts["ca"]
    facts["smtp_ssl"] = {"ok": False, "error": "ImportError: cannot import name 'SMTP_SSL' from 'smtplib'"}
    facts["sqlite"] = {"version": "3.7.17", "deterministic": False,
                       "deterministic_error": "NotSupportedError: deterministic=True requires SQLite 3.8.3 or higher"}
    facts["libraries"] = {"_hashlib": [str(install / "openssl/lib64/libcrypto.so.3")],
                          "_sqlite3": ["/usr/lib64/libsqlite3.so.0.8.6"]}
    return facts


def test_doctor_broken_interpreter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    install = tmp_path / "py"
    (install / "bin").mkdir(parents=True)
    python = install / "bin" / "python3.11"
    python.write_bytes(b"\x7fELF fake")
    python.chmod(0o755)
    (install / "openssl" / "lib64").mkdir(parents=True)
    (install / "openssl" / "lib64" / "libssl.so.3").write_bytes(b"")
    (install / "sqlite").mkdir()
    seen: list[str] = []
    fake_report(monkeypatch, broken_facts(install), seen)
    findings = doctor(str(python))
    assert seen == [str(install / "openssl"), str(install / "sqlite")]  # buildkit's layout beside bin/
    rpath = only(findings, "OpenSSL shared libraries not found at run time")
    assert "libssl.so.3: cannot open shared object file" in rpath.detail
    assert "buildkit python 3.11.2 --with-openssl --with-sqlite --prefix" in rpath.fix and f"--prefix {install}" in rpath.fix
    sq = only(findings, "SQLite 3.7.17: deterministic functions (and Django) fail")
    assert "3.7.17 is older than 3.8.3" in sq.detail
    outside = only(findings, "SQLite loaded from outside the private prefix")
    assert "/usr/lib64/libsqlite3.so.0.8.6" in outside.detail
    assert "smtplib has no SMTP_SSL" not in titles(findings)  # same cause as the _ssl finding, not repeated


def test_doctor_interpreter_uses_buildkit_record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    install = tmp_path / "PREFIX.buildkit" / "builds" / "abc"
    (install / "bin").mkdir(parents=True)
    deps = tmp_path / "PREFIX.buildkit" / "deps" / "openssl-3.0.20-x"
    deps.mkdir(parents=True)
    (install / "BUILDKIT.json").write_text(json.dumps({
        "prefix": str(tmp_path / "PREFIX"), "openssl": {"how": "private", "prefix": str(deps)},
        "sqlite": {"how": "system", "prefix": ""}}))
    python = install / "bin" / "python3"
    python.write_bytes(b"\x7fELF fake")
    python.chmod(0o755)
    facts = base_facts(executable=str(python))
    facts["ca"] = dict(facts["ca"], stats={"x509": 0, "crl": 0, "x509_ca": 0}, ca_certs=0)
    seen: list[str] = []
    fake_report(monkeypatch, facts, seen)
    findings = doctor(str(python))
    assert seen == [str(deps)]
    ca = only(findings, "no CA certificates")
    assert ca.fix.startswith("mkdir -p /opt/py/openssl/ssl && ln -s /etc/ssl/certs/ca-certificates.crt "
                             "/opt/py/openssl/ssl/cert.pem")


# --- CLI ------------------------------------------------------------------------------------------------

def test_cli_doctor_log_and_json() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["doctor", str(DATA / "make-3.13-rpath.log")])
    assert result.exit_code == 1
    assert result.output.startswith("PROBLEM: OpenSSL shared libraries not found at run time")
    assert "  fix: rebuild so the rpath names" in result.output
    result = runner.invoke(cli, ["doctor", str(DATA / "seed-errors.log"), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False and len(data["findings"]) == 2
    result = runner.invoke(cli, ["doctor", "-"], input=text("make-3.11-missing.log"))
    assert result.exit_code == 1 and "OpenSSL not found" in result.output


def test_cli_doctor_exit_codes(tmp_path: Path) -> None:
    clean = tmp_path / "clean.log"
    clean.write_text("make: Nothing to be done for 'all'.\n")
    result = CliRunner().invoke(cli, ["doctor", str(clean)])
    assert result.exit_code == 0 and "nothing to report" in result.output
    proc = subprocess.run([sys.executable, "-m", "buildkit", "doctor", str(tmp_path / "nope")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no such file, directory or interpreter on PATH" in proc.stderr


@pytest.mark.skipif(not os.path.exists(DEBIAN_PYTHON), reason="no /usr/bin/python3")
def test_cli_doctor_debian_python() -> None:
    result = CliRunner().invoke(cli, ["doctor", DEBIAN_PYTHON])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("no problems found")


def test_doctor_module_exports() -> None:
    assert {"doctor", "parse_make_summary", "MakeSummary", "Finding"} <= set(doctor_mod.__all__)


def test_doctor_versions_follow_the_catalog(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Issue 19 item 2: the doctor's minimums are the catalog's compatibility table, an unknown CPython is
    buildkit's default one, and its rebuild command's bare flags build the catalog's default versions."""
    from buildkit import catalog
    from buildkit.pybuild.doctor import findings

    default_row = catalog.compat_for(catalog.default("cpython"))
    for unknown in (findings.Context(), findings.Context(cpython="2.7")):
        assert unknown.openssl_min() == default_row.openssl_min
        assert all(r.sqlite_min in unknown.sqlite_min() for r in catalog.compat_table())
    assert findings.Context(cpython="3.13").sqlite_min() == catalog.compat_for("3.13").sqlite_min
    assert f"CentOS 7's SQLite 3.7.17 is too old for Django and CPython {catalog.compat_table()[-1].first}" in \
        findings.Context().system_sqlite()
    assert "openssl11-devel" in findings.Context().system_openssl()
    monkeypatch.setattr(findings, "default", lambda package: {"cpython": "3.9.25"}[package])  # an older default
    assert findings.Context().openssl_min() == catalog.compat_for("3.9").openssl_min == "1.0.2"
    assert "openssl11-devel" not in findings.Context().system_openssl()  # RHEL 7's 1.0.2 is enough for it
    monkeypatch.undo()
    rebuild = findings.Context(cpython="3.13.5", prefix=str(tmp_path / "py")).rebuild().split()
    run = subprocess.run([sys.executable, "-m", "buildkit", *rebuild[1:], "--dry-run", "--json"], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout)
    assert (plan["openssl"]["version"], plan["sqlite"]["version"]) == (catalog.default("openssl"),
                                                                       catalog.default("sqlite"))
