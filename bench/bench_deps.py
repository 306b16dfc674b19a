"""``buildkit symvers deps`` vs kmod's ``depmod -n`` on Debian's 4,022-module tree.

Both run in this process tree on the same unpacked packages, taking turns so that a busy machine slows
both alike; each time is the median wall of REPEAT runs, interpreter start included:
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
import time

from common import buildkit_cmd, kernel, need, peak_rss_mb

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

    walls: dict[str, list[float]] = {"depmod": [], "deps": []}
    for _ in range(REPEAT):
        for name, cmd in (("depmod", depmod), ("deps", deps)):
            start = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            walls[name].append(time.perf_counter() - start)
    t_depmod = statistics.median(walls["depmod"])
    t_deps = statistics.median(walls["deps"])
    ratio = t_deps / t_depmod
    rss = peak_rss_mb(deps)
    rss_depmod = peak_rss_mb(depmod)

    modules = expected.count(b"\n")
    print(f"tree: {tree} ({modules} modules); median of {REPEAT} runs each, interleaved")
    print(f"{'depmod -n (kmod)':<26} {t_depmod * 1000:8.1f} ms   peak RSS {rss_depmod:6.1f} MB")
    print(f"{'buildkit symvers deps':<26} {t_deps * 1000:8.1f} ms   peak RSS {rss:6.1f} MB")
    print(f"ratio {ratio:.2f}x (limit {MAX_RATIO:.1f}x)   modules.dep identical: {'yes' if same else 'NO'}   "
          f"RSS limit {MAX_RSS_MB:.0f} MB: {'ok' if rss <= MAX_RSS_MB else 'MISSED'}")
    ok = same and ratio <= MAX_RATIO and rss <= MAX_RSS_MB
    print("result:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
