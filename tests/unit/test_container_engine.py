"""The engine layer without an engine: no engine reachable is one line and exit 2; a container that stops
while a command runs is detected; archives from a container cannot write outside their folder; artifacts
are never overwritten; the probe's output; the summary table and exit codes. No Docker is needed."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile

import pytest

from buildkit.container import engine as eng
from buildkit.container import probe
from buildkit.container.engine import ContainerGone, EngineError, connect, copy_file_noclobber
from buildkit.container.images import parse_image
from buildkit.container.matrix import Cell
from buildkit.container.python import CellResult, format_table, overall_error, results_json, summary_rows
from buildkit.errors import BuildFailed, InputError

NO_ENGINE = "unix:///nonexistent/buildkit-test.sock"


def buildkit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "DOCKER_HOST": NO_ENGINE, **(env or {})}
    return subprocess.run([sys.executable, "-m", "buildkit", *args], capture_output=True, text=True, env=full,
                          timeout=120)


def test_connect_without_engine_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    with pytest.raises(EngineError) as err:
        connect()
    text = str(err.value)
    assert err.value.exit_code == 2
    assert f"DOCKER_HOST={NO_ENGINE}" in text and "no such socket" in text
    assert "start one" in text and "point DOCKER_HOST at one" in text and "\n" not in text


@pytest.mark.parametrize("args", [
    ("ci", "python", "3.13.5", "--image", "debian:12", "--out", "OUT"),
    ("ci", "symvers", "M=MDIR", "--image", "debian:12"),
])
def test_cli_without_engine(tmp_path, args):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "Kbuild").write_text("obj-m := m.o\n")
    args = tuple(a.replace("OUT", str(tmp_path / "out")).replace("MDIR", str(tmp_path / "m")) for a in args)
    run = buildkit(*args)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("buildkit: error: no Docker engine answers at DOCKER_HOST=")
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (("ci", "render", "fedora:40"), "unknown image family 'fedora:40'"),
    (("ci", "python", "3.13.5", "--image", "gentoo:1", "--out", "/tmp/x"), "unknown image family"),
    (("ci", "python", "3.13.5", "--out", "/tmp/x"), "no image given"),
    (("ci", "python", "3.13.5", "--image", "debian:12", "--with-openssl", "/opt/ssl", "--out", "/tmp/x"),
     "means nothing inside a container"),
    (("ci", "symvers", "--image", "debian:12"), "M=DIR is required"),
    (("ci", "symvers", "X=1", "--image", "debian:12"), "unexpected argument"),
    (("ci", "matrix", "--format", "gitlab", "--image", "debian:12", "--python", "9.9"), "not in the catalog"),
    (("ci", "python", "3.13.5", "--image", "debian:12", "--matrix", "/nonexistent.toml", "--out", "/tmp/x"),
     "--matrix /nonexistent.toml: no such file"),
])
def test_cli_bad_input_is_one_line_exit_2(args, message):
    run = buildkit(*args)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in run.stderr


def test_cli_render_and_matrix_need_no_engine(tmp_path):
    run = buildkit("ci", "render", "rocky:9")
    assert run.returncode == 0 and "dnf -y install" in run.stdout and "perl-IPC-Cmd" in run.stdout
    out = tmp_path / "Dockerfile"
    first = buildkit("ci", "render", "debian:12", "--purpose", "kmod", "-o", str(out))
    second = buildkit("ci", "render", "debian:12", "--purpose", "kmod", "-o", str(out))
    assert "written" in first.stderr and "unchanged" in second.stderr and out.read_text().startswith("# kmod builder")
    run = buildkit("ci", "matrix", "--format", "json", "--image", "debian:12", "--image", "centos:7",
                   "--python", "3.13.5", "--with-openssl", "3.0.20", "--with-openssl", "1.1.1w")
    assert run.returncode == 0
    assert run.stdout.count('"name": "python-') == 4


# --- a container that stops while a command runs -----------------------------------------------------

class FakeErrors:
    class APIError(Exception):
        status_code = 500

    class NotFound(APIError):
        pass

    class ImageNotFound(NotFound):
        pass


class FakeAPI:
    def __init__(self, chunks, exit_code, running_after):
        self.chunks, self.exit_code, self.running_after = chunks, exit_code, running_after
        self.removed = False

    def create_host_config(self, **kw):
        return kw

    def create_container(self, image, **kw):
        return {"Id": "c1"}

    def start(self, cid):
        pass

    def exec_create(self, cid, cmd, **kw):
        return {"Id": "e1"}

    def exec_start(self, eid, **kw):
        yield from self.chunks

    def exec_inspect(self, eid):
        return {"ExitCode": self.exit_code}

    def inspect_container(self, cid):
        running = self.running_after
        return {"State": {"Running": running, "Status": "running" if running else "exited",
                          "ExitCode": 0 if running else 137, "OOMKilled": False}}

    def remove_container(self, cid, **kw):
        self.removed = True


class FakeEngine(eng.Engine):
    def __init__(self, api):
        self.api, self.client, self.host, self._info = api, None, "unix:///fake.sock", None

    @property
    def errors(self):
        return FakeErrors


def test_call_streams_lines_to_the_log_and_keeps_a_tail(tmp_path):
    api = FakeAPI([b"one\ntw", b"o\nthree"], 0, True)
    seen = []
    with FakeEngine(api).container("img", what="cell") as c:
        result = c.call(["sh", "-c", "x"], log=tmp_path / "log", on_line=seen.append)
    assert seen == ["one", "two", "three"] and result.tail == seen and result.exit_code == 0
    assert (tmp_path / "log").read_bytes() == b"one\ntwo\nthree"
    assert api.removed


def test_call_failure_raises_build_failed_when_checked():
    api = FakeAPI([b"boom\n"], 3, True)
    with FakeEngine(api).container("img", what="cell") as c:
        with pytest.raises(BuildFailed, match="exit status 3"):
            c.call(["false"])
        assert c.call(["false"], check=False).exit_code == 3


def test_container_killed_mid_build_is_detected(tmp_path):
    api = FakeAPI([b"==> [1/3] openssl\n"], None, False)
    (tmp_path / "logs").mkdir()
    with FakeEngine(api).container("img", what="python-3.13.5-x") as c:
        with pytest.raises(ContainerGone) as err:
            c.call(["sh", "build.sh"], log=tmp_path / "logs" / "build.log", doing="the build")
    text = str(err.value)
    assert err.value.exit_code == 2 and "stopped from outside during the build" in text and "exit 137" in text
    assert "nothing was copied out" in text and str(tmp_path / "logs") in text
    assert api.removed


def test_killed_container_whose_state_lags_behind(tmp_path):
    """The command died with exit 137 while the engine still called the container running: wait for it."""

    class Lagging(FakeAPI):
        calls = 0

        def inspect_container(self, cid):
            Lagging.calls += 1
            self.running_after = Lagging.calls < 3
            return super().inspect_container(cid)

    api = Lagging([b"x\n"], 137, True)
    with FakeEngine(api).container("img", what="cell") as c:
        with pytest.raises(ContainerGone):
            c.call(["sh", "build.sh"], doing="the build")


def test_interrupt_removes_the_container():
    class Interrupting(FakeAPI):
        def exec_start(self, eid, **kw):
            yield b"x\n"
            raise KeyboardInterrupt

    api = Interrupting([], 0, True)
    with pytest.raises(KeyboardInterrupt):
        with FakeEngine(api).container("img", what="cell") as c:
            c.call(["sleep", "1000"])
    assert api.removed


# --- archives, artifacts ----------------------------------------------------------------------------

class Archiving(FakeAPI):
    """An engine whose get_archive hands back ``data`` (a tar archive) in two chunks, as a stream does."""

    def __init__(self, data: bytes):
        super().__init__([], 0, True)
        self.data = data

    def get_archive(self, cid, path):
        return iter([self.data[:700], self.data[700:]]), {"name": os.path.basename(path)}


def _tar_of(*members: tuple[str, bytes | None, str | None]) -> bytes:
    """(name, data, symlink target): a file when data is given, else a symlink; files are setuid and owned by 1000."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size, info.uid, info.gid, info.mode = len(data or b""), 1000, 1000, 0o4755
                tar.addfile(info, io.BytesIO(data or b""))
    return buf.getvalue()


def test_copy_out_unpacks_under_the_one_policy(tmp_path):
    """buildkit's one extraction policy (test_extract_policy proves it on crafted archives) on Container.copy_out:
    a link out of the copy is refused in one line naming the container and the member, unless declared."""
    ca = "/etc/ssl/certs/ca-certificates.crt"
    data = _tar_of(("py/bin/python3", b"ELF", None), ("py/bin/python", None, "python3"), ("py/ssl/cert.pem", None, ca))
    with FakeEngine(Archiving(data)).container("img", what="cell") as c:
        with pytest.raises(BuildFailed) as err:
            c.copy_out("/opt/buildkit/py", tmp_path / "refused")
        got = c.copy_out("/opt/buildkit/py", tmp_path / "out", expected_links={"py/ssl/cert.pem": ca})
    assert err.value.message == f"cell: /opt/buildkit/py: refusing member 'py/ssl/cert.pem': symlink to an absolute path {ca!r}"
    assert err.value.exit_code == 1 and list((tmp_path / "refused").iterdir()) == []
    assert got == tmp_path / "out" / "py" and os.readlink(got / "ssl" / "cert.pem") == ca
    assert os.readlink(got / "bin" / "python") == "python3"
    st = (got / "bin" / "python3").stat()
    assert st.st_uid == os.geteuid() and not st.st_mode & 0o4000
    with tarfile.open(fileobj=io.BytesIO(_tar_of(("../evil", b"x", None)))) as tar:
        with pytest.raises(BuildFailed, match="refusing member '../evil': '..' in its path"):
            eng.safe_extract_tar(tar, tmp_path / "x")


def test_copy_file_noclobber(tmp_path):
    final = tmp_path / "a.tar.gz"
    final.write_bytes(b"previous")
    new = tmp_path / "new"
    new.write_bytes(b"new")
    with pytest.raises(InputError, match="already exists; it was left as it was"):
        copy_file_noclobber(new, final)
    assert final.read_bytes() == b"previous"
    other = tmp_path / "new2"
    other.write_bytes(b"fresh")
    copy_file_noclobber(other, tmp_path / "b.tar.gz")
    assert (tmp_path / "b.tar.gz").read_bytes() == b"fresh" and not other.exists()


# --- probe, summary -----------------------------------------------------------------------------------

def test_probe_parse():
    out = ("os=Debian GNU/Linux 12 (bookworm)\nid=debian\nversion_id=12\narch=x86_64\n"
           "compiler=cc (Debian 12.2.0-14) 12.2.0\nglibc=glibc 2.36\nca_file=/etc/ssl/certs/ca-certificates.crt\n"
           "ca_dir=/etc/ssl/certs\nsqlite=3.40.1|/usr/include|/usr/lib/x86_64-linux-gnu|system\n")
    host = probe.parse(out, "debian:12")
    assert (host.os_id, host.version_id, host.arch) == ("debian", "12", "x86_64")
    assert host.info.openssl is None and host.info.sqlite.version == "3.40.1"
    assert host.info.ca_file.endswith("ca-certificates.crt") and host.to_json()["sqlite"]["lib"].endswith("gnu")
    epel = probe.parse("arch=x86_64\nopenssl11=1.1.1k|/usr/include/openssl11|/usr/lib64/openssl11|epel-openssl11\n", "c")
    assert epel.info.openssl.layout == "epel-openssl11"
    with pytest.raises(InputError):
        probe.parse("garbage", "debian:12")


def test_probe_script_runs_here():
    run = subprocess.run(["sh", "-c", probe.script()], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0
    host = probe.parse(run.stdout, "host")
    assert host.arch == os.uname().machine


def _cell():
    return Cell(parse_image("debian:12"), "3.13.5", "3.0.20", "3.40.1")


def test_summary_and_exit_codes(tmp_path):
    ok = CellResult(_cell(), "n1", True, 0, "built and verified", 372.0, tmp_path / "n1.tar.gz",
                    verification={"checks": [{"name": "a", "ok": True, "required": True},
                                             {"name": "b", "ok": False, "required": False}]},
                    engine="ssh://ci@build1")
    failed = CellResult(_cell(), "n2", False, 1, "n2: step failed", 61.0, logs=tmp_path / "logs" / "n2")
    gone = CellResult(_cell(), "n3", False, 2, "n3: container stopped", 5.0, logs=tmp_path / "logs" / "n3")
    table = format_table(summary_rows([ok, failed]))
    lines = table.splitlines()
    assert lines[0].split() == ["image", "python", "openssl", "sqlite", "engine", "result", "time", "artifact", "/",
                                "logs"]
    assert "ssh://ci@build1" in lines[1] and lines[2].split()[4] == "-"
    assert "ok (1/1)" in lines[1] and "6m12s" in lines[1] and "FAILED" in lines[2] and str(tmp_path / "logs") in lines[2]
    assert overall_error([ok]) is None
    err = overall_error([ok, failed])
    assert err.exit_code == 1 and str(err).startswith("1 of 2 cells failed; first: n2: step failed")
    assert overall_error([failed, gone]).exit_code == 2
    assert overall_error([gone]).message == "n3: container stopped"
    data = results_json([ok, failed])
    assert data["cells"][0]["ok"] is True and data["cells"][1]["logs"].endswith("n2")
    assert data["cells"][0]["engine"] == "ssh://ci@build1"
