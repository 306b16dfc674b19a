"""buildkit.pybuild.verify and `buildkit verify`, run against the real interpreters of this host: Debian's
/usr/bin/python3 (system OpenSSL 3.0.x and SQLite 3.40), the interpreter running the tests, a virtual
environment of it whose _hashlib cannot be imported, and the oldest Pythons the probe meets (3.6, and 2.7 it
refuses) where the machine has them: $BUILDKIT_TEST_PYTHON36 / $BUILDKIT_TEST_PYTHON27, or python3.6 / python2.7
on PATH; elsewhere those two tests skip saying so."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from buildkit.cli import cli
from buildkit.errors import InputError
from buildkit.pybuild import probe_script
from buildkit.pybuild.verify import (
    CLEAN_ENV,
    OPTIONAL_MODULES,
    PROBE_SOURCE,
    VerifyReport,
    openssl_version_from_info,
    report_from_probe,
    run_probe,
    verify,
    version_tuple,
)
from tests.unit.facts import base_facts

DEBIAN_PYTHON = "/usr/bin/python3"

needs_debian_python = pytest.mark.skipif(not os.path.exists(DEBIAN_PYTHON), reason="no /usr/bin/python3")

# What an interpreter says about itself, asked directly (not through the probe).
SELF_REPORT = """
import json, ssl, sqlite3, _ssl, _hashlib, _sqlite3
libs = []
with open("/proc/self/maps") as f:
    for line in f:
        path = line.split()[-1]
        base = path.rsplit("/", 1)[-1]
        if base.startswith(("libssl", "libcrypto", "libsqlite3")) and ".so" in base and path not in libs:
            libs.append(path)
print(json.dumps({"openssl": ssl.OPENSSL_VERSION, "api": list(ssl._OPENSSL_API_VERSION),
                  "sqlite": sqlite3.sqlite_version, "executable": __import__("sys").executable, "libs": libs}))
"""


def self_report(python: str) -> dict:
    out = subprocess.run([python, "-I", "-c", SELF_REPORT], stdout=subprocess.PIPE, check=True, env=dict(CLEAN_ENV))
    return json.loads(out.stdout)


INTERPRETERS = [pytest.param(DEBIAN_PYTHON, marks=needs_debian_python, id="debian"),
                pytest.param(sys.executable, id="sys.executable")]


@pytest.fixture(scope="module")
def debian_report() -> VerifyReport:
    if not os.path.exists(DEBIAN_PYTHON):
        pytest.skip("no /usr/bin/python3")
    return verify(DEBIAN_PYTHON)


# --- real interpreters ----------------------------------------------------------------------------------

@pytest.mark.parametrize("python", INTERPRETERS)
def test_versions_are_what_the_interpreter_says(python: str) -> None:
    own = self_report(python)
    report = verify(python)
    assert report.ok, [c for c in report.checks if not c.ok]
    assert report.openssl_version == own["openssl"].split()[1]
    assert report.check("OpenSSL version").detail == own["openssl"]
    assert report.sqlite_version == own["sqlite"]
    assert report.check("SQLite version").detail == own["sqlite"]
    assert report.executable == own["executable"]
    api = openssl_version_from_info(own["api"])
    assert api in report.check("OpenSSL headers vs runtime").detail
    # The libraries are those the interpreter really maps, by their canonical paths.
    assert sorted(report.libraries["_ssl"]) == sorted(p for p in own["libs"] if "/libssl" in p or "/libcrypto" in p)
    assert report.libraries["_sqlite3"] == [p for p in own["libs"] if "/libsqlite3" in p]
    assert report.libraries["_hashlib"] == [p for p in own["libs"] if "/libcrypto" in p]
    for name in ("import _ssl", "import _hashlib", "import ssl", "from smtplib import SMTP_SSL", "import sqlite3",
                 "SQLite >= 3.8.3 (Django)", "create_function(deterministic=True)", "CA store", "pip"):
        assert report.check(name).ok, report.check(name)
    assert [m.name for m in report.optional] == list(OPTIONAL_MODULES)


def test_debian_python_details(debian_report: VerifyReport) -> None:
    own = self_report(DEBIAN_PYTHON)
    assert debian_report.python_version.startswith("3.")
    assert debian_report.openssl_version.startswith("3.0.")
    # Debian's python3.11 runs a newer OpenSSL 3.0.x than the headers it was compiled against: same ABI, fine.
    headers = debian_report.check("OpenSSL headers vs runtime")
    assert headers.ok and f"compiled against {openssl_version_from_info(own['api'])}" in headers.detail
    assert all(p.startswith("/usr/lib/") for p in debian_report.libraries["_ssl"])
    assert debian_report.check("pip").detail.startswith("pip ")
    json.dumps(debian_report.to_json())  # serialisable
    data = debian_report.to_json()
    assert data["ok"] is True and data["openssl_version"] == debian_report.openssl_version
    assert data["verify_paths"]["openssl_cafile_env"] == "SSL_CERT_FILE"


@needs_debian_python
def test_private_prefix_elsewhere_fails_naming_the_system_library() -> None:
    own = self_report(DEBIAN_PYTHON)
    libssl = next(p for p in own["libs"] if "/libssl" in p)
    libsqlite = next(p for p in own["libs"] if "/libsqlite3" in p)
    report = verify(DEBIAN_PYTHON, private_prefixes=["/nonexistent"])
    assert not report.ok
    ssl_libs = report.check("_ssl libraries")
    assert not ssl_libs.ok
    api = openssl_version_from_info(own["api"])
    assert ssl_libs.detail.startswith(f"headers {api} but runtime library {libssl} (OpenSSL {report.openssl_version})")
    assert "outside the private prefixes /nonexistent" in ssl_libs.detail
    assert not report.check("_hashlib libraries").ok
    sq = report.check("_sqlite3 libraries")
    assert not sq.ok and libsqlite in sq.detail
    assert {c.name for c in report.failed} == {"_ssl libraries", "_hashlib libraries", "_sqlite3 libraries",
                                               "_ssl libraries, LD_LIBRARY_PATH set",
                                               "_hashlib libraries, LD_LIBRARY_PATH set",
                                               "_sqlite3 libraries, LD_LIBRARY_PATH set",
                                               "linked libraries (DT_NEEDED)"}
    # Read from the ELF files too: with a private prefix asked for, the system's libssl is not allowed.
    linked = report.check("linked libraries (DT_NEEDED)").detail
    assert "_ssl.cpython-" in linked and "needs libssl.so." in linked and "from outside the install" in linked
    hostile = report.check("_ssl libraries, LD_LIBRARY_PATH set")
    assert "LD_LIBRARY_PATH=" in hostile.detail and "loaded " in hostile.detail and "/libssl.so" in hostile.detail


@needs_debian_python
def test_private_prefix_that_holds_the_libraries_passes() -> None:
    own = self_report(DEBIAN_PYTHON)
    libdir = os.path.dirname(next(p for p in own["libs"] if "/libssl" in p))
    report = verify(DEBIAN_PYTHON, private_prefixes=[libdir])
    assert report.ok
    assert report.check("_ssl libraries").ok and libdir in report.check("_ssl libraries").detail


@needs_debian_python
def test_expected_versions() -> None:
    own = self_report(DEBIAN_PYTHON)
    runtime = own["openssl"].split()[1]
    bad = verify(DEBIAN_PYTHON, expect_openssl="9.9.9", expect_sqlite="1.0.0")
    assert not bad.ok
    assert bad.check("OpenSSL version").detail == f"{own['openssl']}: expected 9.9.9"
    assert bad.check("SQLite version").detail == f"{own['sqlite']}: expected 1.0.0"
    good = verify(DEBIAN_PYTHON, expect_openssl=runtime, expect_sqlite=own["sqlite"])
    assert good.ok
    # A shorter expectation matches by components: 3.40 matches 3.40.1, 3.4 does not.
    assert verify(DEBIAN_PYTHON, expect_sqlite=".".join(own["sqlite"].split(".")[:2])).ok
    assert not verify(DEBIAN_PYTHON, expect_sqlite=own["sqlite"][:3]).check("SQLite version").ok


@needs_debian_python
def test_clean_environment_hides_the_callers_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bogus = str(tmp_path / "no-such-bundle.pem")
    for name, value in (("SSL_CERT_FILE", bogus), ("SSL_CERT_DIR", str(tmp_path)), ("LD_LIBRARY_PATH", str(tmp_path)),
                        ("PYTHONPATH", str(tmp_path)), ("PIP_CONFIG_FILE", bogus), ("PIP_NO_INDEX", "1")):
        monkeypatch.setenv(name, value)
    # Control: the same interpreter run with this environment loads no CA certificate at all.
    control = subprocess.run([DEBIAN_PYTHON, "-c", "import ssl; print(ssl.create_default_context()"
                              ".cert_store_stats()['x509_ca'])"], stdout=subprocess.PIPE, check=True, text=True)
    assert control.stdout.strip() == "0"
    report = verify(DEBIAN_PYTHON)
    assert report.environment == ("LANG", "PATH")
    assert report.probe["isolated"] is True
    ca = report.check("CA store")
    assert ca.ok and bogus not in ca.detail
    assert report.probe["ca"]["verify_paths"]["cafile"] != bogus
    assert report.probe["ca"]["stats"]["x509_ca"] > 0


def test_probe_runs_with_only_path_and_lang() -> None:
    payload = run_probe(sys.executable, ["--optional", "zlib"])
    assert payload["facts"]["environment"] == ["LANG", "PATH"]
    assert list(payload["facts"]["optional"]) == ["zlib"]
    assert payload["report"]["optional"][0]["debian"] == "zlib1g-dev"


def old_python(version: str) -> str:
    """A Python ``version`` ("3.6", "2.7") of this machine: $BUILDKIT_TEST_PYTHON36 (27, ...) names it, else
    python3.6 on PATH. Without one the test skips, naming what to install; a named one that does not run as that
    version fails it."""
    var = "BUILDKIT_TEST_PYTHON" + version.replace(".", "")
    named = os.environ.get(var)
    path = named or shutil.which(f"python{version}")
    how = (f"install one (pyenv install {version}, or your distribution's package) and set "
           f"{var}=/path/to/python{version}, or put python{version} on PATH")
    if not path:
        pytest.skip(f"no Python {version} here: {how}")
    try:
        run = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60)
        said = run.stdout.strip() if run.returncode == 0 else (run.stderr.strip().splitlines() or ["no output"])[0]
    except OSError as e:
        said = e.strerror or str(e)
    if said != version:
        if named:
            pytest.fail(f"{var}={named}: not a working Python {version} ({said})")
        pytest.skip(f"{path} does not run as Python {version} ({said}): {how}")
    return path


def test_the_probe_runs_on_python36() -> None:
    """The probe's oldest Python: it runs to the end, judges deterministic functions as not there before 3.8, and
    reports _hashlib as the interpreter itself finds it (pyenv's 3.6.15 built against OpenSSL 3 has none: its
    _hashopenssl.c predates it)."""
    python = old_python("3.6")
    report = verify(python)
    assert report.python_version.startswith("3.6.")
    det = report.check("create_function(deterministic=True)")
    assert det.ok and det.detail.startswith("not available before Python 3.8")
    own = subprocess.run([python, "-I", "-c", "import _hashlib"], capture_output=True, text=True, env=dict(CLEAN_ENV))
    assert report.check("import _hashlib").ok is (own.returncode == 0)
    if own.returncode:
        assert report.check("import _hashlib").detail == own.stderr.strip().splitlines()[-1]
        assert {c.name for c in report.failed} >= {"import _hashlib", "_hashlib libraries"}
    assert report.check("import _ssl").ok and report.check("import sqlite3").ok


NO_HASHLIB = """import sys


class NoHashlib:
    \"\"\"_hashlib cannot be imported, as in a Python built against an OpenSSL its _hashopenssl.c predates.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name == "_hashlib":
            raise ModuleNotFoundError("No module named '_hashlib'", name=name)
        return None


sys.meta_path.insert(0, NoHashlib())
"""


def test_python_without_hashlib(tmp_path: Path) -> None:
    """What a Python without _hashlib (pyenv's 3.6.15 against OpenSSL 3) is judged, on every machine: a virtual
    environment of the interpreter running the tests where a .pth file makes _hashlib unimportable, for the
    probe (run with -I, which keeps the environment's site-packages) and the child it starts alike."""
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = str(env / "bin" / "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    # a .pth line, not sitecustomize.py: Debian's python3.11 has its own sitecustomize ahead on sys.path
    Path(purelib, "bk_no_hashlib.py").write_text(NO_HASHLIB)
    Path(purelib, "bk_no_hashlib.pth").write_text("import bk_no_hashlib\n")
    control = subprocess.run([python, "-I", "-c", "import _hashlib"], capture_output=True, text=True)
    assert control.returncode == 1 and control.stderr.strip().endswith("No module named '_hashlib'")
    report = verify(python, floor=False)
    assert not report.ok
    assert {c.name for c in report.failed} == {"import _hashlib", "_hashlib libraries"}
    assert report.check("import _hashlib").detail == "ModuleNotFoundError: No module named '_hashlib'"
    assert report.check("_hashlib libraries").detail == "not loaded: ModuleNotFoundError: No module named '_hashlib'"
    assert report.check("import _ssl").ok and report.check("import ssl").ok


@pytest.mark.parametrize("source", [pytest.param(PROBE_SOURCE, id="probe_script"),
                                    pytest.param(Path(probe_script.__file__).with_name("relocate.py").read_text(),
                                                 id="relocate")])
def test_the_standalone_scripts_are_python36_grammar(source: str) -> None:
    """The scripts that run on the interpreter being judged say they need only Python 3.6: its grammar (no :=,
    no positional-only parameters, no f-string '=', ...) and no 'from __future__ import annotations' (3.7)."""
    tree = ast.parse(source, feature_version=(3, 6))
    future = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "__future__"
              for a in n.names}
    assert "annotations" not in future
    with pytest.raises(SyntaxError, match="only supported in Python 3.8"):  # the check can fail
        ast.parse(source + "\nif (n := 1):\n    pass\n", feature_version=(3, 6))


# --- bad input ------------------------------------------------------------------------------------------

def test_missing_interpreter(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        verify(str(tmp_path / "python3"))
    with pytest.raises(InputError, match="no such interpreter on PATH"):
        verify("python-buildkit-none")
    with pytest.raises(InputError, match="is a directory"):
        verify(str(tmp_path))
    script = tmp_path / "notexec"
    script.write_text("x")
    with pytest.raises(InputError, match="not executable"):
        verify(str(script))


def test_not_a_python() -> None:
    with pytest.raises(InputError, match=r"/bin/true: cannot run it as a Python 3\.6\+ interpreter"):
        verify("/bin/true")


def test_python2_is_bad_input() -> None:
    with pytest.raises(InputError, match=r"Unknown option: -I"):
        verify(old_python("2.7"))


def test_an_interpreter_that_rejects_the_options_is_named_by_its_own_message() -> None:
    """As Python 2 does (``Unknown option: -I``), on every machine: coreutils' env rejects -I the same way, and
    its usage message's first line is the reason given."""
    env = shutil.which("env")
    assert env, "coreutils' env is not on PATH"
    with pytest.raises(InputError) as err:
        verify(env)
    assert re.search(r"cannot run it as a Python 3\.6\+ interpreter \(.*invalid option -- 'I'\)", str(err.value))
    assert "\n" not in str(err.value)


# --- the judgement, on synthetic facts ------------------------------------------------------------------

def test_openssl_version_numbers() -> None:
    assert openssl_version_from_info((3, 0, 0, 19, 0)) == "3.0.19"  # 0x30000130
    assert openssl_version_from_info((3, 5, 0, 1, 0)) == "3.5.1"
    assert openssl_version_from_info((1, 1, 1, 23, 15)) == "1.1.1w"  # 0x1010117f
    assert openssl_version_from_info((1, 1, 1, 0, 15)) == "1.1.1"
    assert openssl_version_from_info(None) is None
    assert version_tuple("3.40.1") == (3, 40, 1) and version_tuple("1.1.1w") == (1, 1, 1)


def judged(facts: dict, **kwargs) -> VerifyReport:
    report = probe_script.judge(facts, kwargs.get("expect_openssl"), kwargs.get("expect_sqlite"),
                                kwargs.get("private_prefixes", ("/opt/py/openssl", "/opt/py/sqlite")))
    return report_from_probe(facts["executable"], {"facts": facts, "report": report})


def test_judge_healthy_private_build() -> None:
    report = judged(base_facts(), expect_openssl="3.0.20", expect_sqlite="3.46.1")
    assert report.ok, report.failed
    assert [m.name for m in report.optional] == ["_ctypes", "zlib"]  # the table's order
    assert report.optional[0].debian == "libffi-dev" and report.optional[0].rhel == "libffi-devel"
    assert not report.optional[0].present


def test_judge_behaviour_and_hostile_environment() -> None:
    facts = base_facts()
    facts["sqlite"]["features"]["FTS5"] = {"ok": False, "error": "OperationalError: no such module: fts5"}
    facts["tls"]["handshakes"]["TLSv1_3"] = {"ok": False, "error": "SSLError: [SSL: NO_PROTOCOLS_AVAILABLE]"}
    facts["hostile"]["libraries"]["_sqlite3"] = ["/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6"]
    report = judged(facts)
    assert {c.name for c in report.failed} == {"SQLite FTS5", "TLS 1.3 handshake",
                                               "_sqlite3 libraries, LD_LIBRARY_PATH set"}
    assert report.check("SQLite FTS5").detail == "OperationalError: no such module: fts5"
    assert report.check("TLS 1.2 handshake").detail.startswith("TLSv1.2 TLS_AES_256_GCM_SHA384 over 127.0.0.1")
    hostile = report.check("_sqlite3 libraries, LD_LIBRARY_PATH set").detail
    assert hostile.startswith("LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu: _sqlite3 loaded "
                              "/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6 instead of the private one")
    assert "DT_RUNPATH" in hostile


def test_judge_capath_only_and_no_ca() -> None:
    lazy = base_facts()
    lazy["ca"] = dict(lazy["ca"], stats={"x509": 0, "crl": 0, "x509_ca": 0}, ca_certs=0, capath_hashed=140,
                      capath_files=280, verify_paths=dict(lazy["ca"]["verify_paths"], capath="/etc/ssl/certs"))
    ca = judged(lazy).check("CA store")
    assert ca.ok and ca.detail.startswith("capath /opt/py/openssl/ssl/certs, 140 hashed certificates, loaded on demand")
    empty = base_facts()
    empty["ca"] = dict(empty["ca"], stats={"x509": 0, "crl": 0, "x509_ca": 0}, ca_certs=0,
                       cafile={"path": "/opt/py/openssl/ssl/cert.pem", "exists": False,
                               "target": "/etc/ssl/certs/ca-certificates.crt"},
                       host_stores=[{"path": "/etc/pki/tls/cert.pem", "kind": "file", "certs": 146,
                                     "realpath": "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "error": None}])
    ca = judged(empty).check("CA store")
    assert not ca.ok
    assert ca.detail.startswith("create_default_context() loaded 0 CA certificates: OpenSSL looked at cafile "
                                "/opt/py/openssl/ssl/cert.pem -> /etc/ssl/certs/ca-certificates.crt (missing)")
    assert "this host's CA store: /etc/pki/tls/cert.pem (146 certificates)" in ca.detail
    assert ca.detail.endswith("fix: mkdir -p /opt/py/openssl/ssl && ln -sfn /etc/pki/tls/cert.pem "
                              "/opt/py/openssl/ssl/cert.pem (or run it with SSL_CERT_FILE=/etc/pki/tls/cert.pem)")
    empty["ca"]["host_stores"] = []
    ca = judged(empty).check("CA store")
    assert not ca.ok and "this host has no CA store either (looked at /etc/ssl/certs/ca-certificates.crt, " \
        "/etc/pki/tls/cert.pem" in ca.detail and "apt-get install ca-certificates" in ca.detail


def test_judge_mixed_headers_and_old_sqlite() -> None:
    facts = base_facts(openssl={"version": "OpenSSL 1.1.1k  FIPS 25 Mar 2021", "version_info": [1, 1, 1, 11, 15],
                                "api_version": [3, 0, 0, 20, 0]},
                       sqlite={"version": "3.7.17", "deterministic": False, "deterministic_error":
                               "NotSupportedError: deterministic=True requires SQLite 3.8.3 or higher"})
    facts["libraries"] = {"_ssl": ["/usr/lib64/libcrypto.so.1.1.1k", "/usr/lib64/libssl.so.1.1.1k"],
                          "_hashlib": ["/usr/lib64/libcrypto.so.1.1.1k"],
                          "_sqlite3": ["/usr/lib64/libsqlite3.so.0.8.6"]}
    report = judged(facts)
    headers = report.check("OpenSSL headers vs runtime")
    assert not headers.ok
    assert "compiled against OpenSSL 3.0.20 headers but runs library 1.1.1k" in headers.detail
    assert report.check("_ssl libraries").detail.startswith(
        "headers 3.0.20 but runtime library /usr/lib64/libssl.so.1.1.1k")
    assert not report.check("SQLite >= 3.8.3 (Django)").ok
    assert "deterministic=True requires SQLite 3.8.3" in report.check("create_function(deterministic=True)").detail


def test_judge_deterministic_functions_before_python38() -> None:
    """Before 3.8 create_function has no deterministic= keyword (the probe's TypeError): said so, not failed."""
    error = "TypeError: 'deterministic' is an invalid keyword argument for this function"
    facts = base_facts(version=[3, 6, 15])
    facts["sqlite"] = dict(facts["sqlite"], deterministic=None, deterministic_error=error)
    report = judged(facts)
    det = report.check("create_function(deterministic=True)")
    assert det.ok and det.detail == f"not available before Python 3.8 ({error})"
    assert report.ok, report.failed


def test_judge_missing_ssl_and_static_libraries() -> None:
    facts = base_facts()
    missing = {"ok": False, "error": "ModuleNotFoundError: No module named '_ssl'", "file": None}
    facts["imports"] = dict(facts["imports"], _ssl=missing, ssl=missing)
    del facts["openssl"], facts["ca"]
    facts["smtp_ssl"] = {"ok": False, "error": "ImportError: cannot import name 'SMTP_SSL' from 'smtplib'"}
    facts["libraries"] = {"_hashlib": [], "_sqlite3": []}
    report = judged(facts)
    failed = {c.name for c in report.failed}
    assert failed == {"import _ssl", "import ssl", "OpenSSL version", "OpenSSL headers vs runtime",
                      "from smtplib import SMTP_SSL", "CA store", "_ssl libraries"}
    assert report.check("_hashlib libraries").detail.startswith("no shared libssl/libcrypto loaded: linked statically")


def test_judge_pip_or_ensurepip() -> None:
    facts = base_facts(pip={"ok": False, "output": "/opt/py/bin/python3.11: No module named pip", "ensurepip": True,
                            "ensurepip_version": "24.0"})
    pip = judged(facts).check("pip")
    assert pip.ok
    assert pip.detail == ("pip is not installed; ensurepip is present (bundles pip 24.0): "
                          "python -m ensurepip installs it")
    facts["pip"] = {"ok": False, "output": "/opt/py/bin/python3.11: No module named pip", "ensurepip": False}
    pip = judged(facts).check("pip")
    assert not pip.ok and "No module named pip" in pip.detail


# --- the probe as a standalone script (buildkit python --emit-script) -----------------------------------

@needs_debian_python
def test_probe_script_standalone_on_stdin(tmp_path: Path) -> None:
    record = tmp_path / "BUILDKIT.json"
    record.write_text(json.dumps({"build_id": "x"}))
    cmd = ["env", "-i", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "PIP_CONFIG_FILE=/dev/null", DEBIAN_PYTHON, "-I", "-",
           "--expect-openssl", "9.9.9", "--private-prefixes", "/usr /opt/none", "--record", str(record)]
    proc = subprocess.run(cmd, input=PROBE_SOURCE, stdout=subprocess.PIPE, text=True)
    assert proc.returncode == 1
    assert re.search(r"^  OpenSSL version +FAIL ", proc.stdout, re.M), proc.stdout
    data = json.loads(record.read_text())
    assert data["build_id"] == "x" and data["verified"] is False
    assert [c["name"] for c in data["verification"]["checks"] if not c["ok"]] == ["OpenSSL version"]


# --- CLI ------------------------------------------------------------------------------------------------

@needs_debian_python
def test_cli_verify() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["verify", DEBIAN_PYTHON])
    assert result.exit_code == 0, result.output
    assert "import _ssl" in result.output and "all required checks passed" in result.output
    assert "optional modules:" in result.output and "libffi-dev" in result.output
    result = runner.invoke(cli, ["verify", DEBIAN_PYTHON, "--private-prefix", "/nonexistent", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False and data["environment"] == ["LANG", "PATH"]


def test_cli_verify_bad_input() -> None:
    proc = subprocess.run([sys.executable, "-m", "buildkit", "verify", "/nonexistent/python3"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("buildkit: error: /nonexistent/python3: no such file")


# --- PGO + LTO ------------------------------------------------------------------------------------------

def test_plain_interpreter_is_reported_plain_and_fails_when_optimized_is_expected() -> None:
    """This interpreter's own sysconfig decides (pyenv's builds, for one, are configured without
    --enable-optimizations); the check is informational unless asked for."""
    import sysconfig

    args = sysconfig.get_config_var("CONFIG_ARGS") or ""
    optimized = "--enable-optimizations" in args and "--with-lto" in args
    report = verify(sys.executable)
    check = report.check("PGO + LTO")
    assert check.required is False and check.ok
    assert check.detail.startswith("PGO (") if optimized else check.detail.startswith("not configured for it (sysconfig: no ")
    strict = verify(sys.executable, expect_optimized=True).check("PGO + LTO")
    assert strict.required is True and strict.ok is optimized


def optimized_facts() -> dict:
    return base_facts(build={
        "CONFIG_ARGS": "'--prefix=/opt/py' '--enable-optimizations' '--with-lto' '--with-openssl=/opt/py/openssl'",
        "PY_CFLAGS_NODIST": "-fno-semantic-interposition -std=c11 -flto -fuse-linker-plugin -ffat-lto-objects "
                            "-flto-partition=none -g -I./Include/internal",
        "CONFIGURE_CFLAGS_NODIST": "-fno-semantic-interposition -std=c11 -flto -fuse-linker-plugin",
        "PY_LDFLAGS_NODIST": "-fno-semantic-interposition -flto -fuse-linker-plugin -ffat-lto-objects",
        "PGO_PROF_USE_FLAG": "-fprofile-use -fprofile-correction", "LTOFLAGS": ""})


def test_judge_optimized_build() -> None:
    facts = optimized_facts()
    report = probe_script.judge(facts, expect_optimized=True)
    check = next(c for c in report["checks"] if c["name"] == "PGO + LTO")
    assert check["ok"] and check["required"]
    assert check["detail"] == ("PGO (-fprofile-use -fprofile-correction) + LTO (-ffat-lto-objects -flto "
                               "-flto-partition=none -fuse-linker-plugin)")
    # configured with --with-lto, but the flags show no -flto (a compiler without LTO support): not LTO
    facts["build"] = dict(facts["build"], PY_CFLAGS_NODIST="-std=c11", CONFIGURE_CFLAGS_NODIST="-std=c11")
    report = probe_script.judge(facts, expect_optimized=True)
    check = next(c for c in report["checks"] if c["name"] == "PGO + LTO")
    assert not check["ok"] and not report["ok"] and check["detail"] == "not configured for it (sysconfig: no --with-lto and -flto)"


def test_probe_script_expect_optimized_argument() -> None:
    assert probe_script.parse_args(["--expect-optimized", "--json"])["expect_optimized"] is True
    assert probe_script.parse_args([])["expect_optimized"] is False


def test_a_hung_interpreter_is_said_while_waited_for_and_then_given_up(tmp_path, monkeypatch):
    """Issue 17 item 9: an interpreter that never answers is not five silent minutes: the wait is said every
    PROBE_PATIENCE seconds, and after PROBE_TIMEOUT it is one error naming it (here 1 s and 3 s)."""
    import time

    from buildkit.errors import InputError
    from buildkit.pybuild import verify as verify_module

    hung = tmp_path / "python3"
    hung.write_text("#!/bin/sh\nexec sleep 60\n")
    hung.chmod(0o755)
    monkeypatch.setattr(verify_module, "PROBE_PATIENCE", 1)
    monkeypatch.setattr(verify_module, "PROBE_TIMEOUT", 3)
    said: list[str] = []
    started = time.monotonic()
    with pytest.raises(InputError, match="the probe did not finish in 3s"):
        verify_module.run_probe(str(hung), say=said.append)
    assert time.monotonic() - started < 10
    assert len(said) == 2 and "still running after 1 s" in said[0] and "still running after 2 s" in said[1], said
