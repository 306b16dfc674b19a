"""Read what a CPython build printed: the extension-module summary of ``make`` and configure's facts.

* ``setup.py`` (CPython <= 3.11) and ``Tools/build/check_extension_modules.py`` (3.12+) print the make
  summary: ``The necessary bits to build these optional modules were not found:``, ``Failed to build these
  modules:`` (setup.py only), ``Following modules built successfully but were removed because they could not
  be imported:``, the *disabled* lists, and ``Could not build the ssl module!`` / ``Python requires a OpenSSL
  1.1.1 or newer`` / ``Custom linker flags may require --with-openssl-rpath=auto``. The reason of a removal
  is on ``*** WARNING: renaming "_ssl" since importing it failed: ...`` (setup.py) or ``[ERROR] _ssl failed
  to import: ...`` (3.12+). :func:`parse_make_summary` reads all of it.
* ``configure`` (3.11, 3.13): ``checking for [include/]openssl/ssl.h in DIR``, ``checking whether compiling
  and linking against OpenSSL works``, ``checking for --with-openssl-rpath``, ``checking whether OpenSSL
  provides required ssl module APIs``, ``checking for LIBSQLITE3`` (3.11) / ``checking for sqlite3 >= 3.15.2``
  (3.13), ``checking for sqlite3.h``, ``checking for stdlib extension module _ssl`` (yes/missing/disabled/n/a),
  in both the ``checking X... result`` form of configure's output and the ``configure:N: checking X`` /
  ``configure:N: result: R`` form of config.log, whose output and cache variables (``OPENSSL_LDFLAGS='...'``,
  ``ac_cv_working_openssl_ssl=no``) are read too: :func:`parse_configure`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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


def split_lines(text: str | Iterable[str]) -> list[str]:
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
    lines = split_lines(text)
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
    for line in split_lines(text):
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
        for line in split_lines(makefile):
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
