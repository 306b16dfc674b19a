"""``buildkit symvers check`` of one module vs kbuild's own modpost on the same inputs.

Builds the test provider and a consumer with Debian's 6.1 headers, then times, in this process tree, the two
legs taking turns (A B A B ...), REPEAT runs each:
  modpost  scripts/mod/modpost -i Module.symvers -i prov/Module.symvers on the consumer (what kbuild runs:
           every undefined symbol of the module resolved against the kernel's and the provider's exports)
  check    buildkit symvers check M=cons KBUILD_EXTRA_SYMBOLS=prov/Module.symvers (the same resolution, and
           the report; interpreter start included)
Prints min/median/mean/max and spread of each leg and the ratio of the medians. The target: at most
modpost's median (1.0x). Exit status 1 when missed.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, buildkit_cmd, interleaved, kernel, need, peak_rss_mb, spread

MAX_RATIO = 1.0  # modpost's wall, interpreter start included
REPEAT = 15


def main() -> int:
    need("make")
    root, release = kernel()
    kdir = root / "lib" / "modules" / release / "build"
    work = Path(tempfile.mkdtemp(prefix="bk-bench-check-"))
    for name in ("prov", "cons_ns_fixed"):
        shutil.copytree(ROOT / "tests" / "integration" / "kmods" / name, work / name)
    extra = work / "prov" / "Module.symvers"
    subprocess.run(["make", "-s", "-C", str(kdir), f"M={work / 'prov'}", "modules"], check=True)
    cons = work / "cons_ns_fixed"
    subprocess.run(["make", "-s", "-C", str(kdir), f"M={cons}", f"KBUILD_EXTRA_SYMBOLS={extra}", "modules"], check=True)

    modpost = [str(kdir / "scripts" / "mod" / "modpost"), "-m", "-o", str(work / "out.symvers"), "-e",
               "-i", "Module.symvers", "-i", str(extra), str(cons / "cons_ns_fixed.o")]
    check = buildkit_cmd() + ["symvers", "check", f"M={cons}", f"KERNELDIR={kdir}", f"KBUILD_EXTRA_SYMBOLS={extra}"]
    assert subprocess.run(check, capture_output=True).returncode == 0
    walls = interleaved({"modpost": modpost, "check": check}, REPEAT, cwd=kdir)
    rss = peak_rss_mb(check)
    print(f"kernel Module.symvers: {sum(1 for _ in open(kdir / 'Module.symvers'))} lines; {REPEAT} interleaved runs")
    print(f"{'modpost (peer)':<22} {spread(walls['modpost'])}")
    print(f"{'buildkit symvers check':<22} {spread(walls['check'])}   peak RSS {rss:.0f} MB")
    ratio = statistics.median(walls["check"]) / statistics.median(walls["modpost"])
    verdict = "ok" if ratio <= MAX_RATIO else "MISSED"
    print(f"ratio of medians {ratio:5.2f}x   target <= {MAX_RATIO}x modpost: {verdict}")
    print(f"(interpreter: {sys.executable}; run it with the environment ./quickstart makes, "
          "/opt/buildkit/venv/bin/python: an interpreter whose site imports more starts slower)")
    shutil.rmtree(work)
    return 0 if ratio <= MAX_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
