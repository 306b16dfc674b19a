"""--update-deps planning (pure): which library is built, where, what is repointed, and what is refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from buildkit.errors import InputError
from buildkit.pybuild.choice import LibraryChoice
from buildkit.pybuild.host import HostInfo
from buildkit.pybuild.install import library_record, source_record
from buildkit.pybuild.plan import Request, make_plan
from buildkit.pybuild.record import BuildRecord, Library
from buildkit.pybuild.update import NothingToDo, make_update_plan, predicted_sonames, rebuild_command

HOST = HostInfo(None, None, "gcc 12.2.0", "2.36", "Debian 12", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs")
PREFIX = "/opt/py"
NEEDED = {"openssl": ("libcrypto.so.3", "libssl.so.3"), "sqlite": ("libsqlite3.so.0",)}


def to(**versions: str) -> tuple[LibraryChoice, ...]:
    """--with-openssl=V and/or --with-sqlite=V, as the command line reads them."""
    return tuple(LibraryChoice.parse(package, version) for package, version in versions.items())


def installed(openssl="3.0.20", sqlite="3.40.1"):
    plan = make_plan(Request("3.11.2", PREFIX, *to(openssl=openssl, sqlite=sqlite)), HOST)
    record = BuildRecord(build_id=plan.build_id, openssl=library_record(plan.openssl),
                         sqlite=library_record(plan.sqlite), sources=tuple(source_record(c) for c in plan.components))
    return plan, record


def test_sonames_by_release():
    assert predicted_sonames("openssl", "3.5.7") == ("libssl.so.3", "libcrypto.so.3")
    assert predicted_sonames("openssl", "1.1.1w") == ("libssl.so.1.1", "libcrypto.so.1.1")
    assert predicted_sonames("sqlite", "3.46.1") == ("libsqlite3.so.0",)


def test_update_builds_the_library_where_a_full_build_would_and_repoints_the_copy():
    plan, record = installed()
    up = make_update_plan(PREFIX, plan.install_dir, record, to(openssl="3.5.7"), NEEDED, HOST)
    full = make_plan(Request("3.11.2", PREFIX, *to(openssl="3.5.7", sqlite="3.40.1")), HOST)
    assert [c.package for c in up.components] == ["openssl"]
    assert up.components[0].prefix == full.openssl.prefix  # the same deps/openssl-3.5.7-<hash>
    assert up.choices["sqlite"].prefix == plan.sqlite.prefix  # untouched
    assert dict(up.mapping) == {plan.install_dir: up.install_dir, plan.openssl.prefix: full.openssl.prefix}
    assert up.install_dir != plan.install_dir and up.build_id.startswith("3.11.2-")
    assert up.compiled_against == {"openssl": "3.0.20", "sqlite": "3.40.1"}


def test_another_abi_is_refused_with_the_rebuild_command():
    plan, record = installed()
    with pytest.raises(InputError) as err:
        make_update_plan(PREFIX, plan.install_dir, record, to(openssl="1.1.1w"), NEEDED, HOST)
    text = str(err.value)
    assert "another ABI (libssl.so.1.1, libcrypto.so.1.1)" in text and "libssl.so.3" in text
    assert text.endswith("rebuild: buildkit python 3.11.2 --prefix /opt/py --with-openssl=1.1.1w --with-sqlite=3.40.1")


def test_an_older_series_than_compiled_against_is_refused():
    plan, record = installed(openssl="3.5.7")
    with pytest.raises(InputError, match="3.0.20 is an older series than the 3.5.7"):
        make_update_plan(PREFIX, plan.install_dir, record, to(openssl="3.0.20"), NEEDED, HOST)


def test_system_library_is_not_updated_in_place():
    plan, record = installed()
    record = replace(record, sqlite=Library("system", "3.40.1", "", ""))
    with pytest.raises(InputError, match="uses the system's SQLite, not a private one"):
        make_update_plan(PREFIX, plan.install_dir, record, to(sqlite="3.46.1"), NEEDED, HOST)


def test_same_versions_are_nothing_to_do():
    plan, record = installed()
    with pytest.raises(NothingToDo):
        make_update_plan(PREFIX, plan.install_dir, record, to(openssl="3.0.20"), NEEDED, HOST)


def test_rebuild_command_keeps_the_other_choice():
    plan, _ = installed()
    assert rebuild_command("/p", "3.11.2", {"openssl": plan.openssl, "sqlite": plan.sqlite}) == (
        "buildkit python 3.11.2 --prefix /p --with-openssl=3.0.20 --with-sqlite=3.40.1")
