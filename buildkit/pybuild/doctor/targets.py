"""The doctor's entry points: a build log as text, a CPython build tree, an interpreter, or any of them by path."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence

from buildkit.errors import InputError
from buildkit.pybuild.doctor.findings import Collector, Context, Finding
from buildkit.pybuild.doctor.parse import ConfigureFacts, MakeSummary, parse_configure, parse_make_summary, split_lines
from buildkit.pybuild.doctor.rules import NOT_FOUND_LIB, analyze, import_failure, lib_family
from buildkit.pybuild.record import BuildRecord, RecordError, private_prefixes


def doctor_text(text: str | Iterable[str], *, source: str = "") -> list[Finding]:
    """Findings for a build log (configure output, make output, a traceback...) given as text."""
    lines = split_lines(text)
    cfg = parse_configure(lines)
    summary = parse_make_summary(lines)
    version = cfg.version
    if version is None:
        joined = "\n".join(lines)
        m = re.search(r"Python-(\d+\.\d+\.\d+)", joined) or re.search(r"lib\.linux-\w+-(\d+\.\d+)", joined)
        version = m.group(1) if m else None
    ctx = Context(cpython=version, prefix=cfg.arg("--prefix"))
    return analyze(lines, cfg, summary, ctx, source)


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
    ctx = Context(cpython=version, prefix=cfg.arg("--prefix") or cfg.variables.get("prefix"))
    lines = split_lines(config_log)

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
    findings = analyze(lines, cfg, summary, ctx, "config.log", tree=tree, summary_source="build tree")
    if not cfg.found:
        findings.append(Finding("nothing to read in the build tree", f"{tree} has no config.log and no Makefile "
                                "variables", "run configure (or buildkit python ...) first", problem=False))
    return findings


def _buildkit_record(executable: str) -> BuildRecord | None:
    """The BUILDKIT.json that ``buildkit python`` writes next to bin/ of the install, if any (one it cannot read:
    none, the doctor looks at the interpreter itself)."""
    install = os.path.dirname(os.path.dirname(os.path.realpath(executable)))
    try:
        return BuildRecord.load(install)
    except RecordError:
        return None


def _interpreter_prefixes(executable: str, record: BuildRecord | None) -> list[str]:
    """The private OpenSSL and SQLite of a buildkit install: from its BUILDKIT.json (``openssl.prefix``,
    ``sqlite.prefix`` unless ``how`` is ``system``), else ``openssl/`` and ``sqlite/`` beside ``bin/``."""
    if record is not None:
        return [p for p in private_prefixes((record.openssl, record.sqlite)) if os.path.isdir(p)]
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
    prefix = (record.prefix if record else "") or facts.get("prefix") or os.path.dirname(os.path.dirname(path))
    ctx = Context(cpython=report.python_version or None, prefix=prefix)
    c = Collector()
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
            import_failure(c, ctx, module, why.split(": ", 1)[-1], name, cfg)
            _lib64_runtime(c, ctx, why, prefixes)

    failed = {ch.name: ch for ch in report.failed}
    imports = facts.get("imports") or {}
    if "from smtplib import SMTP_SSL" in failed and not c.has("ssl-absent"):
        c.add("ssl-absent", "smtplib has no SMTP_SSL: ssl does not import",
              failed["from smtplib import SMTP_SSL"].detail, f"rebuild: {ctx.rebuild()}")
    ssl_imports = bool((imports.get("ssl") or {}).get("ok"))
    for check_name in failed:
        ch = failed[check_name]
        if not ssl_imports and check_name in ("CA store", "OpenSSL headers vs runtime"):
            continue  # consequences of the missing ssl module, already explained
        if check_name.startswith("SQLite >=") or check_name == "create_function(deterministic=True)":
            if report.sqlite_version is not None:
                c.add("sqlite-old", f"SQLite {report.sqlite_version}: deterministic functions (and Django) fail",
                      f"{name}: {check_name}: {ch.detail}", f"rebuild against a private SQLite: {ctx.rebuild()}")
        elif check_name == "CA store":
            from buildkit.pybuild.probe_script import ca_fix

            ca = facts.get("ca") or {}
            fix = ca_fix(ca) if ca.get("host_stores") is not None else (
                "mkdir -p {d} && ln -s /etc/ssl/certs/ca-certificates.crt {f} (Debian; RHEL: /etc/pki/tls/cert.pem)"
                .format(f=(ca.get("verify_paths") or {}).get("openssl_cafile") or "the cafile",
                        d=os.path.dirname((ca.get("verify_paths") or {}).get("openssl_cafile") or "")))
            c.add("ca", "no CA certificates: HTTPS (pip install) fails with CERTIFICATE_VERIFY_FAILED",
                  f"{name}: {ch.detail}", fix)
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
    if missing and (facts.get("install") or {}).get("base_prefix") == "/usr":
        # the distribution's own interpreter: it ships these modules as packages of their own, nothing to rebuild
        debs = sorted({_DISTRO_PACKAGES.get(m.name, ("python3-" + m.name.lstrip("_"),) * 2)[0] for m in missing})
        rpms = sorted({_DISTRO_PACKAGES.get(m.name, ("python3-" + m.name.lstrip("_"),) * 2)[1] for m in missing})
        c.add("optional-missing", f"optional modules missing: {', '.join(m.name for m in missing)}",
              "; ".join(f"{m.name}: {m.description}" for m in missing) + f" ({report.executable} is the "
              "distribution's own interpreter, under /usr)",
              f"if you need them: apt-get install {' '.join(debs)} (Debian/Ubuntu) or dnf install {' '.join(rpms)} "
              "(RHEL/Fedora)", problem=False)
    elif missing:
        c.add("optional-missing", f"optional modules missing: {', '.join(m.name for m in missing)}",
              "; ".join(f"{m.name}: {m.description} ({m.debian} / {m.rhel})" for m in missing),
              f"if you need them: apt-get install {' '.join(sorted({m.debian.split()[0] for m in missing}))} or "
              f"dnf install {' '.join(sorted({m.rhel.split()[0] for m in missing}))}, then rebuild", problem=False)
    return c.findings()


#: the packages a distribution's own python3 keeps these modules in: (Debian/Ubuntu, RHEL/Fedora)
_DISTRO_PACKAGES = {"_gdbm": ("python3-gdbm", "python3-libs"), "_dbm": ("python3-gdbm", "python3-libs"),
                    "_tkinter": ("python3-tk", "python3-tkinter")}


def _lib64_runtime(c: Collector, ctx: Context, why: str, prefixes: Sequence[str]) -> None:
    m = NOT_FOUND_LIB.search(why)
    if not m:
        return
    for prefix in prefixes:
        hits = glob.glob(os.path.join(prefix, "lib64", m["lib"]))
        if hits and not glob.glob(os.path.join(prefix, "lib", m["lib"])):
            c.add("rpath-" + lib_family(m["lib"]), f"{m['lib']} is in {prefix}/lib64, which the rpath does not name",
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
        from buildkit._input import read_input, refuse_binary

        data = read_input(target)
        if os.access(target, os.X_OK) and (data[:4] == b"\x7fELF" or data[:2] == b"#!"):
            return doctor_interpreter(target)
        refuse_binary(data, target, "a build log", fix="pass make's output saved as text (make 2>&1 | tee "
                      "build.log), a build directory or an interpreter")
        return doctor_text(data.decode("utf-8", errors="replace"), source=os.path.basename(target))
    if os.sep not in target and shutil.which(target):
        return doctor_interpreter(target)
    raise InputError(f"{target}: no such file, directory or interpreter on PATH",
                     fix="pass an interpreter (python3, /opt/py/bin/python3.11), a build directory or a build log")
