"""The Docker engine, through the docker SDK only: connect, build or reuse builder images, run containers.

* :func:`connect` talks to ``$DOCKER_HOST`` (a local socket, ``tcp://``, or ``ssh://`` through the ssh
  client); no engine there is one :class:`EngineError` line saying how to start or point to one.
* :meth:`Engine.builder_image` builds a rendered Dockerfile once: the image carries the template hash as a
  label, and a second run finds it by that label instead of building again. Builds that need apt or yum
  use the host's network; nothing else does.
* :class:`Container` is one throwaway container (``network_mode="none"``; ``cpus=N``: a CFS quota of N of
  the engine's CPUs, docker's ``--cpus``), used as a context manager:
  :meth:`~Container.call` runs a command in it (as the build user, output streamed to a log),
  :meth:`~Container.copy_into` and :meth:`~Container.copy_out` move files with tar archives. Leaving the
  ``with`` block removes it, also on Ctrl-C, which so stops whatever ran in it.
"""

from __future__ import annotations

import collections
import io
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from buildkit.errors import BuildFailed, BuildkitError, InputError
from buildkit.sources.extract import UnsafeMember, safe_extract_tarfile

__all__ = ["CallResult", "Container", "ContainerGone", "Engine", "EngineError", "connect", "engine_address",
           "parse_os_release"]

Say = Callable[[str], None]
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
LABEL_CI = "org.buildkit.ci"
# PID 1 of a build container: waits for exec'd commands and stops at once on SIGTERM.
KEEPALIVE = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"
TAIL_LINES = 25


class EngineError(BuildkitError):
    """The engine is unreachable, refused a request, or an image cannot be used (exit 2)."""

    exit_code = 2


class ContainerGone(BuildkitError):
    """The container stopped while a command ran in it: killed from outside, out of memory, engine gone."""

    exit_code = 2


def _sdk():
    try:
        import docker  # noqa: F401
        import docker.errors  # noqa: F401
    except ImportError:
        raise InputError("the docker Python package is not installed", fix="pip install docker") from None
    import docker

    return docker


def _reason(err: BaseException) -> str:
    """The useful part of an SDK or requests error, on one line."""
    text = getattr(err, "explanation", None) or str(err)
    text = " ".join(str(text).split())
    for marker in ("FileNotFoundError", "ConnectionRefusedError", "PermissionError", "Name or service not known",
                   "timed out"):
        if marker in text:
            return {"FileNotFoundError": "no such socket", "ConnectionRefusedError": "connection refused",
                    "PermissionError": "permission denied"}.get(marker, marker)
    return text[:300]


def connect(host: str | None = None, *, timeout: int = 15) -> Engine:
    """The engine at ``host`` (default ``$DOCKER_HOST``, else the local socket); raises :class:`EngineError`."""
    docker = _sdk()
    env = dict(os.environ)
    if host:
        env["DOCKER_HOST"] = host
    where = env.get("DOCKER_HOST") or DEFAULT_SOCKET
    named = "DOCKER_HOST=" + where if env.get("DOCKER_HOST") else f"{where} (DOCKER_HOST is not set)"
    how = ("start one (systemctl start docker, or dockerd --host unix:///run/bk-docker.sock &) or point DOCKER_HOST "
           "at one (unix:///PATH.sock, tcp://HOST:2376, ssh://USER@HOST)")
    try:
        client = docker.from_env(environment=env, timeout=timeout, use_ssh_client=where.startswith("ssh://"))
        client.ping()
    except docker.errors.DockerException as e:
        raise EngineError(f"no Docker engine answers at {named}: {_reason(e)}", fix=how) from None
    except Exception as e:  # requests/urllib3 errors the SDK lets through
        raise EngineError(f"no Docker engine answers at {named}: {_reason(e)}", fix=how) from None
    # Builds stream for many minutes without output: no read timeout from here on.
    client.api.timeout = 24 * 3600
    return Engine(client, where)


def engine_address(name: str) -> str:
    """An ``--engine`` value as a Docker host URL: a URL as it is, else the docker context of that name
    (``docker context create NAME --docker host=ssh://...``), read from ``~/.docker/contexts``."""
    if "://" in name:
        return name
    docker = _sdk()
    try:
        from docker.context import ContextAPI

        context = ContextAPI.get_context(name)
        known = [c.Name for c in ContextAPI.contexts()]
    except docker.errors.DockerException as e:
        raise InputError(f"--engine {name}: cannot read the docker contexts: {_reason(e)}",
                         fix="name the engine by URL: unix:///PATH.sock, tcp://HOST:2376, ssh://USER@HOST") from None
    if context is None or not context.Host:
        raise InputError(f"--engine {name}: no docker context of that name (and not a URL)",
                         fix=f"contexts here: {', '.join(known) or 'none'} (docker context ls); or a URL such as "
                             "unix:///run/docker.sock, tcp://HOST:2376, ssh://USER@HOST")
    return context.Host


class Engine:
    def __init__(self, client, host: str) -> None:
        self.client = client
        self.api = client.api
        self.host = host
        self._info: dict | None = None

    @property
    def errors(self):
        return _sdk().errors

    def info(self) -> dict:
        if self._info is None:
            try:
                self._info = self.api.info()
            except Exception as e:
                raise EngineError(f"the engine at {self.host} did not answer 'info': {_reason(e)}") from None
        return self._info

    def answers(self) -> bool:
        """Whether the engine answers a ping now."""
        try:
            self.api.ping()
            return True
        except Exception:  # whatever the SDK and its transport raise: the engine is not there
            return False

    def remove_labelled(self, key: str, value: str) -> None:
        """Remove the containers labelled ``key=value`` (running or not) and their volumes."""
        try:
            for found in self.api.containers(all=True, filters={"label": f"{key}={value}"}):
                self.api.remove_container(found["Id"], force=True, v=True)
        except Exception as e:
            raise EngineError(f"cannot remove the containers labelled {key}={value} at {self.host}: "
                              f"{_reason(e)}") from None

    @property
    def arch(self) -> str:
        return self.info().get("Architecture") or os.uname().machine

    @property
    def cpus(self) -> int:
        return int(self.info().get("NCPU") or os.cpu_count() or 1)

    # --- images ---------------------------------------------------------------------------------------

    def find_image(self, labels: dict[str, str]) -> str | None:
        """The id of an image carrying all ``labels`` (the newest), or None."""
        try:
            found = self.api.images(filters={"label": [f"{k}={v}" for k, v in labels.items()]})
        except Exception as e:
            raise EngineError(f"cannot list images at {self.host}: {_reason(e)}") from None
        if not found:
            return None
        return max(found, key=lambda i: i.get("Created", 0))["Id"]

    def has_image(self, ref: str) -> bool:
        try:
            self.api.inspect_image(ref)
            return True
        except self.errors.ImageNotFound:
            return False
        except self.errors.APIError as e:
            if e.status_code == 404:
                return False
            raise EngineError(f"cannot inspect image {ref}: {_reason(e)}") from None

    def check_shell(self, ref: str, what: str) -> None:
        """Raise :class:`EngineError` unless ``ref`` runs ``/bin/sh`` (every build step needs one)."""
        with Container(self, ref, what=what, user="0", workdir="/", network="none") as c:
            result = c.call(["/bin/sh", "-c", "echo ok"], check=False)
        if result.exit_code != 0 or "ok" not in result.output:
            raise EngineError(f"{what}: /bin/sh in image {ref} does not work (exit {result.exit_code})",
                              fix="use a base image with a POSIX shell")

    def builder_image(self, rendered, *, log: Path, say: Say, network: str = "host") -> tuple[str, bool]:
        """The id of the builder image of ``rendered`` (:class:`buildkit.container.images.Rendered`), and
        whether it was built now. Reused when an image with its template hash exists."""
        found = self.find_image(rendered.labels)
        if found:
            return found, False
        base = rendered.image.base
        if not self.has_image(base):
            say(f"    pulling base image {base}")
            self._pull(base, rendered.image.name)
        self.check_shell(base, rendered.image.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        say(f"==> building {rendered.tag} from {base} (log {log})")
        started = time.monotonic()
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        image_id = None
        error = None
        with open(log, "w", encoding="utf-8") as out:
            out.write(rendered.dockerfile + "\n---\n")
            try:
                stream = self.api.build(fileobj=io.BytesIO(rendered.dockerfile.encode()), tag=rendered.tag,
                                        labels=rendered.labels, rm=True, forcerm=True, pull=False, decode=True,
                                        network_mode=network, use_config_proxy=False)
                pending = ""  # a line can come in pieces (the builder colours stderr chunk by chunk)
                for chunk in stream:
                    text = chunk.get("stream") or ""
                    if text:
                        out.write(text)
                        out.flush()
                        *lines, pending = (pending + _ANSI.sub("", text)).split("\n")
                        for line in lines:
                            if line.strip():
                                tail.append(line)
                                if line.startswith("Step "):
                                    say(f"    {line[:120]}")
                    if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
                        image_id = chunk["aux"]["ID"]
                    if "error" in chunk:
                        error = " ".join(str(chunk["error"]).split())
                        out.write(f"\nERROR: {error}\n")
                if pending.strip():
                    tail.append(pending)
            except self.errors.APIError as e:
                error = _reason(e)
                out.write(f"\nERROR: {error}\n")
            except KeyboardInterrupt:
                raise
            except Exception as e:  # the connection dropped
                raise EngineError(f"lost the engine at {self.host} while building {rendered.tag}: {_reason(e)}",
                                  fix=f"log kept: {log}") from None
        if error:
            for line in tail:
                say(f"    | {line}")
            missing = _missing_package("\n".join(tail))
            if missing:
                raise InputError(f"{rendered.image.name}: no package {missing} in the image's repositories",
                                 fix=f"check the version (--kernel?) against what {rendered.image.spec.pretty} offers; "
                                     f"log kept: {log}")
            raise BuildFailed(f"building the {rendered.options.purpose} image for {rendered.image.name} failed: "
                              f"{error[:200]}", fix=f"log kept: {log}")
        image_id = image_id or self.find_image(rendered.labels)
        if not image_id:
            raise EngineError(f"the engine built {rendered.tag} but it cannot be found", fix=f"log kept: {log}")
        say(f"    built {rendered.tag} in {time.monotonic() - started:.0f} s")
        return image_id, True

    def _pull(self, ref: str, image: str) -> None:
        repo, tag = ref, None
        if "@" not in ref and ":" in ref.rsplit("/", 1)[-1]:
            repo, tag = ref.rsplit(":", 1)
        try:
            self.api.pull(repo, tag=tag)
        except Exception as e:
            raise EngineError(f"{image}: base image {ref} is not in the engine and cannot be pulled: {_reason(e)}",
                              fix=f"load or import it first (docker pull/load/import), or pass {image}=BASE "
                                  "naming an image the engine has") from None

    # --- containers -----------------------------------------------------------------------------------

    def os_release(self, ref: str) -> dict[str, str]:
        """The fields of ``/etc/os-release`` (else ``/usr/lib/os-release``) of image ``ref``, read from a
        container created but never started (no shell needed); remembered by image id in
        ``~/.cache/buildkit/os-release.json``, so an image is looked into once."""
        try:
            image_id = self.api.inspect_image(ref)["Id"]
        except self.errors.NotFound:
            raise EngineError(f"image {ref} is not on the engine at {self.host}",
                              fix=f"docker pull {ref}, or docker import a root file system as {ref}") from None
        except self.errors.APIError as e:
            raise EngineError(f"cannot inspect image {ref}: {_reason(e)}") from None
        cache = _os_release_cache()
        known = _read_json(cache)
        if image_id in known:
            return known[image_id]
        try:
            container = self.api.create_container(ref, command=["/os-release-probe"], network_disabled=True,
                                                  labels={LABEL_CI: "os-release"})
        except self.errors.APIError as e:
            raise EngineError(f"cannot create a container of {ref}: {_reason(e)}") from None
        try:
            text = None
            for path in ("/etc/os-release", "/usr/lib/os-release"):
                try:
                    stream, _stat = self.api.get_archive(container["Id"], path)
                except self.errors.NotFound:
                    continue
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r") as tar:
                    member = tar.next()
                    data = tar.extractfile(member) if member is not None and member.isfile() else None
                    if data is not None:
                        text = data.read().decode("utf-8", "replace")
                        break  # a symbolic link (Debian's /etc/os-release) leads to the next path
        finally:
            self.api.remove_container(container["Id"], force=True)
        if text is None:
            raise EngineError(f"image {ref} has no /etc/os-release nor /usr/lib/os-release: its distribution is "
                              "unknown", fix=f"name it: DISTRO:RELEASE={ref} (buildkit ci render --help lists them)")
        fields = parse_os_release(text)
        known[image_id] = fields
        _write_json(cache, known)
        return fields

    def container(self, image: str, *, what: str, user: str = "build", workdir: str = "/home/build",
                  network: str = "none", cpus: int | None = None) -> Container:
        """A throwaway container of ``image`` (enter it to create and start it); ``cpus``: at most that many
        of the engine's CPUs (a CFS quota; the container still sees all of them in nproc)."""
        return Container(self, image, what=what, user=user, workdir=workdir, network=network, cpus=cpus)

    def run_once(self, image: str, script: str, *, what: str, user: str = "build") -> str:
        """Run ``sh -c script`` in a throwaway container (no network); its output, or an error."""
        with self.container(image, what=what, user=user) as c:
            result = c.call(["/bin/sh", "-c", script], check=False)
        if result.exit_code != 0:
            raise EngineError(f"{what}: the probe failed in {image} (exit {result.exit_code}): "
                              f"{(result.tail or ['no output'])[-1]}")
        return result.output


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5): ``KEY=value`` lines, values optionally quoted (shell-style escapes undone)."""
    import shlex

    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#") or not key.replace("_", "").isalnum():
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            continue
        fields[key] = words[0] if words else ""
    return fields


def _os_release_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "buildkit" / "os-release.json"


def _read_json(path: Path) -> dict:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict) -> None:
    """Best effort (a cache): written whole through a temporary file, or not at all."""
    import json

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MISSING = (re.compile(r"E: Unable to locate package (\S+)"),  # apt
            re.compile(r"No package (\S+) available"),  # yum
            re.compile(r"No match for argument: (\S+)"))  # dnf


def _missing_package(text: str) -> str | None:
    for pattern in _MISSING:
        found = pattern.search(text)
        if found:
            return found[1]
    return None


@dataclass(frozen=True)
class CallResult:
    exit_code: int
    output: str  # all of it when no log was given, else ""
    tail: list[str]
    seconds: float


class Container:
    """One throwaway container; ``with engine.container(image, what=...) as c: c.call([...])``."""

    def __init__(self, engine: Engine, image: str, *, what: str, user: str, workdir: str, network: str,
                 cpus: int | None = None) -> None:
        self.engine = engine
        self.image = image
        self.what = what
        self.user = user
        self.workdir = workdir
        self.network = network
        self.cpus = cpus
        self.id: str | None = None

    def __enter__(self) -> Container:
        api, errors = self.engine.api, self.engine.errors
        try:
            created = api.create_container(
                self.image, command=["/bin/sh", "-c", KEEPALIVE], entrypoint=[], user=self.user,
                working_dir=self.workdir, labels={LABEL_CI: "1", "org.buildkit.what": self.what[:200]},
                host_config=api.create_host_config(  # NanoCpus: billionths of a CPU
                    network_mode=self.network, init=False, nano_cpus=self.cpus * 1_000_000_000 if self.cpus else None),
                stop_signal="SIGTERM", use_config_proxy=False)
            self.id = created["Id"]
            api.start(self.id)
        except errors.APIError as e:
            self._remove()
            text = _reason(e)
            if "/bin/sh" in text and ("no such file" in text.lower() or "not found" in text.lower()):
                raise EngineError(f"{self.what}: image {self.image} has no shell (/bin/sh)",
                                  fix="buildkit runs sh in its containers: use a base image with a POSIX shell, e.g. "
                                      "a distribution image or a debootstrap import") from None
            raise EngineError(f"{self.what}: cannot start a container of {self.image}: {text}") from None
        except Exception as e:  # the connection to the engine dropped
            self._remove()
            raise self._lost("starting the container", e) from None
        return self

    def __exit__(self, *exc) -> None:
        self._remove()

    def _remove(self) -> None:
        if self.id is None:
            return
        try:
            self.engine.api.remove_container(self.id, force=True, v=True)
        except Exception:
            pass
        self.id = None

    def state(self) -> dict:
        try:
            return self.engine.api.inspect_container(self.id)["State"]
        except Exception:
            return {"Running": False, "Status": "removed", "ExitCode": None}

    def _still_running(self, code: int | None, grace: float = 3.0) -> bool:
        """Whether the container outlived the command. A command killed by a signal (exit 128+N, or no
        exit code) may have died with the container, whose state the engine updates a moment later."""
        deadline = time.monotonic() + (grace if code is None or code < 0 or code > 128 else 0)
        while True:
            if not self.state().get("Running"):
                return False
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.2)

    def _lost(self, doing: str, err: Exception) -> EngineError:
        """The error for a request the engine never answered (socket gone, connection dropped)."""
        return EngineError(f"{self.what}: lost the engine at {self.engine.host} during {doing}: {_reason(err)}")

    def _gone(self, doing: str, log: Path | None) -> ContainerGone:
        state = self.state()
        why = ("out of memory" if state.get("OOMKilled")
               else f"status {state.get('Status')}, exit {state.get('ExitCode')}")
        kept = f"; logs kept in {log.parent}" if log else ""
        return ContainerGone(f"the container of {self.what} was stopped from outside during {doing} ({why}); "
                             f"nothing was copied out{kept}",
                             fix="run the same command again once the engine is free (docker kill/stop, OOM killer or "
                                 "an engine restart stop builds)")

    def call(self, args: Sequence[str], *, user: str | None = None, cwd: str | None = None,
             env: dict[str, str] | None = None, log: Path | None = None, on_line: Say | None = None,
             check: bool = True, doing: str | None = None) -> CallResult:
        """Run ``args`` (no shell unless you pass one) and wait. The output goes to ``log`` (when given) and
        line by line to ``on_line``; a non-zero exit raises :class:`BuildFailed` when ``check``."""
        api = self.engine.api
        doing = doing or " ".join(args)[:80]
        started = time.monotonic()
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        chunks: list[str] = []
        out = open(log, "ab") if log else None
        pending = b""
        try:
            try:
                exec_id = api.exec_create(self.id, list(args), user=user or self.user, workdir=cwd or self.workdir,
                                          environment=env or None, stdout=True, stderr=True)["Id"]
                stream = api.exec_start(exec_id, stream=True, demux=False)
                for data in stream:
                    if out:
                        out.write(data)
                        out.flush()
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    for raw in lines:
                        line = raw.decode("utf-8", "replace")
                        tail.append(line)
                        if not out:
                            chunks.append(line + "\n")
                        if on_line:
                            on_line(line)
                if pending:
                    line = pending.decode("utf-8", "replace")
                    tail.append(line)
                    if not out:
                        chunks.append(line)
                    if on_line:
                        on_line(line)
                code = api.exec_inspect(exec_id).get("ExitCode")
            except self.engine.errors.NotFound:
                raise self._gone(doing, log) from None
            except self.engine.errors.APIError as e:
                if not self.state().get("Running"):
                    raise self._gone(doing, log) from None
                raise EngineError(f"{self.what}: the engine refused to run {doing}: {_reason(e)}") from None
            except (KeyboardInterrupt, BuildkitError):
                raise
            except Exception as e:  # the connection to the engine dropped
                if not self.state().get("Running"):
                    raise self._gone(doing, log) from None
                raise self._lost(doing, e) from None
        finally:
            if out:
                out.close()
        if not self._still_running(code):
            raise self._gone(doing, log)
        code = -1 if code is None else int(code)
        result = CallResult(code, "".join(chunks), list(tail), time.monotonic() - started)
        if check and code != 0:
            where = f"; log kept: {log}" if log else ""
            raise BuildFailed(f"{self.what}: {doing} failed with exit status {code}{where}")
        return result

    def copy_into(self, files: Iterable[tuple[Path, str]], dest: str, *, owner: tuple[int, int] = (1000, 1000)) -> None:
        """Put each (host file or folder, name) under ``dest`` in the container, owned by ``owner``."""

        def own(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid, info.gid = owner
            info.uname = info.gname = ""
            return info

        with tempfile.TemporaryFile() as tmp:
            with tarfile.open(fileobj=tmp, mode="w") as tar:
                for path, name in files:
                    tar.add(str(path), arcname=name, filter=own)
            tmp.seek(0)
            try:
                ok = self.engine.api.put_archive(self.id, dest, tmp)
            except self.engine.errors.APIError as e:
                raise EngineError(f"{self.what}: cannot copy files into {dest}: {_reason(e)}") from None
            except Exception as e:
                raise self._lost(f"copying files into {dest}", e) from None
            if not ok:
                raise EngineError(f"{self.what}: the engine refused the files for {dest}")

    def copy_out(self, src: str, dest: Path, *, expected_links: Mapping[str, str] | None = None) -> Path:
        """Copy ``src`` (a file or a folder in the container) into the host folder ``dest``; returns the
        path it now has there (``dest/basename(src)``), which must not exist yet. The copy is unpacked under
        :func:`safe_extract_tar`'s policy: a link pointing out of it is refused unless ``expected_links``
        declares it (``{"basename(src)/member": "/absolute/target"}``)."""
        dest.mkdir(parents=True, exist_ok=True)
        try:
            stream, _stat = self.engine.api.get_archive(self.id, src)
        except self.engine.errors.NotFound:
            raise BuildFailed(f"{self.what}: {src} does not exist in the container") from None
        except self.engine.errors.APIError as e:
            raise EngineError(f"{self.what}: cannot copy {src} out: {_reason(e)}") from None
        except Exception as e:
            raise self._lost(f"copying {src} out", e) from None
        with tempfile.TemporaryFile(dir=dest) as tmp:
            try:
                for chunk in stream:
                    tmp.write(chunk)
            except Exception as e:
                if isinstance(e, OSError) and e.errno and not isinstance(e, ConnectionError):
                    raise  # this side's disk (full, I/O error): not the engine's doing
                raise self._lost(f"copying {src} out", e) from None
            tmp.seek(0)
            with tarfile.open(fileobj=tmp, mode="r") as tar:
                safe_extract_tar(tar, dest, what=f"{self.what}: {src}", expected_links=expected_links)
        return dest / os.path.basename(src.rstrip("/"))

    def read_text(self, path: str) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            got = self.copy_out(path, Path(tmp))
            return got.read_text(encoding="utf-8", errors="replace")


def safe_extract_tar(tar: tarfile.TarFile, dest: Path, *, what: str | None = None,
                     expected_links: Mapping[str, str] | None = None) -> list[Path]:
    """Unpack ``tar`` (what a container gave back) into ``dest`` under buildkit's one extraction policy
    (:func:`buildkit.sources.extract.safe_extract_tarfile`, the one source archives go through): no absolute or
    ``..`` members, no devices or pipes, no link pointing out of ``dest`` unless ``expected_links`` declares it
    (``{member path: absolute target}``), setuid/setgid bits dropped, owned by whoever runs us. Returns the top
    entries. A refused member is :class:`BuildFailed` naming ``what`` (default: the archive's name) and the
    member; nothing of the archive is left in ``dest`` then."""
    name = what or (str(tar.name) if tar.name else "the archive from the container")
    try:
        return safe_extract_tarfile(tar, dest, archive=name, expected_links=expected_links)
    except UnsafeMember as e:
        raise BuildFailed(e.message, fix="nothing of it was unpacked; a link out of the tree is refused unless the "
                          "copy declares it expected") from None


def copy_file_noclobber(src: Path, final: Path) -> None:
    """Move ``src`` to ``final`` unless ``final`` exists (then :class:`InputError`); atomic on one filesystem."""
    try:
        os.link(src, final)
    except FileExistsError:
        raise InputError(f"{final} already exists; it was left as it was",
                         fix="remove it or choose another --out") from None
    except OSError:
        if os.path.lexists(final):
            raise InputError(f"{final} already exists; it was left as it was",
                             fix="remove it or choose another --out") from None
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        shutil.copyfile(src, tmp)
        os.rename(tmp, final)
    finally:
        try:
            os.unlink(src)
        except OSError:
            pass
