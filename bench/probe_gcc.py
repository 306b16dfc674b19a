"""Which CPython series (and OpenSSL, SQLite) CentOS 7's own compiler, gcc 4.8.5, builds: found by building them.

Not a timing: each source tarball given is unpacked, configured with the portable toolchain's gcc 4.8.5
(crosstool-NG, its glibc 2.17 sysroot built in) and made; the result is whether ``make`` finished and what
was built ran, and the compiler's ``error:`` lines (``make -k``: every file that fails, not only the first).
The outcome is what ``buildkit/catalog/sources.toml``'s [[compiler]] entries record (by hand, with these
lines as their evidence); the logs and ``results.json`` stay in ``--out``.

    python bench/probe_gcc.py --toolchain DIR --out /var/tmp/gcc485 Python-3.9.2.tar.xz Python-3.11.2.tgz ...

A CPython tarball is built alone (no OpenSSL/SQLite; the modules whose libraries the sysroot lacks are
left out, as configure says); an OpenSSL one static, with its ``openssl`` program run; an SQLite one as the
``sqlite3`` shell. One build at a time, ``make -j2``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

GCC = "bin/x86_64-unknown-linux-gnu-gcc"
ERROR = re.compile(r"^(?P<where>[^\s:]+:\d+:\d+:) (?:fatal )?error: (?P<what>.*)$", re.M)


def _steps(top: str) -> list[list[str]]:
    """configure, make (``-k``: every file that fails, not only the first), and run what was built."""
    if top.startswith("openssl-"):
        return [["./Configure", "linux-x86_64", "no-shared", "no-tests"], ["make", "-j2", "-k"],
                ["apps/openssl", "version"]]
    if top.startswith("sqlite"):
        # no readline: configure would find the build host's (the toolchain's sysroot has none)
        return [["./configure", "--disable-tcl", "--disable-readline", "--disable-editline"],
                ["make", "-j2", "-k", "sqlite3"], ["./sqlite3", "--version"]]
    return [["./configure", "--without-ensurepip"], ["make", "-j2", "-k"],
            ["./python", "-c", "import sys; print(sys.version)"]]


def probe(tarball: Path, toolchain: Path, out: Path) -> dict:
    cc = toolchain / GCC
    version = subprocess.run([str(cc), "-dumpversion"], capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="probe-gcc-") as tmp:
        with tarfile.open(tarball) as tar:
            top = tar.getnames()[0].split("/")[0]
            tar.extractall(tmp, filter="tar" if hasattr(tarfile, "tar_filter") else None)
        src = Path(tmp, top)
        log = out / f"{top}-gcc{version}.log"
        # no pkg-config file of this host: its zlib.pc would make configure promise a zlib.h that the
        # toolchain's sysroot does not have
        empty = Path(tmp, "no-pkgconfig")
        empty.mkdir()
        env = {**os.environ, "CC": str(cc), "LC_ALL": "C", "PKG_CONFIG_LIBDIR": str(empty)}
        env.pop("CFLAGS", None)
        start = time.monotonic()
        with log.open("w") as f:
            steps = _steps(top)
            rc, step = 0, ""
            for argv in steps:
                f.write(f"$ {' '.join(argv)}\n")
                f.flush()
                rc = subprocess.run(argv, cwd=src, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
                if rc != 0:
                    step = argv[0]
                    break
        text = log.read_text(errors="replace")
    errors = list(dict.fromkeys(f"{m['where']} error: {m['what']}" for m in ERROR.finditer(text)))
    return {
        "source": tarball.name,
        "gcc": version,
        "built": rc == 0,
        "failed_at": step or None,
        "errors": errors[:8],
        "seconds": round(time.monotonic() - start),
        "log": str(log),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--toolchain", required=True, type=Path, help="the unpacked npm toolchain (has " + GCC + ")")
    ap.add_argument("--out", required=True, type=Path, help="folder for the build logs and results.json")
    ap.add_argument("tarballs", nargs="+", type=Path)
    args = ap.parse_args()
    if not (args.toolchain / GCC).is_file():
        sys.exit(f"probe_gcc: no {GCC} under {args.toolchain}")
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for tarball in args.tarballs:
        r = probe(tarball.resolve(), args.toolchain.resolve(), args.out)
        results.append(r)
        print(json.dumps(r), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    shutil.copy2(__file__, args.out / "probe_gcc.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
