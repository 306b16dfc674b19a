"""``buildkit symvers deps`` vs kmod's ``depmod -n`` on Debian's 4,022-module tree.

Both run in this process tree on the same unpacked packages, taking turns so that a busy machine slows
both alike (A B A B ...), REPEAT runs each, interpreter start included; min/median/mean/max and spread of each
leg, the ratio of the medians:
  depmod   depmod -n -b ROOT RELEASE   (prints modules.dep and its other files to stdout)
  deps     buildkit symvers deps ROOT/lib/modules/RELEASE   (prints modules.dep)
First checks that our modules.dep is byte for byte depmod's. Then prints both times, the ratio, and the
peak RSS of our run (a fresh child's RUSAGE_CHILDREN, so the forked scanner counts too).
Exit status 1 if the output differs, the ratio is above 2 or the peak RSS above 300 MB.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from common import buildkit_cmd, interleaved, kernel, need, peak_rss_mb, spread

REPEAT = 9
MAX_RATIO = 2.0
MAX_RSS_MB = 300.0


def modules_dep_section(text: bytes) -> bytes:
    """The first file ``depmod -n`` prints: everything before its first ``# `` header line."""
    end = text.find(b"\n# ")
    return text if end < 0 else text[: end + 1]


def main() -> int:
    depmod_bin = need("depmod")
    root, release = kernel()
    tree = root / "lib" / "modules" / release
    depmod = [depmod_bin, "-n", "-b", str(root), release]
    deps = buildkit_cmd() + ["symvers", "deps", str(tree)]

    expected = modules_dep_section(subprocess.run(depmod, capture_output=True, check=True).stdout)
    got = subprocess.run(deps, capture_output=True)
    same = got.returncode == 0 and got.stdout == expected
    if not same:
        print(f"modules.dep differs from depmod's (exit {got.returncode}): {got.stderr.decode()[-500:]}")

    walls = interleaved({"depmod": depmod, "deps": deps}, REPEAT, check=True)
    t_depmod = statistics.median(walls["depmod"])
    t_deps = statistics.median(walls["deps"])
    ratio = t_deps / t_depmod
    rss = peak_rss_mb(deps)
    rss_depmod = peak_rss_mb(depmod)

    modules = expected.count(b"\n")
    print(f"tree: {tree} ({modules} modules); {REPEAT} runs each, interleaved; both legs: modules.dep of the tree")
    print(f"{'depmod -n (kmod)':<26} {spread(walls['depmod'])}   peak RSS {rss_depmod:6.1f} MB")
    print(f"{'buildkit symvers deps':<26} {spread(walls['deps'])}   peak RSS {rss:6.1f} MB")
    print(f"ratio of medians {ratio:.2f}x (limit {MAX_RATIO:.1f}x)   "
          f"modules.dep identical: {'yes' if same else 'NO'}   "
          f"RSS limit {MAX_RSS_MB:.0f} MB: {'ok' if rss <= MAX_RSS_MB else 'MISSED'}")
    ok = same and ratio <= MAX_RATIO and rss <= MAX_RSS_MB
    print("result:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
