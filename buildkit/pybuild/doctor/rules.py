"""The rules: what each sign in configure's output, the make summary, a log or a loader error means.

Besides the build's own texts (:mod:`~buildkit.pybuild.doctor.parse`), the errors people meet afterwards
are recognised: ``No module named '_ssl'``, ``cannot import name 'SMTP_SSL'``, ``deterministic=True
requires SQLite 3.8.3 or higher`` (``Modules/_sqlite/connection.c``), pip's ``the ssl module in Python is not
available``, ``CERTIFICATE_VERIFY_FAILED``; and the loader's reasons a built module does not import
(a library not found: no rpath, ``lib64/``; an undefined symbol: OpenSSL 3 headers with a 1.1 library).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from typing import TypedDict

from buildkit.pybuild.doctor.findings import Collector, Context, Finding, dev_packages
from buildkit.pybuild.doctor.parse import ConfigureFacts, MakeSummary

# --- reasons an extension module fails to import -------------------------------------------------------

NOT_FOUND_LIB = re.compile(r"(?P<lib>lib[\w+.-]*?\.so[\w.]*): cannot open shared object file")
_UNDEFINED = re.compile(r"undefined symbol: (?P<sym>\w+)")
_VERSION_NODE = re.compile(r"version `(?P<node>[^']+)' not found")
# OpenSSL 3.0 renamed many getters (EVP_MD_type -> EVP_MD_get_type ...) and added OSSL_* APIs: a module
# compiled against 3.x headers and loaded with a 1.1 library misses exactly these.
_OPENSSL3_SYMBOL = re.compile(r"^(?:EVP_\w+_get_\w+|EVP_\w+_get0_\w+|SSL_get1_peer_certificate|OSSL_\w+|"
                              r"EVP_MD_fetch|EVP_CIPHER_fetch|\w+_ex)$")


def lib_family(text: str) -> str:
    return "SQLite" if "sqlite" in text.lower() else "OpenSSL"


def import_failure(c: Collector, ctx: Context, module: str, why: str, where: str, cfg: ConfigureFacts) -> None:
    """A module that was built but does not import: classify the loader's message."""
    family = "SQLite" if module in ("_sqlite3", "sqlite3") else "OpenSSL"
    evidence = f"{where}: {module}: {why}" if where else f"{module}: {why}"
    m = NOT_FOUND_LIB.search(why)
    if m:
        lib = m["lib"]
        family = lib_family(lib)
        libdirs = _libdirs(cfg, family)
        hint = ""
        if libdirs:
            hint = (f" configure linked with -L{' -L'.join(libdirs)}; if the library is in a lib64 directory "
                    "instead (OpenSSL 3 installs to lib64 on x86_64 unless configured with --libdir=lib), or no "
                    "rpath points there, the loader cannot find it at run time.")
        if family == "OpenSSL":
            fix = (f"rebuild so the rpath names the directory that holds libssl/libcrypto: {ctx.rebuild()}; or by "
                   "hand configure with --with-openssl=DIR --with-openssl-rpath=auto (and build OpenSSL with "
                   "--libdir=lib, or add LDFLAGS=\"-L DIR/lib64 -Wl,-rpath,DIR/lib64\"); check with "
                   "readelf -d _ssl*.so | grep -i path")
        else:
            fix = (f"rebuild so the rpath names the directory that holds {lib}: {ctx.rebuild()}; or by hand "
                   "configure with LDFLAGS=\"-L DIR/lib -Wl,-rpath,DIR/lib\" for the SQLite in DIR")
        c.add(f"rpath-{family}", f"{family} shared libraries not found at run time: no rpath to their directory",
              evidence + "." + hint if hint else evidence, fix)
        return
    m = _UNDEFINED.search(why) or _VERSION_NODE.search(why)
    if m:
        sym = m.groupdict().get("sym") or m.groupdict().get("node") or ""
        if family == "OpenSSL" and sym and _OPENSSL3_SYMBOL.match(sym):
            title = "mixed OpenSSL: compiled against OpenSSL 3 headers, loads an OpenSSL 1.1 library"
            detail = (f"{evidence} ({sym} exists only in OpenSSL 3.x: the headers came from one OpenSSL, "
                      "libssl/libcrypto from another, usually the system's)")
        else:
            title = f"mixed {family}: the module was compiled against other headers than the library it loads"
            detail = evidence
        fix = (f"take headers and libraries from one {family}: {ctx.rebuild()}; by hand, point --with-openssl "
               "at the OpenSSL --prefix whose lib (not lib64) holds its libraries, add --with-openssl-rpath=auto, "
               "and run make clean before rebuilding") if family == "OpenSSL" else (
               f"take headers and library from one SQLite: {ctx.rebuild()}")
        c.add(f"mixed-{family}", title, detail, fix)
        return
    fix = ctx.rebuild()
    c.add(f"import-{module}", f"{module} was built but does not import", evidence, f"rebuild: {fix}")


def _libdirs(cfg: ConfigureFacts, family: str) -> list[str]:
    if family == "OpenSSL":
        flags = cfg.variables.get("OPENSSL_LDFLAGS", "")
    else:
        flags = cfg.variables.get("LIBSQLITE3_LIBS", "")
    return [f[2:] for f in flags.split() if f.startswith("-L") and len(f) > 2]


# --- analysis shared by logs and build trees -----------------------------------------------------------

_SEEDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"No module named '_ssl'"), "ssl-absent"),
    (re.compile(r"cannot import name 'SMTP_SSL'"), "ssl-absent"),
    (re.compile(r"the ssl module in Python is not available"), "ssl-absent"),
    (re.compile(r"No module named '_hashlib'"), "hashlib-absent"),
    (re.compile(r"No module named '_sqlite3'"), "sqlite-absent"),
    (re.compile(r"deterministic=True requires SQLite 3\.8\.3 or higher"), "sqlite-old"),
    (re.compile(r"CERTIFICATE_VERIFY_FAILED"), "ca"),
]
_IMPORT_ERROR = re.compile(r"ImportError: (?P<why>.*(?:cannot open shared object file|undefined symbol|"
                           r"version `[^']+' not found).*)$")
_CONFIGURE_ERROR = re.compile(r"^configure: error: (?P<msg>.*)$")
_LD_CANNOT_FIND = re.compile(r"ld(?:\.\w+)?: cannot find -l(?P<lib>ssl|crypto|sqlite3)\b")
_OPENSSL_TOO_OLD = re.compile(r'#\s*error "OpenSSL >= (?P<min>[\d.]+\w?) is required"')
_SQLITE_TOO_OLD = re.compile(r'#\s*error "SQLite (?P<min>[\d.]+) or higher required"')
_PKG_SQLITE = re.compile(r"Requested 'sqlite3 >= (?P<min>[\d.]+)' but version of SQLite is (?P<found>[\d.]+)")
_PYTHON_REQUIRES = re.compile(r"Python requires an? OpenSSL (?P<what>.*)$")


def _seed_findings(c: Collector, ctx: Context, lines: Sequence[str], source: str, cfg: ConfigureFacts) -> None:
    from buildkit.catalog import django_sqlite_min

    for number, line in enumerate(lines, 1):
        where = f"{source} line {number}" if source else f"line {number}"
        for pattern, key in _SEEDS:
            if not pattern.search(line):
                continue
            text = f"{where}: {line.strip()}"
            if key == "ssl-absent":
                c.add(key, "this Python has no ssl module (_ssl was not built or was removed)",
                      text + (" (smtplib defines SMTP_SSL only when 'import ssl' works)" if "SMTP_SSL" in line else ""),
                      f"rebuild with an OpenSSL configure finds: {ctx.rebuild()}; {ctx.system_openssl()}")
            elif key == "hashlib-absent":
                c.add(key, "this Python has no _hashlib (OpenSSL-backed hashes)", text,
                      f"rebuild with an OpenSSL configure finds: {ctx.rebuild()}; {ctx.system_openssl()}")
            elif key == "sqlite-absent":
                c.add(key, "this Python has no sqlite3 module (_sqlite3 was not built)", text,
                      f"rebuild with SQLite: {ctx.rebuild()}; {ctx.system_sqlite()}")
            elif key == "sqlite-old":
                c.add(key, f"SQLite older than {django_sqlite_min()}: deterministic functions (and Django) fail",
                      text + " (Modules/_sqlite/connection.c checks both the SQLite it was compiled against and the "
                      "one it runs with, so swapping the library alone is not enough)",
                      f"rebuild against a private SQLite >= {django_sqlite_min()}: {ctx.rebuild()}")
            elif key == "ca":
                c.add(key, "TLS certificate verification fails: no CA certificates", text,
                      "a private OpenSSL looks in its own OPENSSLDIR (python -c 'import ssl; "
                      "print(ssl.get_default_verify_paths())'); link the system bundle there, e.g. ln -s "
                      "/etc/ssl/certs/ca-certificates.crt (Debian) or /etc/pki/tls/certs/ca-bundle.crt (RHEL) "
                      "to the openssl_cafile it prints")
        m = _IMPORT_ERROR.search(line)
        if m:
            why = m["why"]
            module = "_sqlite3" if "sqlite" in why else ("_hashlib" if "_hashlib" in why else "_ssl")
            import_failure(c, ctx, module, why, where, cfg)
        m = _CONFIGURE_ERROR.match(line.strip())
        if m:
            c.add(f"configure-error-{m['msg']}", f"configure failed: {m['msg']}", where,
                  _configure_error_fix(m["msg"], ctx))


class _TextHits(TypedDict):
    """What configure's output says, line by line: the linker's "cannot find" lines, and the matches of the
    version complaints."""

    ld: list[str]
    openssl_old: list[re.Match[str]]
    sqlite_old: list[re.Match[str]]
    pkg_sqlite: list[re.Match[str]]


def _configure_error_fix(msg: str, ctx: Context) -> str:
    if "--with-openssl-rpath" in msg:
        return "pass --with-openssl-rpath=auto, or an existing directory that holds libssl (lib or lib64)"
    if "Invalid --with-openssl value" in msg:
        return "pass --with-openssl=DIR, the OpenSSL install prefix (DIR/include/openssl/ssl.h must exist)"
    return f"fix what configure names, or let buildkit configure: {ctx.rebuild()}"


def _configure_findings(c: Collector, ctx: Context, cfg: ConfigureFacts, lines: Sequence[str],
                        tree: str | None) -> None:
    from buildkit.catalog import django_sqlite_min
    from buildkit.pybuild.verify import version_tuple

    text_hits: _TextHits = {"ld": [], "openssl_old": [], "sqlite_old": [], "pkg_sqlite": []}
    for line in lines:
        if _LD_CANNOT_FIND.search(line):
            text_hits["ld"].append(line.strip())
        m = _OPENSSL_TOO_OLD.search(line)
        if m:
            text_hits["openssl_old"].append(m)
        m = _SQLITE_TOO_OLD.search(line)
        if m:
            text_hits["sqlite_old"].append(m)
        m = _PKG_SQLITE.search(line)
        if m:
            text_hits["pkg_sqlite"].append(m)

    # --- OpenSSL ---
    with_openssl = cfg.arg("--with-openssl")
    rpath = cfg.check(r"for --with-openssl-rpath")
    if rpath is None:
        rpath = cfg.variables.get("OPENSSL_RPATH", cfg.arg("--with-openssl-rpath"))
    link_ok = cfg.check(r"whether compiling and linking against OpenSSL works")
    api_ok = (cfg.check(r"whether OpenSSL provides required ssl module APIs")
              or cfg.variables.get("ac_cv_working_openssl_ssl"))
    ssl_state = cfg.module_state("_ssl")
    includes = cfg.variables.get("OPENSSL_INCLUDES", "")
    ldflags = cfg.variables.get("OPENSSL_LDFLAGS", "")
    header_checks = {}
    for what, result in cfg.checks.items():
        m = re.match(r"for (?:include/)?openssl/ssl\.h in (.+)$", what)
        if m:
            header_checks[m.group(1)] = result
    header_version = _openssl_header_version(includes) if tree else None
    where = "config.log" if tree else "configure"

    if with_openssl and header_checks.get(with_openssl) == "no":
        c.add("ssl-headers", f"no OpenSSL headers under --with-openssl={with_openssl}",
              f"{where}: checking for include/openssl/ssl.h in {with_openssl}... no",
              f"pass the OpenSSL install prefix (it holds include/openssl/ssl.h): {ctx.rebuild()}")
    if link_ok == "no" or (text_hits["ld"] and ssl_state in (None, "missing")):
        detail = f"{where}: checking whether compiling and linking against OpenSSL works... {link_ok or 'no'}"
        if ldflags or includes:
            detail += f" (OPENSSL_LDFLAGS={ldflags or '(none)'}, OPENSSL_INCLUDES={includes or '(none)'})"
        if text_hits["ld"]:
            detail += "; " + "; ".join(dict.fromkeys(text_hits["ld"]))
        lib64 = _lib64_hint(ldflags)
        fix = ctx.rebuild()
        title = "configure could not link against OpenSSL"
        if lib64:
            title = "configure could not link against OpenSSL: its libraries are in lib64, configure looked in lib"
            detail += f"; {lib64}"
        elif with_openssl and not tree:
            detail += (f"; --with-openssl={with_openssl} makes configure link with -L{with_openssl}/lib: OpenSSL 3 "
                       "installs to lib64 on x86_64 unless it was configured with --libdir=lib")
        c.add("ssl-link", title, detail,
              f"{fix}; by hand: rebuild OpenSSL with ./Configure --prefix=DIR --libdir=lib, or configure CPython "
              "with LDFLAGS=\"-L DIR/lib64 -Wl,-rpath,DIR/lib64\"")
    if api_ok == "no" and not c.has("ssl-link"):
        if text_hits["openssl_old"]:
            minimum = text_hits["openssl_old"][0]["min"]
            found = f" (headers say {header_version})" if header_version else ""
            c.add("ssl-old", f"OpenSSL too old: CPython needs OpenSSL >= {minimum}{found}",
                  f"{where}: checking whether OpenSSL provides required ssl module APIs... no; "
                  f"conftest.c: #error \"OpenSSL >= {minimum} is required\"",
                  f"use a newer OpenSSL: {ctx.rebuild()}; {ctx.system_openssl()}")
        else:
            c.add("ssl-api", "OpenSSL lacks the APIs the ssl module needs",
                  f"{where}: checking whether OpenSSL provides required ssl module APIs... no "
                  "(LibreSSL, or an OpenSSL built without TLS 1.3 / keylog support)",
                  f"use OpenSSL >= {ctx.openssl_min()}: {ctx.rebuild()}")
    if ssl_state == "missing" and not any(c.has(k) for k in ("ssl-headers", "ssl-link", "ssl-old", "ssl-api")):
        c.add("ssl-missing", "configure found no usable OpenSSL: _ssl and _hashlib are not built",
              f"{where}: checking for stdlib extension module _ssl... missing",
              f"{ctx.rebuild()}; {ctx.system_openssl()}")
    system_dir = with_openssl is not None and with_openssl.rstrip("/") in ("/usr", "/usr/local")
    if with_openssl and link_ok != "no" and rpath in ("", "no") and not system_dir:
        ld_env = cfg.env_arg("LDFLAGS")
        if f"{with_openssl.rstrip('/')}/lib" not in ld_env:
            c.add("ssl-rpath", f"--with-openssl={with_openssl} without --with-openssl-rpath",
                  f"{where}: checking for --with-openssl-rpath... {rpath or '(empty: no)'}; _ssl links with "
                  f"-L{with_openssl}/lib but the loader will not look there at run time (it loads the system "
                  "libssl, or none: 'could not be imported')",
                  f"add --with-openssl-rpath=auto (or rebuild: {ctx.rebuild()})")
    if ssl_state == "yes":
        what = f"OpenSSL {header_version}" if header_version else "OpenSSL"
        at = includes.replace("-I", "") if includes else "the system include path"
        c.add("ssl-found", f"{what} found by configure ({at})",
              f"{where}: _ssl yes; OPENSSL_LDFLAGS={ldflags or '(none)'}; rpath={rpath or 'no'}", "", problem=False)

    # --- SQLite ---
    sqlite_state = cfg.module_state("_sqlite3")
    pkg = cfg.check(r"for sqlite3 >= [\d.]+") or cfg.check(r"for LIBSQLITE3")
    header = cfg.check(r"for sqlite3\.h")
    cflags = cfg.variables.get("LIBSQLITE3_CFLAGS", "")
    header_sqlite = _sqlite_header_version(cflags) if tree else None
    found_version = text_hits["pkg_sqlite"][-1]["found"] if text_hits["pkg_sqlite"] else header_sqlite
    if header == "no" or sqlite_state == "disabled":
        c.add("sqlite-headers", "SQLite headers (sqlite3.h) not found: _sqlite3 is not built",
              f"{where}: checking for sqlite3.h... {header or '?'}; _sqlite3 {sqlite_state or 'disabled'}",
              f"{ctx.rebuild()}; {ctx.system_sqlite()}")
    elif sqlite_state == "missing" or text_hits["sqlite_old"]:
        minimum = text_hits["sqlite_old"][0]["min"] if text_hits["sqlite_old"] else ctx.sqlite_min()
        what = f"SQLite {found_version}" if found_version else "the SQLite found"
        detail = f"{where}: checking for stdlib extension module _sqlite3... {sqlite_state or 'missing'}"
        if text_hits["pkg_sqlite"]:
            m = text_hits["pkg_sqlite"][-1]
            detail += f"; pkg-config: Requested 'sqlite3 >= {m['min']}' but version of SQLite is {m['found']}"
        if text_hits["sqlite_old"]:
            detail += f"; conftest.c: #error \"SQLite {minimum} or higher required\""
        needs = f"CPython {ctx.cpython} needs" if ctx.cpython else "CPython needs"
        c.add("sqlite-old-build", f"{what} is older than {needs} ({minimum})",
              detail, f"build against a private SQLite: {ctx.rebuild()}")
    elif sqlite_state == "yes" or pkg == "yes":
        if found_version and version_tuple(found_version) < version_tuple(django_sqlite_min()):
            c.add("sqlite-old", f"SQLite {found_version} is older than {django_sqlite_min()}: deterministic "
                  "functions (and Django) will fail", f"{where}: sqlite3.h says {found_version}",
                  f"build against a private SQLite: {ctx.rebuild()}")
        at = cflags.replace("-I$(srcdir)/Modules/_sqlite", "").replace("-I", "").strip() or "the system include path"
        what = f"SQLite {found_version}" if found_version else "SQLite"
        c.add("sqlite-found", f"{what} found by configure ({at})",
              f"{where}: _sqlite3 {sqlite_state or 'yes'}; LIBSQLITE3_LIBS="
              f"{cfg.variables.get('LIBSQLITE3_LIBS') or cfg.variables.get('MODULE__SQLITE3_LDFLAGS') or '(none)'}",
              "", problem=False)


def _lib64_hint(ldflags: str) -> str:
    """On this machine: ``-L DIR/lib`` has no libssl but ``DIR/lib64`` has."""
    for flag in ldflags.split():
        if not flag.startswith("-L"):
            continue
        libdir = flag[2:].rstrip("/")
        if glob.glob(os.path.join(libdir, "libssl.so*")):
            continue
        if libdir.endswith("/lib") and glob.glob(libdir + "64/libssl.so*"):
            return f"{libdir} has no libssl.so but {libdir}64 has"
    return ""


def _include_dirs(flags: str) -> list[str]:
    dirs = [f[2:] for f in flags.split() if f.startswith("-I") and "$(" not in f]
    return dirs + ["/usr/local/include", "/usr/include"]


def _openssl_header_version(includes: str) -> str | None:
    for d in _include_dirs(includes):
        path = os.path.join(d, "openssl", "opensslv.h")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        m = re.search(r'#\s*define\s+OPENSSL_VERSION_STR\s+"([^"]+)"', text)
        if m:
            return m.group(1)
        m = re.search(r'#\s*define\s+OPENSSL_VERSION_TEXT\s+"\w+ ([^ "]+)', text)
        if m:
            return m.group(1)
    return None


def _sqlite_header_version(cflags: str) -> str | None:
    for d in _include_dirs(cflags):
        try:
            with open(os.path.join(d, "sqlite3.h"), encoding="utf-8", errors="replace") as f:
                m = re.search(r'#\s*define\s+SQLITE_VERSION\s+"([^"]+)"', f.read())
        except OSError:
            continue
        if m:
            return m.group(1)
    return None


def _summary_findings(c: Collector, ctx: Context, summary: MakeSummary, cfg: ConfigureFacts, source: str) -> None:
    packages = dev_packages()
    where = source or "make"
    for module in summary.removed:
        why = summary.import_errors.get(module, "could not be imported")
        import_failure(c, ctx, module, why, f"{where} (built but removed)", cfg)
    for module, why in summary.import_errors.items():
        if module not in summary.removed:
            import_failure(c, ctx, module, why, where, cfg)
    missing = set(summary.missing)
    if missing & {"_ssl", "_hashlib"} and not any(c.has(k) for k in ("ssl-headers", "ssl-link", "ssl-old", "ssl-api")):
        c.add("ssl-missing", "OpenSSL not found: _ssl and _hashlib were not built",
              f"{where}: The necessary bits to build these optional modules were not found: "
              + " ".join(sorted(missing & {"_ssl", "_hashlib"})), f"{ctx.rebuild()}; {ctx.system_openssl()}")
    if "_sqlite3" in missing and not c.has("sqlite-old-build"):
        c.add("sqlite-missing", "no usable SQLite: _sqlite3 was not built (sqlite3.h missing or SQLite too old "
              f"for CPython's minimum {ctx.sqlite_min()})",
              f"{where}: The necessary bits to build these optional modules were not found: _sqlite3",
              f"{ctx.rebuild()}; {ctx.system_sqlite()}")
    if "_sqlite3" in summary.disabled and not c.has("sqlite-headers"):
        c.add("sqlite-headers", "SQLite headers (sqlite3.h) not found: _sqlite3 is disabled",
              f"{where}: _sqlite3 is *disabled* by configure (configure disables it when sqlite3.h is missing)",
              f"{ctx.rebuild()}; {ctx.system_sqlite()}")
    for module in summary.failed:
        why = summary.build_errors.get(module, "compile or link error: see the log above the summary")
        deb, rpm = packages.get(module, ("", ""))
        fix = (f"install {deb} (Debian/Ubuntu) or {rpm} (RHEL/Fedora) and rebuild" if deb
               else "read the compiler error above the summary and fix it, then rebuild")
        c.add(f"failed-{module}", f"{module} failed to build", f"{where}: {module}: {why}", fix)
    others = sorted(m for m in missing if m not in ("_ssl", "_hashlib", "_sqlite3"))
    if others:
        parts = []
        for m in others:
            deb, rpm = packages.get(m, ("", ""))
            parts.append(f"{m} ({deb} / {rpm})" if deb else m)
        debs = sorted({packages[m][0].split()[0] for m in others if m in packages})
        rpms = sorted({packages[m][1].split()[0] for m in others if m in packages})
        c.add("optional-missing", f"optional modules not built: {', '.join(others)}",
              f"{where}: " + "; ".join(parts),
              (f"if you need them: apt-get install {' '.join(debs)} (Debian/Ubuntu) or dnf install "
               f"{' '.join(rpms)} (RHEL/Fedora), then rebuild") if debs else "install their headers and rebuild",
              problem=False)
    if summary.ssl_message and not any(c.has(k) for k in ("ssl-missing", "ssl-headers", "ssl-link", "ssl-old",
                                                          "ssl-api", "rpath-OpenSSL", "mixed-OpenSSL", "import-_ssl")):
        c.add("ssl-missing", "Could not build the ssl module!",
              f"{where}: Python requires a OpenSSL {ctx.openssl_min()} or newer"
              + ("; Custom linker flags may require --with-openssl-rpath=auto" if summary.rpath_hint else ""),
              f"{ctx.rebuild()}; {ctx.system_openssl()}")


def analyze(lines: Sequence[str], cfg: ConfigureFacts, summary: MakeSummary, ctx: Context, source: str,
             tree: str | None = None, summary_source: str | None = None) -> list[Finding]:
    c = Collector()
    _configure_findings(c, ctx, cfg, lines, tree)
    _summary_findings(c, ctx, summary, cfg, summary_source or source)
    _seed_findings(c, ctx, lines, source, cfg)
    for pattern_line in lines:
        m = _PYTHON_REQUIRES.search(pattern_line)
        if m and not c.has("ssl-missing") and not summary.ssl_message:
            c.add("ssl-missing", "Could not build the ssl module!", pattern_line.strip(), ctx.rebuild())
    return c.findings()
