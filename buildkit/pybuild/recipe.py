"""The recipe base: a component (OpenSSL, SQLite, CPython) as data plus small overrides.

A recipe says how to configure, build and install one component and how to smoke-test the result; it
never runs anything. :mod:`buildkit.pybuild.plan` turns recipes into a list of steps, which a runner
executes locally, renders as a POSIX sh script, or runs inside a container.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from buildkit.catalog import Source, parse_version
from buildkit.pybuild.toolchain import Toolchain, compile_env

__all__ = ["Command", "Action", "Context", "Recipe", "PHASES"]

PHASES = ("configure", "build", "install", "post", "smoke")


@dataclass(frozen=True)
class Command:
    """A program to run: argv (never through a shell), extra environment, and the directory (relative to
    the component's source tree unless absolute)."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    cwd: str = ""

    @classmethod
    def of(cls, *argv: str, env: Mapping[str, str] | None = None, cwd: str = "") -> Command:
        return cls(tuple(argv), tuple(sorted((env or {}).items())), cwd)


@dataclass(frozen=True)
class Action:
    """A step that is not a program: implemented by every runner (local Python and the emitted sh)."""

    name: str  # link-ca-store | check-modules
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Context:
    """Everything a recipe may look at: its version and source, where it builds and installs, the
    prefixes of its dependencies, and the host's trust store."""

    version: str
    source: Source
    srcdir: str
    prefix: str
    jobs: int
    deps: Mapping[str, str] = field(default_factory=dict)  # "openssl"/"sqlite" -> prefix ("" = the system's)
    ca_file: str = ""
    ca_dir: str = ""
    optimize: bool = False  # PGO + LTO (CPython's --enable-optimizations --with-lto)
    toolchain: Toolchain | None = None  # a portable build: static libraries, an old glibc's sysroot
    profile_tests: tuple[str, ...] = ()  # --optimize's profile run: these regrtest files instead of its PGO set

    @property
    def portable(self) -> bool:
        return self.toolchain is not None

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a command: ``extra`` as it is, or in a portable build merged into the
        toolchain's (its CC, -fPIC, and the dependencies' prefixes as the only -I, -L and pkg-config paths)."""
        if self.toolchain is None:
            return dict(extra or {})
        return compile_env(self.toolchain, [p for p in self.deps.values() if p], extra)

    def at_least(self, version: str) -> bool:
        return parse_version(self.source.package, self.version) >= parse_version(self.source.package, version)


class Recipe:
    """Subclasses set ``package`` and override the phases they need. Any phase may hold actions as well as
    commands (an override may narrow its return type to ``list[Command]``)."""

    package: ClassVar[str]
    depends: ClassVar[tuple[str, ...]] = ()

    def configure(self, ctx: Context) -> Sequence[Action | Command]:
        return [Command.of("./configure", f"--prefix={ctx.prefix}")]

    def build(self, ctx: Context) -> Sequence[Action | Command]:
        return [Command.of("make", f"-j{ctx.jobs}")]

    def install(self, ctx: Context) -> Sequence[Action | Command]:
        return [Command.of("make", "install")]

    def post(self, ctx: Context) -> Sequence[Action | Command]:
        return []

    def smoke(self, ctx: Context) -> Sequence[Action | Command]:
        return []

    def phases(self, ctx: Context) -> list[tuple[str, Command | Action]]:
        """Every step of this component, in order, with its phase name."""
        steps: list[tuple[str, Command | Action]] = []
        for phase in PHASES:
            for step in getattr(self, phase)(ctx):
                steps.append((phase, step))
        return steps
