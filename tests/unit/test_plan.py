"""Planning is pure: decisions from a host description and the catalog, every step listed, no disk."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest

from buildkit import catalog
from buildkit.errors import InputError
from buildkit.pybuild.choice import LibraryChoice
from buildkit.pybuild.host import HostInfo, SystemLib
from buildkit.pybuild.plan import Request, make_plan
from buildkit.pybuild.recipe import Action
from buildkit.pybuild.script import render_script

CENTOS7 = HostInfo(
    openssl=SystemLib("openssl", "1.0.2k", "/usr/include", "/usr/lib64"),
    sqlite=SystemLib("sqlite", "3.7.17", "/usr/include", "/usr/lib64"),
    compiler="gcc (GCC) 4.8.5 20150623 (Red Hat 4.8.5-44)", glibc="glibc 2.17", os="CentOS Linux 7 (Core)",
    ca_file="/etc/pki/tls/certs/ca-bundle.crt", ca_dir="",
)
MODERN = replace(CENTOS7, openssl=SystemLib("openssl", "3.0.19", "/usr/include", "/usr/lib/x86_64-linux-gnu"),
                 sqlite=SystemLib("sqlite", "3.40.1", "/usr/include", "/usr/lib/x86_64-linux-gnu"))


def configure(plan, package):
    comp = next(c for c in plan.components if c.package == package)
    step = next(s for s in comp.steps if s.phase == "configure" and not isinstance(s.run, Action))
    return list(step.run.argv), dict(step.run.env)


def test_centos7_gets_private_openssl_and_sqlite():
    plan = make_plan(Request("3.11.2", "/opt/py"), CENTOS7)
    assert (plan.openssl.how, plan.sqlite.how) == ("private", "private")
    assert "1.0.2k is older than 1.1.1" in plan.openssl.reason
    assert "3.7.17 is older than 3.8.3" in plan.sqlite.reason  # Django's minimum beats CPython's 3.7.15
    assert [c.package for c in plan.components] == ["openssl", "sqlite", "cpython"]
    argv, env = configure(plan, "cpython")
    assert f"--with-openssl={plan.openssl.prefix}" in argv and "--with-openssl-rpath=auto" not in argv
    # DT_RPATH (found before LD_LIBRARY_PATH): distutils' runtime_library_dirs would add --enable-new-dtags
    assert env["LDFLAGS"] == f"-Wl,--disable-new-dtags -Wl,-rpath,{plan.openssl.prefix}/lib"
    assert env["LIBSQLITE3_LIBS"].startswith(f"-L{plan.sqlite.prefix}/lib -Wl,-rpath,{plan.sqlite.prefix}/lib")
    assert plan.install_dir.startswith("/opt/py.buildkit/builds/3.11.2-")


def test_openssl_recipe_avoids_the_lib64_and_docs_traps():
    plan = make_plan(Request("3.11.2", "/opt/py"), CENTOS7)
    argv, _ = configure(plan, "openssl")
    assert "--libdir=lib" in argv and "shared" in argv and "-Wl,-rpath,$(LIBRPATH)" in argv
    comp = plan.components[0]
    assert [s.run.argv for s in comp.steps if s.phase == "install"] == [("make", "install_sw")]
    ca = next(s.run for s in comp.steps if isinstance(s.run, Action))
    assert ca.name == "link-ca-store" and ca.args[1] == "/etc/pki/tls/certs/ca-bundle.crt"


def test_modern_host_uses_the_system_libraries():
    plan = make_plan(Request("3.11.2", "/opt/py"), MODERN)
    assert (plan.openssl.how, plan.sqlite.how) == ("system", "system")
    assert [c.package for c in plan.components] == ["cpython"]
    argv, env = configure(plan, "cpython")
    assert not any(a.startswith("--with-openssl") for a in argv) and not env


def test_old_cpython_uses_ldflags_rpath_and_cppflags():
    plan = make_plan(Request("3.9", "/opt/py", with_openssl=LibraryChoice.parse("openssl", "1.1.1w"),
                             with_sqlite=LibraryChoice.parse("sqlite", "3.45")), MODERN)
    argv, env = configure(plan, "cpython")
    assert "--with-openssl-rpath=auto" not in argv
    assert f"-Wl,-rpath,{plan.openssl.prefix}/lib" in env["LDFLAGS"]
    assert env["CPPFLAGS"] == f"-I{plan.sqlite.prefix}/include" and "LIBSQLITE3_CFLAGS" not in env


def test_full_sqlite_tree_disables_tcl():
    full = next(s for s in catalog.candidates("sqlite", "3.40.1") if s.kind == "full")
    plan = make_plan(Request("3.11.2", "/opt/py", with_sqlite=LibraryChoice.parse("sqlite", "3.40.1")), CENTOS7,
                     {"sqlite": full})
    argv, _ = configure(plan, "sqlite")
    assert "--disable-tcl" in argv


@pytest.mark.parametrize(
    "kwargs, host, message",
    [
        ({"with_openssl": "system"}, CENTOS7, "system OpenSSL 1.0.2k is older than 1.1.1"),
        ({"with_openssl": "system"}, replace(CENTOS7, openssl=None), "no system OpenSSL was found"),
        ({"with_openssl": "1.0"}, MODERN, "openssl 1.0 is not in the catalog"),
        ({"with_sqlite": "3.7"}, MODERN, "sqlite 3.7 is not in the catalog"),
    ],
)
def test_bad_choices_are_one_line_errors(kwargs, host, message):
    with pytest.raises(InputError, match=message):
        make_plan(Request("3.11.2", "/opt/py", **{k: LibraryChoice.parse(k.removeprefix("with_"), v)
                                                 for k, v in kwargs.items()}), host)


def test_unknown_cpython_names_nearest():
    with pytest.raises(InputError, match=r"cpython 3\.11\.99 is not in the catalog; nearest known: 3\.11"):
        make_plan(Request("3.11.99", "/opt/py"), MODERN)


def test_identity_is_stable_and_follows_the_sources():
    a = make_plan(Request("3.11.2", "/opt/py"), CENTOS7)
    b = make_plan(Request("3.11.2", "/opt/py", jobs=16), CENTOS7)
    c = make_plan(Request("3.11.2", "/opt/py", with_openssl=LibraryChoice.parse("openssl", "3.0.19")), CENTOS7)
    d = make_plan(Request("3.11.2", "/opt/py", clean=True, salt="1"), CENTOS7)
    assert a.build_id == b.build_id  # make -j is not part of what is built
    assert a.build_id != c.build_id and a.openssl.prefix != c.openssl.prefix  # another OpenSSL: a clean build
    assert a.sqlite.prefix == c.sqlite.prefix  # ... and SQLite is reused
    assert d.build_id != a.build_id and d.openssl.prefix != a.openssl.prefix  # --clean: nothing reused


def test_emitted_script_is_valid_sh_with_the_checksums(tmp_path):
    plan = make_plan(Request("3.11.2", str(tmp_path / "py")), CENTOS7)
    text = render_script(plan)
    path = tmp_path / "build.sh"
    path.write_text(text)
    assert subprocess.run(["sh", "-n", str(path)]).returncode == 0
    for comp in plan.components:
        assert comp.source.sha256 in text
    assert "'-Wl,-rpath,$(LIBRPATH)'" in text  # quoted for sh, expanded by OpenSSL's make
    assert "env -i PATH=/usr/bin:/bin" in text


def cpython_step(plan, phase):
    comp = next(c for c in plan.components if c.package == "cpython")
    return [s.run for s in comp.steps if s.phase == phase]


def test_optimize_is_pgo_lto_with_a_parallel_profile_run_and_its_own_identity():
    plain = make_plan(Request("3.13.5", "/opt/py"), CENTOS7)
    opt = make_plan(Request("3.13.5", "/opt/py", optimize=True, jobs=2), CENTOS7)
    opt16 = make_plan(Request("3.13.5", "/opt/py", optimize=True, jobs=16), CENTOS7)
    assert opt.build_id != plain.build_id and opt.install_dir != plain.install_dir  # never the plain build's
    assert opt.build_id == opt16.build_id  # the profile run's -jN, like make's, is not identity
    assert (opt.openssl.prefix, opt.sqlite.prefix) == (plain.openssl.prefix, plain.sqlite.prefix)  # deps shared
    argv, _ = configure(opt, "cpython")
    assert {"--enable-optimizations", "--with-lto"} <= set(argv)
    assert "--enable-optimizations" not in configure(plain, "cpython")[0]
    (make,) = cpython_step(opt, "build")
    # || true: a failed test of the training run does not stop the build (check-optimized judges the run)
    assert make.argv == ("make", "-j2", "PROFILE_TASK=-m test --pgo -j2 --timeout=$(TESTTIMEOUT) || true")
    (make1,) = cpython_step(make_plan(Request("3.13.5", "/opt/py", optimize=True, jobs=1), CENTOS7), "build")
    assert make1.argv[-1] == "PROFILE_TASK=-m test --pgo --timeout=$(TESTTIMEOUT) || true"  # one job: in-process
    srcdir = next(c.srcdir for c in opt.components if c.package == "cpython")
    assert cpython_step(opt, "configure")[0] == Action("check-test-suite", (srcdir,))
    assert Action("check-optimized", (srcdir,)) in cpython_step(opt, "post")
    assert not any(isinstance(r, Action) and r.name.startswith(("check-test", "check-opt"))
                   for c in plain.components for r in (s.run for s in c.steps))
    assert opt.to_json()["optimize"] is True and plain.to_json()["optimize"] is False


def test_optimized_script_checks_the_toolchain_and_the_profile(tmp_path):
    plan = make_plan(Request("3.11.2", str(tmp_path / "py"), optimize=True), CENTOS7)
    text = render_script(plan)
    path = tmp_path / "build.sh"
    path.write_text(text)
    assert subprocess.run(["sh", "-n", str(path)]).returncode == 0
    assert "check_optimizer\n" in text and "-fuse-linker-plugin -ffat-lto-objects -fprofile-generate" in text
    assert "action_check_test_suite " in text and "action_check_optimized " in text
    assert "--expect-optimized --record" in text
    assert "'PROFILE_TASK=-m test --pgo -j2 --timeout=$(TESTTIMEOUT) || true'" in text  # quoted: for make's sh
    plain = render_script(make_plan(Request("3.11.2", str(tmp_path / "py")), CENTOS7))
    assert "check_optimizer\n" not in plain and "--expect-optimized --record" not in plain


def test_optimized_script_refuses_a_compiler_without_lto(tmp_path):
    """The emitted script's first check, run for real: a CC that cannot link -flto stops it, exit 2."""
    plan = make_plan(Request("3.11.2", str(tmp_path / "py"), optimize=True), CENTOS7)
    path = tmp_path / "build.sh"
    path.write_text(render_script(plan))
    run = subprocess.run(["sh", str(path), str(tmp_path)], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "CC": "false"})
    assert run.returncode == 2
    assert run.stderr.startswith("build.sh: error: --optimize: false cannot link with -flto -fuse-linker-plugin")
    assert len(run.stderr.splitlines()) == 1 and not (tmp_path / "py.buildkit").exists()


def test_emitted_script_of_a_relative_prefix_names_it_absolutely(tmp_path, monkeypatch):
    """Issue 17 item 7: PREFIX=rel/py beside an absolute STATE put the final link relative to where it ran."""
    monkeypatch.chdir(tmp_path)
    plan = make_plan(Request("3.11.2", "rel/py"), CENTOS7)
    text = render_script(plan)
    assert f"PREFIX={tmp_path}/rel/py\n" in text or f"PREFIX='{tmp_path}/rel/py'\n" in text, text[:800]
    assert "PREFIX=rel/py" not in text and "PREFIX='rel/py'" not in text
