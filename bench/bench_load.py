"""A kernel upgrade checked, on equal work: ``buildkit symvers load OLD/kernel --kernel NEW --every-problem``
vs the core of RHEL's weak-modules, ``depmod -n -e -E NEW/Module.symvers -b ROOT OLD``, on Debian's real trees.

Both legs report every CRC mismatch and every unknown symbol of every module as text (depmod's warnings, a
line each; buildkit's report with --every-problem: each module's verdict, the kernel's lines, and its
problems with their fixes, every symbol named), and the bench checks that the two lists are the same, symbol
by symbol (buildkit's from its --json), before it times anything. Both are written to /dev/null.
Two upgrades, each tool run in this process tree on the same unpacked packages, interleaved (A B A B ...),
REPEAT runs each, interpreter start included:
  abi-change   the 4,022 modules of the oldest bookworm ABI the archive offers against the newest kernel
               (module_layout and 18,000 CRCs changed: 67,000 problems)
  same-abi     the newest kernel's own modules against itself (everything resolves: the full walk)
A third leg, for reference only, is bench/load_floor.py on the same folder: a Python that opens and maps
each module and slices its section headers and symbol table, answering nothing (the floor of any
pure-Python answer; printed as a share of depmod's median).
Prints min/median/mean/max and spread of each leg, the ratio of the medians, each one's peak RSS.
Exit status 1 when a ratio is above its target (time 1.0x, peak RSS 1.5x) or the lists disagree.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys

from common import FIXTURES, ROOT, buildkit_cmd, interleaved, kernel, need, peak_rss_mb, spread

REPEAT = 7
TARGET = 1.0
RSS_TARGET = 1.5
_WARNING = re.compile(r"WARNING: (\S+\.ko\S*) (disagrees about version of|needs unknown) symbol (\S+)")


def oldest() -> tuple[object, str]:
    dest = FIXTURES / "kernel-oldest"
    if not (dest / ".done").exists():
        subprocess.run(["sh", str(ROOT / "tests" / "fixtures" / "kernel.sh"), str(dest)], check=True,
                       env={"BUILDKIT_KABI": "oldest", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    return dest / "root", (dest / "abi").read_text().strip()


def depmod_problems(stderr: str) -> set[tuple[str, str, str]]:
    return {(re.sub(r"\.ko.*$", "", path.rsplit("/", 1)[-1]).replace("-", "_"),
             "crc" if what.startswith("disagrees") else "undefined", sym)
            for path, what, sym in _WARNING.findall(stderr)}


def buildkit_problems(stdout: str) -> set[tuple[str, str, str]]:
    return {(m["name"], "crc" if p["kind"] in ("crc", "module_layout") else p["kind"], p["symbol"])
            for m in json.loads(stdout)["modules"] for p in m["problems"] if p["kind"] not in ("taint", "trust")}


def main() -> int:
    depmod_bin = need("depmod")
    new_root, new = kernel()
    old_root, old = oldest()
    new_symvers = new_root / "lib" / "modules" / new / "build" / "Module.symvers"
    cases = {"abi-change": (old_root, old), "same-abi": (new_root, new)}
    failed = False
    print(f"target kernel: {new} ({new_root}); targets: time <= {TARGET}x, peak RSS <= {RSS_TARGET}x; "
          f"{REPEAT} interleaved runs a leg")
    for case, (root, release) in cases.items():
        tree = root / "lib" / "modules" / release / "kernel"
        depmod = [depmod_bin, "-n", "-e", "-E", str(new_symvers), "-b", str(root), release]
        load = buildkit_cmd() + ["symvers", "load", str(tree), "--kernel", str(new_root), "--every-problem"]
        theirs = depmod_problems(subprocess.run(depmod, capture_output=True, text=True).stderr)
        mine = buildkit_problems(subprocess.run(load + ["--json"], capture_output=True, text=True).stdout)
        floor = [sys.executable, str(ROOT / "bench" / "load_floor.py"), str(tree)]
        walls = interleaved({"depmod": depmod, "load": load, "floor": floor}, REPEAT)
        ratio = statistics.median(walls["load"]) / statistics.median(walls["depmod"])
        rss_depmod, rss_load = peak_rss_mb(depmod), peak_rss_mb(load)
        agree = mine == theirs
        print(f"\n{case}: {release} modules -> kernel {new}; both legs: every CRC mismatch and unknown symbol")
        print(f"  depmod -n -e -E          {spread(walls['depmod'])}   peak RSS {rss_depmod:6.1f} MB")
        print(f"  symvers load --every-problem {spread(walls['load'])}   peak RSS {rss_load:6.1f} MB")
        print(f"  python floor (reference) {spread(walls['floor'])}   "
              f"{statistics.median(walls['floor']) / statistics.median(walls['depmod']):.0%} of depmod's median")
        print(f"  ratio of medians {ratio:.2f}x ({'ok' if ratio <= TARGET else 'over the target'}); peak RSS "
              f"{rss_load / rss_depmod:.2f}x ({'ok' if rss_load / rss_depmod <= RSS_TARGET else 'over the target'})")
        print(f"  problems: depmod {len(theirs)}, buildkit {len(mine)}; the same, symbol by symbol: "
              f"{'yes' if agree else 'NO'}")
        if not agree:
            print(f"    only depmod: {sorted(theirs - mine)[:5]}  only buildkit: {sorted(mine - theirs)[:5]}")
        failed |= ratio > TARGET or rss_load / rss_depmod > RSS_TARGET or not agree
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
