"""buildkit's one policy for unpacking archives: nothing may land outside the destination, and no link may point
out of it.

:func:`safe_extract` unpacks a source tarball (or zip, or a Debian binary package's files); it refuses absolute
paths, ``..``, links that leave the archive's top directory, devices, pipes and setuid/setgid bits before
anything is written, checks again where each member really lands as the tree is written, and renames the tree
into place only when it is whole.

:func:`safe_extract_tarfile` applies the same checks to an open tar archive with any number of top entries (what
:mod:`buildkit.container.engine` copies out of a build container). Its one allowance is explicit: a symlink the
caller names in ``expected_links`` (member path -> absolute target, e.g. a private OpenSSL's ``ssl/cert.pem``
pointing at the system's CA bundle) may point out; nothing may be written through it, and no other link may
lead to it. setuid/setgid bits are dropped there rather than refused (a build tree inherits setgid folders).

Every refusal is an :class:`UnsafeMember`: one line, ``ARCHIVE: refusing member 'NAME': WHY``.
"""

from __future__ import annotations

import copy
import errno
import lzma
import os
import posixpath
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypedDict

from buildkit.errors import InputError
from buildkit.sources.transfer import ensure_dir

TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tbz", ".tar")

_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")  # 3.12+, and 3.8.17/3.9.17/3.10.12/3.11.4 backports


class _NoFilter(TypedDict, total=False):
    """``TarFile.extract``'s keyword for no filter: given where tarfile has filters, else none."""

    filter: Literal["fully_trusted"]


_NO_FILTER: _NoFilter = {"filter": "fully_trusted"} if _HAS_DATA_FILTER else {}  # without tarfile's 3.12+ warning


class UnsafeMember(InputError):
    """A member the policy refuses; the message names the archive, the member and the reason."""


def _refuse(archive: Path | str, name: str, why: str) -> UnsafeMember:
    return UnsafeMember(f"{archive}: refusing member {name!r}: {why}",
                        fix="this is not a plain source archive; check where it came from")


def _relative(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _member_path(archive: Path | str, name: str) -> str:
    """A member's path relative to the destination ('' for the root itself); absolute or '..' refused."""
    if name.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", name):
        raise _refuse(archive, name, "absolute path")
    path = _relative(name)
    if ".." in path.split("/"):
        raise _refuse(archive, name, "'..' in its path")
    return path


def _declared(links: Mapping[str, str] | None) -> dict[str, str]:
    """``expected_links`` as {relative member path: absolute target}; a relative target is the caller's mistake."""
    declared: dict[str, str] = {}
    for name, target in (links or {}).items():
        if not target.startswith("/"):
            raise ValueError(f"expected link {name!r} -> {target!r}: only an absolute target can be declared")
        declared[_relative(name)] = target
    return declared


def _is_declared(member: tarfile.TarInfo, path: str, declared: Mapping[str, str]) -> bool:
    return member.issym() and declared.get(path) == member.linkname


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _check_tar_member(archive: Path | str, member: tarfile.TarInfo, declared: Mapping[str, str]) -> str:
    """Static checks of one member (what it is, where it points); returns its relative path. A symlink named in
    ``declared`` with exactly that target may point out."""
    path = _member_path(archive, member.name)
    if member.ischr() or member.isblk():
        raise _refuse(archive, member.name, "device file")
    if member.isfifo():
        raise _refuse(archive, member.name, "named pipe")
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise _refuse(archive, member.name, f"unsupported member type {member.type!r}")
    if _is_declared(member, path, declared):
        return path
    if member.issym():
        if member.linkname.startswith("/"):
            meant = f" (the link expected there points to {declared[path]!r})" if path in declared else ""
            raise _refuse(archive, member.name, f"symlink to an absolute path {member.linkname!r}{meant}")
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
        if target == ".." or target.startswith("../"):
            raise _refuse(archive, member.name, f"symlink pointing outside the destination ({member.linkname!r})")
    if member.islnk():
        if member.linkname.startswith("/") or ".." in member.linkname.split("/"):
            raise _refuse(archive, member.name, f"hard link to {member.linkname!r}, outside the destination")
    return path


def _check_on_disk(archive: Path | str, name: str, path: str, root: str, top_root: str, link: str | None,
                   hard: bool) -> None:
    """Where the member really lands, given the symlinks written so far (this catches chains of links):
    its folder must stay under ``root``, the file and any link target under the top directory ``top_root``."""
    parent = os.path.realpath(os.path.join(root, os.path.dirname(path)))
    if not _inside(parent, root):
        raise _refuse(archive, name, "its folder leads outside the destination through a symlink")
    if link is None:
        where = os.path.realpath(os.path.join(parent, os.path.basename(path)))
        if not _inside(where, top_root):
            raise _refuse(archive, name, "it would be written through a symlink outside the destination")
        return
    target = os.path.realpath(os.path.join(root if hard else parent, link))
    if not _inside(target, top_root):
        raise _refuse(archive, name, f"link to {link!r} resolves outside the destination")


def _check_link_stays_in_top(archive: Path | str, name: str, path: str, link: str, top: str) -> None:
    """A symlink must point into the archive's own top directory, not at ``dest`` or a sibling tree."""
    target = posixpath.normpath(posixpath.join(posixpath.dirname(path), link))
    if target != top and not target.startswith(top + "/"):
        raise _refuse(archive, name, f"symlink pointing outside the destination ({link!r})")


def _single_top(archive: Path, paths: list[tuple[str, bool]]) -> str:
    """The one top-level directory of the members ``(path, is_dir)``."""
    tops = sorted({p.split("/", 1)[0] for p, _ in paths if p})
    if len(tops) != 1:
        shown = ", ".join(tops[:5]) + (", ..." if len(tops) > 5 else "")
        raise InputError(f"{archive}: expected one top-level directory, found {len(tops)} entries ({shown or 'none'})",
                         fix="unpack it by hand; buildkit expects an upstream source archive")
    top = tops[0]
    if not any(is_dir and p == top for p, is_dir in paths) and not any(p.startswith(top + "/") for p, _ in paths):
        raise InputError(f"{archive}: its only top-level entry {top!r} is not a directory",
                         fix="unpack it by hand; buildkit expects an upstream source archive")
    return top


def _sanitized(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """For Pythons without tarfile's data filter: no owners from the archive, no odd permission bits."""
    m = copy.copy(member)
    m.uid, m.gid, m.uname, m.gname = os.geteuid(), os.getegid(), "", ""
    if m.isdir():
        m.mode = (m.mode & 0o755) | 0o700
    elif m.isreg() or m.islnk():
        m.mode = (m.mode & 0o755) | 0o600
        if not m.mode & 0o100:
            m.mode &= ~0o111
    return m


def _extract_error(archive: Path | str, e: BaseException, where: Path) -> InputError:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return InputError(f"disk full while extracting {archive} into {where}",
                          fix="free some space there; the partial tree was removed")
    if isinstance(e, OSError) and e.errno is not None:
        return InputError(f"cannot extract {archive} into {where}: {e.strerror or e}", fix="check the folder")
    return InputError(f"{archive}: not a readable archive ({e})",
                      fix="fetch it again (buildkit fetch verifies checksums)")


_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError)


def _write_tar(archive: Path | str, tar: tarfile.TarFile, plan: list[tuple[tarfile.TarInfo, str]], tmp: Path,
               top: str, declared: Mapping[str, str]) -> None:
    """Write the statically checked members ``plan`` (member, relative path) into the fresh folder ``tmp``, each
    checked again where it really lands; links must stay in ``tmp/top`` (all of ``tmp`` when ``top`` is '')."""
    earlier: set[str] = set()
    for member, path in plan:
        if member.issym() and top and not _is_declared(member, path, declared):
            _check_link_stays_in_top(archive, member.name, path, member.linkname, top)
        if member.islnk() and _member_path(archive, member.linkname) not in earlier:
            # tar makes a hard link to a file it has already written; tarfile raised a bare KeyError
            raise _refuse(archive, member.name, f"hard link to {member.linkname!r}, which is not an earlier "
                          "file of the archive")
        if member.isreg() or member.islnk():
            earlier.add(path)
    root = os.path.realpath(tmp)
    top_root = os.path.join(root, top) if top else root
    for member, path in plan:
        declared_link = _is_declared(member, path, declared)
        link = member.linkname if (member.issym() or member.islnk()) and not declared_link else None
        _check_on_disk(archive, member.name, path, root, top_root, link, member.islnk())
        if _HAS_DATA_FILTER and not declared_link:
            try:
                tar.extract(member, root, filter="data")
            except tarfile.FilterError as e:
                raise _refuse(archive, member.name, str(e)) from None
        else:  # no data filter (or a test pretends so), or a declared link out, which it refuses: our checks only
            tar.extract(_sanitized(member), root, **_NO_FILTER)
    # A link checked while its target was missing may point elsewhere once later links exist. Judged by the
    # archive's own link text: tarfile's data filter (3.13.4+) writes some links normalised ('b/..' as '.'),
    # which would hide from the tree on disk what the archive meant. A declared link points out on purpose:
    # only its folder is judged.
    for member, path in plan:
        if not member.issym():
            continue
        where = os.path.join(root, path)
        if _is_declared(member, path, declared):
            if not _inside(os.path.realpath(os.path.dirname(where)), top_root):
                raise _refuse(archive, member.name, "its folder leads outside the destination through a symlink")
            continue
        meant = os.path.realpath(os.path.join(os.path.dirname(where), member.linkname))
        if not _inside(os.path.realpath(where), top_root) or not _inside(meant, top_root):
            raise _refuse(archive, member.name, f"link to {member.linkname!r} resolves outside the destination "
                          "once the whole archive is written")


def _extract_tar(archive: Path, tmp: Path, dest: Path) -> str:
    with tarfile.open(archive, "r:*") as tar:
        plan = [(m, _check_tar_member(archive, m, {})) for m in tar.getmembers()]
        plan = [(m, p) for m, p in plan if p]  # "." itself is not extracted
        setid = next((m for m, _ in plan if m.mode & (stat.S_ISUID | stat.S_ISGID)), None)
        if setid is not None:  # a source archive has no use for them
            raise _refuse(archive, setid.name, "setuid or setgid bit")
        top = _single_top(archive, [(p, m.isdir()) for m, p in plan])
        if os.path.lexists(dest / top):
            raise InputError(f"{dest / top} already exists", fix="remove it, or extract into another folder")
        _write_tar(archive, tar, plan, tmp, top, {})
    return top


def _extract_zip(archive: Path, tmp: Path, dest: Path) -> str:
    with zipfile.ZipFile(archive) as zf:
        plan = []
        for info in zf.infolist():
            path = _member_path(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise _refuse(archive, info.filename, "symlink (not supported in zip archives)")
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                raise _refuse(archive, info.filename, "device file")
            if mode & (stat.S_ISUID | stat.S_ISGID):
                raise _refuse(archive, info.filename, "setuid or setgid bit")
            if path:
                plan.append((info, path, mode))
        top = _single_top(archive, [(p, i.is_dir()) for i, p, _ in plan])
        if os.path.lexists(dest / top):
            raise InputError(f"{dest / top} already exists", fix="remove it, or extract into another folder")
        root = os.path.realpath(tmp)
        for info, path, mode in plan:
            _check_on_disk(archive, info.filename, path, root, os.path.join(root, top), None, False)
            out = zf.extract(info, root)
            if not info.is_dir() and mode & 0o100:
                os.chmod(out, (mode & 0o755) | 0o600)
    return top


def _extract_deb(archive: Path, tmp: Path, dest: Path) -> str:
    """A Debian binary package is an ar archive whose ``data.tar.*`` holds its files: binutils' ``ar`` (there
    wherever the gcc a build needs is) takes that member out, and it goes through the tar checks above."""
    ar = shutil.which("ar")
    if ar is None:
        raise InputError(f"{archive}: a Debian package, and ar (binutils) is not installed to open it",
                         fix="apt-get install binutils (Debian) or dnf install binutils (RHEL)")
    listed = subprocess.run([ar, "t", str(archive)], capture_output=True, text=True)
    data = [n for n in listed.stdout.split() if n.startswith("data.tar")]
    if listed.returncode != 0 or len(data) != 1:
        said = (listed.stderr.strip().splitlines() or [f"members {listed.stdout.split()}"])[-1]
        raise InputError(f"{archive}: not a Debian package ({said})", fix="delete it and fetch it again")
    if not data[0].endswith(TAR_SUFFIXES):
        raise InputError(f"{archive}: its files are in {data[0]}, a compression this Python cannot read",
                         fix="use a package whose data.tar is xz, gzip or bzip2 (Debian's are xz)")
    inner = tmp / data[0]
    with open(inner, "wb") as out:
        done = subprocess.run([ar, "p", str(archive), data[0]], stdout=out, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise InputError(f"{archive}: ar could not read {data[0]}: {done.stderr.strip()[:200]}",
                         fix="delete it and fetch it again")
    try:
        return _extract_tar(inner, tmp, dest)
    finally:
        inner.unlink()


def safe_extract_tarfile(tar: tarfile.TarFile, dest: Path, *, archive: str,
                         expected_links: Mapping[str, str] | None = None) -> list[Path]:
    """Unpack the open archive ``tar`` into ``dest`` (made if missing) under :func:`safe_extract`'s checks and
    return its top entries there, ``dest/<top>`` each (any number of them; none may exist yet). ``archive``
    names it in messages.

    A symlink pointing outside ``dest`` is refused (:class:`UnsafeMember`, one line naming the member) unless
    ``expected_links`` declares it: ``{member path: absolute target}``, that member, that target exactly. No
    member may be written through a declared link and no other link may lead to it. setuid/setgid bits are
    dropped, owners are whoever runs this. The tree is written into a temporary folder inside ``dest`` and
    renamed into place, so a refused archive leaves nothing behind.
    """
    declared = _declared(expected_links)
    dest = ensure_dir(Path(dest), "destination")
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        try:
            plan = [(m, _check_tar_member(archive, m, declared)) for m in tar.getmembers()]
            plan = [(m, p) for m, p in plan if p]
            tops = sorted({p.split("/", 1)[0] for _, p in plan})
            for top in tops:
                if os.path.lexists(dest / top):
                    raise InputError(f"{dest / top} already exists", fix="remove it, or unpack into another folder")
            _write_tar(archive, tar, plan, tmp, "", declared)
        except InputError:
            raise
        except _ARCHIVE_ERRORS as e:
            raise _extract_error(archive, e, dest) from None
        for top in tops:
            try:
                os.rename(tmp / top, dest / top)
            except OSError as e:
                raise InputError(f"cannot move the extracted {top} to {dest}: {e.strerror}",
                                 fix="remove it, or unpack into another folder") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [dest / top for top in tops]


def safe_extract(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` (.tar.gz, .tgz, .tar.xz, .tar.bz2, .tar, .zip, or a Debian package's files from a .deb)
    into ``dest`` and return its single top-level directory, ``dest/<top>`` (a .deb's: ``usr``).

    Members with an absolute path or a ``..`` component, links that point outside ``dest``, devices, pipes
    and setuid/setgid bits are refused (``InputError`` naming the member) before anything is written; where
    each member really lands is checked again as the tree is written, and tarfile's ``data`` filter is used
    when this Python has it. The tree is written into a temporary folder inside ``dest`` and renamed into
    place, so ``dest/<top>`` either appears whole or not at all; it must not exist yet.
    """
    archive = Path(archive)
    dest = Path(dest)
    name = archive.name.lower()
    if name.endswith(TAR_SUFFIXES):
        extract = _extract_tar
    elif name.endswith(".zip"):
        extract = _extract_zip
    elif name.endswith(".deb"):
        extract = _extract_deb
    else:
        raise InputError(f"{archive}: unknown archive type",
                         fix=f"expected one of {', '.join(TAR_SUFFIXES)}, .zip, .deb")
    if not archive.is_file():
        raise InputError(f"{archive}: no such file", fix="fetch it first (buildkit fetch)")
    dest = ensure_dir(dest, "destination")
    tmp = Path(tempfile.mkdtemp(prefix=f".{archive.name}.extract-", dir=dest))
    try:
        try:
            top = extract(archive, tmp, dest)
        except InputError:
            raise
        except _ARCHIVE_ERRORS as e:
            raise _extract_error(archive, e, dest) from None
        final = dest / top
        try:
            os.rename(tmp / top, final)
        except OSError as e:
            raise InputError(f"cannot move the extracted tree to {final}: {e.strerror}",
                             fix="remove it, or extract into another folder") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
