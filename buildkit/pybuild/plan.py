"""Pure planning: from a request and what the host has, decide what to build and list every step.

Nothing here touches the disk or runs a program, so the plan can be printed (``--dry-run``), rendered
as a sh script (``--emit-script``), run locally, or run in a container, and is unit-tested alone. The folders
a plan names are those of :class:`buildkit.pybuild.install.Layout` (the layout of an install is described there).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from buildkit import catalog
from buildkit.catalog import Source, parse_version
from buildkit.errors import InputError
from buildkit.pybuild.host import HostInfo, SystemLib
from buildkit.pybuild.install import Layout
from buildkit.pybuild.recipe import Action, Command, Context, Recipe
from buildkit.pybuild.toolchain import Toolchain

# recipes/ (the repository's top) is buildkit.recipes through pyproject's package-dir, or in a checkout through
# buildkit/__init__.py's __path__, neither of which mypy follows: RECIPES is Any here. tests/unit/test_types.py
# checks recipes/ itself, where RECIPES is a dict[str, Recipe].
from buildkit.recipes import RECIPES  # type: ignore[import-not-found]

__all__ = ["Choice", "Component", "Plan", "Request", "Step", "make_plan", "private_component", "with_steps", "DEFAULTS",
           "PORTABLE_LIBS", "check_portable"]

# The newest versions whose tarballs reach a host that sees only Debian's archive, byte for byte upstream's
# (SQLite's: Debian's full tree). Pass a version to build newer ones.
DEFAULTS = {"cpython": "3.13.5", "openssl": "3.0.20", "sqlite": "3.40.1",
            "zlib": "1.2.13", "bzip2": "1.0.8", "xz": "5.4.1", "libffi": "3.4.4", "ncurses": "6.4", "readline": "8.2",
            "util-linux": "2.38.1", "linux-uapi": "5.10.223"}
# What a portable build adds before OpenSSL and SQLite, in order (readline needs ncurses): kernel uapi headers
# newer than the sysroot's 3.10 (system calls such as pidfd_open and getrandom), and the libraries of
# the standard library's zlib, bz2, lzma, ctypes, curses, readline and _uuid modules, which a plain build takes
# from the host. Left out (said by verify's table): _gdbm/_dbm (GPL gdbm) and _tkinter (Tcl/Tk and X11).
PORTABLE_LIBS = ("linux-uapi", "zlib", "bzip2", "xz", "libffi", "ncurses", "readline", "util-linux")
PORTABLE_MIN_CPYTHON = "3.12"
_PLACEHOLDER = "@PREFIX@"


@dataclass(frozen=True)
class Request:
    cpython: str
    prefix: str
    with_openssl: str | None = None  # None: auto; "private"; "system"; a version; a prefix path
    with_sqlite: str | None = None
    jobs: int = 2
    clean: bool = False
    optimize: bool = False  # PGO + LTO; part of the build's identity (its configure and make lines differ)
    profile_tests: tuple[str, ...] = ()  # --profile-tests: a shorter profile run than regrtest's PGO set
    salt: str = ""  # set by --clean: rebuilds go to new directories, so the current install stays intact
    toolchain: Toolchain | None = None  # --portable: every component built on this old glibc's sysroot

    @property
    def portable(self) -> bool:
        return self.toolchain is not None


@dataclass(frozen=True)
class Choice:
    """How a dependency is provided."""

    package: str
    how: str  # private | system | prefix
    version: str
    prefix: str  # "" for the system's
    reason: str


@dataclass(frozen=True)
class Step:
    component: str
    phase: str
    run: Command | Action
    log: str  # the log file name, in the plan's log dir


@dataclass(frozen=True)
class Component:
    package: str
    version: str
    source: Source
    prefix: str
    srcdir: str
    steps: tuple[Step, ...]
    hash: str


@dataclass(frozen=True)
class Plan:
    request: Request
    build_id: str
    state_dir: str
    install_dir: str
    work_dir: str
    log_dir: str
    openssl: Choice
    sqlite: Choice
    components: tuple[Component, ...]  # to build, in order; CPython last
    host: HostInfo

    @property
    def python(self) -> str:
        return os.path.join(self.install_dir, "bin", "python3")

    @property
    def private_prefixes(self) -> tuple[str, ...]:
        return tuple(c.prefix for c in (self.openssl, self.sqlite) if c.how != "system")

    def to_json(self) -> dict[str, object]:
        return {
            "cpython": self.request.cpython,
            "prefix": self.request.prefix,
            "build_id": self.build_id,
            "install_dir": self.install_dir,
            "optimize": self.request.optimize,
            "profile_tests": list(self.request.profile_tests) or None,
            "portable": _toolchain_json(self.request.toolchain),
            "openssl": _choice_json(self.openssl),
            "sqlite": _choice_json(self.sqlite),
            "components": [
                {
                    "package": c.package,
                    "version": c.version,
                    "sha256": c.source.sha256,
                    "file": c.source.filename,
                    "prefix": c.prefix,
                    "steps": [_step_json(s) for s in c.steps],
                }
                for c in self.components
            ],
        }


def _toolchain_json(tc: Toolchain | None) -> dict[str, str] | None:
    if tc is None:
        return None
    return {"glibc": tc.glibc, "sysroot_glibc": tc.spec.glibc, "toolchain": tc.spec.spec, "root": tc.root}


def _choice_json(c: Choice) -> dict[str, str]:
    return {"how": c.how, "version": c.version, "prefix": c.prefix, "reason": c.reason}


def _step_json(s: Step) -> dict[str, object]:
    if isinstance(s.run, Action):
        return {"phase": s.phase, "action": s.run.name, "args": list(s.run.args)}
    return {"phase": s.phase, "argv": list(s.run.argv), "env": dict(s.run.env), "cwd": s.run.cwd}


def _older(package: str, version: str, minimum: str) -> bool:
    return parse_version(package, version) < parse_version(package, minimum)


def choose(package: str, wanted: str | None, system: SystemLib | None, minimum: str, cpython: str) -> Choice:
    """Decide how ``package`` (openssl | sqlite) is provided for this CPython."""
    label = "OpenSSL" if package == "openssl" else "SQLite"
    if wanted is None:  # auto: the system's if it is new enough
        if system is None:
            wanted, why = "private", f"no system {label} headers and library found"
        elif _older(package, system.version, minimum):
            wanted = "private"
            why = f"system {label} {system.version} is older than {minimum}, which CPython {cpython} needs"
        elif system.layout != "system":
            wanted, why = "private", (f"only {system.layout} {system.version} was found, which a plain configure"
                                      " does not find; building a private one")
        else:
            return Choice(package, "system", system.version, "", f"system {label} {system.version} is new enough")
    else:
        why = "asked for"
    if wanted == "system":
        if system is None:
            raise InputError(f"--with-{package}=system, but no system {label} was found",
                             fix=f"install its -dev package, or use --with-{package} to build a private one")
        if _older(package, system.version, minimum):
            raise InputError(f"system {label} {system.version} is older than {minimum}, which CPython {cpython} needs",
                             fix=f"use --with-{package} to build a private one")
        return Choice(package, "system", system.version, "", "asked for")
    if "/" in wanted:
        return Choice(package, "prefix", "", os.path.abspath(wanted), "asked for: an existing prefix")
    version = DEFAULTS[package] if wanted == "private" else wanted
    source = catalog.find(package, version)
    if _older(package, source.version, minimum):
        raise InputError(f"{label} {source.version} is older than {minimum}, which CPython {cpython} needs",
                         fix=f"choose {label} {minimum} or newer")
    return Choice(package, "private", source.version, "", why)


def short_hash(*parts: object) -> str:
    """Ten hex digits of the sha256 of ``parts`` (as JSON): the ids of builds and private libraries."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _component(recipe: Recipe, source: Source, prefix: str, srcdir: str, jobs: int, deps: dict[str, str],
               host: HostInfo, index: int, optimize: bool = False,
               toolchain: Toolchain | None = None, profile_tests: tuple[str, ...] = ()) -> tuple[list[Step], int]:
    ctx = Context(source.version, source, srcdir, prefix, jobs, deps, host.ca_file, host.ca_dir, optimize, toolchain,
                  profile_tests)
    steps = []
    for phase, run in recipe.phases(ctx):
        index += 1
        steps.append(Step(recipe.package, phase, run, f"{index:02d}-{recipe.package}-{phase}.log"))
    return steps, index


def private_component(src: Source, state: str, host: HostInfo, salt: str = "", toolchain: Toolchain | None = None,
                      deps: dict[str, str] | None = None) -> Component:
    """A private library, without its steps yet: its prefix ``deps/<package>-<version>-<hash>`` is the same
    for every build (and ``--update-deps``) that asks for the same source, steps, compiler and toolchain."""
    recipe = RECIPES[src.package]
    # -j is not identity
    shape, _ = _component(recipe, src, _PLACEHOLDER, _PLACEHOLDER, 0, dict(deps or {}), host, 0, False, toolchain)
    digest = short_hash(src.sha256, [_step_json(s) for s in shape], (host.compiler, host.glibc),
                        *([salt] if salt else []))
    prefix = Layout(state).dep_dir(f"{src.package}-{src.version}-{digest}")
    return Component(src.package, src.version, src, prefix, "", (), digest)


def with_steps(comp: Component, work: str, jobs: int, host: HostInfo, index: int,
               toolchain: Toolchain | None = None, deps: dict[str, str] | None = None) -> tuple[Component, int]:
    """``comp`` with its steps, built in ``work/<package>``; ``index`` numbers the logs."""
    srcdir = os.path.join(work, comp.package)
    steps, index = _component(RECIPES[comp.package], comp.source, comp.prefix, srcdir, jobs, dict(deps or {}), host,
                              index, False, toolchain)
    return Component(comp.package, comp.version, comp.source, comp.prefix, srcdir, tuple(steps), comp.hash), index


def make_plan(req: Request, host: HostInfo, sources: dict[str, Source] | None = None) -> Plan:
    """The whole build. ``sources`` overrides the catalog's choice of tarball per package (a fetch may find
    e.g. SQLite's full tree where the amalgamation is preferred)."""
    sources = dict(sources or {})
    py = sources.get("cpython") or catalog.find("cpython", req.cpython)
    compat = catalog.compat_for(py.version)
    tc = req.toolchain
    if tc is not None:
        check_portable(py.version, req.with_openssl, req.with_sqlite)
    openssl = choose("openssl", req.with_openssl or ("private" if tc else None), host.openssl, compat.openssl_min,
                     py.version)
    sqlite_min = max(compat.sqlite_min, catalog.django_sqlite_min(), key=lambda v: parse_version("sqlite", v))
    sqlite = choose("sqlite", req.with_sqlite or ("private" if tc else None), host.sqlite, sqlite_min, py.version)
    layout = Layout.of(req.prefix)
    state = layout.state_dir
    env_key = (host.compiler, host.glibc)

    components: list[Component] = []
    deps: dict[str, str] = {}
    chosen: dict[str, Choice] = {}
    index = 0
    lib_deps: dict[str, dict[str, str]] = {}
    for package in PORTABLE_LIBS if tc else ():
        lib_deps[package] = {d: deps[d] for d in RECIPES[package].depends}
        comp = private_component(sources.get(package) or catalog.find(package, DEFAULTS[package]), state, host,
                                 req.salt, tc, lib_deps[package])
        deps[package] = comp.prefix
        components.append(comp)
    for choice in (openssl, sqlite):
        if choice.how != "private":
            deps[choice.package] = choice.prefix
            chosen[choice.package] = choice
            continue
        src = sources.get(choice.package) or catalog.find(choice.package, choice.version)
        comp = private_component(src, state, host, req.salt, tc)
        chosen[choice.package] = Choice(choice.package, "private", src.version, comp.prefix, choice.reason)
        deps[choice.package] = comp.prefix
        components.append(comp)

    recipe = RECIPES["cpython"]
    # --optimize changes CPython's configure and make lines, so an optimized build has its own id.
    shape, _ = _component(recipe, py, _PLACEHOLDER, _PLACEHOLDER, 0, deps, host, 0, req.optimize, tc,
                          req.profile_tests)
    salt = [req.salt] if req.salt else []
    shape_json = [_step_json(s) for s in shape]
    build_id = f"{py.version}-{short_hash(py.sha256, shape_json, env_key, [c.hash for c in components], *salt)}"
    work = layout.work_dir(build_id)
    built: list[Component] = []
    for comp in components:
        comp, index = with_steps(comp, work, req.jobs, host, index, tc, lib_deps.get(comp.package))
        built.append(comp)
    install = layout.build_dir(build_id)
    steps, index = _component(recipe, py, install, os.path.join(work, "cpython"), req.jobs, deps, host, index,
                              req.optimize, tc, req.profile_tests)
    built.append(Component("cpython", py.version, py, install, os.path.join(work, "cpython"), tuple(steps), build_id))
    return Plan(req, build_id, state, install, work, layout.log_dir(build_id),
                chosen["openssl"], chosen["sqlite"], tuple(built), host)


def check_portable(cpython: str, with_openssl: str | None, with_sqlite: str | None) -> None:
    """What a portable build cannot be: a CPython whose setup.py searches the host (3.8-3.11 look in
    /usr/include and /usr/lib whatever the compiler says), or one linked against a system library. Cheap:
    the CLI asks before it fetches the toolchain."""
    if parse_version("cpython", cpython) < parse_version("cpython", PORTABLE_MIN_CPYTHON):
        raise InputError(f"--portable builds CPython {PORTABLE_MIN_CPYTHON} and newer, not {cpython}: 3.8-3.11's "
                         "setup.py adds the build host's /usr/include and /usr/lib",
                         fix=f"choose e.g. {DEFAULTS['cpython']}, or drop --portable")
    for package, value in (("openssl", with_openssl), ("sqlite", with_sqlite)):
        if value == "system" or (value and "/" in value):
            raise InputError(f"--portable with --with-{package}={value}: a library of this host defeats it",
                             fix=f"use --with-{package} or --with-{package}=VERSION (built on the toolchain)")
