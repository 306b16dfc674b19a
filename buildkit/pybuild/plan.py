"""Pure planning: from a request and what the host has, decide what to build and list every step.

Nothing here touches the disk or runs a program, so the plan can be printed (``--dry-run``), rendered
as a sh script (``--emit-script``), run locally, or run in a container, and is unit-tested alone. The folders
a plan names are those of :class:`buildkit.pybuild.layout.Layout` (the layout of an install is described there).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from buildkit import catalog
from buildkit.catalog import Source, parse_version
from buildkit.errors import InputError
from buildkit.pybuild.choice import AUTO, PREFIX, PRIVATE, SYSTEM, LibraryChoice
from buildkit.pybuild.host import HostInfo, SystemLib
from buildkit.pybuild.layout import Layout
from buildkit.pybuild.recipe import Action, Command, Context, Recipe
from buildkit.pybuild.record import private_prefixes
from buildkit.pybuild.toolchain import Toolchain

# recipes/ (the repository's top) is buildkit.recipes through pyproject's package-dir, or in a checkout through
# buildkit/__init__.py's __path__, neither of which mypy follows: RECIPES is Any here. tests/unit/test_types.py
# checks recipes/ itself, where RECIPES is a dict[str, Recipe].
from buildkit.recipes import RECIPES  # type: ignore[import-not-found]

__all__ = ["Choice", "Component", "Plan", "Request", "Step", "choose", "make_plan", "private_component", "with_steps",
           "PORTABLE_LIBS", "check_portable"]

# The versions built when none is named are the catalog's (catalog.default: sources.toml's [defaults]).
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
    with_openssl: LibraryChoice = field(default=LibraryChoice("openssl"))  # not given: auto
    with_sqlite: LibraryChoice = field(default=LibraryChoice("sqlite"))
    jobs: int = 2
    clean: bool = False
    optimize: bool = False  # PGO + LTO; part of the build's identity (its configure and make lines differ)
    profile_tests: tuple[str, ...] = ()  # --profile-tests: a shorter profile run than regrtest's PGO set
    salt: str = ""  # set by --clean: rebuilds go to new directories, so the current install stays intact
    toolchain: Toolchain | None = None  # --portable: every component built on this old glibc's sysroot

    def __post_init__(self) -> None:
        if (self.with_openssl.package, self.with_sqlite.package) != ("openssl", "sqlite"):
            raise ValueError(f"Request: with_openssl={self.with_openssl}, with_sqlite={self.with_sqlite}")

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
        return private_prefixes((self.openssl, self.sqlite))

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


def choose(wanted: LibraryChoice, system: SystemLib | None, cpython: str) -> Choice:
    """Decide how ``wanted.package`` (openssl | sqlite) is provided for CPython ``cpython`` (an exact version),
    given the host's library (``system``, None: none found): not given, the system's if it is new enough."""
    package, label, kind = wanted.package, wanted.label, wanted.kind
    minimum = catalog.library_min(package, cpython)
    why = "asked for"
    if kind == AUTO:
        if system is None:
            kind, why = PRIVATE, f"no system {label} headers and library found"
        elif _older(package, system.version, minimum):
            kind = PRIVATE
            why = f"system {label} {system.version} is older than {minimum}, which CPython {cpython} needs"
        elif system.layout != "system":
            kind, why = PRIVATE, (f"only {system.layout} {system.version} was found, which a plain configure"
                                  " does not find; building a private one")
        else:
            return Choice(package, "system", system.version, "", f"system {label} {system.version} is new enough")
    if kind == SYSTEM:
        if system is None:
            raise InputError(f"--with-{package}=system, but no system {label} was found",
                             fix=f"install its -dev package, or use --with-{package} to build a private one")
        if _older(package, system.version, minimum):
            raise InputError(f"system {label} {system.version} is older than {minimum}, which CPython {cpython} needs",
                             fix=f"use --with-{package} to build a private one")
        return Choice(package, "system", system.version, "", "asked for")
    if kind == PREFIX:
        return Choice(package, "prefix", "", os.path.abspath(wanted.value), "asked for: an existing prefix")
    version = catalog.default(package) if kind == PRIVATE else wanted.value
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
    tc = req.toolchain
    with_openssl, with_sqlite = req.with_openssl, req.with_sqlite
    if tc is not None:  # every library built on the toolchain: "not given" is a private one
        check_portable(py.version, with_openssl, with_sqlite)
        with_openssl, with_sqlite = with_openssl.private_if_auto(), with_sqlite.private_if_auto()
    openssl = choose(with_openssl, host.openssl, py.version)
    sqlite = choose(with_sqlite, host.sqlite, py.version)
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
        comp = private_component(sources.get(package) or catalog.find(package, catalog.default(package)), state, host,
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


def check_portable(cpython: str, with_openssl: LibraryChoice, with_sqlite: LibraryChoice) -> None:
    """What a portable build cannot be: a CPython whose setup.py searches the host (3.8-3.11 look in
    /usr/include and /usr/lib whatever the compiler says), or one linked against a system library. Cheap:
    the CLI asks before it fetches the toolchain."""
    if parse_version("cpython", cpython) < parse_version("cpython", PORTABLE_MIN_CPYTHON):
        raise InputError(f"--portable builds CPython {PORTABLE_MIN_CPYTHON} and newer, not {cpython}: 3.8-3.11's "
                         "setup.py adds the build host's /usr/include and /usr/lib",
                         fix=f"choose e.g. {catalog.default('cpython')}, or drop --portable")
    for wanted in (with_openssl, with_sqlite):
        if wanted.from_host:
            raise InputError(f"--portable with {wanted}: a library of this host defeats it",
                             fix=f"use {wanted.option} or {wanted.option}=VERSION (built on the toolchain)")
