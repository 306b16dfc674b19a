"""Explain why a CPython build or interpreter lacks ssl, hashlib or a usable sqlite3, and say what fixes it.

:func:`doctor` takes an interpreter (it runs the probe of :mod:`buildkit.pybuild.verify`), a CPython build
tree (``config.log``, ``Makefile``, ``pyconfig.h``, ``build/lib.*``) or a build log, and returns
:class:`Finding` records: what was found, what is wrong and the command that fixes it.

The texts recognised are those of the CPython sources:

* ``setup.py`` (CPython <= 3.11) and ``Tools/build/check_extension_modules.py`` (3.12+) print the make
  summary: ``The necessary bits to build these optional modules were not found:``, ``Failed to build these
  modules:`` (setup.py only), ``Following modules built successfully but were removed because they could not
  be imported:``, the *disabled* lists, and ``Could not build the ssl module!`` / ``Python requires a OpenSSL
  1.1.1 or newer`` / ``Custom linker flags may require --with-openssl-rpath=auto``. The reason of a removal
  is on ``*** WARNING: renaming "_ssl" since importing it failed: ...`` (setup.py) or ``[ERROR] _ssl failed
  to import: ...`` (3.12+). :func:`parse_make_summary` reads all of it.
* ``configure`` (3.11, 3.13): ``checking for [include/]openssl/ssl.h in DIR``, ``checking whether compiling
  and linking against OpenSSL works``, ``checking for --with-openssl-rpath``, ``checking whether OpenSSL
  provides required ssl module APIs`` (``#error "OpenSSL >= 1.1.1 is required"``), ``checking for LIBSQLITE3``
  (3.11) / ``checking for sqlite3 >= 3.15.2`` (3.13), ``checking for sqlite3.h``, ``#error "SQLite 3.7.15 or
  higher required"``, ``checking for stdlib extension module _ssl`` (yes/missing/disabled/n/a), in both the
  ``checking X... result`` form of configure's output and the ``configure:N: checking X`` /
  ``configure:N: result: R`` form of config.log, whose output and cache variables (``OPENSSL_LDFLAGS='...'``,
  ``ac_cv_working_openssl_ssl=no``) are read too.
* The errors people meet afterwards: ``No module named '_ssl'``, ``cannot import name 'SMTP_SSL'``,
  ``deterministic=True requires SQLite 3.8.3 or higher`` (``Modules/_sqlite/connection.c``), pip's ``the ssl
  module in Python is not available``, ``CERTIFICATE_VERIFY_FAILED``.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from buildkit.errors import InputError

__all__ = [
    "ConfigureFacts",
    "Finding",
    "MakeSummary",
    "doctor",
    "doctor_text",
    "parse_configure",
    "parse_make_summary",
]


@dataclass(frozen=True)
class Finding:
    title: str
    detail: str
    fix: str
    problem: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "detail": self.detail, "fix": self.fix, "problem": self.problem}


# --- the make summary ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class MakeSummary:
    """The extension-module summary at the end of ``make``."""

    missing: tuple[str, ...] = ()  # "The necessary bits to build these optional modules were not found:"
    failed: tuple[str, ...] = ()  # "Failed to build these modules:" (setup.py, CPython <= 3.11)
    removed: tuple[str, ...] = ()  # "...built successfully but were removed because they could not be imported:"
    disabled: tuple[str, ...] = ()  # "*disabled* by configure" / "in the Setup files" / "in configure script"
    import_errors: Mapping[str, str] = field(default_factory=dict)  # module -> why its import failed
    build_errors: Mapping[str, str] = field(default_factory=dict)  # module -> why it failed to build
    ssl_message: bool = False  # "Could not build the ssl module!"
    rpath_hint: bool = False  # "Custom linker flags may require --with-openssl-rpath=auto"
    style: str = ""  # "setup.py" (CPython <= 3.11), "check_extension_modules" (3.12+) or ""

    @property
    def found(self) -> bool:
        return bool(self.missing or self.failed or self.removed or self.disabled or self.import_errors
                    or self.ssl_message or self.style)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.removed or self.ssl_message)

    def to_json(self) -> dict[str, Any]:
        return {"missing": list(self.missing), "failed": list(self.failed), "removed": list(self.removed),
                "disabled": list(self.disabled), "import_errors": dict(self.import_errors),
                "build_errors": dict(self.build_errors), "ssl_message": self.ssl_message,
                "rpath_hint": self.rpath_hint, "style": self.style}


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Section headers (the last line of the header) -> list; None: a list that is read and dropped.
_SECTIONS: list[tuple[re.Pattern[str], str | None]] = [
    (re.compile(r"The necessary bits to build these optional modules were not found:$"), "missing"),
    (re.compile(r"Failed to build these modules:$"), "failed"),
    (re.compile(r"Following modules built successfully but were removed because they could not be imported:$"),
     "removed"),
    (re.compile(r"been built, they are \*disabled\* (?:by configure|in the Setup files):$"), "disabled"),
    (re.compile(r"The following modules are \*disabled\* in (?:configure script|Modules/Setup files):$"), "disabled"),
    (re.compile(r"built by the Makefile instead, as configured by the Setup files:$"), None),
    (re.compile(r"The following \*(?:built-in|shared)\* modules have been successfully built:$"), None),
    (re.compile(r"The following modules are not available on platform '[^']*':$"), None),
]
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_RENAMED = re.compile(r'\*\*\* WARNING: renaming "(?P<mod>[\w.]+)" since importing it failed: (?P<why>.*)$')
_IMPORT_EXC = re.compile(r'\*\*\* WARNING: importing extension "(?P<mod>[\w.]+)" failed with (?P<why>.*)$')
_FAILED_IMPORT = re.compile(r"\[ERROR\] (?P<mod>[\w.]+) failed to import: (?P<why>.*)$")
_FILE_MISSING = re.compile(r"\[ERROR\] (?P<mod>[\w.]+) \((?P<path>[^)]*)\) is missing$")
_BUILD_FAILED = re.compile(r'WARNING: building of extension "(?P<mod>[\w.]+)" failed: (?P<why>.*)$')


def _lines(text: str | Iterable[str]) -> list[str]:
    raw = text.splitlines() if isinstance(text, str) else [line.rstrip("\n") for line in text]
    return [_ANSI.sub("", line).rstrip("\r") for line in raw]


def parse_make_summary(text: str | Iterable[str]) -> MakeSummary:
    """Read the extension-module summary of a CPython ``make`` (setup.py style up to 3.11, the
    ``check_extension_modules.py`` style from 3.12). A list printed twice (make run again) keeps the last."""
    lists: dict[str, list[str]] = {}
    import_errors: dict[str, str] = {}
    build_errors: dict[str, str] = {}
    ssl_message = rpath_hint = False
    style = ""
    lines = _lines(text)
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        m = _RENAMED.search(line) or _IMPORT_EXC.search(line)
        if m:
            import_errors[m["mod"]] = m["why"].strip()
            style = "setup.py"
            continue
        m = _FAILED_IMPORT.search(line)
        if m:
            import_errors[m["mod"]] = m["why"].strip()
            style = "check_extension_modules"
            continue
        m = _FILE_MISSING.search(line)
        if m:
            import_errors[m["mod"]] = f"{m['path']} is missing"
            style = "check_extension_modules"
            continue
        m = _BUILD_FAILED.search(line)
        if m:
            build_errors[m["mod"]] = m["why"].strip()
            continue
        if line == "Could not build the ssl module!":
            ssl_message = True
            continue
        if line == "Custom linker flags may require --with-openssl-rpath=auto":
            rpath_hint = True
            continue
        if line.startswith("To find the necessary bits, look in setup.py"):
            style = "setup.py"
        elif (line.startswith("To find the necessary bits, look in configure.ac")
              or re.match(r"Checked \d+ modules \(", line)):
            style = style or "check_extension_modules"
        for pattern, target in _SECTIONS:
            if pattern.search(line):
                names: list[str] = []
                while i < len(lines):
                    tokens = lines[i].split()
                    if not tokens or not all(_MODULE_NAME.match(t) for t in tokens):
                        break
                    names.extend(tokens)
                    i += 1
                if target is not None:
                    lists[target] = names
                break
    if style == "" and any(k in lists for k in ("failed",)):
        style = "setup.py"
    return MakeSummary(
        missing=tuple(lists.get("missing", ())),
        failed=tuple(lists.get("failed", ())),
        removed=tuple(lists.get("removed", ())),
        disabled=tuple(lists.get("disabled", ())),
        import_errors=import_errors,
        build_errors=build_errors,
        ssl_message=ssl_message,
        rpath_hint=rpath_hint,
        style=style,
    )


# --- configure output and config.log --------------------------------------------------------------------

@dataclass(frozen=True)
class ConfigureFacts:
    """What configure printed (``checks``: check text -> result), config.log's output and cache variables
    and a Makefile's variables (``variables``), the configure arguments and the CPython version."""

    checks: Mapping[str, str] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    version: str | None = None

    def arg(self, name: str) -> str | None:
        """The value of ``--name=VALUE`` (the last one given)."""
        value = None
        for a in self.args:
            if a.startswith(name + "="):
                value = a[len(name) + 1:]
        return value

    def env_arg(self, name: str) -> str:
        """``NAME=VALUE`` given to configure (CPPFLAGS, LDFLAGS...)."""
        for a in self.args:
            if a.startswith(name + "="):
                return a[len(name) + 1:]
        return ""

    def check(self, pattern: str) -> str | None:
        """The result of the last check whose text matches ``pattern`` (a regex, anchored at the start)."""
        result = None
        for what, value in self.checks.items():
            if re.match(pattern + r"$", what):
                result = value
        return result

    def module_state(self, module: str) -> str | None:
        return (self.check(rf"for stdlib extension module {re.escape(module)}")
                or self.variables.get(f"MODULE_{module.upper()}_STATE"))

    @property
    def found(self) -> bool:
        return bool(self.checks or self.variables or self.args)


_CHECK_OUT = re.compile(r"^checking (?P<what>.+?)\.\.\. (?:\(cached\) )?(?P<result>.*)$")
_CHECK_LOG = re.compile(r"^configure:\d+: checking (?P<what>.+)$")
_RESULT_LOG = re.compile(r"^configure:\d+: result: ?(?:\(cached\) )?(?P<result>.*)$")
_OUTPUT_VAR = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)='(?P<value>.*)'$")
_CACHE_VAR = re.compile(r"^(?P<name>(?:ac|py)_cv_[A-Za-z0-9_]+)=(?P<value>.*)$")
_MAKE_VAR = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=[ \t]*(?P<value>.*?)\s*$")
_INVOCATION = re.compile(r"^  \$ (?P<cmd>\S*configure(?:\s.*)?)$")
_CREATED_BY = re.compile(r"created by python configure (?P<version>\d+\.\d+[\w.]*),")


def parse_configure(text: str | Iterable[str], makefile: str | Iterable[str] | None = None) -> ConfigureFacts:
    """Read configure's output or a config.log (and optionally a generated Makefile)."""
    checks: dict[str, str] = {}
    variables: dict[str, str] = {}
    args: tuple[str, ...] = ()
    version = None
    pending: str | None = None
    for line in _lines(text):
        m = _CHECK_LOG.match(line)
        if m:
            pending = m["what"].strip()
            continue
        m = _RESULT_LOG.match(line)
        if m:
            if pending is not None:
                checks[pending] = m["result"].strip()
                pending = None
            continue
        m = _CHECK_OUT.match(line)
        if m:
            checks[m["what"].strip()] = m["result"].strip()
            continue
        m = _OUTPUT_VAR.match(line) or _CACHE_VAR.match(line)
        if m:
            variables[m["name"]] = m["value"].strip("'")
            continue
        m = _INVOCATION.match(line)
        if m:
            try:
                args = tuple(shlex.split(m["cmd"])[1:])
            except ValueError:
                args = tuple(m["cmd"].split()[1:])
            continue
        m = _CREATED_BY.search(line)
        if m:
            version = m["version"]
    if makefile is not None:
        for line in _lines(makefile):
            m = _MAKE_VAR.match(line)
            if m and m["name"] not in variables:
                variables[m["name"]] = m["value"]
        if not args and variables.get("CONFIG_ARGS"):
            try:
                args = tuple(shlex.split(variables["CONFIG_ARGS"]))
            except ValueError:
                pass
    version = version or variables.get("VERSION")
    return ConfigureFacts(checks=checks, variables=variables, args=args, version=version)


# --- fixes --------------------------------------------------------------------------------------------

# Development packages for modules whose headers configure looks for: module -> (Debian/Ubuntu, RHEL/Fedora).
def _dev_packages() -> dict[str, tuple[str, str]]:
    from buildkit.pybuild.verify import OPTIONAL_MODULES

    table = {name: (deb, rpm) for name, (_, deb, rpm) in OPTIONAL_MODULES.items()}
    table.update({
        "_ssl": ("libssl-dev", "openssl-devel"),
        "_hashlib": ("libssl-dev", "openssl-devel"),
        "_sqlite3": ("libsqlite3-dev", "sqlite-devel"),
        "_curses_panel": ("libncurses-dev", "ncurses-devel"),
        "_crypt": ("libcrypt-dev", "libxcrypt-devel"),
        "nis": ("libnsl-dev", "libnsl2-devel"),
    })
    return table


@dataclass
class _Context:
    cpython: str | None = None  # "3.11.2" or "3.11"
    prefix: str | None = None

    def rebuild(self) -> str:
        from buildkit.catalog import parse_version, sources

        version = self.cpython or "X.Y.Z"
        openssl = "3.0.20"
        sqlite = "3.46.1"
        try:
            old = self.cpython is not None and parse_version("cpython", self.cpython) < parse_version("cpython", "3.10")
            series = "1.1.1" if old else "3.0."
            known = [s.version for s in sources("openssl") if s.version.startswith(series)]
            openssl = known[-1] if known else openssl
            lite = [s.version for s in sources("sqlite") if s.kind == "amalgamation"]
            sqlite = lite[-1] if lite else sqlite
        except Exception:  # noqa: BLE001 - a catalog problem must not hide the diagnosis
            pass
        prefix = self.prefix or (f"/opt/python{'.'.join(version.split('.')[:2])}" if self.cpython else "/opt/python")
        if ".buildkit" + os.sep in prefix + os.sep:  # a build of buildkit's own: name the prefix the user chose
            prefix = prefix[: prefix.index(".buildkit")]
        return f"buildkit python {version} --with-openssl={openssl} --with-sqlite={sqlite} --prefix {prefix}"

    def openssl_min(self) -> str:
        from buildkit.catalog import compat_for

        try:
            return compat_for(self.cpython).openssl_min if self.cpython else "1.1.1"
        except Exception:  # noqa: BLE001
            return "1.1.1"

    def sqlite_min(self) -> str:
        """CPython's minimum SQLite; unknown CPython: the range the catalog spans."""
        from buildkit.catalog import compat_for

        try:
            if self.cpython:
                return compat_for(self.cpython).sqlite_min
            return f"{compat_for('3.10').sqlite_min} up to 3.12, {compat_for('3.13').sqlite_min} from 3.13"
        except Exception:  # noqa: BLE001
            return "3.7.15 up to 3.12, 3.15.2 from 3.13"

    def system_openssl(self) -> str:
        text = ("or install the OpenSSL headers and rebuild: apt-get install libssl-dev (Debian/Ubuntu), "
                "dnf install openssl-devel (RHEL 8+/Fedora)")
        if self.openssl_min() != "1.0.2":
            text += ("; on RHEL/CentOS 7, whose OpenSSL is 1.0.2, yum install epel-release && yum install "
                     "openssl11-devel, then configure with CPPFLAGS=\"$(pkg-config --cflags openssl11)\" "
                     "LDFLAGS=\"$(pkg-config --libs-only-L openssl11)\" (--with-openssl=/usr/include/openssl11 "
                     "does not work: --with-openssl=DIR wants DIR/include/openssl/ssl.h and DIR/lib)")
        return text

    def system_sqlite(self) -> str:
        return ("or install the SQLite headers and rebuild: apt-get install libsqlite3-dev (Debian/Ubuntu), "
                "dnf install sqlite-devel (RHEL/Fedora; RHEL/CentOS 7's SQLite 3.7.17 is too old for Django "
                "and CPython 3.13, use a private SQLite)")


class _Collector:
    """Findings keyed by root cause: a second sign of the same cause adds evidence, not a finding."""

    def __init__(self) -> None:
        self._items: dict[str, list[Any]] = {}

    def add(self, key: str, title: str, detail: str, fix: str, problem: bool = True) -> None:
        item = self._items.get(key)
        if item is None:
            self._items[key] = [title, [detail] if detail else [], fix, problem]
        elif detail and detail not in item[1] and len(item[1]) < 8:
            item[1].append(detail)

    def has(self, key: str) -> bool:
        return key in self._items

    def findings(self) -> list[Finding]:
        out = [Finding(t, "\n".join(d), f, p) for t, d, f, p in self._items.values()]
        return sorted(out, key=lambda f: not f.problem)  # problems first, stable otherwise


# --- reasons an extension module fails to import -------------------------------------------------------

_NOT_FOUND_LIB = re.compile(r"(?P<lib>lib[\w+.-]*?\.so[\w.]*): cannot open shared object file")
_UNDEFINED = re.compile(r"undefined symbol: (?P<sym>\w+)")
_VERSION_NODE = re.compile(r"version `(?P<node>[^']+)' not found")
# OpenSSL 3.0 renamed many getters (EVP_MD_type -> EVP_MD_get_type ...) and added OSSL_* APIs: a module
# compiled against 3.x headers and loaded with a 1.1 library misses exactly these.
_OPENSSL3_SYMBOL = re.compile(r"^(?:EVP_\w+_get_\w+|EVP_\w+_get0_\w+|SSL_get1_peer_certificate|OSSL_\w+|"
                              r"EVP_MD_fetch|EVP_CIPHER_fetch|\w+_ex)$")


def _lib_family(text: str) -> str:
    return "SQLite" if "sqlite" in text.lower() else "OpenSSL"


def _import_failure(c: _Collector, ctx: _Context, module: str, why: str, where: str, cfg: ConfigureFacts) -> None:
    """A module that was built but does not import: classify the loader's message."""
    family = "SQLite" if module in ("_sqlite3", "sqlite3") else "OpenSSL"
    evidence = f"{where}: {module}: {why}" if where else f"{module}: {why}"
    m = _NOT_FOUND_LIB.search(why)
    if m:
        lib = m["lib"]
        family = _lib_family(lib)
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


def _seed_findings(c: _Collector, ctx: _Context, lines: Sequence[str], source: str, cfg: ConfigureFacts) -> None:
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
            _import_failure(c, ctx, module, why, where, cfg)
        m = _CONFIGURE_ERROR.match(line.strip())
        if m:
            c.add(f"configure-error-{m['msg']}", f"configure failed: {m['msg']}", where,
                  _configure_error_fix(m["msg"], ctx))


def _configure_error_fix(msg: str, ctx: _Context) -> str:
    if "--with-openssl-rpath" in msg:
        return "pass --with-openssl-rpath=auto, or an existing directory that holds libssl (lib or lib64)"
    if "Invalid --with-openssl value" in msg:
        return "pass --with-openssl=DIR, the OpenSSL install prefix (DIR/include/openssl/ssl.h must exist)"
    return f"fix what configure names, or let buildkit configure: {ctx.rebuild()}"


def _configure_findings(c: _Collector, ctx: _Context, cfg: ConfigureFacts, lines: Sequence[str],
                        tree: str | None) -> None:
    from buildkit.catalog import django_sqlite_min
    from buildkit.pybuild.verify import version_tuple

    text_hits = {"ld": [], "openssl_old": [], "sqlite_old": [], "pkg_sqlite": []}
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


def _summary_findings(c: _Collector, ctx: _Context, summary: MakeSummary, cfg: ConfigureFacts, source: str) -> None:
    packages = _dev_packages()
    where = source or "make"
    for module in summary.removed:
        why = summary.import_errors.get(module, "could not be imported")
        _import_failure(c, ctx, module, why, f"{where} (built but removed)", cfg)
    for module, why in summary.import_errors.items():
        if module not in summary.removed:
            _import_failure(c, ctx, module, why, where, cfg)
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


def _analyze(lines: Sequence[str], cfg: ConfigureFacts, summary: MakeSummary, ctx: _Context, source: str,
             tree: str | None = None, summary_source: str | None = None) -> list[Finding]:
    c = _Collector()
    _configure_findings(c, ctx, cfg, lines, tree)
    _summary_findings(c, ctx, summary, cfg, summary_source or source)
    _seed_findings(c, ctx, lines, source, cfg)
    for pattern_line in lines:
        m = _PYTHON_REQUIRES.search(pattern_line)
        if m and not c.has("ssl-missing") and not summary.ssl_message:
            c.add("ssl-missing", "Could not build the ssl module!", pattern_line.strip(), ctx.rebuild())
    return c.findings()


def doctor_text(text: str | Iterable[str], *, source: str = "") -> list[Finding]:
    """Findings for a build log (configure output, make output, a traceback...) given as text."""
    lines = _lines(text)
    cfg = parse_configure(lines)
    summary = parse_make_summary(lines)
    version = cfg.version
    if version is None:
        joined = "\n".join(lines)
        m = re.search(r"Python-(\d+\.\d+\.\d+)", joined) or re.search(r"lib\.linux-\w+-(\d+\.\d+)", joined)
        version = m.group(1) if m else None
    ctx = _Context(cpython=version, prefix=cfg.arg("--prefix"))
    return _analyze(lines, cfg, summary, ctx, source)


# --- targets ------------------------------------------------------------------------------------------

_MAKESETUP = "# Generated automatically from Makefile.pre by makesetup."


def _is_build_tree(path: str) -> bool:
    if os.path.isfile(os.path.join(path, "pyconfig.h")) or os.path.isfile(os.path.join(path, "config.log")):
        return True
    try:
        with open(os.path.join(path, "Makefile"), encoding="utf-8", errors="replace") as f:
            return f.readline().strip() == _MAKESETUP
    except OSError:
        return False


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return None


def _ldd(path: str) -> list[str]:
    if shutil.which("ldd") is None:
        return []
    try:
        proc = subprocess.run(["ldd", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                              text=True)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [re.sub(r"\s*\(0x[0-9a-f]+\)", "", line.strip()) for line in proc.stdout.splitlines()
            if "not found" in line or re.search(r"ssl|crypto|sqlite", line)]


def doctor_build_tree(tree: str) -> list[Finding]:
    """Findings for a configured (and maybe built) CPython build directory."""
    config_log = _read(os.path.join(tree, "config.log")) or ""
    makefile = _read(os.path.join(tree, "Makefile"))
    cfg = parse_configure(config_log, makefile)
    version = cfg.version
    srcdir = cfg.variables.get("srcdir", ".")
    patchlevel = _read(os.path.join(tree if not os.path.isabs(srcdir) else "", srcdir, "Include", "patchlevel.h"))
    if patchlevel:
        m = re.search(r'#define\s+PY_VERSION\s+"([\d.]+)', patchlevel)
        version = m.group(1) if m else version
    ctx = _Context(cpython=version, prefix=cfg.arg("--prefix") or cfg.variables.get("prefix"))
    lines = _lines(config_log)

    # What make left behind: build/lib.*/_ssl_failed*.so is a module that was removed on import.
    libdirs = []
    pybuilddir = _read(os.path.join(tree, "pybuilddir.txt"))
    if pybuilddir and pybuilddir.strip():
        libdirs.append(os.path.join(tree, pybuilddir.strip()))
    libdirs += sorted(glob.glob(os.path.join(tree, "build", "lib.*")))
    removed: list[str] = []
    import_errors: dict[str, str] = {}
    for libdir in dict.fromkeys(libdirs):
        for module in ("_ssl", "_hashlib", "_sqlite3"):
            for failed in glob.glob(os.path.join(libdir, f"{module}_failed*.so")):
                if module not in removed:
                    removed.append(module)
                    libs = _ldd(failed)
                    missing_libs = [ln for ln in libs if "not found" in ln]
                    why = f"{os.path.relpath(failed, tree)} left by make"
                    if missing_libs:
                        name = missing_libs[0].split()[0]
                        why = (f"{name}: cannot open shared object file "
                               f"({os.path.relpath(failed, tree)}: ldd: {missing_libs[0]})")
                    elif libs:
                        why += f"; ldd: {'; '.join(libs)}"
                    import_errors[module] = why
    summary = MakeSummary(removed=tuple(removed), import_errors=import_errors) if removed else MakeSummary()
    findings = _analyze(lines, cfg, summary, ctx, "config.log", tree=tree, summary_source="build tree")
    if not cfg.found:
        findings.append(Finding("nothing to read in the build tree", f"{tree} has no config.log and no Makefile "
                                "variables", "run configure (or buildkit python ...) first", problem=False))
    return findings


def _buildkit_record(executable: str) -> dict[str, Any]:
    """The BUILDKIT.json that ``buildkit python`` writes next to bin/ of the install, if any."""
    import json

    install = os.path.dirname(os.path.dirname(os.path.realpath(executable)))
    try:
        with open(os.path.join(install, "BUILDKIT.json"), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _interpreter_prefixes(executable: str, record: Mapping[str, Any]) -> list[str]:
    """The private OpenSSL and SQLite of a buildkit install: from its BUILDKIT.json (``openssl.prefix``,
    ``sqlite.prefix`` unless ``how`` is ``system``), else ``openssl/`` and ``sqlite/`` beside ``bin/``."""
    prefixes = []
    for package in ("openssl", "sqlite"):
        choice = record.get(package)
        if isinstance(choice, dict) and choice.get("how") != "system" and choice.get("prefix"):
            prefixes.append(str(choice["prefix"]))
    if prefixes or record:
        return [p for p in prefixes if os.path.isdir(p)]
    install = os.path.dirname(os.path.dirname(os.path.realpath(executable)))
    return [d for d in (os.path.join(install, "openssl"), os.path.join(install, "sqlite")) if os.path.isdir(d)]


def doctor_interpreter(python: str) -> list[Finding]:
    """Findings for an interpreter: run the probe of :mod:`buildkit.pybuild.verify` and explain its failures."""
    from buildkit.pybuild.verify import resolve_interpreter, verify

    path = resolve_interpreter(python)
    record = _buildkit_record(path)
    prefixes = _interpreter_prefixes(path, record)
    report = verify(path, private_prefixes=prefixes)
    facts = report.probe
    prefix = record.get("prefix") or facts.get("prefix") or os.path.dirname(os.path.dirname(path))
    ctx = _Context(cpython=report.python_version or None, prefix=prefix)
    c = _Collector()
    ssl_dirs = [d for d in prefixes if "openssl" in os.path.basename(d.rstrip("/"))]
    cfg = ConfigureFacts(variables={"OPENSSL_LDFLAGS": " ".join(f"-L{d}/lib" for d in ssl_dirs)})
    name = f"{report.executable} ({report.python_version})"

    for module in ("_ssl", "_hashlib", "_sqlite3"):
        info = facts.get("imports", {}).get(module) or {}
        if info.get("ok"):
            continue
        why = info.get("error") or "import failed"
        if why.startswith("ModuleNotFoundError"):
            key = {"_ssl": "ssl-absent", "_hashlib": "hashlib-absent", "_sqlite3": "sqlite-absent"}[module]
            if module == "_sqlite3":
                c.add(key, "this Python has no sqlite3 module (_sqlite3 was not built)", f"{name}: {why}",
                      f"rebuild with SQLite: {ctx.rebuild()}; {ctx.system_sqlite()}")
            else:
                detail = f"{name}: {why}"
                runtime = report.openssl_version or ""
                old_python = tuple(facts.get("version", ())) < (3, 10)
                if runtime[:1].isdigit() and int(runtime.split(".")[0]) >= 3 and old_python:
                    detail += (f"; this Python loads OpenSSL {runtime}, and CPython {report.python_version} predates "
                               "OpenSSL 3 (CPython 3.10 is the first release made for it): build it with OpenSSL 1.1.1")
                c.add(key, f"this Python has no {module} (built without OpenSSL, or removed because it could not "
                      "be imported)", detail, f"rebuild: {ctx.rebuild()}; {ctx.system_openssl()}")
        else:
            _import_failure(c, ctx, module, why.split(": ", 1)[-1], name, cfg)
            _lib64_runtime(c, ctx, why, prefixes)

    failed = {ch.name: ch for ch in report.failed}
    imports = facts.get("imports") or {}
    if "from smtplib import SMTP_SSL" in failed and not c.has("ssl-absent"):
        c.add("ssl-absent", "smtplib has no SMTP_SSL: ssl does not import",
              failed["from smtplib import SMTP_SSL"].detail, f"rebuild: {ctx.rebuild()}")
    ssl_imports = bool((imports.get("ssl") or {}).get("ok"))
    for check_name in failed:
        ch = failed[check_name]
        if not ssl_imports and check_name in ("CA certificates", "OpenSSL headers vs runtime"):
            continue  # consequences of the missing ssl module, already explained
        if check_name.startswith("SQLite >=") or check_name == "create_function(deterministic=True)":
            if report.sqlite_version is not None:
                c.add("sqlite-old", f"SQLite {report.sqlite_version}: deterministic functions (and Django) fail",
                      f"{name}: {check_name}: {ch.detail}", f"rebuild against a private SQLite: {ctx.rebuild()}")
        elif check_name == "CA certificates":
            paths = (facts.get("ca") or {}).get("verify_paths") or {}
            cafile = paths.get("openssl_cafile") or "the openssl_cafile of ssl.get_default_verify_paths()"
            c.add("ca", "no CA certificates: HTTPS (pip install) fails with CERTIFICATE_VERIFY_FAILED",
                  f"{name}: {ch.detail}",
                  f"mkdir -p {os.path.dirname(cafile)} && ln -s /etc/ssl/certs/ca-certificates.crt {cafile} (Debian; "
                  f"RHEL: /etc/pki/tls/certs/ca-bundle.crt)")
        elif check_name == "OpenSSL headers vs runtime":
            c.add("mixed-OpenSSL", "mixed OpenSSL: the ssl module was compiled against other headers than the "
                  "library it loads", f"{name}: {ch.detail}", f"rebuild with one OpenSSL: {ctx.rebuild()}")
        elif check_name.endswith(" libraries") and imports.get(check_name.split()[0], {}).get("ok"):
            family = "SQLite" if check_name.startswith("_sqlite3") else "OpenSSL"
            c.add(f"outside-{family}", f"{family} loaded from outside the private prefix", f"{name}: {ch.detail}",
                  f"the rpath does not name the private {family} libdir (lib vs lib64?): check readelf -d on the "
                  f"module; rebuild: {ctx.rebuild()}")
        elif check_name == "pip":
            c.add("pip", "no pip and no ensurepip", f"{name}: {ch.detail}",
                  "rebuild without --without-ensurepip (or install pip: python -m ensurepip, get-pip.py)")

    pip = facts.get("pip") or {}
    if not pip.get("ok") and pip.get("ensurepip"):
        c.add("pip-info", "pip is not installed (ensurepip is present)", f"{name}: python -m pip --version failed",
              f"{report.executable} -m ensurepip --upgrade", problem=False)

    if report.openssl_version:
        libs = report.libraries.get("_ssl") or []
        api = (next((ch.detail for ch in report.checks if ch.name == "OpenSSL headers vs runtime"), ""))
        c.add("ssl-found", f"OpenSSL {report.openssl_version} ({', '.join(libs) or 'statically linked'})",
              f"{name}: {api}", "", problem=False)
    if report.sqlite_version:
        libs = report.libraries.get("_sqlite3") or []
        c.add("sqlite-found", f"SQLite {report.sqlite_version} ({', '.join(libs) or 'statically linked'})",
              f"{name}", "", problem=False)
    missing = [m for m in report.optional if not m.present]
    if missing:
        c.add("optional-missing", f"optional modules missing: {', '.join(m.name for m in missing)}",
              "; ".join(f"{m.name}: {m.description} ({m.debian} / {m.rhel})" for m in missing),
              f"if you need them: apt-get install {' '.join(sorted({m.debian.split()[0] for m in missing}))} or "
              f"dnf install {' '.join(sorted({m.rhel.split()[0] for m in missing}))}, then rebuild", problem=False)
    return c.findings()


def _lib64_runtime(c: _Collector, ctx: _Context, why: str, prefixes: Sequence[str]) -> None:
    m = _NOT_FOUND_LIB.search(why)
    if not m:
        return
    for prefix in prefixes:
        hits = glob.glob(os.path.join(prefix, "lib64", m["lib"]))
        if hits and not glob.glob(os.path.join(prefix, "lib", m["lib"])):
            c.add("rpath-" + _lib_family(m["lib"]), f"{m['lib']} is in {prefix}/lib64, which the rpath does not name",
                  f"{hits[0]} exists; the module's rpath points elsewhere",
                  f"rebuild: {ctx.rebuild()}; or by hand LDFLAGS=\"-Wl,-rpath,{prefix}/lib64\"")


def doctor(target: str) -> list[Finding]:
    """Findings for ``target``: an interpreter (name on PATH or path), a CPython build tree, a prefix holding
    bin/python3, or a build log file."""
    if os.path.isdir(target):
        if _is_build_tree(target):
            return doctor_build_tree(target)
        for name in ("python3", "python"):
            candidate = os.path.join(target, "bin", name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return doctor_interpreter(candidate)
        raise InputError(f"{target}: not a CPython build tree (no pyconfig.h, config.log or makesetup Makefile) "
                         "and no bin/python3 under it", fix="pass an interpreter, a build directory or a build log")
    if os.path.isfile(target):
        with open(target, "rb") as f:
            head = f.read(4)
        if os.access(target, os.X_OK) and (head == b"\x7fELF" or head[:2] == b"#!"):
            return doctor_interpreter(target)
        text = _read(target)
        if text is None:
            raise InputError(f"{target}: cannot read it", fix="check the path and its permissions")
        return doctor_text(text, source=os.path.basename(target))
    if os.sep not in target and shutil.which(target):
        return doctor_interpreter(target)
    raise InputError(f"{target}: no such file, directory or interpreter on PATH",
                     fix="pass an interpreter (python3, /opt/py/bin/python3.11), a build directory or a build log")
