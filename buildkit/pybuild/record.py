"""``BUILDKIT.json``: the build record in each installed Python (``PREFIX.buildkit/builds/<id>/``), one type.

Who writes it:

* ``buildkit python`` (:mod:`buildkit.pybuild.build`) and ``--update-deps`` (:mod:`buildkit.pybuild.update`):
  a :class:`BuildRecord`, through :meth:`BuildRecord.save` (written under a temporary name, then renamed);
* two standalone scripts that may not import buildkit (they run on the built interpreter, Python 3.6 and
  newer): the probe, ``probe_script.py --record`` (the emitted script's build: ``verified`` and
  ``verification`` only, merged into the file), and ``relocate.py`` (the key ``relocated`` of a copy). Each
  sets ``"schema"`` when it makes the file; ``tests/unit/test_record.py`` reads what each writes.

The emitted script reads one thing: ``grep -q '"request_id": "<id>"'`` (so the file stays ``json.dump``'s
``indent=2``).

Schema 2 (``"schema": 2``, the first key): a record of ``buildkit python`` has every key of
:meth:`BuildRecord.to_json`, ``relocatable``, ``update`` and ``relocated`` only when there is one; a record
without ``build_id`` (the emitted script's, or a bare one relocate.py made) has only ``verified`` and
``verification`` and/or ``relocated``. Schema 1 is every record written before the key existed, read as
they were written over time, a missing key taking the value that meant the same: ``previous`` ("") came with
--update-deps, ``optimize`` (false), ``optimization`` (null) and ``component_seconds`` ({}) with --optimize,
then ``request_id`` (""), then ``portable`` (null); a verification before ``ca_stores`` and ``binaries`` has
neither (null), a ``relocated`` before ``config`` has none (kept so). Reading a schema-1 record gives a
schema-2 one; a newer schema, an unknown key, a missing one (schema 2) or a value of the wrong type is a
:class:`RecordError` naming the file and the key. One key came within schema 2 and may be missing from a
schema-2 record too: ``step_seconds`` ({}), the seconds of buildkit's own steps outside the compilers
(:mod:`buildkit.pybuild.clock`: ``plan``, ``fetch``, ``extract``, ``verify``, ``switch``), which ``buildkit python``
writes beside ``component_seconds``; an ``--update-deps`` record has none ({}: its steps are not timed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from buildkit.errors import InputError
from buildkit.jsonread import JsonObject, JsonShapeError, kind_of

__all__ = ["SCHEMA", "FILENAME", "RecordError", "MissingRecord", "BuildRecord", "Host", "Library", "SourceRecord",
           "StepRecord", "ComponentRecord", "Portable", "Optimization", "Modules", "CheckResult", "ModuleResult",
           "Verification", "RelocatedConfig", "Relocatable", "Runpath", "OpensslDir", "Relocated", "Repointed",
           "BuiltLibrary", "Update", "private_prefixes"]

SCHEMA = 2
FILENAME = "BUILDKIT.json"
FIX = "rebuild that install: buildkit python VERSION --prefix PREFIX --clean (buildkit writes BUILDKIT.json)"


class RecordError(InputError):
    """A BUILDKIT.json that cannot be read: the message names the file and what is wrong in it."""


class MissingRecord(RecordError):
    """No BUILDKIT.json where a build should have one."""


def _json(value: object) -> Any:
    if isinstance(value, _Part):
        return value.to_json()
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _json(v) for k, v in value.items()}
    return value


class _Part:
    """A part of the record: its JSON is its fields, in their order, under their names, unless its own
    ``to_json`` says otherwise."""

    def to_json(self) -> dict[str, Any]:
        return {k: _json(v) for k, v in vars(self).items()}


def _read_part(what: str, data: Mapping[str, Any], read: Any) -> Any:
    """A part made elsewhere as JSON (a report's, relocate.py's), read as from a record of this schema."""
    try:
        return read(JsonObject(dict(data), what, require_all=True))
    except JsonShapeError as e:
        raise ValueError(f"{what} cannot be recorded: {e}") from None


# --- the parts ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Host(_Part):
    """The build host, as planning saw it."""

    os: str
    compiler: str
    glibc: str
    ca_file: str
    ca_dir: str

    @classmethod
    def read(cls, o: JsonObject) -> Host:
        return o.done(cls(o.text("os"), o.text("compiler"), o.text("glibc"), o.text("ca_file"), o.text("ca_dir")))


@dataclass(frozen=True)
class Library(_Part):
    """How the build has its OpenSSL or SQLite (``openssl``, ``sqlite``): plan.Choice without the name."""

    how: str  # private | system | prefix
    version: str
    prefix: str  # "" for the system's
    reason: str

    @classmethod
    def read(cls, o: JsonObject) -> Library:
        return o.done(cls(o.choice("how", ("private", "system", "prefix")), o.text("version"), o.text("prefix"),
                          o.text("reason")))


class _Provided(Protocol):
    """A library as a build has it: a :class:`Library` here, a ``plan.Choice`` while planning."""

    @property
    def how(self) -> str: ...

    @property
    def prefix(self) -> str: ...


def private_prefixes(libraries: Iterable[_Provided | None]) -> tuple[str, ...]:
    """The prefixes of those ``libraries`` that are not the system's (private ones, or one given as a prefix):
    where verification requires libssl, libcrypto and libsqlite3 to be loaded from."""
    return tuple(lib.prefix for lib in libraries if lib is not None and lib.how != "system")


@dataclass(frozen=True)
class SourceRecord(_Part):
    """A tarball the build was made from (``sources``)."""

    package: str
    version: str
    file: str
    url: str
    sha256: str
    license: str
    checksum_from: str

    @classmethod
    def read(cls, o: JsonObject) -> SourceRecord:
        return o.done(cls(o.text("package"), o.text("version"), o.text("file"), o.text("url"), o.text("sha256"),
                          o.text("license"), o.text("checksum_from")))


@dataclass(frozen=True)
class StepRecord(_Part):
    """One step of a component: a command (``argv``, ``env``, ``cwd``) or, when ``action`` is set, one of the
    runner's actions (``action``, ``args``)."""

    phase: str
    action: str | None = None
    args: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str = ""

    @classmethod
    def read(cls, o: JsonObject) -> StepRecord:
        if o.has("action"):
            return o.done(cls(o.text("phase"), o.text("action"), o.texts("args")))
        return o.done(cls(o.text("phase"), None, (), o.texts("argv"), o.strings("env"), o.text("cwd")))

    def to_json(self) -> dict[str, Any]:
        if self.action is not None:
            return {"phase": self.phase, "action": self.action, "args": list(self.args)}
        return {"phase": self.phase, "argv": list(self.argv), "env": dict(self.env), "cwd": self.cwd}


@dataclass(frozen=True)
class ComponentRecord(_Part):
    """A component of the plan and its steps (``steps``: the plan's ``components``)."""

    package: str
    version: str
    sha256: str
    file: str
    prefix: str
    steps: tuple[StepRecord, ...]

    @classmethod
    def read(cls, o: JsonObject) -> ComponentRecord:
        return o.done(cls(o.text("package"), o.text("version"), o.text("sha256"), o.text("file"), o.text("prefix"),
                          tuple(StepRecord.read(s) for s in o.objs("steps"))))


@dataclass(frozen=True)
class Portable(_Part):
    """A --portable build: the glibc floor it promises and the toolchain it was built with."""

    glibc: str
    sysroot_glibc: str
    toolchain: str
    root: str

    @classmethod
    def read(cls, o: JsonObject) -> Portable:
        return o.done(cls(o.text("glibc"), o.text("sysroot_glibc"), o.text("toolchain"), o.text("root")))


@dataclass(frozen=True)
class Optimization(_Part):
    """--optimize: what the build log and the tree showed (build.optimization_evidence)."""

    pgo: bool
    lto: bool
    profile_files: int
    profile_tests: str  # "ran/total"

    @classmethod
    def read(cls, o: JsonObject) -> Optimization:
        return o.done(cls(o.flag("pgo"), o.flag("lto"), o.integer("profile_files"), o.text("profile_tests")))


@dataclass(frozen=True)
class Modules(_Part):
    """CPython's own summary of its optional modules (``modules``)."""

    missing: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @classmethod
    def read(cls, o: JsonObject) -> Modules:
        return o.done(cls(o.texts("missing"), o.texts("failed"), o.texts("removed")))


@dataclass(frozen=True)
class CheckResult(_Part):
    name: str
    ok: bool
    detail: str
    required: bool

    @classmethod
    def read(cls, o: JsonObject) -> CheckResult:
        return o.done(cls(o.text("name"), o.flag("ok"), o.text("detail"), o.flag("required")))


@dataclass(frozen=True)
class ModuleResult(_Part):
    """An optional module, present or not, and the -dev packages that would give it."""

    name: str
    present: bool
    description: str
    debian: str
    rhel: str
    error: str | None

    @classmethod
    def read(cls, o: JsonObject) -> ModuleResult:
        return o.done(cls(o.text("name"), o.flag("present"), o.text("description"), o.text("debian"), o.text("rhel"),
                          o.text_or_none("error")))


@dataclass(frozen=True)
class Verification(_Part):
    """The verification of the build: ``verify.VerifyReport.to_json()``, or the probe's own report (the
    emitted script's record), which has no ``executable``, ``ca_stores`` and ``binaries`` (``executable`` is
    None). ``verify_paths``, ``ca_stores`` and ``binaries`` are the facts of the probe and of the floor
    reader, kept as their JSON."""

    python: str
    python_version: str
    ok: bool
    checks: tuple[CheckResult, ...]
    optional: tuple[ModuleResult, ...]
    openssl_version: str | None
    sqlite_version: str | None
    libraries: Mapping[str, tuple[str, ...]]  # module -> the files /proc/self/maps showed
    verify_paths: Mapping[str, Any] | None
    environment: tuple[str, ...]
    executable: str | None = None
    ca_stores: list[Any] | None = None
    binaries: Mapping[str, Any] | None = None

    @classmethod
    def read(cls, o: JsonObject) -> Verification:
        rich = o.has("executable")  # VerifyReport's; the probe's own report has none of the three
        return o.done(cls(
            o.text("python"), o.text("python_version"), o.flag("ok"),
            tuple(CheckResult.read(c) for c in o.objs("checks")),
            tuple(ModuleResult.read(m) for m in o.objs("optional")),
            o.text_or_none("openssl_version"), o.text_or_none("sqlite_version"), o.lists("libraries"),
            o.raw("verify_paths", (dict,)), o.texts("environment"), o.text("executable") if rich else None,
            o.raw("ca_stores", (list,)) if rich else None, o.raw("binaries", (dict,)) if rich else None))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verification:
        """A report's JSON (``VerifyReport.to_json()``), as the record keeps it."""
        got: Verification = _read_part("verification", data, cls.read)
        return got

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"python": self.python}
        if self.executable is not None:
            out["executable"] = self.executable
        out.update({"python_version": self.python_version, "ok": self.ok,
                    "checks": [c.to_json() for c in self.checks], "optional": [m.to_json() for m in self.optional],
                    "openssl_version": self.openssl_version, "sqlite_version": self.sqlite_version,
                    "libraries": {k: list(v) for k, v in self.libraries.items()}, "verify_paths": self.verify_paths})
        if self.executable is not None:
            out.update({"ca_stores": self.ca_stores, "binaries": self.binaries})
        out["environment"] = list(self.environment)
        return out


@dataclass(frozen=True)
class RelocatedConfig(_Part):
    """The build-time configuration made to follow the tree (relocate.relocate_config), by kind."""

    sysconfigdata: tuple[str, ...] = ()
    pkgconfig: tuple[str, ...] = ()
    makefile: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()

    @classmethod
    def read(cls, o: JsonObject) -> RelocatedConfig:
        return o.done(cls(o.texts("sysconfigdata"), o.texts("pkgconfig"), o.texts("makefile"), o.texts("scripts")))


@dataclass(frozen=True)
class Relocatable(_Part):
    """A --portable build made relocatable where it was built (relocate.relocate_in_place): ``relocatable``."""

    scripts: tuple[str, ...]
    config: RelocatedConfig

    @classmethod
    def read(cls, o: JsonObject) -> Relocatable:
        config = o.obj("config")
        return o.done(cls(o.texts("scripts"), RelocatedConfig.read(config) if config else RelocatedConfig()))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Relocatable:
        """What ``relocate_in_place`` returned."""
        got: Relocatable = _read_part("relocatable", data, cls.read)
        return got


@dataclass(frozen=True)
class Runpath(_Part):
    file: str
    old: str
    new: str

    @classmethod
    def read(cls, o: JsonObject) -> Runpath:
        return o.done(cls(o.text("file"), o.text("old"), o.text("new")))


@dataclass(frozen=True)
class OpensslDir(_Part):
    """OPENSSLDIR in the copy's libcrypto: the old path, the target's, how many places were replaced."""

    old: str
    new: str
    replaced: int

    @classmethod
    def read(cls, o: JsonObject) -> OpensslDir:
        return o.done(cls(o.text("old"), o.text("new"), o.integer("replaced")))


@dataclass(frozen=True)
class Relocated(_Part):
    """What relocate.py did to a copy of the build (``relocated``): rewritten (relocate_tree), or, ``portable``,
    copied and packed as it was (package_tree: the rest stays empty)."""

    name: str
    from_dir: str  # "from"
    excluded: tuple[str, ...]
    portable: bool = False
    libraries: tuple[str, ...] = ()
    runpaths: tuple[Runpath, ...] = ()
    scripts: tuple[str, ...] = ()
    openssldir: OpensslDir | None = None
    config: RelocatedConfig | None = None  # None: relocated before relocate.py rewrote the configuration

    @classmethod
    def read(cls, o: JsonObject) -> Relocated:
        if o.has("portable"):
            if not o.flag("portable"):
                raise JsonShapeError(f"{o.path('portable')} is false (relocate.py writes it only as true)")
            return o.done(cls(o.text("name"), o.text("from"), o.texts("excluded"), True))
        ssl_dir, config = o.obj("openssldir"), o.obj("config")
        return o.done(cls(o.text("name"), o.text("from"), o.texts("excluded"), False, o.texts("libraries"),
                          tuple(Runpath.read(r) for r in o.objs("runpaths")), o.texts("scripts"),
                          OpensslDir.read(ssl_dir) if ssl_dir else None,
                          RelocatedConfig.read(config) if config else None))

    def to_json(self) -> dict[str, Any]:
        if self.portable:
            return {"name": self.name, "from": self.from_dir, "portable": True, "excluded": list(self.excluded)}
        out = {"name": self.name, "from": self.from_dir, "libraries": list(self.libraries),
               "runpaths": _json(self.runpaths), "scripts": list(self.scripts), "openssldir": _json(self.openssldir),
               "excluded": list(self.excluded)}
        return out if self.config is None else {**out, "config": self.config.to_json()}


@dataclass(frozen=True)
class Repointed(_Part):
    """--update-deps: the files of the copy that were pointed at the new library."""

    rpath: tuple[str, ...]  # relative to the install
    text: int
    symlink: int

    @classmethod
    def read(cls, o: JsonObject) -> Repointed:
        return o.done(cls(o.texts("rpath"), o.integer("text"), o.integer("symlink")))


@dataclass(frozen=True)
class BuiltLibrary(_Part):
    """--update-deps: a library it built (or reused), and its steps as ``phase: command`` lines."""

    package: str
    version: str
    prefix: str
    steps: tuple[str, ...]

    @classmethod
    def read(cls, o: JsonObject) -> BuiltLibrary:
        return o.done(cls(o.text("package"), o.text("version"), o.text("prefix"), o.texts("steps")))


@dataclass(frozen=True)
class Update(_Part):
    """A build made by --update-deps from another (``update``)."""

    from_dir: str  # "from": the install it was copied from
    base_build: str  # the build CPython was compiled in, through any number of updates
    compiled_against: Mapping[str, str]  # package -> the version CPython's modules were compiled against
    sys_version: str
    sys_version_unchanged: bool
    repointed: Repointed
    built: tuple[BuiltLibrary, ...]

    @classmethod
    def read(cls, o: JsonObject) -> Update:
        repointed = o.obj("repointed")
        return o.done(cls(o.text("from"), o.text("base_build"), o.strings("compiled_against"), o.text("sys_version"),
                          o.flag("sys_version_unchanged"),
                          Repointed.read(repointed) if repointed else Repointed((), 0, 0),
                          tuple(BuiltLibrary.read(b) for b in o.objs("built"))))

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        return {"from": data.pop("from_dir"), **data}


# --- the record ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildRecord:
    """One BUILDKIT.json. A record of ``buildkit python`` or ``--update-deps`` has a ``build_id``; the emitted
    script's has only ``verified`` and ``verification`` (and ``relocated`` once relocate.py packed a copy)."""

    build_id: str = ""
    buildkit: str = ""  # the version that wrote it
    created: str = ""  # ISO 8601, UTC
    prefix: str = ""
    python: str = ""  # INSTALL/bin/python3
    host: Host | None = None
    openssl: Library | None = None
    sqlite: Library | None = None
    sources: tuple[SourceRecord, ...] = ()
    steps: tuple[ComponentRecord, ...] = ()
    optimize: bool = False
    portable: Portable | None = None
    optimization: Optimization | None = None
    modules: Modules = Modules()
    verification: Verification | None = None
    verified: bool = False
    seconds: float = 0.0
    request_id: str = ""  # the build id of the same command without --clean ("" before schema 2 kept one)
    component_seconds: Mapping[str, float] = field(default_factory=dict)  # built here, not reused
    step_seconds: Mapping[str, float] = field(default_factory=dict)  # buildkit's own steps (pybuild.clock.STEPS)
    relocatable: Relocatable | None = None
    previous: str = ""  # what --rollback goes back to
    update: Update | None = None
    relocated: Relocated | None = None

    def library(self, package: str) -> Library | None:
        """``openssl`` or ``sqlite``."""
        if package not in ("openssl", "sqlite"):
            raise KeyError(package)
        return self.openssl if package == "openssl" else self.sqlite

    # --- JSON ---------------------------------------------------------------------------------------------

    @classmethod
    def from_json(cls, data: object, where: str = FILENAME) -> BuildRecord:
        """The record in ``data`` (parsed JSON), of schema 1 or 2; :class:`RecordError` naming ``where``."""
        try:
            return cls._read(data)
        except JsonShapeError as e:
            raise RecordError(f"{where}: {e}", fix=e.fix or FIX) from None

    @classmethod
    def _read(cls, data: object) -> BuildRecord:
        if not isinstance(data, dict):
            raise JsonShapeError(f"the record is {kind_of(data)}, not an object")
        schema = data.get("schema", 1)
        if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
            raise JsonShapeError(f"schema is {schema!r}, not a version number")
        if schema > SCHEMA:
            writer = data.get("buildkit")
            raise JsonShapeError(f"schema {schema}, newer than this buildkit reads (up to {SCHEMA})",
                                 fix=f"read it with buildkit {writer} (which wrote it) or newer"
                                 if isinstance(writer, str) else "read it with a newer buildkit")
        o = JsonObject(data, require_all=schema >= 2)
        o.seen.add("schema")
        full = not o.require_all or o.has("build_id")  # schema 2: a record without build_id has none of these keys
        opt = not full

        def part(key: str) -> JsonObject | None:
            return o.obj(key, optional=opt)

        host, openssl, sqlite, portable = part("host"), part("openssl"), part("sqlite"), part("portable")
        optimization, modules, verification = part("optimization"), part("modules"), o.obj("verification", opt)
        relocatable, update, relocated = (o.obj(k, optional=True) for k in ("relocatable", "update", "relocated"))
        return o.done(cls(
            build_id=o.text("build_id", opt), buildkit=o.text("buildkit", opt), created=o.text("created", opt),
            prefix=o.text("prefix", opt), python=o.text("python", opt),
            host=Host.read(host) if host else None,
            openssl=Library.read(openssl) if openssl else None, sqlite=Library.read(sqlite) if sqlite else None,
            sources=tuple(SourceRecord.read(s) for s in o.objs("sources", opt)),
            steps=tuple(ComponentRecord.read(c) for c in o.objs("steps", opt)),
            optimize=o.flag("optimize", opt), portable=Portable.read(portable) if portable else None,
            optimization=Optimization.read(optimization) if optimization else None,
            modules=Modules.read(modules) if modules else Modules(),
            verification=Verification.read(verification) if verification else None,
            verified=o.flag("verified", opt and verification is None), seconds=o.number("seconds", opt),
            request_id=o.text("request_id", opt),
            component_seconds=o.numbers("component_seconds", opt),
            step_seconds=o.numbers("step_seconds", optional=True),  # came within schema 2
            relocatable=Relocatable.read(relocatable) if relocatable else None, previous=o.text("previous", opt),
            update=Update.read(update) if update else None,
            relocated=Relocated.read(relocated) if relocated else None,
        ))

    def to_json(self) -> dict[str, Any]:
        """Schema 2, in the order buildkit has always written the keys."""
        out: dict[str, Any] = {"schema": SCHEMA}
        if self.build_id:
            out.update({
                "buildkit": self.buildkit, "created": self.created, "build_id": self.build_id, "prefix": self.prefix,
                "python": self.python, "host": self.host.to_json() if self.host else None,
                "openssl": self.openssl.to_json() if self.openssl else None,
                "sqlite": self.sqlite.to_json() if self.sqlite else None,
                "sources": [s.to_json() for s in self.sources], "steps": [c.to_json() for c in self.steps],
                "optimize": self.optimize, "portable": self.portable.to_json() if self.portable else None,
                "optimization": self.optimization.to_json() if self.optimization else None,
                "modules": self.modules.to_json(),
            })
        if self.build_id or self.verification is not None:
            out["verification"] = self.verification.to_json() if self.verification else None
            out["verified"] = self.verified
        if self.build_id:
            out.update({"seconds": self.seconds, "request_id": self.request_id,
                        "component_seconds": dict(self.component_seconds), "step_seconds": dict(self.step_seconds)})
            if self.relocatable is not None:
                out["relocatable"] = self.relocatable.to_json()
            out["previous"] = self.previous
        if self.update is not None:
            out["update"] = self.update.to_json()
        if self.relocated is not None:
            out["relocated"] = self.relocated.to_json()
        return out

    # --- files --------------------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, where: str = FILENAME) -> BuildRecord:
        """The record in ``text`` (a BUILDKIT.json's content); ``where`` names it in errors."""
        try:
            data = json.loads(text)
        except ValueError as e:
            raise RecordError(f"{where}: not JSON ({e})", fix=FIX) from None
        return cls.from_json(data, where)

    @classmethod
    def load(cls, install_dir: str) -> BuildRecord:
        """The record of the build in ``install_dir``: :class:`MissingRecord` when it has none,
        :class:`RecordError` when it is not one."""
        path = os.path.join(install_dir, FILENAME)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise MissingRecord(f"{install_dir}: no {FILENAME} there",
                                fix="build it with buildkit python, which writes one") from None
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise RecordError(f"{path}: cannot read it ({why})", fix=FIX) from None
        return cls.parse(text, path)

    def save(self, install_dir: str) -> str:
        """Write the record into ``install_dir`` (a temporary file renamed over the old one); its path."""
        path = os.path.join(install_dir, FILENAME)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=2)
        os.replace(tmp, path)
        return path
