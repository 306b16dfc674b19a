"""The verification probe: run by the interpreter under test, it reports what that interpreter has and judges it.

This file is both a module (``buildkit.pybuild.verify`` imports its table and its functions) and the script
that the interpreter under test runs, as ``python -I -c <source> ARGS`` (``verify``) or ``python -I - ARGS``
with the source on stdin (the shell script of ``buildkit python --emit-script``). As a script it must run on
Python 3.6 and newer, with nothing but the standard library, and import nothing from buildkit.

Arguments (all optional)::

    --expect-openssl V      the OpenSSL version ssl.OPENSSL_VERSION must show (3.0.20, 1.1.1w)
    --expect-sqlite V       the SQLite version sqlite3.sqlite_version must show (3.46.1)
    --private-prefix DIR    (repeatable) libssl/libcrypto/libsqlite3 must be loaded from under a DIR
    --private-prefixes "DIR DIR"   the same, space-separated
    --django-sqlite-min V   the SQLite needed for deterministic=True (default 3.8.3)
    --optional a,b,c        the optional modules to look for (default: OPTIONAL_MODULES)
    --expect-optimized      the "PGO + LTO" check is required (--enable-optimizations, --with-lto, -flto)
    --record FILE           also write {"verified": ..., "verification": ...} into FILE (merged into its JSON)
    --json                  print only the machine-readable line (see MARK), no table

Output: a table (unless --json), then one line ``BUILDKIT-PROBE-JSON:{"facts": ..., "report": ...}``.
Exit status: 0 when every required check passes, 1 otherwise.
"""
# ruff: noqa: UP031 - %-formatting on purpose: this file is also read by Python 3.6 interpreters
import json
import os
import re
import subprocess
import sys

MARK = "BUILDKIT-PROBE-JSON:"
RECORD_SCHEMA = 2  # buildkit.pybuild.record.SCHEMA, of the BUILDKIT.json --record makes (this file imports no buildkit)
DJANGO_SQLITE_MIN = "3.8.3"

# Optional stdlib extension modules and the development packages whose headers CPython's configure (or
# setup.py up to 3.11) needs to build them: module -> (what it is, Debian/Ubuntu package, RHEL/Fedora package).
OPTIONAL_MODULES = {
    "_ctypes": ("ctypes (libffi)", "libffi-dev", "libffi-devel"),
    "_bz2": ("bz2 compression", "libbz2-dev", "bzip2-devel"),
    "_lzma": ("lzma/xz compression", "liblzma-dev", "xz-devel"),
    "zlib": ("zlib compression (pip needs it)", "zlib1g-dev", "zlib-devel"),
    "readline": ("line editing in the REPL", "libreadline-dev", "readline-devel"),
    "_uuid": ("uuid via libuuid", "uuid-dev", "libuuid-devel"),
    "_dbm": ("dbm.ndbm", "libgdbm-compat-dev (or libdb-dev)", "gdbm-devel (or libdb-devel)"),
    "_gdbm": ("dbm.gnu", "libgdbm-dev", "gdbm-devel"),
    "_tkinter": ("tkinter (Tcl/Tk)", "tk-dev", "tk-devel"),
    "_curses": ("curses", "libncurses-dev", "ncurses-devel"),
}

LIB_PATTERN = re.compile(r"/lib(ssl|crypto|sqlite3)[^/]*\.so(\.[0-9][^/]*)?$")
WANTED_LIBS = {"_ssl": ("libssl", "libcrypto"), "_hashlib": ("libcrypto",), "_sqlite3": ("libsqlite3",)}


# --- facts ----------------------------------------------------------------------------------------------

def error_text(exc):
    return "%s: %s" % (type(exc).__name__, exc)


def try_import(name):
    try:
        module = __import__(name)
    except BaseException as exc:  # an extension that fails to load may raise anything
        return None, {"ok": False, "error": error_text(exc), "file": None}
    return module, {"ok": True, "error": None, "file": getattr(module, "__file__", None)}


def mapped_libraries():
    """Every shared object mapped into this process (Linux: /proc/self/maps), by address."""
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6:
                    path = parts[5].strip()
                    if path.startswith("/") and ".so" in os.path.basename(path) and path not in paths:
                        paths.append(path)
    except OSError as exc:
        return None, error_text(exc)
    return paths, None


# Where hosts keep their own libssl, libcrypto and libsqlite3. An LD_LIBRARY_PATH naming them is common on
# the old hosts buildkit serves (Oracle clients, /usr/local/lib): a DT_RUNPATH gives way to it, a DT_RPATH
# does not. The probe loads the modules again in a child with it set, and reads what the loader picked.
SYSTEM_LIB_DIRS = ("/usr/local/lib64", "/usr/local/lib", "/usr/lib/%(multiarch)s", "/lib/%(multiarch)s",
                   "/usr/lib64", "/lib64", "/usr/lib", "/lib")
_HOSTILE_CHILD = """
import json, os, sys
imported = {}
for name in ("_ssl", "_hashlib", "_sqlite3"):
    try:
        __import__(name)
        imported[name] = True
    except BaseException:
        imported[name] = False
maps = []
with open("/proc/self/maps") as f:
    for line in f:
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].strip() not in maps:
            maps.append(parts[5].strip())
sys.stdout.write(json.dumps({"imported": imported, "mapped": maps}))
"""


# A CA and a server certificate for localhost, made for the handshake check with the OpenSSL the
# interpreter loads (its bin/openssl), with the extensions a strict verifier (3.13's default) wants.
_TLS_CONFIG = """[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
TLS_VERSIONS = ("TLSv1_2", "TLSv1_3")


def _openssl_tool(libraries):
    """The openssl tool of the OpenSSL that _ssl loaded (PREFIX/lib/libssl.so -> PREFIX/bin/openssl), else
    the one on PATH."""
    for lib in libraries.get("_ssl") or []:
        tool = os.path.join(os.path.dirname(os.path.dirname(lib)), "bin", "openssl")
        if os.path.basename(lib).startswith("libssl") and os.access(tool, os.X_OK):
            return tool
    for folder in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
        tool = os.path.join(folder, "openssl")
        if os.access(tool, os.X_OK):
            return tool
    return None


def _handshake(ssl, tmp, name):
    import socket
    import threading

    version = getattr(ssl.TLSVersion, name)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(os.path.join(tmp, "srv.pem"), os.path.join(tmp, "srv.key"))
    client = ssl.create_default_context(cafile=os.path.join(tmp, "ca.pem"))
    for ctx in (server, client):
        ctx.minimum_version = ctx.maximum_version = version
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(30)
    result = {"ok": False}

    def serve():
        try:
            conn = listener.accept()[0]
            with server.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(tls.recv(64)[::-1])
        except BaseException as exc:
            result["server_error"] = error_text(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=30) as raw:
            with client.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"buildkit")
                echoed = tls.recv(64)
                result.update(ok=echoed == b"tikdliub", version=tls.version(), cipher=tls.cipher()[0])
    except BaseException as exc:
        result["error"] = error_text(exc)
    finally:
        thread.join(30)
        listener.close()
    return result


def tls_facts(ssl, libraries):
    """A real TLS 1.2 and 1.3 handshake over loopback, client and server both this interpreter's ssl."""
    import shutil
    import tempfile

    facts = {"tool": _openssl_tool(libraries), "handshakes": {}}
    if not hasattr(ssl, "TLSVersion"):
        facts["skipped"] = "ssl.TLSVersion needs Python 3.7"
        return facts
    if facts["tool"] is None:
        facts["error"] = "no openssl tool to make the test CA with"
        return facts
    tmp = tempfile.mkdtemp(prefix="buildkit-tls-")
    try:
        with open(os.path.join(tmp, "openssl.cnf"), "w") as f:
            f.write(_TLS_CONFIG)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-config", "openssl.cnf"]
        for args in (["req", "-x509"] + ec + ["-extensions", "ca", "-keyout", "ca.key", "-out", "ca.pem",
                                              "-subj", "/CN=buildkit probe CA", "-days", "2"],
                     ["req"] + ec + ["-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost"],
                     ["x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                      "-out", "srv.pem", "-days", "2", "-extfile", "openssl.cnf", "-extensions", "leaf"]):
            proc = subprocess.Popen([facts["tool"]] + args, cwd=tmp, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            out = proc.communicate(timeout=120)[0].decode("utf-8", "replace").strip()
            if proc.returncode != 0:
                facts["error"] = "%s %s failed: %s" % (facts["tool"], args[0], out.splitlines()[-1:] or "")
                return facts
        for name in TLS_VERSIONS:
            facts["handshakes"][name] = _handshake(ssl, tmp, name)
    except BaseException as exc:
        facts["error"] = error_text(exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return facts


def hostile_facts():
    """The libraries ``_ssl``, ``_hashlib`` and ``_sqlite3`` load with LD_LIBRARY_PATH naming the system's."""
    import sysconfig

    multiarch = sysconfig.get_config_var("MULTIARCH") or "%s-linux-gnu" % os.uname()[4]
    dirs = []
    for pattern in SYSTEM_LIB_DIRS:
        path = pattern % {"multiarch": multiarch}
        if os.path.isdir(path) and os.path.realpath(path) not in [os.path.realpath(d) for d in dirs]:
            dirs.append(path)
    facts = {"ld_library_path": ":".join(dirs)}
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LD_LIBRARY_PATH": facts["ld_library_path"]}
    try:
        proc = subprocess.run([sys.executable, "-I", "-c", _HOSTILE_CHILD], env=env, stdout=subprocess.PIPE,  # noqa: UP022 (3.6)
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=120)
        child = json.loads(proc.stdout.decode("utf-8", "replace"))
    except BaseException as exc:
        facts["error"] = error_text(exc)
        return facts
    mapped = [p for p in child["mapped"] if LIB_PATTERN.search(p)]
    facts["libraries"] = dict((name, [p for p in mapped if os.path.basename(p).startswith(WANTED_LIBS[name])])
                              for name in sorted(WANTED_LIBS) if child["imported"].get(name))
    return facts


# Where distributions keep their CA store, the bundle files first: Debian/Ubuntu; RHEL/CentOS/Fedora (cert.pem
# is the default cafile of their own OpenSSL, whose OPENSSLDIR is /etc/pki/tls; ca-bundle.crt and the
# extracted bundle are the same file); SUSE; Alpine and the BSDs. Then the hashed directories.
HOST_CA_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/cert.pem", "/etc/pki/tls/certs/ca-bundle.crt",
                 "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem")
HOST_CA_DIRS = ("/etc/ssl/certs", "/etc/pki/tls/certs")
_HASHED = re.compile(r"^[0-9a-f]{8}\.[0-9]+$")


def _hashed_count(folder):
    try:
        return sum(1 for name in os.listdir(folder) if _HASHED.match(name))
    except OSError:
        return 0


def _where(path):
    """What a path of OpenSSL's defaults is on this host: the file or link target, and whether it exists."""
    info = {"path": path, "target": None, "exists": bool(path) and os.path.exists(path)}
    if path and os.path.islink(path):
        info["target"] = os.path.realpath(path)
    return info


def _host_ca_stores(ssl):
    """The CA stores this host has (whatever the interpreter's OpenSSL is told), each with the number of CA
    certificates this interpreter's OpenSSL reads from it."""
    stores = []
    for path in HOST_CA_FILES:
        if os.path.isfile(path):
            entry = {"path": path, "kind": "file", "realpath": os.path.realpath(path), "certs": 0, "error": None}
            try:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.load_verify_locations(cafile=path)
                entry["certs"] = int(context.cert_store_stats().get("x509_ca") or 0)
            except BaseException as exc:
                entry["error"] = error_text(exc)
            stores.append(entry)
    for path in HOST_CA_DIRS:
        hashed = _hashed_count(path) if os.path.isdir(path) else 0
        if hashed:
            stores.append({"path": path, "kind": "dir", "realpath": os.path.realpath(path), "certs": hashed,
                           "error": None})
    return stores


def install_facts():
    """Where this interpreter's own files are, for the host-side reading of its ELF files."""
    import sysconfig

    libpython = None
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
        if libdir and soname and os.path.isfile(os.path.join(libdir, soname)):
            libpython = os.path.join(libdir, soname)
    return {"base_prefix": getattr(sys, "base_prefix", sys.prefix), "executable": os.path.realpath(sys.executable),
            "libpython": libpython, "dynload": sysconfig.get_config_var("DESTSHARED")}


def _ca_facts(ssl):
    ca = {"error": None}
    try:
        paths = ssl.get_default_verify_paths()
        ca["verify_paths"] = {
            "cafile": paths.cafile,
            "capath": paths.capath,
            "openssl_cafile_env": paths.openssl_cafile_env,
            "openssl_cafile": paths.openssl_cafile,
            "openssl_capath_env": paths.openssl_capath_env,
            "openssl_capath": paths.openssl_capath,
        }
        ca["cafile"] = _where(paths.openssl_cafile)
        ca["capath"] = _where(paths.openssl_capath)
        hashed = total = 0
        if paths.capath:
            for name in os.listdir(paths.capath):
                total += 1
                if _HASHED.match(name):
                    hashed += 1
        ca["capath_files"] = total
        ca["capath_hashed"] = hashed
        ca["host_stores"] = _host_ca_stores(ssl)
        context = ssl.create_default_context()
        ca["stats"] = context.cert_store_stats()
        ca["ca_certs"] = len(context.get_ca_certs())
    except BaseException as exc:
        ca["error"] = error_text(exc)
    return ca


def _sqlite_facts(sqlite3):
    sq = {"version": sqlite3.sqlite_version, "deterministic": None, "deterministic_error": None}
    try:
        con = sqlite3.connect(":memory:")
        try:
            con.create_function("f", 1, lambda x: x, deterministic=True)
            sq["deterministic"] = con.execute("select f(41) + 1").fetchone()[0] == 42
        finally:
            con.close()
    except TypeError as exc:  # Python < 3.8: no deterministic= keyword
        sq["deterministic"] = None
        sq["deterministic_error"] = error_text(exc)
    except BaseException as exc:
        sq["deterministic"] = False
        sq["deterministic_error"] = error_text(exc)
    sq["features"] = _sqlite_features(sqlite3)
    return sq


# What applications use beyond plain SQL: each feature is used for real, not looked up in compile options.
SQLITE_FEATURES = (
    ("JSON functions", "select json_extract('{\"a\": [1, 2]}', '$.a[1]')", 2),
    ("FTS5", "create virtual table t using fts5(body); insert into t values ('buildkit checks fts5');"
             "select count(*) from t where t match 'fts5'", 1),
    ("R*Tree", "create virtual table r using rtree(id, x0, x1); insert into r values (1, 0, 10);"
               "select id from r where x0 <= 5 and x1 >= 5", 1),
    ("window functions", "select sum(x) over (order by x rows between 1 preceding and current row) "
                         "from (select 1 as x union all select 2) order by 1 desc limit 1", 3),
)


def _sqlite_features(sqlite3):
    found = {}
    for name, sql, expected in SQLITE_FEATURES:
        con = sqlite3.connect(":memory:")
        try:
            *setup, query = sql.split(";")
            for statement in setup:
                con.execute(statement)
            got = con.execute(query).fetchone()[0]
            found[name] = {"ok": got == expected, "error": None if got == expected else "got %r" % (got,)}
        except BaseException as exc:
            found[name] = {"ok": False, "error": error_text(exc)}
        finally:
            con.close()
    return found


def _pip_facts():
    pip = {"ok": False, "output": "", "ensurepip": False, "ensurepip_version": None}
    env = dict(os.environ)
    env["PIP_CONFIG_FILE"] = os.devnull  # no /etc/pip.conf, no ~/.pip
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-m", "pip", "--version"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, universal_newlines=True)
        out = proc.communicate(timeout=120)[0]
        pip["ok"] = proc.returncode == 0
        pip["output"] = out.strip()[-2000:]
    except BaseException as exc:
        pip["output"] = error_text(exc)
    try:
        import ensurepip
        pip["ensurepip"] = True
        try:
            pip["ensurepip_version"] = ensurepip.version()
        except BaseException as exc:
            pip["ensurepip_error"] = error_text(exc)
    except BaseException as exc:
        pip["ensurepip_error"] = error_text(exc)
    return pip


def _build_facts():
    """How the interpreter was configured and compiled (sysconfig's copy of its Makefile)."""
    try:
        import sysconfig
        names = ("CONFIG_ARGS", "PY_CFLAGS_NODIST", "PY_LDFLAGS_NODIST", "PGO_PROF_USE_FLAG", "LTOFLAGS",
                 "CONFIGURE_CFLAGS_NODIST")
        return dict((name, sysconfig.get_config_var(name) or "") for name in names)
    except BaseException as exc:
        return {"error": error_text(exc)}


def collect_facts(optional=None):
    """Everything the judgement needs, as plain JSON-able data."""
    facts = {
        "probe": 3,
        "executable": sys.executable,
        "version": list(sys.version_info[:3]),
        "version_text": sys.version,
        "prefix": sys.prefix,
        "isolated": bool(getattr(sys.flags, "isolated", 0)),
        "environment": sorted(os.environ),
        "imports": {},
    }
    imports = facts["imports"]
    imports["_ssl"] = try_import("_ssl")[1]
    imports["_hashlib"] = try_import("_hashlib")[1]
    ssl, imports["ssl"] = try_import("ssl")
    if ssl is not None:
        facts["openssl"] = {
            "version": getattr(ssl, "OPENSSL_VERSION", None),
            "version_info": list(getattr(ssl, "OPENSSL_VERSION_INFO", ()) or ()),
            "api_version": list(getattr(ssl, "_OPENSSL_API_VERSION", ()) or ()) or None,
        }
        facts["ca"] = _ca_facts(ssl)
    try:
        from smtplib import SMTP_SSL  # noqa: F401
        facts["smtp_ssl"] = {"ok": True, "error": None}
    except BaseException as exc:
        facts["smtp_ssl"] = {"ok": False, "error": error_text(exc)}
    imports["_sqlite3"] = try_import("_sqlite3")[1]
    sqlite3, imports["sqlite3"] = try_import("sqlite3")
    if sqlite3 is not None:
        facts["sqlite"] = _sqlite_facts(sqlite3)

    # The shared libraries the loader really picked, read after the imports above.
    maps, maps_error = mapped_libraries()
    facts["maps_error"] = maps_error
    facts["mapped"] = [p for p in (maps or []) if LIB_PATTERN.search(p)]
    libraries = {}
    for name in sorted(WANTED_LIBS):
        if imports[name]["ok"]:
            libraries[name] = [p for p in facts["mapped"] if os.path.basename(p).startswith(WANTED_LIBS[name])]
    facts["libraries"] = libraries
    facts["hostile"] = hostile_facts()
    facts["install"] = install_facts()
    if ssl is not None:
        facts["tls"] = tls_facts(ssl, libraries)

    facts["pip"] = _pip_facts()
    facts["build"] = _build_facts()
    facts["optional"] = {}
    for name in (OPTIONAL_MODULES if optional is None else optional):
        facts["optional"][name] = try_import(name)[1]
    return facts


# --- judgement ------------------------------------------------------------------------------------------

def version_tuple(text):
    """``"3.40.1"`` -> ``(3, 40, 1)``; stops at the first part that does not start with a digit."""
    parts = []
    for part in str(text).split("."):
        m = re.match(r"^(\d+)", part)
        if not m:
            break
        parts.append(int(m.group(1)))
    return tuple(parts)


def openssl_version_from_info(info):
    """The version of ``ssl.OPENSSL_VERSION_INFO`` / ``ssl._OPENSSL_API_VERSION`` as OpenSSL writes it.

    CPython splits ``OPENSSL_VERSION_NUMBER`` as (major, minor, fix, patch, status). OpenSSL 3 encodes 3.0.20
    as 0x30000140, i.e. (3, 0, 0, 20, 0); 1.1.1w is 0x1010117f, i.e. (1, 1, 1, 23, 15) with 23 = 'w'.
    """
    if not info or len(info) < 4:
        return None
    major, minor, fix, patch = [int(x) for x in info[:4]]
    if major >= 3:
        return "%d.%d.%d" % (major, minor, patch)
    letter = chr(ord("a") + patch - 1) if 0 < patch <= 26 else ""
    return "%d.%d.%d%s" % (major, minor, fix, letter)


def openssl_token(version_text):
    """``"OpenSSL 3.0.20 27 Jan 2026"`` -> ``"3.0.20"``; ``"LibreSSL 3.8.2"`` -> ``"3.8.2"``."""
    if not version_text:
        return None
    parts = version_text.split()
    return parts[1] if len(parts) > 1 else parts[0]


def version_matches(actual, expected):
    """Equal, or ``expected`` names fewer components than ``actual`` (``3.46`` matches ``3.46.1``)."""
    if actual == expected:
        return True
    a, e = actual.split("."), expected.split(".")
    return len(e) < len(a) and a[:len(e)] == e


def _check(name, ok, detail, required=True):
    return {"name": name, "ok": bool(ok), "detail": detail, "required": required}


def _import_check(facts, module):
    info = facts["imports"].get(module) or {"ok": False, "error": "not probed", "file": None}
    if info["ok"]:
        return _check("import " + module, True, info.get("file") or "built in")
    return _check("import " + module, False, info.get("error") or "import failed")


def _inside(path, prefixes):
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def _library_check(facts, module, prefixes, headers, runtime):
    name = module + " libraries"
    info = facts["imports"].get(module) or {}
    if not info.get("ok"):
        return _check(name, False, "not loaded: " + (info.get("error") or "import failed"))
    if facts.get("maps_error"):
        return _check(name, not prefixes, "cannot read the loaded libraries (%s)" % facts["maps_error"])
    libs = list((facts.get("libraries") or {}).get(module, []))
    if not libs:
        what = "libsqlite3" if module == "_sqlite3" else "libssl/libcrypto"
        return _check(name, True, "no shared %s loaded: linked statically into %s"
                      % (what, info.get("file") or "the interpreter"))
    outside = [lib for lib in libs if not _inside(lib, prefixes)]
    if not prefixes or not outside:
        return _check(name, True, ", ".join(libs))
    family = "SQLite" if module == "_sqlite3" else "OpenSSL"
    lib = ([p for p in outside if os.path.basename(p).startswith("libssl")] or outside)[0]
    detail = ""
    if headers and family == "OpenSSL":
        detail = "headers %s but " % headers
    detail += "runtime library %s" % lib
    if runtime.get(family):
        detail += " (%s %s)" % (family, runtime[family])
    detail += " is outside the private prefixes " + ", ".join(prefixes)
    others = [p for p in outside if p != lib]
    if others:
        detail += "; also " + ", ".join(others)
    return _check(name, False, detail)


def _hostile_check(hostile, module, prefixes, loaded):
    """``loaded``: the libraries the module loads without LD_LIBRARY_PATH (the check before this one)."""
    name = module + " libraries, LD_LIBRARY_PATH set"
    where = "LD_LIBRARY_PATH=" + (hostile.get("ld_library_path") or "")
    if hostile.get("error"):
        return _check(name, False, "%s: the probe's child failed: %s" % (where, hostile["error"]))
    libs = (hostile.get("libraries") or {}).get(module)
    if libs is None:
        return _check(name, False, "%s: %s no longer imports" % (where, module))
    outside = [lib for lib in libs if not _inside(lib, prefixes)]
    if not outside:
        return _check(name, True, "%s: still %s" % (where, ", ".join(libs) or "no shared library"))
    if any(not _inside(lib, prefixes) for lib in loaded or ()):
        # outside the prefixes with or without LD_LIBRARY_PATH: no runpath to blame, the check above says why
        return _check(name, False, "%s: %s loaded %s, outside the private prefixes as it is without "
                      "LD_LIBRARY_PATH (see the check above)" % (where, module, ", ".join(outside)))
    return _check(name, False, "%s: %s loaded %s instead of the private one (its runpath is a DT_RUNPATH, "
                  "which LD_LIBRARY_PATH overrides: rebuild with -Wl,--disable-new-dtags, as buildkit does)"
                  % (where, module, ", ".join(outside)))


def _tls_checks(facts):
    tls = facts.get("tls")
    out = []
    for name in TLS_VERSIONS:
        label = "TLS %s handshake" % name[4:].replace("_", ".")
        if tls is None:
            out.append(_check(label, False, "ssl does not import"))
        elif tls.get("skipped"):
            out.append(_check(label, True, "not checked: " + tls["skipped"]))
        elif tls.get("error"):
            out.append(_check(label, False, tls["error"]))
        else:
            got = tls["handshakes"].get(name) or {}
            if got.get("ok"):
                out.append(_check(label, True, "%s %s over 127.0.0.1; CA and certificate made by %s"
                                  % (got.get("version"), got.get("cipher"), tls.get("tool"))))
            else:
                out.append(_check(label, False, got.get("error") or got.get("server_error") or "no echo"))
    return out


def _shown(where):
    """``/p/ssl/cert.pem -> /etc/ssl/certs/ca-certificates.crt (missing)`` for a ``_where`` record."""
    text = where.get("path") or "(none)"
    if where.get("target"):
        text += " -> " + where["target"]
    if where.get("path") and not where.get("exists"):
        text += " (missing)"
    return text


def ca_fix(ca):
    """The command that gives the interpreter's OpenSSL the host's CA store, or what to install."""
    paths = ca.get("verify_paths") or {}
    cafile = paths.get("openssl_cafile") or "the cafile of ssl.get_default_verify_paths()"
    stores = [s for s in ca.get("host_stores") or [] if s["kind"] == "file" and s["certs"]]
    if not stores:
        return ("install the CA store (Debian: apt-get install ca-certificates; RHEL: yum install ca-certificates), "
                "then mkdir -p %s && ln -sfn <its bundle> %s" % (os.path.dirname(cafile), cafile))
    store = stores[0]["path"]
    return "mkdir -p %s && ln -sfn %s %s (or run it with SSL_CERT_FILE=%s)" % (
        os.path.dirname(cafile), store, cafile, store)


def _ca_check(facts):
    name = "CA store"
    ca = facts.get("ca")
    if ca is None:
        return _check(name, False, "ssl does not import")
    if ca.get("error") and "stats" not in ca:
        return _check(name, False, ca["error"])
    paths = ca.get("verify_paths") or {}
    stats = ca.get("stats") or {}
    cafile = ca.get("cafile") or {"path": paths.get("openssl_cafile"), "exists": bool(paths.get("cafile"))}
    capath = ca.get("capath") or {"path": paths.get("openssl_capath"), "exists": bool(paths.get("capath"))}
    hashed = int(ca.get("capath_hashed") or 0)
    loaded = int(stats.get("x509_ca") or 0) or int(ca.get("ca_certs") or 0)
    dir_text = "capath %s, %d hashed certificates" % (_shown(capath), hashed)
    if loaded:
        return _check(name, True, "%d CA certificates loaded from %s; %s" % (loaded, _shown(cafile), dir_text))
    if paths.get("capath") and hashed:
        return _check(name, True, "%s, loaded on demand (none preloaded; cafile %s)" % (dir_text, _shown(cafile)))
    stores = ["%s (%d %s)" % (s["path"], s["certs"], "certificates" if s["kind"] == "file" else "hashed")
              for s in ca.get("host_stores") or [] if s["certs"]]
    host = ("this host's CA store: " + ", ".join(stores)) if stores else (
        "this host has no CA store either (looked at %s)" % ", ".join(HOST_CA_FILES + HOST_CA_DIRS))
    return _check(name, False, "create_default_context() loaded 0 CA certificates: OpenSSL looked at cafile %s and "
                  "%s; %s; fix: %s" % (_shown(cafile), dir_text, host, ca_fix(ca)))


def _headers_check(api, runtime, version_text):
    name = "OpenSSL headers vs runtime"
    if runtime is None:
        return _check(name, False, "ssl does not import")
    if version_text and version_text.startswith("LibreSSL"):
        return _check(name, True, version_text + ": LibreSSL reports a fixed version number; not compared")
    if api is None:
        return _check(name, True, "runtime %s; this Python does not expose the header version" % runtime)
    if api == runtime:
        return _check(name, True, "compiled against %s, runs %s" % (api, runtime))
    a, r = version_tuple(api), version_tuple(runtime)
    same_abi = a[:1] == r[:1] and (a[:1] >= (3,) or a[:2] == r[:2])
    if same_abi and r[:2] >= a[:2]:
        return _check(name, True, "compiled against %s, runs %s (same ABI series, newer or patch-level)"
                      % (api, runtime))
    return _check(name, False, "compiled against OpenSSL %s headers but runs library %s: the module was built "
                  "with one OpenSSL and loads another" % (api, runtime))


def _pip_check(pip):
    if pip.get("ok"):
        out = (pip.get("output") or "").splitlines()
        return _check("pip", True, out[-1] if out else "pip works")
    if pip.get("ensurepip"):
        bundled = pip.get("ensurepip_version")
        return _check("pip", True, "pip is not installed; ensurepip is present%s: python -m ensurepip installs it"
                      % (" (bundles pip %s)" % bundled if bundled else ""))
    out = (pip.get("output") or "").strip().splitlines()
    return _check("pip", False, "python -m pip --version failed (%s) and there is no ensurepip"
                  % (out[-1] if out else "no output"))


def _optimization_check(build, expected):
    """PGO + LTO as configure recorded them: --enable-optimizations and --with-lto in CONFIG_ARGS, -flto in
    the flags every object was compiled with, a profile-use flag. Required only when the build asked for it."""
    if "error" in build:
        return _check("PGO + LTO", not expected, "sysconfig: %s" % build["error"], required=expected)
    args = build.get("CONFIG_ARGS") or ""
    cflags = " ".join((build.get("PY_CFLAGS_NODIST") or "", build.get("CONFIGURE_CFLAGS_NODIST") or ""))
    pgo = "--enable-optimizations" in args and bool(build.get("PGO_PROF_USE_FLAG"))
    lto = "--with-lto" in args and "-flto" in cflags
    if pgo and lto:
        lto_flags = " ".join(f for f in cflags.split() if f.startswith(("-flto", "-ffat-lto", "-fuse-linker")))
        detail = "PGO (%s) + LTO (%s)" % (build.get("PGO_PROF_USE_FLAG"), " ".join(sorted(set(lto_flags.split()))))
    else:
        missing = [what for what, ok in (("--enable-optimizations", pgo), ("--with-lto and -flto", lto)) if not ok]
        detail = "not configured for it (sysconfig: no %s)" % ", no ".join(missing)
    return _check("PGO + LTO", (pgo and lto) or not expected, detail, required=expected)


def judge(facts, expect_openssl=None, expect_sqlite=None, private_prefixes=(), django_min=DJANGO_SQLITE_MIN,
          expect_optimized=False):
    """The verification report of ``facts``: checks, optional modules, versions, libraries."""
    prefixes = [os.path.realpath(p) for p in private_prefixes if p]
    openssl = facts.get("openssl") or {}
    version_text = openssl.get("version")
    runtime_openssl = openssl_token(version_text)
    api_openssl = openssl_version_from_info(openssl.get("api_version"))
    sqlite = facts.get("sqlite") or {}
    sqlite_version = sqlite.get("version")

    checks = [_import_check(facts, "_ssl"), _import_check(facts, "_hashlib"), _import_check(facts, "ssl")]
    if runtime_openssl is None:
        checks.append(_check("OpenSSL version", False, "ssl does not import"))
    elif expect_openssl and not version_matches(runtime_openssl, expect_openssl):
        checks.append(_check("OpenSSL version", False, "%s: expected %s" % (version_text, expect_openssl)))
    else:
        checks.append(_check("OpenSSL version", True, version_text or ""))
    checks.append(_headers_check(api_openssl, runtime_openssl, version_text))
    smtp = facts.get("smtp_ssl") or {}
    checks.append(_check("from smtplib import SMTP_SSL", smtp.get("ok"),
                         "ok" if smtp.get("ok") else smtp.get("error") or "failed"))

    checks.append(_import_check(facts, "sqlite3"))
    minimum_name = "SQLite >= %s (Django)" % django_min
    if sqlite_version is None:
        checks.append(_check("SQLite version", False, "sqlite3 does not import"))
        checks.append(_check(minimum_name, False, "sqlite3 does not import"))
        checks.append(_check("create_function(deterministic=True)", False, "sqlite3 does not import"))
    else:
        if expect_sqlite and not version_matches(sqlite_version, expect_sqlite):
            checks.append(_check("SQLite version", False, "%s: expected %s" % (sqlite_version, expect_sqlite)))
        else:
            checks.append(_check("SQLite version", True, sqlite_version))
        new_enough = version_tuple(sqlite_version) >= version_tuple(django_min)
        checks.append(_check(minimum_name, new_enough, sqlite_version if new_enough else
                             "%s is older than %s: deterministic functions and Django fail"
                             % (sqlite_version, django_min)))
        if sqlite.get("deterministic") is None:
            checks.append(_check("create_function(deterministic=True)", True,
                                 "not available before Python 3.8 (%s)" % (sqlite.get("deterministic_error") or "")))
        else:
            ok = bool(sqlite.get("deterministic"))
            checks.append(_check("create_function(deterministic=True)", ok,
                                 "works" if ok else sqlite.get("deterministic_error") or "failed"))
        features = sqlite.get("features") or {}
        for name, _sql, _expected in SQLITE_FEATURES:
            got = features.get(name) or {"ok": False, "error": "not probed"}
            checks.append(_check("SQLite " + name, bool(got["ok"]), "works" if got["ok"] else got["error"]))

    checks.append(_ca_check(facts))
    checks.extend(_tls_checks(facts))
    checks.append(_pip_check(facts.get("pip") or {}))
    if facts.get("build") is not None:
        checks.append(_optimization_check(facts["build"], expect_optimized))
    runtime = {"OpenSSL": runtime_openssl, "SQLite": sqlite_version}
    for module in ("_ssl", "_hashlib", "_sqlite3"):
        checks.append(_library_check(facts, module, prefixes, api_openssl, runtime))
    if prefixes and facts.get("hostile") is not None:
        for module in ("_ssl", "_hashlib", "_sqlite3"):
            if (facts["imports"].get(module) or {}).get("ok"):
                checks.append(_hostile_check(facts["hostile"], module, prefixes,
                                             (facts.get("libraries") or {}).get(module)))

    optional = []
    for name, info in sorted((facts.get("optional") or {}).items(),
                             key=lambda kv: list(OPTIONAL_MODULES).index(kv[0]) if kv[0] in OPTIONAL_MODULES else 99):
        description, debian, rhel = OPTIONAL_MODULES.get(name, ("", "", ""))
        optional.append({"name": name, "present": bool(info.get("ok")), "description": description,
                         "debian": debian, "rhel": rhel, "error": None if info.get("ok") else info.get("error")})
    return {
        "python": facts.get("executable"),
        "python_version": ".".join(str(x) for x in facts.get("version", [])),
        "ok": all(c["ok"] for c in checks if c["required"]),
        "checks": checks,
        "optional": optional,
        "openssl_version": runtime_openssl,
        "sqlite_version": sqlite_version,
        "libraries": facts.get("libraries") or {},
        "verify_paths": (facts.get("ca") or {}).get("verify_paths"),
        "environment": facts.get("environment") or [],
    }


# --- script ---------------------------------------------------------------------------------------------

def parse_args(argv):
    opts = {"expect_openssl": None, "expect_sqlite": None, "private_prefixes": [], "django_min": DJANGO_SQLITE_MIN,
            "optional": None, "record": None, "json": False, "expect_optimized": False}
    it = iter(argv)
    for arg in it:
        key, eq, value = arg.partition("=")
        if key == "--json":
            opts["json"] = True
            continue
        if key == "--expect-optimized":
            opts["expect_optimized"] = True
            continue
        if key not in ("--expect-openssl", "--expect-sqlite", "--private-prefix", "--private-prefixes",
                       "--django-sqlite-min", "--optional", "--record"):
            raise SystemExit("probe: unknown argument %r" % arg)
        if not eq:
            value = next(it, None)
            if value is None:
                raise SystemExit("probe: %s needs a value" % key)
        if key == "--private-prefix":
            opts["private_prefixes"].append(value)
        elif key == "--private-prefixes":
            opts["private_prefixes"].extend(value.split())
        elif key == "--optional":
            opts["optional"] = [m for m in value.split(",") if m]
        else:
            opts[{"--expect-openssl": "expect_openssl", "--expect-sqlite": "expect_sqlite",
                  "--django-sqlite-min": "django_min", "--record": "record"}[key]] = value or None
    return opts


def write_record(path, report):
    """``verified`` and ``verification`` into the build record (buildkit.pybuild.record), made when there is none."""
    record = {"schema": RECORD_SCHEMA}
    try:
        with open(path) as f:
            loaded = json.load(f)
        if isinstance(loaded, dict):
            record = loaded
    except (OSError, ValueError):
        pass
    record["verified"] = report["ok"]
    record["verification"] = report
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
    os.rename(tmp, path)


def main(argv):
    opts = parse_args(argv)
    facts = collect_facts(opts["optional"])
    report = judge(facts, opts["expect_openssl"], opts["expect_sqlite"], opts["private_prefixes"], opts["django_min"],
                   opts["expect_optimized"])
    if opts["record"]:
        write_record(opts["record"], report)
    if not opts["json"]:
        width = max(len(c["name"]) for c in report["checks"])
        for c in report["checks"]:
            mark = "ok" if c["ok"] else ("FAIL" if c["required"] else "warn")
            sys.stdout.write("  %-*s  %-4s  %s\n" % (width, c["name"], mark, c["detail"]))
        for m in report["optional"]:
            if not m["present"]:
                sys.stdout.write("  optional %-10s missing  (Debian: %s, RHEL: %s)\n"
                                 % (m["name"], m["debian"], m["rhel"]))
    sys.stdout.write("\n" + MARK + json.dumps({"facts": facts, "report": report}) + "\n")
    sys.stdout.flush()
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
