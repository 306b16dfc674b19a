"""Verify a built CPython: does it have a working ssl, hashlib, sqlite3 and pip, and which OpenSSL and SQLite
does it really load?

:func:`verify` runs one probe (``probe_script.py`` next to this file) with the interpreter under test; the
probe collects the facts and judges them (``probe_script.judge``, so that the shell script of ``buildkit
python --emit-script`` runs the very same checks with :data:`PROBE_SOURCE` on a host without buildkit), and
``verify`` returns its verdict as frozen dataclasses. The probe runs the way a fresh login shell with no
configuration would run it, so that nothing on the build host hides a broken build:

* an empty environment plus ``PATH=/usr/bin:/bin`` and ``LANG=C.UTF-8`` only (``env -i`` semantics): no
  ``SSL_CERT_FILE``/``SSL_CERT_DIR`` (which would hide a private OpenSSL without CA certificates), no
  ``LD_LIBRARY_PATH`` (which would hide a missing rpath), no ``PYTHON*``, no ``PIP_*``;
* ``-I`` (isolated mode: no user site-packages, no current directory on ``sys.path``);
* ``pip --version`` with ``PIP_CONFIG_FILE=/dev/null`` (no ``/etc/pip.conf``).

The shared libraries are read from ``/proc/self/maps`` of the probe after it imported ``_ssl``,
``_hashlib`` and ``_sqlite3``: the files the dynamic loader really picked, not what ``ldd`` guesses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from buildkit.catalog import django_sqlite_min
from buildkit.errors import InputError
from buildkit.pybuild import probe_script

__all__ = [
    "CLEAN_ENV",
    "OPTIONAL_MODULES",
    "PROBE_SOURCE",
    "Check",
    "OptionalModule",
    "add_floor",
    "install_roots",
    "VerifyReport",
    "openssl_version_from_info",
    "report_from_probe",
    "resolve_interpreter",
    "run_probe",
    "verify",
    "version_tuple",
]

PROBE = Path(probe_script.__file__)
# The probe's source, for running it elsewhere (``python -I - ARGS`` with this on stdin).
PROBE_SOURCE = PROBE.read_text(encoding="utf-8")
PROBE_MARK = probe_script.MARK
# The whole environment of the probe (env -i PATH=/usr/bin:/bin LANG=C.UTF-8).
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
PROBE_TIMEOUT = 300

# module -> (what it is, Debian/Ubuntu -dev package, RHEL/Fedora -devel package); the data lives in the probe.
OPTIONAL_MODULES: dict[str, tuple[str, str, str]] = probe_script.OPTIONAL_MODULES
version_tuple = probe_script.version_tuple
openssl_version_from_info = probe_script.openssl_version_from_info


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "required": self.required}


@dataclass(frozen=True)
class OptionalModule:
    name: str
    present: bool
    description: str
    debian: str
    rhel: str
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "present": self.present, "description": self.description,
                "debian": self.debian, "rhel": self.rhel, "error": self.error}


@dataclass(frozen=True)
class VerifyReport:
    python: str
    checks: tuple[Check, ...]
    optional: tuple[OptionalModule, ...]
    openssl_version: str | None
    sqlite_version: str | None
    libraries: dict[str, list[str]]
    executable: str = ""  # sys.executable as the probe saw it
    python_version: str = ""  # e.g. 3.11.2
    environment: tuple[str, ...] = ()  # the names of the variables the probe saw
    probe: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)  # the probe's raw facts
    binaries: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)  # floor.Floor.to_json()

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks if c.required)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.required and not c.ok)

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        ca = self.probe.get("ca") or {}
        return {
            "python": self.python,
            "executable": self.executable,
            "python_version": self.python_version,
            "ok": self.ok,
            "checks": [c.to_json() for c in self.checks],
            "optional": [m.to_json() for m in self.optional],
            "openssl_version": self.openssl_version,
            "sqlite_version": self.sqlite_version,
            "libraries": {k: list(v) for k, v in self.libraries.items()},
            "verify_paths": ca.get("verify_paths"),
            "ca_stores": ca.get("host_stores"),
            "binaries": self.binaries,
            "environment": list(self.environment),
        }


# --- running the probe --------------------------------------------------------------------------------

def resolve_interpreter(python: str) -> str:
    """The file to run: a name is looked up on PATH; a wrapper script (a pyenv shim, a launcher) is asked for
    its ``sys.executable`` in the caller's environment, since it may not work under the clean environment
    the probe gets."""
    if os.sep not in python:
        found = shutil.which(python)
        if found is None and os.path.exists(python):  # a file here, named without ./: it is not on PATH
            found = os.path.abspath(python)
        if found is None:
            raise InputError(f"{python}: no such interpreter on PATH",
                             fix="pass the path of the interpreter, e.g. /opt/python3.11/bin/python3.11")
        path = found
    else:
        path = os.path.abspath(python)
    if not os.path.exists(path):
        raise InputError(f"{python}: no such file", fix="pass the path of a python executable")
    if os.path.isdir(path):
        inside = [os.path.join(path, *rel) for rel in (("bin", "python3"), ("python3",))]
        example = next((c for c in inside if os.access(c, os.X_OK)), inside[0])
        raise InputError(f"{python}: is a directory", fix=f"pass the interpreter, e.g. {example}")
    if not os.access(path, os.X_OK):
        raise InputError(f"{python}: not executable", fix="pass the path of a python executable")
    from buildkit.pybuild.floor import is_elf

    if not is_elf(path):
        try:
            proc = subprocess.run([path, "-c", "import sys; print(sys.executable)"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=60,
                                  text=True)
        except (OSError, subprocess.TimeoutExpired):
            return path
        real = proc.stdout.strip().splitlines()[-1:] if proc.returncode == 0 else []
        if real and os.path.isabs(real[0]) and os.path.isfile(real[0]):
            return real[0]
    return path


PROBE_PATIENCE = 30  # seconds between the lines that say the probe is still running


def run_probe(python: str, args: Sequence[str] = (), say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the probe with ``python`` (a path) under the clean environment; returns ``{"facts", "report"}``.
    While it runs longer than :data:`PROBE_PATIENCE`, ``say`` hears so every so often (a hung interpreter is
    not silence for five minutes).

    Raises :class:`InputError` when the interpreter cannot run it (not Python, older than 3.6, missing shared
    libraries...).
    """
    cmd = [python, "-I", "-c", PROBE_SOURCE, "--json", *args]
    try:
        proc = subprocess.Popen(cmd, env=dict(CLEAN_ENV), cwd="/", stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        raise InputError(f"{python}: cannot run it: {e.strerror or e}",
                         fix="pass the path of a python executable built for this machine") from None
    waited = 0
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=min(PROBE_PATIENCE, PROBE_TIMEOUT - waited))
            break
        except subprocess.TimeoutExpired:
            waited += min(PROBE_PATIENCE, PROBE_TIMEOUT - waited)
            if waited >= PROBE_TIMEOUT:
                proc.kill()
                proc.communicate()
                raise InputError(f"{python}: the probe did not finish in {PROBE_TIMEOUT}s",
                                 fix=f"check that the interpreter starts: {python} -I -c pass") from None
            if say is not None:
                say(f"    {python}: the probe is still running after {waited} s (TLS handshakes, pip; it is "
                    f"given up after {PROBE_TIMEOUT} s)")
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
    out = stdout.decode("utf-8", errors="replace")
    for line in reversed(out.splitlines()):
        if line.startswith(PROBE_MARK):
            try:
                return json.loads(line[len(PROBE_MARK):])
            except ValueError:
                break
    err = [line for line in stderr.decode("utf-8", errors="replace").strip().splitlines() if line.strip()]
    if not err:
        why = f"exit status {proc.returncode}, no output"
    else:  # a traceback ends with the error; anything else (a usage message) starts with it
        why = err[-1] if any(line.startswith("Traceback") for line in err) else err[0]
    raise InputError(f"{python}: cannot run it as a Python 3.6+ interpreter ({why})",
                     fix=f"check that 'env -i {python} -I -c pass' works (ldd {python} shows missing libraries)")


def report_from_probe(python: str, payload: Mapping[str, Any]) -> VerifyReport:
    """The :class:`VerifyReport` of a probe's output (``{"facts": ..., "report": ...}``)."""
    facts, report = payload["facts"], payload["report"]
    return VerifyReport(
        python=python,
        checks=tuple(Check(c["name"], bool(c["ok"]), c["detail"], bool(c.get("required", True)))
                     for c in report["checks"]),
        optional=tuple(OptionalModule(m["name"], bool(m["present"]), m["description"], m["debian"], m["rhel"],
                                      m.get("error")) for m in report["optional"]),
        openssl_version=report.get("openssl_version"),
        sqlite_version=report.get("sqlite_version"),
        libraries={k: list(v) for k, v in (report.get("libraries") or {}).items()},
        executable=facts.get("executable") or python,
        python_version=report.get("python_version") or "",
        environment=tuple(facts.get("environment") or ()),
        probe=facts,
    )


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def install_roots(facts: Mapping[str, Any], private_prefixes: Sequence[str] = ()) -> tuple[list[str], bool]:
    """(the files and folders whose ELF files make the install, whether it has a private OpenSSL or SQLite).

    The interpreter's prefix, whole, unless it is one the system shares (``/usr``): then the interpreter,
    libpython and lib-dynload only. Then the private prefixes: those given, else the prefix of each libssl,
    libcrypto and libsqlite3 the probe saw loaded from a ``lib/`` folder of a prefix of its own.
    """
    from buildkit.pybuild.floor import SYSTEM_PREFIXES

    install = facts.get("install") or {}
    base = os.path.realpath(install.get("base_prefix") or facts.get("prefix") or "/")
    if base in SYSTEM_PREFIXES:
        roots = [p for p in (install.get("executable") or facts.get("executable"), install.get("libpython"),
                             install.get("dynload")) if p and os.path.exists(p)]
    else:
        roots = [base]
    privates = [os.path.realpath(p) for p in private_prefixes]
    loaded = [os.path.realpath(lib) for libs in (facts.get("libraries") or {}).values() for lib in libs]
    if not privates:
        for lib in loaded:
            folder = os.path.dirname(lib)
            prefix = os.path.dirname(folder)
            if os.path.basename(folder) == "lib" and prefix not in SYSTEM_PREFIXES and prefix not in privates:
                privates.append(prefix)
    private = bool(privates) or (base not in SYSTEM_PREFIXES and any(_inside(lib, base) for lib in loaded))
    for prefix in privates:
        if os.path.isdir(prefix) and not any(_inside(prefix, r) for r in roots):
            roots.append(prefix)
    return roots, private


def add_floor(report: VerifyReport, roots: Sequence[str], private: bool, glibc_max: str | None = None,
              self_contained: bool = False) -> VerifyReport:
    """``report`` with the binary floor's checks (glibc floor, linked libraries, hardening) over ``roots``;
    with ``glibc_max``/``self_contained``, a portable build's promises are checked too."""
    from buildkit.pybuild.floor import FloorError, floor, floor_checks

    try:
        fl = floor(roots, private, glibc_max, self_contained)
    except FloorError as e:
        return replace(report, checks=report.checks + (Check("glibc floor", False, str(e)),))
    checks = tuple(Check(name, ok, detail, required) for name, ok, detail, required in floor_checks(fl))
    return replace(report, checks=report.checks + checks, binaries=fl.to_json())


def verify(python: str, *, expect_openssl: str | None = None, expect_sqlite: str | None = None,
           private_prefixes: Sequence[str] = (), floor: bool = True, expect_optimized: bool = False,
           glibc_max: str | None = None, self_contained: bool = False,
           say: Callable[[str], None] | None = None) -> VerifyReport:
    """Run the probe with ``python`` and judge what it finds (see the module docstring). ``say`` hears that
    the probe is still running when it takes long.

    ``expect_openssl``/``expect_sqlite`` must equal the versions the interpreter reports at run time (a
    shorter expectation such as ``3.46`` matches ``3.46.1``). With ``private_prefixes``, every libssl,
    libcrypto and libsqlite3 that ``_ssl``, ``_hashlib`` and ``_sqlite3`` load must lie under one of them.
    With ``expect_optimized``, the "PGO + LTO" check (always shown) is required. ``glibc_max`` (a portable
    build's target) fails the glibc floor check when a file needs a newer glibc; ``self_contained`` allows
    no library beyond the C runtime and the install's own.
    A Python that cannot run at all raises :class:`InputError`. With ``floor`` (the default), the ELF files
    of the install are read on this side too (:mod:`buildkit.pybuild.floor`: glibc floor, linked libraries,
    hardening).
    """
    path = resolve_interpreter(python)
    args = ["--django-sqlite-min", django_sqlite_min()]
    if expect_openssl:
        args += ["--expect-openssl", expect_openssl]
    if expect_sqlite:
        args += ["--expect-sqlite", expect_sqlite]
    for prefix in private_prefixes:
        args += ["--private-prefix", os.path.realpath(prefix)]
    if expect_optimized:
        args.append("--expect-optimized")
    report = report_from_probe(python, run_probe(path, args, say))
    if not floor:
        return report
    return add_floor(report, *install_roots(report.probe, private_prefixes), glibc_max, self_contained)
