"""Make a verified build relocatable: for buildkit ci, inside the container, with the interpreter just built.

Standalone on purpose (stdlib only, Python 3.6+): ``buildkit ci python`` copies this file into the container
and runs ``INSTALL/bin/python3 -I relocate.py ...`` there. Given the install directory of a build and the
prefixes of its private OpenSSL and SQLite, it

1. copies the install tree to ``OUT/NAME`` (less the ``--exclude`` paths, e.g. CPython's own test suite)
   and the private libraries (``lib/*.so*``) and headers into its ``lib/`` and ``include/``;
2. rewrites every ELF ``DT_RUNPATH``/``DT_RPATH`` entry that points into the build's prefixes to an
   ``$ORIGIN``-relative one, in place (the new string is shorter; the rest of the old one is NUL-padded, as
   ``chrpath`` does), so the interpreter finds its libraries wherever the tree is unpacked;
3. points the private OpenSSL's compiled-in directory (``OPENSSLDIR``: its CA certificates and
   ``openssl.cnf``) at the target distribution's, e.g. ``/etc/ssl``: the old path is replaced in
   ``libcrypto`` by one of exactly the same length (``//////etc/ssl``: repeated slashes mean one), so no
   string moves;
4. turns the ``#!INSTALL/bin/python3.X`` line of the scripts in ``bin/`` into a ``/bin/sh`` launcher that
   runs the ``python3.X`` next to the script (pip's own trick for long shebangs);
5. makes the build-time configuration follow the tree: ``_sysconfigdata_*.py`` re-roots its paths at import
   (INCLUDEPY, LIBDIR, LIBPL, LDSHARED, ... name wherever the tree is now; the private libraries' prefixes
   become the tree's), ``lib/pkgconfig/*.pc`` (the private libraries' too) use ``${pcfiledir}``, the
   ``config-*/Makefile`` finds its prefix from its own path, ``python3.X-config`` is quoted for a prefix
   with a space, and every other ``#!INSTALL/bin/python`` script gets the launcher of step 4;
6. records what it did in ``NAME/BUILDKIT.json`` (key ``relocated``) and writes ``OUT/NAME.tar.gz``.

A portable build is made relocatable where it is built (``--in-place DIR``: steps 4 and 5, the emitted
script's make-relocatable step); ``--portable`` then only copies, records and packs it (steps 1 and 6).

Prints one line ``BUILDKIT-RELOCATE: {json}``. Exit status 0 done, 1 a file could not be made relocatable,
2 bad arguments.
"""

# ruff: noqa: UP031  (standalone, stdlib-only script for any CPython buildkit builds: plain % formatting)
import hashlib
import json
import os
import shutil
import stat
import struct
import sys
import tarfile

MARK = "BUILDKIT-RELOCATE: "
RECORD_SCHEMA = 2  # buildkit.pybuild.record.SCHEMA, of a BUILDKIT.json made here (this file imports no buildkit)

PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_STRTAB, DT_STRSZ, DT_RPATH, DT_RUNPATH = 0, 5, 10, 15, 29


class RelocateError(Exception):
    pass


# --- ELF ------------------------------------------------------------------------------------------------

def _elf_layout(data):
    """(endianness, is64, program headers) of an ELF image, or None when it is not one we can patch."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    end = "<" if data[5] == 1 else ">"
    is64 = data[4] == 2
    if is64:
        phoff, = struct.unpack_from(end + "Q", data, 32)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 54)
    else:
        phoff, = struct.unpack_from(end + "I", data, 28)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 42)
    phdrs = []
    for i in range(phnum):
        at = phoff + i * phentsize
        if at + phentsize > len(data):
            return None
        if is64:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(end + "IIQQQQ", data, at)
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(end + "IIIII", data, at)
        phdrs.append((p_type, p_offset, p_vaddr, p_filesz))
    return end, is64, phdrs


def _vaddr_to_offset(phdrs, vaddr):
    for p_type, p_offset, p_vaddr, p_filesz in phdrs:
        if p_type == PT_LOAD and p_vaddr <= vaddr < p_vaddr + p_filesz:
            return vaddr - p_vaddr + p_offset
    return None


def elf_runpaths(data):
    """[(file offset, string length, tag, value)] of the DT_RPATH/DT_RUNPATH strings of an ELF image."""
    layout = _elf_layout(data)
    if layout is None:
        return []
    end, is64, phdrs = layout
    dynamic = [p for p in phdrs if p[0] == PT_DYNAMIC]
    if not dynamic:
        return []
    _t, dyn_off, _v, dyn_size = dynamic[0]
    fmt, size = (end + "qQ", 16) if is64 else (end + "iI", 8)
    entries = []
    for at in range(dyn_off, min(dyn_off + dyn_size, len(data) - size + 1), size):
        tag, value = struct.unpack_from(fmt, data, at)
        if tag == DT_NULL:
            break
        entries.append((tag, value))
    strtab = next((v for t, v in entries if t == DT_STRTAB), None)
    if strtab is None:
        return []
    str_off = _vaddr_to_offset(phdrs, strtab)
    if str_off is None:
        return []
    found = []
    for tag, value in entries:
        if tag in (DT_RPATH, DT_RUNPATH):
            start = str_off + value
            stop = data.index(b"\0", start)
            found.append((start, stop - start, tag, data[start:stop].decode("utf-8", "surrogateescape")))
    return found


def _under(path, root):
    path, root = os.path.normpath(path), os.path.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def new_runpath(old, file_dir, mapping):
    """The ``$ORIGIN``-relative runpath for a file now in ``file_dir``: each entry under an old root of
    ``mapping`` ((old root, new root) pairs, longest first) becomes relative; other entries stay."""
    out = []
    for entry in old.split(":"):
        if not entry:
            continue
        target = None
        for old_root, new_root in mapping:
            if _under(entry, old_root):
                rest = os.path.relpath(os.path.normpath(entry), os.path.normpath(old_root))
                target = os.path.normpath(os.path.join(new_root, rest)) if rest != "." else new_root
                break
        if target is None:
            value = entry
        else:
            rel = os.path.relpath(target, file_dir)
            value = "$ORIGIN" if rel == "." else "$ORIGIN/" + rel
        if value not in out:
            out.append(value)
    return ":".join(out)


def patch_runpaths(path, file_dir, mapping):
    """Rewrite the runpaths of the ELF file ``path`` in place; returns [(old, new)] for those changed."""
    with open(path, "rb") as f:
        data = f.read()
    changes = []
    patches = []
    for start, length, _tag, old in elf_runpaths(data):
        new = new_runpath(old, file_dir, mapping)
        if new == old:
            continue
        raw = new.encode("utf-8", "surrogateescape")
        if len(raw) > length:
            raise RelocateError("%s: the new runpath %r is longer than the old %r" % (path, new, old))
        patches.append((start, raw + b"\0" * (length - len(raw))))
        changes.append((old, new))
    if patches:
        mode = os.stat(path).st_mode
        os.chmod(path, mode | stat.S_IWUSR)
        with open(path, "r+b") as f:
            for start, raw in patches:
                f.seek(start)
                f.write(raw)
        os.chmod(path, mode)
    return changes


def same_length_path(new, old):
    """``new`` padded with leading slashes to the length of ``old`` (``//////etc/ssl`` is ``/etc/ssl``)."""
    if not new.startswith("/") or len(new) > len(old):
        raise RelocateError("cannot put %r in place of %r: it must be absolute and not longer" % (new, old))
    return "/" * (len(old) - len(new)) + new


def patch_string(path, old, new):
    """Replace every occurrence of ``old`` by ``new`` (same length) in the file; returns the count."""
    old_b, new_b = old.encode(), new.encode()
    assert len(old_b) == len(new_b)
    with open(path, "rb") as f:
        data = f.read()
    count = data.count(old_b)
    if count:
        mode = os.stat(path).st_mode
        os.chmod(path, mode | stat.S_IWUSR)
        with open(path, "wb") as f:
            f.write(data.replace(old_b, new_b))
        os.chmod(path, mode)
    return count


# --- the tree -------------------------------------------------------------------------------------------

LAUNCHER = (
    "#!/bin/sh\n"
    "'''exec' \"$(dirname -- \"$(readlink -f -- \"$0\")\")/%s\" \"$0\" \"$@\"\n"
    "' '''\n"
)


def rewrite_shebang(path, install, dest=None):
    """``#!INSTALL/bin/python3.X`` -> a sh launcher of that interpreter, found from the script's own place
    (``path`` is in the copy ``dest`` of ``install``; without ``dest``, a script of ``bin/``)."""
    with open(path, "rb") as f:
        head = f.read(512)
    if not head.startswith(b"#!"):
        return False
    first = head.split(b"\n", 1)[0][2:].strip().decode("utf-8", "replace")
    interpreter = first.split()[0] if first else ""
    if not _under(interpreter, install) or os.path.dirname(interpreter) != os.path.join(install, "bin"):
        return False
    if dest is None:
        target = os.path.basename(interpreter)
    else:
        target = os.path.relpath(os.path.join(dest, "bin", os.path.basename(interpreter)), os.path.dirname(path))
    with open(path, "rb") as f:
        rest = f.read().split(b"\n", 1)[1]
    mode = os.stat(path).st_mode
    with open(path, "wb") as f:
        f.write((LAUNCHER % target).encode() + rest)
    os.chmod(path, mode)
    return True


# --- build-time configuration ---------------------------------------------------------------------------

# _sysconfigdata_*.py: sysconfig's values (INCLUDEPY, LIBDIR, LIBPL, LDSHARED, ...) name the build prefix.
# They are written with python-build-standalone's placeholder prefix, /install, which uv replaces with the
# real place when it installs an archive (at the start of a value; uv also re-serialises the file, so code
# added to it does not survive), and this tail re-roots it at import for a tree unpacked by hand. A word of a
# flags value that gets a path with a space is quoted, as setuptools' split_quoted and a shell read it.
PLACEHOLDER = "/install"
SYSCONFIG_TAIL = """

# Added by buildkit (relocate.py): the tree is relocatable. The build prefix is written as /install
# (python-build-standalone's placeholder, which uv replaces on install); here it becomes the place this
# file is in now, PREFIX/lib/pythonX.Y/, when it is imported.
def _buildkit_reroot(table):
    import os
    import re
    new = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spaced = any(c.isspace() for c in new)
    where = re.compile(r"(?:^|(?<=[\\s'\\"=,:])|(?<=-[IL]))/install(?=[/\\s'\\":]|$)")
    for key, value in list(table.items()):
        if not isinstance(value, str) or not where.search(value):
            continue
        if not spaced or len(value.split()) == 1:
            table[key] = where.sub(lambda m: new, value)
            continue
        words = []
        for word in value.split(" "):
            if where.search(word) and word[:1] not in "'\\"":
                word = "'" + where.sub(lambda m: new, word) + "'"
            words.append(where.sub(lambda m: new, word))
        table[key] = " ".join(words)


_buildkit_reroot(build_time_vars)
del _buildkit_reroot
"""


def _sysconfigdata(text, install, deps):
    """The build prefix and the private libraries' prefixes (copied into the tree) written as /install;
    ``-Wl,-rpath,`` words into them dropped (the private libraries are found by the tree's own runpaths,
    and an extension built later has no use for a path of the build machine); the re-rooting tail added."""
    if "_buildkit_reroot" in text:
        return text
    for prefix in sorted(deps, key=len, reverse=True) + [install]:
        for rpath in ("-Wl,-rpath," + prefix + "/lib ", "-Wl,-rpath," + prefix + "/lib'",
                      "-Wl,-rpath," + prefix + "/lib\""):
            text = text.replace(rpath, rpath[-1] if rpath[-1] != " " else "")
        text = text.replace(prefix, PLACEHOLDER)
    return text + SYSCONFIG_TAIL


def _rewrite_text(path, edit):
    """Apply ``edit`` (text -> text) to a text file in place, keeping its mode; True when it changed."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "surrogateescape")
    new = edit(text)
    if new == text:
        return False
    mode = os.stat(path).st_mode
    os.chmod(path, mode | stat.S_IWUSR)
    with open(path, "wb") as f:
        f.write(new.encode("utf-8", "surrogateescape"))
    os.chmod(path, mode)
    return True


def _pc_lines(text, prefix, pairs=()):
    """A ``.pc`` file whose ``prefix=`` (``prefix`` or under it) becomes ``${pcfiledir}/../..``-relative and
    whose other mentions of ``prefix`` become ``${prefix}``; ``pairs`` are replaced first."""
    lines = []
    for line in _replace_all(text, pairs).split("\n"):
        if line.startswith("prefix=") and _under(line[7:].strip(), prefix):
            rest = os.path.relpath(line[7:].strip(), prefix)
            line = "prefix=${pcfiledir}/../.." + ("" if rest == "." else "/" + rest)
        else:
            line = line.replace(prefix, "${prefix}")
        lines.append(line)
    return "\n".join(lines)


def _makefile_lines(text, prefix, pairs=()):
    """The ``config-*/Makefile``: ``prefix=`` found from the Makefile's own path, the rest ``$(prefix)``."""
    lines = []
    for line in _replace_all(text, pairs).split("\n"):
        key, eq, value = line.partition("=")
        if eq and key.strip() == "prefix" and value.strip() == prefix:
            # ':=' takes MAKEFILE_LIST now, while this file is the last one read (make splits a path
            # with a space into words: such a prefix is beyond make anyway)
            line = "prefix:=\t$(abspath $(dir $(lastword $(MAKEFILE_LIST)))../../..)"
        else:
            line = line.replace(prefix, "$(prefix)")
        lines.append(line)
    return "\n".join(lines)


def _replace_all(text, pairs):
    for old, new in pairs:
        text = text.replace(old, new)
    return text


def _python_config_sh(text):
    """CPython's python-config.sh finds its prefix from where it is, but without quotes: a prefix with a
    space in it breaks ``cd``. Quoted here (the only lines that need it)."""
    return (text.replace('RESULT=$(dirname $(cd $(dirname "$1") && pwd -P))',
                         'RESULT=$(dirname "$(cd "$(dirname "$1")" && pwd -P)")')
            .replace("    echo $RESULT\n", '    echo "$RESULT"\n'))


def relocate_config(dest, install, deps):
    """Make the build-time configuration of the copy ``dest`` of ``install`` independent of where it is:
    sysconfig's data re-roots itself at import; ``.pc`` files use ``${pcfiledir}``; the ``config-*``
    Makefile finds its prefix from its own path; other ``#!INSTALL/bin/python`` scripts get a launcher.
    The private libraries' prefixes (copied into ``lib/`` and ``include/``) become the tree's prefix.
    Returns {what: [files, relative to dest]}."""
    pairs = [(p, install) for p in sorted(deps, key=len, reverse=True)]
    done = {"sysconfigdata": [], "pkgconfig": [], "makefile": [], "scripts": []}
    for top, dirs, files in os.walk(dest):
        dirs.sort()
        for fname in sorted(files):
            path = os.path.join(top, fname)
            rel = os.path.relpath(path, dest)
            if os.path.islink(path) or not os.path.isfile(path) or _is_elf(path):
                continue
            parts = rel.split(os.sep)
            if parts[0] == "lib" and fname.startswith("_sysconfigdata_") and fname.endswith(".py"):
                if _rewrite_text(path, lambda t: _sysconfigdata(t, install, deps)):
                    done["sysconfigdata"].append(rel)
                    cache = os.path.join(top, "__pycache__")
                    for stale in sorted(os.listdir(cache)) if os.path.isdir(cache) else ():
                        if stale.startswith(fname[:-3] + "."):
                            os.unlink(os.path.join(cache, stale))
            elif parts[:2] == ["lib", "pkgconfig"] and fname.endswith(".pc"):
                if _rewrite_text(path, lambda t: _pc_lines(t, install, pairs)):
                    done["pkgconfig"].append(rel)
            elif len(parts) == 4 and parts[0] == "lib" and parts[2].startswith("config-") and fname == "Makefile":
                if _rewrite_text(path, lambda t: _makefile_lines(t, install, pairs)):
                    done["makefile"].append(rel)
            elif parts[0] == "bin" and fname.startswith("python") and fname.endswith("-config"):
                if _rewrite_text(path, _python_config_sh):
                    done["scripts"].append(rel)
            elif parts[0] != "bin" and rewrite_shebang(path, install, dest):
                done["scripts"].append(rel)
    for prefix in deps:  # the private libraries' .pc files: libssl, libcrypto, openssl, sqlite3
        src = os.path.join(prefix, "lib", "pkgconfig")
        for name in sorted(os.listdir(src)) if os.path.isdir(src) else ():
            target = os.path.join(dest, "lib", "pkgconfig", name)
            if name.endswith(".pc") and not os.path.lexists(target):
                with open(os.path.join(src, name), "rb") as f:
                    text = f.read().decode("utf-8", "surrogateescape")
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(_pc_lines(text, prefix).encode("utf-8", "surrogateescape"))
                done["pkgconfig"].append(os.path.relpath(target, dest))
    return done


def relocate_in_place(install, deps=()):
    """A build made relocatable where it is (a portable build: its libraries are linked in statically, no
    runpath to change): the ``bin/`` scripts get the sh launcher and the build-time configuration follows the
    tree (:func:`relocate_config`); the library prefixes ``deps`` it was compiled against, which a copy of the
    tree does not have, become the tree's own prefix in sysconfig's data and the ``config-*`` Makefile.
    Returns what changed: {"scripts": [...], "config": {...}}."""
    install = os.path.realpath(install)
    pairs = [(p, install) for p in sorted(deps, key=len, reverse=True)]
    for top, _dirs, files in os.walk(install):
        for fname in files:
            path = os.path.join(top, fname)
            wanted = (fname.startswith("_sysconfigdata_") and fname.endswith(".py")) or (
                fname == "Makefile" and os.path.basename(top).startswith("config-")) or (
                top == os.path.join(install, "bin") and fname.endswith("-config"))
            if wanted and not os.path.islink(path) and not _is_elf(path):
                _rewrite_text(path, lambda t: _replace_all(t, pairs))
    scripts = []
    bindir = os.path.join(install, "bin")
    for fname in sorted(os.listdir(bindir)):
        path = os.path.join(bindir, fname)
        if os.path.islink(path) or not os.path.isfile(path) or _is_elf(path) or fname.endswith("-config"):
            continue
        if rewrite_shebang(path, install):
            scripts.append(os.path.join("bin", fname))
    return {"scripts": scripts, "config": relocate_config(install, install, [])}


def _copy_libs(prefix, dest):
    copied = []
    for sub, pattern in (("lib", ".so"), ("include", "")):
        src = os.path.join(prefix, sub)
        if not os.path.isdir(src):
            continue
        for name in sorted(os.listdir(src)):
            path = os.path.join(src, name)
            if sub == "lib" and (pattern not in name or not name.startswith("lib")):
                continue
            target = os.path.join(dest, sub, name)
            if os.path.lexists(target):
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.islink(path):
                os.symlink(os.readlink(path), target)
            elif os.path.isdir(path):
                shutil.copytree(path, target, symlinks=True)
            else:
                shutil.copy2(path, target)
            copied.append(os.path.join(sub, name))
    return copied


def _is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _reset(info):
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def relocate(install, deps, openssl_prefix, openssldir, name, out, exclude=()):
    """Steps 1-6 of the module docstring: the relocated tree as ``OUT/NAME.tar.gz`` (the tree itself removed)."""
    relocated = relocate_tree(install, deps, openssl_prefix, openssldir, name, out, exclude)
    relocated.update(archive_tree(os.path.join(out, name), out, name))
    return relocated


def archive_tree(dest, out, name):
    """``dest`` as ``OUT/NAME.tar.gz`` (written under a temporary name, owned by root), then removed."""
    archive = os.path.join(out, name + ".tar.gz")
    tmp = archive + ".part"
    with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        tar.add(dest, arcname=name, filter=_reset)
    os.rename(tmp, archive)
    digest = hashlib.sha256()
    with open(archive, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    shutil.rmtree(dest)
    return {"archive": archive, "sha256": digest.hexdigest(), "size": os.path.getsize(archive)}


def package_tree(install, name, out, exclude=()):
    """A tree already relocatable (a portable build, made so by :func:`relocate_in_place` during the build)
    copied to ``OUT/NAME`` less ``exclude``, recorded, and packed as ``OUT/NAME.tar.gz``: nothing is rewritten."""
    install = os.path.realpath(install)
    dest = _copy_tree(install, out, name)
    excluded = _exclude(dest, exclude)
    relocated = {"name": name, "from": install, "portable": True, "excluded": excluded}
    _record(dest, relocated)
    relocated.update(archive_tree(dest, out, name))
    return relocated


def _copy_tree(install, out, name):
    """``install`` copied to ``OUT/NAME`` (symlinks as they are), replacing an earlier copy; its path."""
    dest = os.path.join(out, name)
    if os.path.lexists(dest):
        shutil.rmtree(dest)
    os.makedirs(out, exist_ok=True)
    shutil.copytree(install, dest, symlinks=True)
    return dest


def _record(dest, relocated):
    """``relocated`` under the key ``relocated`` of the copy's BUILDKIT.json (buildkit.pybuild.record), made when
    it has none."""
    path = os.path.join(dest, "BUILDKIT.json")
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        record = {"schema": RECORD_SCHEMA}
    record["relocated"] = relocated
    with open(path, "w") as f:
        json.dump(record, f, indent=2)


def _exclude(dest, exclude):
    excluded = []
    for rel in exclude:
        path = os.path.normpath(os.path.join(dest, rel))
        if not path.startswith(dest + os.sep):
            raise RelocateError("--exclude %r is not inside the tree" % rel)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
            excluded.append(rel)
        elif os.path.lexists(path):
            os.unlink(path)
            excluded.append(rel)
    return excluded


def relocate_tree(install, deps, openssl_prefix, openssldir, name, out, exclude=()):
    """Steps 1-5 and the record of step 6, into ``OUT/NAME`` (left there): what :func:`relocate` did."""
    install = os.path.realpath(install)
    dest = _copy_tree(install, out, name)
    excluded = _exclude(dest, exclude)
    libraries = []
    for prefix in deps:
        libraries += _copy_libs(prefix, dest)
    mapping = sorted([(install, dest)] + [(os.path.join(p, "lib"), os.path.join(dest, "lib")) for p in deps]
                     + [(p, os.path.join(dest, "lib")) for p in deps], key=lambda m: -len(m[0]))
    runpaths = []
    scripts = []
    for top, dirs, files in os.walk(dest):
        dirs.sort()
        for fname in sorted(files):
            path = os.path.join(top, fname)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            if _is_elf(path):
                for old, new in patch_runpaths(path, top, mapping):
                    runpaths.append({"file": os.path.relpath(path, dest), "old": old, "new": new})
            elif top == os.path.join(dest, "bin") and rewrite_shebang(path, install):
                scripts.append(os.path.relpath(path, dest))
    config = relocate_config(dest, install, deps)
    ssl_dir = None
    if openssl_prefix:
        old = os.path.join(openssl_prefix, "ssl")
        new = same_length_path(openssldir, old)
        count = 0
        for lib in sorted(os.listdir(os.path.join(dest, "lib"))):
            path = os.path.join(dest, "lib", lib)
            if lib.startswith("libcrypto.so") and os.path.isfile(path) and not os.path.islink(path):
                count += patch_string(path, old, new)
        if not count:
            raise RelocateError("OPENSSLDIR %s was not found in the private libcrypto" % old)
        ssl_dir = {"old": old, "new": openssldir, "replaced": count}
    leftovers = []
    for item in runpaths:
        if any(_under(e, r) for e in item["new"].split(":") for r, _ in mapping):
            leftovers.append(item["file"])
    if leftovers:
        raise RelocateError("runpaths still point into the build prefix: %s" % ", ".join(leftovers))

    relocated = {"name": name, "from": install, "libraries": libraries, "runpaths": runpaths,
                 "scripts": scripts, "openssldir": ssl_dir, "excluded": excluded, "config": config}
    _record(dest, relocated)
    return relocated


def main(argv):
    args = {"--install": None, "--openssl-prefix": "", "--openssldir": "/etc/ssl", "--name": None, "--out": None,
            "--in-place": None}
    deps = []
    exclude = []
    portable = False
    it = iter(argv)
    for arg in it:
        if arg == "--portable":
            portable = True
            continue
        key, eq, value = arg.partition("=")
        if key not in args and key not in ("--dep", "--exclude"):
            sys.stderr.write("relocate.py: unknown argument %r\n" % arg)
            return 2
        if not eq:
            value = next(it, None)
            if value is None:
                sys.stderr.write("relocate.py: %s needs a value\n" % key)
                return 2
        if key == "--dep":
            deps.append(value)
        elif key == "--exclude":
            exclude.append(value)
        else:
            args[key] = value
    if args["--in-place"] is None and (not args["--install"] or not args["--name"] or not args["--out"]):
        sys.stderr.write("usage: relocate.py --install DIR --name NAME --out DIR [--dep PREFIX]... "
                         "[--openssl-prefix PREFIX --openssldir DIR] [--exclude RELPATH]... [--portable]\n"
                         "       relocate.py --in-place DIR [--dep PREFIX]...\n")
        return 2
    try:
        if args["--in-place"] is not None:
            result = relocate_in_place(args["--in-place"], deps)
        elif portable:
            result = package_tree(args["--install"], args["--name"], args["--out"], exclude)
        else:
            result = relocate(args["--install"], deps, args["--openssl-prefix"], args["--openssldir"],
                              args["--name"], args["--out"], exclude)
    except (RelocateError, OSError) as e:
        sys.stderr.write("relocate.py: error: %s\n" % e)
        return 1
    sys.stdout.write(MARK + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
