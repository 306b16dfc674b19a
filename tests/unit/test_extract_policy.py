"""buildkit's one extraction policy (buildkit/sources/extract.py), proven on crafted tar archives through both of
its doors: ``safe_extract`` (source tarballs) and the container engine's ``safe_extract_tar`` (what a build
container gives back; ``Container.copy_out`` itself is tested in test_container_engine). Both refuse a link that
points out, chains of links that lead out, and hard links to anything but an earlier file of the archive; only
the container's copy accepts a link its caller declares (a private OpenSSL's CA-store links), and nothing may be
written through that link or reach it by another one."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from buildkit.container.engine import safe_extract_tar
from buildkit.errors import BuildFailed, BuildkitError, InputError
from buildkit.sources import extract, safe_extract

CA_FILE, CA_DIR = "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs"
#: what a caller copying a private OpenSSL's prefix declares: its ssl/ links to the system's CA store
CA_LINKS = {"top/ssl/cert.pem": CA_FILE, "top/ssl/certs": CA_DIR}
WITH_CA = (("top/ssl", "dir", ""), ("top/ssl/cert.pem", "sym", CA_FILE), ("top/ssl/certs", "sym", CA_DIR))
WHAT = "cell: /opt/buildkit/python-3.12"  # how the container's copy names the archive in its messages


def crafted(*members: tuple[str, str, str], mode: int = 0o644) -> bytes:
    """A tar archive of TOP/ and TOP/ok.txt, then ``members``: (name, kind, payload), kind file|dir|sym|hard,
    payload the file's text or the link's target."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, payload in (("top", "dir", ""), ("top/ok.txt", "file", "ok\n"), *members):
            info = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                data = payload.encode()
                info.size, info.mode = len(data), mode
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                info.type, info.linkname = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[kind], payload
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def from_sources(data: bytes, dest: Path) -> Path:
    archive = dest.parent / "crafted.tar"
    archive.write_bytes(data)
    return safe_extract(archive, dest)


def from_container(data: bytes, dest: Path, expected: dict[str, str] | None = None) -> Path:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tops = safe_extract_tar(tar, dest, what=WHAT, expected_links=expected)
    assert tops == [dest.resolve() / "top"]
    return tops[0]


DOORS = {"sources": from_sources, "container": from_container}


@pytest.fixture(params=list(DOORS))
def door(request):
    return DOORS[request.param]


@pytest.fixture(params=[pytest.param(True, id="data-filter", marks=pytest.mark.skipif(
    not hasattr(tarfile, "data_filter"), reason="no tarfile data filter")), pytest.param(False, id="own-checks-only")])
def data_filter(request, monkeypatch):
    monkeypatch.setattr(extract, "_HAS_DATA_FILTER", request.param)
    return request.param


def refused(unpack, data: bytes, dest: Path, name: str, why: str, **kw) -> BuildkitError:
    """``unpack`` refuses ``data`` naming the member ``name`` and ``why``, in one line, and leaves ``dest`` empty."""
    with pytest.raises(BuildkitError) as err:
        unpack(data, dest, **kw)
    text = str(err.value)
    assert f"refusing member {name!r}: " in text and why in text, text
    assert "\n" not in text
    assert list(dest.iterdir()) == []  # nothing written, the temporary folder removed
    return err.value


def test_links_inside_and_hard_links_to_earlier_files_are_kept(tmp_path, door, data_filter):
    top = door(crafted(("top/lib", "sym", "ok.txt"), ("top/sub", "dir", ""), ("top/sub/up", "sym", "../ok.txt"),
                       ("top/again.txt", "hard", "top/ok.txt"), ("top/sub/chain", "sym", "up")), tmp_path / "out")
    assert os.readlink(top / "lib") == "ok.txt" and (top / "sub" / "up").read_bytes() == b"ok\n"
    assert (top / "sub" / "chain").read_bytes() == b"ok\n"  # a chain of links that stays inside
    assert (top / "again.txt").read_bytes() == b"ok\n" and (top / "again.txt").stat().st_nlink == 2


@pytest.mark.parametrize("member, why", [
    (("top/passwd", "sym", "/etc/passwd"), "symlink to an absolute path '/etc/passwd'"),
    (("top/cert.pem", "sym", CA_FILE), f"symlink to an absolute path {CA_FILE!r}"),  # not declared: refused
    (("top/escape", "sym", "../../outside"), "symlink pointing outside the destination ('../../outside')"),
    (("top/hard", "hard", "../outside"), "hard link to '../outside', outside the destination"),
    (("top/hard", "hard", "/etc/passwd"), "hard link to '/etc/passwd', outside the destination"),
    (("top/hard", "hard", "top/missing"), "hard link to 'top/missing', which is not an earlier file of the archive"),
])
def test_a_link_out_is_refused_by_both(tmp_path, door, data_filter, member, why):
    error = refused(door, crafted(member), tmp_path / "out", member[0], why)
    assert not (tmp_path / "outside").exists()
    # the same one line, each naming its archive: the source tarball's path, or the container's copy
    prefix = f"{tmp_path / 'crafted.tar'}: " if door is from_sources else f"{WHAT}: "
    assert error.message.startswith(f"{prefix}refusing member {member[0]!r}: {why}")
    assert isinstance(error, InputError if door is from_sources else BuildFailed)


@pytest.mark.parametrize("members, name", [
    # top/x/d -> .. is top; top/x/e -> d/../.. looks like 'top' written out, but really is two levels above it.
    ([("top/x", "dir", ""), ("top/x/d", "sym", ".."), ("top/x/e", "sym", "d/../../..")], "top/x/e"),
    # top/a -> b/c/../.. is checked while b and c are missing (then it is top); b -> . and c -> . make it two
    # levels above top once the whole archive is written.
    ([("top/a", "sym", "b/c/../.."), ("top/b", "sym", "."), ("top/c", "sym", ".")], "top/a"),
    # top/x/up -> .. is top; top/x/up2 -> up/../.. is above the destination; a file written through it would be too.
    ([("top/x", "dir", ""), ("top/x/up", "sym", ".."), ("top/x/up2", "sym", "up/../.."),
      ("top/x/up2/evil", "file", "x")], "top/x/up2"),
])
def test_a_chain_of_links_out_is_refused_by_both(tmp_path, door, data_filter, members, name):
    refused(door, crafted(*members), tmp_path / "out", name, "outside the destination")
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


def test_the_declared_ca_links_are_kept(tmp_path, data_filter):
    top = from_container(crafted(*WITH_CA, ("top/lib", "sym", "ok.txt")), tmp_path / "out", CA_LINKS)
    assert os.readlink(top / "ssl" / "cert.pem") == CA_FILE and os.readlink(top / "ssl" / "certs") == CA_DIR
    assert os.readlink(top / "lib") == "ok.txt"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["top"]  # no temporary folder left
    # A source archive has no declared links: the same archive is refused there.
    refused(from_sources, crafted(*WITH_CA), tmp_path / "src", "top/ssl/cert.pem",
            f"symlink to an absolute path {CA_FILE!r}")


@pytest.mark.parametrize("members, name, why", [
    # the declared path with another target, and the declared target at another path
    ([("top/ssl", "dir", ""), ("top/ssl/cert.pem", "sym", "/etc/shadow")], "top/ssl/cert.pem",
     f"symlink to an absolute path '/etc/shadow' (the link expected there points to {CA_FILE!r})"),
    ([("top/other.pem", "sym", CA_FILE)], "top/other.pem", f"symlink to an absolute path {CA_FILE!r}"),
    # a chain of links through a declared one is not declared: after it, and before it (judged at the end)
    ([*WITH_CA, ("top/ca.pem", "sym", "ssl/cert.pem")], "top/ca.pem", "resolves outside the destination"),
    ([("top/ca.pem", "sym", "ssl/cert.pem"), *WITH_CA], "top/ca.pem", "once the whole archive is written"),
    ([*WITH_CA, ("top/bundle", "sym", "ssl/certs/ca-certificates.crt")], "top/bundle", "outside the destination"),
    # a hard link to the declared symlink would be a hard link to the system's file
    ([*WITH_CA, ("top/hard.pem", "hard", "top/ssl/cert.pem")], "top/hard.pem", "not an earlier file of the archive"),
])
def test_only_the_declared_link_may_point_out(tmp_path, data_filter, members, name, why):
    refused(from_container, crafted(*members), tmp_path / "out", name, why, expected=CA_LINKS)


def test_nothing_is_written_through_a_declared_link(tmp_path, data_filter):
    system = tmp_path / "system-certs"  # stands for /etc/ssl/certs: where a write through the link would land
    system.mkdir()
    data = crafted(("top/ssl", "dir", ""), ("top/ssl/certs", "sym", str(system)), ("top/ssl/certs/evil.pem", "file", "x"))
    refused(from_container, data, tmp_path / "out", "top/ssl/certs/evil.pem",
            "its folder leads outside the destination through a symlink", expected={"top/ssl/certs": str(system)})
    assert list(system.iterdir()) == []


def test_a_declared_link_must_be_absolute(tmp_path):
    with pytest.raises(ValueError, match="only an absolute target can be declared"):
        from_container(crafted(), tmp_path / "out", {"top/ssl/certs": "../../etc/ssl/certs"})


def test_setid_bits_are_refused_in_sources_and_dropped_from_a_copy(tmp_path, data_filter):
    data = crafted(("top/tool", "file", "#!/bin/sh\n"), mode=0o4755)
    refused(from_sources, data, tmp_path / "src", "top/ok.txt", "setuid or setgid bit")
    top = from_container(data, tmp_path / "out")
    st = (top / "tool").stat()
    assert st.st_uid == os.geteuid() and not st.st_mode & (stat.S_ISUID | stat.S_ISGID) and st.st_mode & 0o100


def test_a_copy_does_not_replace_what_is_there(tmp_path):
    dest = tmp_path / "out"
    (dest / "top").mkdir(parents=True)
    with pytest.raises(InputError, match=r"out/top already exists"):
        from_container(crafted(), dest)
    assert [p.name for p in dest.iterdir()] == ["top"] and list((dest / "top").iterdir()) == []
