"""--portable's planning and floor promises, without building: the plan is pure, the floor reads real ELF files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from buildkit.errors import InputError
from buildkit.pybuild.choice import LibraryChoice
from buildkit.pybuild.floor import floor, floor_checks
from buildkit.pybuild.plan import Request, make_plan
from buildkit.pybuild.recipe import Action
from buildkit.pybuild.toolchain import Toolchain, compile_env, spec_for
from tests.unit.test_plan import CENTOS7, MODERN

TC = Toolchain(spec_for("2.17"), "/tc", "2.17")
SYSROOT = "/tc/x86_64-unknown-linux-gnu/sysroot"


def commands(comp):
    return [s.run for s in comp.steps if not isinstance(s.run, Action)]


def test_portable_plan_builds_every_library_on_the_sysroot():
    plan = make_plan(Request("3.13.5", "/opt/py", toolchain=TC), MODERN)  # a modern host's libraries are not used
    assert [c.package for c in plan.components] == ["linux-uapi", "zlib", "bzip2", "xz", "libffi", "ncurses", "readline", "util-linux",
                                                    "openssl", "sqlite", "cpython"]
    assert (plan.openssl.how, plan.sqlite.how) == ("private", "private")
    uapi = plan.components[0]
    assert [(s.phase, s.run.argv[0]) for s in uapi.steps] == [("install", "sh"), ("smoke", "sh")]
    for comp in plan.components[1:]:  # the uapi headers are copied, not compiled
        envs = [dict(c.env) for c in commands(comp) if c.env]
        words = [w for c in commands(comp) for w in c.argv]
        # every compile names the sysroot: in the environment, or (bzip2's Makefile) as a make variable
        assert any(f"--sysroot={SYSROOT}" in e.get("CC", "") for e in envs) or \
            any(w.startswith("CC=gcc ") and f"--sysroot={SYSROOT}" in w for w in words), comp.package
        for env in envs:
            # pkg-config sees the build's own prefixes only, never the host's .pc files
            assert all(d.startswith("/opt/py.buildkit/deps/") or d == "/tc/no-pkgconfig"
                       for d in env.get("PKG_CONFIG_LIBDIR", "").split(":") if d), comp.package
            assert "/usr/include" not in " ".join(env.values()) and "/usr/lib/" not in " ".join(env.values())
    cpython = plan.components[-1]
    configure = next(c for c in commands(cpython) if c.argv[0] == "./configure")
    env = dict(configure.env)
    assert f"--with-openssl={plan.openssl.prefix}" in configure.argv
    assert env["ZLIB_LIBS"].endswith("/lib -lz") and env["LIBFFI_CFLAGS"].startswith("-I/opt/py.buildkit/deps/libffi-")
    assert "rpath" not in env.get("LDFLAGS", "")  # static: nothing to find at run time
    # the newer kernel headers come first, ahead of the sysroot's own /usr/include (os.pidfd_open, getrandom)
    assert env["CPPFLAGS"].split()[0] == f"-I{uapi.prefix}/include"
    openssl = plan.components[8]
    argv = next(c.argv for c in commands(openssl) if c.argv[0] == "./config")
    assert "no-shared" in argv and "--openssldir=/etc/ssl" in argv and "-fPIC" in argv
    assert not any(isinstance(s.run, Action) and s.run.name == "link-ca-store" for s in openssl.steps)
    post = [s.run for s in cpython.steps if s.phase == "post"]
    assert post[0].args == ("_ssl", "_hashlib", "_sqlite3", "zlib", "_bz2", "_lzma", "_ctypes", "_curses",
                            "_curses_panel", "readline", "_uuid")
    readline = plan.components[6]
    ncurses = plan.components[5].prefix
    configure = next(c for c in commands(readline) if c.argv[0] == "./configure")
    assert dict(configure.env)["CPPFLAGS"] == f"-I{ncurses}/include"  # readline is built on the build's ncurses
    assert env["LIBREADLINE_LIBS"].endswith(f"-lreadline -L{ncurses}/lib -lncursesw")
    assert post[1].argv[0] == "find" and "{gcc}g" in post[1].argv[-3]  # sysconfig names gcc, not the sysroot


def test_portable_build_has_its_own_identity_and_library_prefixes():
    plain = make_plan(Request("3.13.5", "/opt/py", LibraryChoice.parse("openssl", "private"),
                              LibraryChoice.parse("sqlite", "private")), CENTOS7)
    portable = make_plan(Request("3.13.5", "/opt/py", toolchain=TC), CENTOS7)
    assert plain.build_id != portable.build_id
    assert plain.openssl.prefix != portable.openssl.prefix  # a shared OpenSSL is not a static one
    other = make_plan(Request("3.13.5", "/opt/py", toolchain=Toolchain(TC.spec, "/elsewhere", "2.17")), CENTOS7)
    assert other.build_id != portable.build_id


@pytest.mark.parametrize(("request_", "message"), [
    (Request("3.11.2", "/opt/py", toolchain=TC), "--portable builds CPython 3.12 and newer, not 3.11.2"),
    (Request("3.13.5", "/opt/py", LibraryChoice.parse("openssl", "system"), toolchain=TC),
     "--portable with --with-openssl=system"),
    (Request("3.13.5", "/opt/py", with_sqlite=LibraryChoice.parse("sqlite", "/opt/sqlite"), toolchain=TC),
     "--portable with --with-sqlite=/opt/sqlite"),
])
def test_portable_refuses_what_defeats_it(request_, message):
    with pytest.raises(InputError, match=message.replace("+", r"\+")):
        make_plan(request_, CENTOS7)


def test_glibc_targets():
    assert spec_for("2.28").glibc == "2.17"  # an older floor meets a newer target
    with pytest.raises(InputError, match=r"--glibc 2.12: no toolchain.*oldest buildkit targets is glibc 2.17"):
        spec_for("2.12")
    with pytest.raises(InputError, match="--glibc 'centos7' is not a glibc version"):
        spec_for("centos7")


def test_the_compiler_never_searches_the_hosts_library_folders(tmp_path: Path):
    """Debian's gcc adds /usr/lib/x86_64-linux-gnu to the link even with --sysroot: the specs file takes gcc's
    library folders away, so a library the sysroot lacks (libz) is not found on the host instead."""
    from buildkit.pybuild.toolchain import write_specs

    sysroot = tmp_path / "x86_64-unknown-linux-gnu" / "sysroot"
    sysroot.mkdir(parents=True)
    tc = Toolchain(TC.spec, str(tmp_path), "2.17")
    write_specs(str(tmp_path))
    assert tc.cc.startswith(f"gcc --sysroot={sysroot} ") and tc.cc.endswith(f" -specs={tmp_path}/buildkit-host-gcc.specs")
    # CPython's configure: CC_BASENAME=$(expr "//$CC" : '.*/\(.*\)'), then case *gcc*) for the PGO flags
    basename = subprocess.run(["expr", "//" + tc.cc, ":", ".*/\\(.*\\)"], capture_output=True, text=True).stdout
    assert "gcc" in basename, basename
    src = tmp_path / "m.c"
    src.write_text("int main(void) { return 0; }\n")
    base = ["gcc", f"-specs={tc.specs}", str(src), "-c", "-o", str(tmp_path / "m.o")]
    assert subprocess.run(base, capture_output=True).returncode == 0
    if not Path("/usr/lib/x86_64-linux-gnu/libz.so").exists():
        pytest.skip("this host has no libz.so to leak")
    # An empty sysroot and no C library (-nostdlib -shared): only where -lz is searched for differs.
    link = [f"--sysroot={sysroot}", "-shared", "-nostdlib", str(tmp_path / "m.o"), "-lz", "-o"]
    plain = subprocess.run(["gcc", *link, str(tmp_path / "a.so")], capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr  # without the specs, the host's libz is found
    specs = subprocess.run(["gcc", f"-specs={tc.specs}", *link, str(tmp_path / "b.so")], capture_output=True, text=True)
    assert specs.returncode != 0 and "cannot find -lz" in specs.stderr


def test_compile_env_merges_flags():
    env = compile_env(TC, ["/p/zlib"], {"CFLAGS": "-DX", "CC": "other"})
    assert env["CFLAGS"] == "-O2 -fPIC -DX" and env["CC"] == "other"
    assert env["CPPFLAGS"] == "-I/p/zlib/include" and env["PKG_CONFIG_LIBDIR"] == "/p/zlib/lib/pkgconfig"
    assert compile_env(TC)["PKG_CONFIG_LIBDIR"] == "/tc/no-pkgconfig"  # never the host's .pc files


def test_floor_over_the_target_names_file_and_symbol(tmp_path: Path):
    """A binary of this host (glibc >= 2.34) against a 2.17 target: refused, naming the file and a symbol."""
    ls = tmp_path / "bin" / "ls"
    ls.parent.mkdir()
    shutil.copy(shutil.which("ls") or "/bin/ls", ls)
    fl = floor([str(tmp_path)], True, glibc_max="2.17", self_contained=True)
    check = next(c for c in floor_checks(fl) if c[0] == "glibc floor")
    assert not check[1], check
    assert "need a glibc newer than 2.17" in check[2] and "bin/ls (" in check[2]
    versions = subprocess.run(["objdump", "-T", str(ls)], capture_output=True, text=True).stdout
    assert any(sym in check[2] for sym in versions.split()), check[2]  # a real symbol of the file
    roomy = floor([str(tmp_path)], True, glibc_max="9.99", self_contained=True)
    assert next(c for c in floor_checks(roomy) if c[0] == "glibc floor")[1]


def test_self_contained_allows_only_the_c_runtime(tmp_path: Path):
    """libselinux, libz or libffi of the host are a plain build's business, not a portable one's."""
    found = next((p for p in ("/usr/bin/python3.11", "/usr/bin/ls", "/bin/ls") if Path(p).exists()), None)
    assert found
    target = tmp_path / "bin" / "x"
    target.parent.mkdir()
    shutil.copy(found, target)
    needed = floor([str(tmp_path)], True).files[0].needed
    extra = [lib for lib in needed if not lib.startswith(("libc.so", "libm.so", "ld-linux", "libpthread", "libdl"))]
    if not extra:
        pytest.skip(f"{found} needs only the C runtime here: nothing to refuse")
    fl = floor([str(tmp_path)], True, self_contained=True)
    check = next(c for c in floor_checks(fl) if c[0] == "linked libraries (DT_NEEDED)")
    assert not check[1] and f"needs {extra[0]}" in check[2]


def test_bundle_refuses_what_is_not_a_verified_portable_tree(tmp_path: Path):
    import json
    import sys

    def bundle(python: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "buildkit", "bundle", "--python", str(python), "--out",
                               str(tmp_path)], capture_output=True, text=True)

    plain, unverified = tmp_path / "plain", tmp_path / "unverified"
    for tree, record in ((plain, {"portable": None, "verified": True}),
                         (unverified, {"portable": {"glibc": "2.17"}, "verified": False})):
        tree.mkdir()
        (tree / "BUILDKIT.json").write_text(json.dumps(record))
    for tree, message in ((tmp_path / "absent", "no BUILDKIT.json there"),
                          (plain, "a plain build, which runs only on hosts like the one it was built on"),
                          (unverified, "its build did not pass verification")):
        run = bundle(tree)
        assert run.returncode == 2 and message in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "unverified"]  # nothing written


def test_quoting_turns_the_placeholder_into_the_scripts_variable():
    from buildkit.pybuild.script import sh_quote
    from buildkit.pybuild.toolchain import PLACEHOLDER

    assert sh_quote("plain word") == "'plain word'"
    assert sh_quote(f"gcc --sysroot={PLACEHOLDER}/s -B{PLACEHOLDER}/b") == "'gcc --sysroot='\"$TOOLCHAIN\"'/s -B'\"$TOOLCHAIN\"/b"
    out = subprocess.run(["sh", "-c", f"TOOLCHAIN='/a b'; printf %s {sh_quote(f'x {PLACEHOLDER}/y')}"], capture_output=True,
                         text=True)
    assert out.stdout == "x /a b/y"


def _portable_script(tmp_path: Path) -> Path:
    from buildkit.pybuild.script import write_script
    from buildkit.pybuild.toolchain import script_toolchain

    plan = make_plan(Request("3.13.5", str(tmp_path / "py"), toolchain=script_toolchain("2.17")), MODERN)
    path = tmp_path / "build.sh"
    write_script(plan, str(path))
    return path


def test_portable_script_names_the_toolchain_only_by_its_variable(tmp_path: Path):
    from buildkit.pybuild.script import render_script

    script = _portable_script(tmp_path)
    text = script.read_text()
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    assert "@TOOLCHAIN@" not in text and "--sysroot='\"$TOOLCHAIN\"'/x86_64-unknown-linux-gnu/sysroot" in text
    assert "check_floor \"$INSTALL\"" in text and "BUILDKIT_RELOCATE" in text and "action_make_relocatable" in text
    # a plan whose toolchain is a folder of this machine is not one to send elsewhere
    with pytest.raises(ValueError, match="placeholder"):
        render_script(make_plan(Request("3.13.5", "/opt/py", toolchain=TC), MODERN))


@pytest.mark.parametrize("given, message", [
    (None, "a portable build needs its toolchain: npm pack @napi-rs/cross-toolchain-x64-target-x86_64@1.0.0"),
    ("bogus.tgz", "is not @napi-rs/cross-toolchain-x64-target-x86_64@1.0.0 (expected sha256 351f6ee9"),
    ("folder", "no x86_64-unknown-linux-gnu/sysroot/lib64/libc-2.17.so there"),
])
def test_portable_script_checks_its_toolchain_before_fetching(tmp_path: Path, given, message):
    """The script itself (sh), run as far as its toolchain check: a missing, wrong or empty toolchain is one
    line and exit 2, before any tarball is looked for."""
    script = _portable_script(tmp_path)
    argv = ["sh", str(script), str(tmp_path)]
    if given == "bogus.tgz":
        (tmp_path / given).write_bytes(b"not the package\n")
    elif given == "folder":
        (tmp_path / given).mkdir()
    if given:
        argv.append(str(tmp_path / given))
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert run.returncode == 2 and len(errors) == 1 and message in errors[0], run.stderr
    assert "downloading" not in run.stderr and not (tmp_path / "py.buildkit" / "work").exists()
