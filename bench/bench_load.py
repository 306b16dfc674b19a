"""A kernel upgrade checked: ``buildkit symvers load OLD/kernel --kernel NEW`` vs the core of RHEL's
weak-modules, ``depmod -n -e -E NEW/Module.symvers -b ROOT OLD``, on Debian's real module trees.

Two upgrades, each tool run in this process tree on the same unpacked packages, taking turns, median
wall of REPEAT runs, interpreter start included:
  abi-change   the 4,022 modules of the oldest bookworm ABI the archive offers against the newest kernel
               (module_layout and 18,000 CRCs changed: every module needs a rebuild)
  same-abi     the newest kernel's own modules against itself (everything resolves: the full walk)
buildkit answers more than depmod does (gate order, GPL-only, namespaces, vermagic, duplicate exports,
the exact kernel lines and fixes), so this is the price of a full answer against a warnings grep.
Prints both times, the ratio, each one's peak RSS, and checks that buildkit refuses exactly the modules
depmod warns about in the abi-change case and none in the same-abi case.
Exit status 1 when a ratio is above the target (1.0x) or the verdicts disagree.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time

from common import FIXTURES, ROOT, buildkit_cmd, kernel, need, peak_rss_mb

REPEAT = 5
TARGET = 1.0


def oldest() -> tuple[object, str]:
    dest = FIXTURES / "kernel-oldest"
    if not (dest / ".done").exists():
        subprocess.run(["sh", str(ROOT / "tests" / "fixtures" / "kernel.sh"), str(dest)], check=True,
                       env={"BUILDKIT_KABI": "oldest", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    return dest / "root", (dest / "abi").read_text().strip()


def main() -> int:
    depmod_bin = need("depmod")
    new_root, new = kernel()
    old_root, old = oldest()
    new_symvers = new_root / "lib" / "modules" / new / "build" / "Module.symvers"
    cases = {
        "abi-change": (old_root, old),
        "same-abi": (new_root, new),
    }
    failed = False
    print(f"target kernel: {new} ({new_root}); ratio target <= {TARGET}x; median of {REPEAT} runs, interleaved")
    for case, (root, release) in cases.items():
        tree = root / "lib" / "modules" / release / "kernel"
        depmod = [depmod_bin, "-n", "-e", "-E", str(new_symvers), "-b", str(root), release]
        load = buildkit_cmd() + ["symvers", "load", str(tree), "--kernel", str(new_root)]
        warned = {re.sub(r"\.ko.*$", "", m.rsplit("/", 1)[-1]).replace("-", "_")
                  for m in re.findall(r"WARNING: (\S+\.ko\S*) (?:disagrees|needs unknown)",
                                      subprocess.run(depmod, capture_output=True, text=True).stderr)}
        report = json.loads(subprocess.run(load + ["--json"], capture_output=True, text=True).stdout)
        refused = {m["name"] for m in report["modules"] if not m["loads"]}
        walls: dict[str, list[float]] = {"depmod": [], "load": []}
        for _ in range(REPEAT):
            for name, cmd in (("depmod", depmod), ("load", load)):
                start = time.perf_counter()
                subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                walls[name].append(time.perf_counter() - start)
        t_depmod, t_load = statistics.median(walls["depmod"]), statistics.median(walls["load"])
        ratio = t_load / t_depmod
        agree = refused == warned
        print(f"\n{case}: {release} modules ({len(report['modules'])}) -> kernel {new}")
        print(f"  {'depmod -n -e -E':<24} {t_depmod * 1000:8.1f} ms   peak RSS {peak_rss_mb(depmod):6.1f} MB   "
              f"{len(warned)} modules with warnings")
        print(f"  {'buildkit symvers load':<24} {t_load * 1000:8.1f} ms   peak RSS {peak_rss_mb(load):6.1f} MB   "
              f"{len(refused)} modules refused")
        print(f"  ratio {ratio:.2f}x ({'ok' if ratio <= TARGET else 'over the target'}); "
              f"same modules as depmod's warnings: {'yes' if agree else 'NO'}")
        if not agree:
            print(f"    only depmod: {sorted(warned - refused)[:10]}  only buildkit: {sorted(refused - warned)[:10]}")
        failed |= ratio > TARGET or not agree
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
