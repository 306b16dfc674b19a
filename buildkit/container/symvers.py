"""``buildkit ci symvers``: build external modules against a distribution's kernel headers inside a container,
then check them with ``buildkit symvers check``, for a kernel this machine does not run.

The kmod builder image of the image's family installs the distribution's headers package (Debian:
``linux-headers-<release>``, RHEL: ``kernel-devel-<release>``). Each ``M=DIR`` is copied in and built with
``make -C <headers> M=... modules`` as the build user with no network, in the order given (providers
first); a failed build is not the end, since kbuild leaves ``<mod>.o`` behind and the check explains
modpost's errors. The built trees, the headers' ``Module.symvers`` and release files are copied out and
checked here; paths in the report name the user's folders again.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from buildkit.container.engine import Engine
from buildkit.container.images import BUILD_UID, ImageRef
from buildkit.container.python import prepare_image, render_options
from buildkit.errors import BuildFailed, InputError

__all__ = ["ModuleBuild", "SymversJob", "SymversResult", "run_symvers"]

Say = Callable[[str], None]
SRC = "/home/build/src"
EXTRA = "/home/build/extra"
# Kernel trees in the image: Debian/Ubuntu's /lib/modules/<release>/build, RHEL's /usr/src/kernels/<release>.
FIND_KERNELS = r"""
for d in /lib/modules/*/build /usr/src/kernels/*; do
    [ -f "$d/Makefile" ] || continue
    case $d in /lib/modules/*) r=${d#/lib/modules/}; r=${r%/build} ;; *) r=${d##*/} ;; esac
    echo "$r $(readlink -f "$d")"
done
"""
KERNEL_FILES = ("Module.symvers", "include/config/kernel.release", "include/generated/utsrelease.h")


@dataclass(frozen=True)
class SymversJob:
    image: ImageRef
    m_dirs: tuple[Path, ...]
    extra_symbols: tuple[str, ...] = ()
    kernel: str = ""
    out: Path | None = None
    apt_mirror: str | None = None
    yum_mirror: str = ""


@dataclass(frozen=True)
class ModuleBuild:
    m_dir: Path  # the user's folder
    ok: bool
    log: Path
    tail: tuple[str, ...]


@dataclass
class SymversResult:
    image: str
    kernel: str
    kerneldir: str  # in the image
    builds: list[ModuleBuild]
    reports: list  # buildkit.kmod.resolve.ModuleReport, paths rewritten
    work: Path
    kept: bool

    @property
    def problems(self) -> bool:
        return any(r.problems for r in self.reports)

    def to_json(self) -> dict:
        return {"image": self.image, "kernel": self.kernel, "kerneldir": self.kerneldir,
                "builds": [{"m": str(b.m_dir), "ok": b.ok, "log": str(b.log)} for b in self.builds],
                "modules": [r.to_json() for r in self.reports], "work": str(self.work) if self.kept else None}


def _check_dirs(m_dirs: Sequence[Path]) -> list[Path]:
    if not m_dirs:
        raise InputError("M=DIR is required", fix="pass the folder of the external module, e.g. M=$PWD")
    seen: dict[str, Path] = {}
    out = []
    for d in m_dirs:
        d = Path(os.path.abspath(d))
        if not d.is_dir():
            what = "a file, not a directory" if d.exists() else "no such directory"
            raise InputError(f"M={d}: {what}", fix="pass the folder of an external module")
        if not any((d / n).is_file() for n in ("Kbuild", "Makefile", "makefile", "GNUmakefile")):
            raise InputError(f"M={d}: no Kbuild or Makefile there",
                             fix="pass the folder that holds the module's Kbuild")
        if d.name in seen:
            raise InputError(f"M={d} and M={seen[d.name]} have the same name", fix="rename one of the folders")
        seen[d.name] = d
        out.append(d)
    return out


def _pick_kernel(found: str, wanted: str, image: str) -> tuple[str, str]:
    trees = [(release, path) for release, space, path in (line.partition(" ") for line in found.splitlines())
             if space]
    if not trees:
        raise InputError(f"{image}: the image has no kernel headers", fix="its kmod builder installs them; see "
                         f"'buildkit ci render {image} --purpose kmod'")
    if wanted:
        for release, path in trees:
            if release == wanted:
                return release, path
        have = ", ".join(r for r, _ in trees)
        raise InputError(f"{image}: no headers for kernel {wanted} in the image (it has {have})",
                         fix="pass --kernel with one of those, or the release the distribution ships")
    # The newest: 6.1.0-50-amd64 after 6.1.0-9-amd64, number by number.
    return max(trees, key=lambda tree: [int(n) for n in re.findall(r"\d+", tree[0])])


def _reroot(tree: Path, container_dir: str) -> None:
    """kbuild writes absolute paths into modules.order, <mod>.mod and Module.symvers (the module column):
    point the copies at the host folder they were copied to."""
    old, new = container_dir.rstrip("/") + "/", str(tree).rstrip("/") + "/"
    for top, _dirs, files in os.walk(tree):
        for name in files:
            if name in ("modules.order", "Module.symvers") or name.endswith(".mod"):
                path = Path(top) / name
                text = path.read_text(encoding="utf-8", errors="surrogateescape")
                if old in text:
                    path.write_text(text.replace(old, new), encoding="utf-8", errors="surrogateescape")


def run_symvers(job: SymversJob, engine: Engine, say: Say) -> SymversResult:
    from buildkit.kmod.resolve import CheckOptions, check

    m_dirs = _check_dirs(job.m_dirs)
    by_name = {d.name: d for d in m_dirs}
    work = Path(job.out) if job.out else Path(tempfile.mkdtemp(prefix="buildkit-ci-symvers-"))
    if job.out:
        work.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(work / "src", ignore_errors=True)
        shutil.rmtree(work / "kernel", ignore_errors=True)
        shutil.rmtree(work / "extra", ignore_errors=True)
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    # KBUILD_EXTRA_SYMBOLS: a file inside an M= folder maps to its copy; another file is copied in.
    extra_in: list[str] = []
    extra_host: list[Path] = []
    extra_owner: list[Path | None] = []
    outside: list[tuple[Path, str]] = []
    for i, raw in enumerate(job.extra_symbols):
        path = Path(os.path.abspath(raw))
        owner = next((d for d in m_dirs if path == d or d in path.parents), None)
        extra_owner.append(owner)
        if owner is not None:
            rel = path.relative_to(owner)
            extra_in.append(f"{SRC}/{owner.name}/{rel}")
            extra_host.append(work / "src" / owner.name / rel)
        else:
            if not path.is_file():
                raise InputError(f"KBUILD_EXTRA_SYMBOLS: {path}: no such file",
                                 fix="name a Module.symvers, or one inside an M= folder (built here first)")
            name = f"{i}/{path.name}"
            outside.append((path, name))
            extra_in.append(f"{EXTRA}/{name}")
            extra_host.append(work / "extra" / name)

    options = render_options(job.image, "kmod", apt_mirror=job.apt_mirror, yum_mirror=job.yum_mirror,
                             kernel=job.kernel)
    prep = prepare_image(engine, job.image, options, logs, say)
    builds: list[ModuleBuild] = []
    with engine.container(prep.image_id, what=f"the module build in {job.image.name}") as c:
        release, kdir = _pick_kernel(c.call(["/bin/sh", "-c", FIND_KERNELS]).output, job.kernel, job.image.name)
        say(f"==> {job.image.arg}: kernel {release} headers ({kdir})")
        c.call(["mkdir", "-p", SRC, EXTRA])
        c.copy_into([(d, d.name) for d in m_dirs], SRC, owner=(BUILD_UID, BUILD_UID))
        if outside:
            for path, name in outside:
                c.call(["mkdir", "-p", f"{EXTRA}/{os.path.dirname(name)}"])
                c.copy_into([(path, name)], EXTRA, owner=(BUILD_UID, BUILD_UID))
        for d in m_dirs:
            args = ["make", "-C", kdir, f"M={SRC}/{d.name}"]
            own = [f for f, o in zip(extra_in, extra_owner) if o != d]  # a module's own Module.symvers is its output
            if own:
                args.append("KBUILD_EXTRA_SYMBOLS=" + " ".join(own))
            args.append("modules")
            log = logs / f"{d.name}.log"
            log.unlink(missing_ok=True)
            say(f"    make M={d.name} (log {log})")
            run = c.call(args, log=log, check=False, doing=f"make M={d.name}")
            builds.append(ModuleBuild(d, run.exit_code == 0, log, tuple(run.tail)))
            if run.exit_code != 0:
                say(f"    make M={d.name} failed (exit {run.exit_code}); checking what it left")
        c.copy_out(SRC, work)
        if outside:
            c.copy_out(EXTRA, work)
        kernel_dir = work / "kernel" / release
        for kfile in KERNEL_FILES:
            try:
                c.copy_out(f"{kdir}/{kfile}", kernel_dir / os.path.dirname(kfile))
            except BuildFailed:
                if kfile == "Module.symvers":
                    raise InputError(f"{job.image.name}: {kdir}/Module.symvers is missing",
                                     fix="the headers package of that kernel should ship it") from None

    _reroot(work / "src", SRC)
    if outside:
        _reroot(work / "extra", EXTRA)
    replacements = [(str(work / "src" / name), str(path)) for name, path in by_name.items()]
    replacements += [(str(h), raw) for h, raw in zip(extra_host, job.extra_symbols) if "extra" in h.parts]
    replacements.append((str(kernel_dir), kdir))  # the headers' path in the image, as on the target
    replacements.sort(key=lambda item: -len(item[0]))

    def fix_path(text: str) -> str:
        for old, new in replacements:
            text = text.replace(old, new)
        return text

    reports = []
    for d, b in zip(m_dirs, builds):
        extra = tuple(str(h) for h, o in zip(extra_host, extra_owner) if o != d and h.is_file())
        opts = CheckOptions(m_dir=str(work / "src" / d.name), kerneldir=str(kernel_dir), extra_symbols=extra)
        try:
            found = check(opts)
        except InputError as e:
            if b.ok:
                raise InputError(fix_path(e.message), fix=fix_path(e.fix) if e.fix else None) from None
            found = []
        if not b.ok and not any(r.problems for r in found):
            for line in b.tail[-15:]:
                say(f"    | {line}")
            raise BuildFailed(f"make M={b.m_dir} failed in {job.image.name} and left nothing to check",
                              fix=f"full log: {b.log}")
        for r in found:
            problems = tuple(p._replace(message=fix_path(p.message), fix=fix_path(p.fix)) for p in r.problems)
            reports.append(r._replace(path=fix_path(r.path), problems=problems))
    kept = bool(job.out) or any(r.problems for r in reports)
    if not kept:
        shutil.rmtree(work, ignore_errors=True)
    return SymversResult(job.image.arg, release, kdir, builds, reports, work, kept)
