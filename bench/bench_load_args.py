"""``buildkit symvers load`` of a kernel's 4,023 modules named one by one on the command line, against the same
modules given as their folder (issue 17: 19-29 s and 105 MB against 2 s).

Equal work: the arguments are the modules in the very order the folder run loads them (its dependency order,
read from its own output), so both runs load the same modules in the same order and print the same verdicts
(checked). A second arguments leg in plain path order (``find | sort``) is shown too: that is other work (an
argument list is loaded in the order given, as insmod would, so a module before its provider is refused and
modprobe's answer worked out), and the output says so. Legs take turns, REPEAT times; medians, min-max, and
peak RSS of one run each. Target: arguments <= 1.2x the folder.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from common import buildkit_cmd, kernel, peak_rss_mb

REPEAT = 5
TARGET = 1.2


def main() -> int:
    root, release = kernel()
    tree = root / "lib" / "modules" / release
    base = [*buildkit_cmd(), "symvers", "load"]
    folder_cmd = [*base, str(tree / "kernel"), "--kernel", str(tree)]
    out = subprocess.run(folder_cmd, capture_output=True, text=True).stdout
    order = [line.rsplit("(", 1)[1].split(";")[0] for line in out.splitlines() if ": loads  (" in line]
    sorted_paths = sorted(str(p) for p in (tree / "kernel").rglob("*.ko*"))
    if len(order) != len(sorted_paths):
        sys.exit(f"bench: the folder run loaded {len(order)} of {len(sorted_paths)} modules; expected all")
    legs = {"folder": folder_cmd, "arguments": [*base, *order, "--kernel", str(tree)],
            "arguments, path order": [*base, *sorted_paths, "--kernel", str(tree)]}
    same = subprocess.run(legs["arguments"], capture_output=True, text=True).stdout
    if same != out:
        sys.exit("bench: the arguments in the folder's order did not print what the folder run printed")
    walls: dict[str, list[float]] = {name: [] for name in legs}
    for _ in range(REPEAT):
        for name, cmd in legs.items():
            start = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            walls[name].append(time.perf_counter() - start)
    med = {name: statistics.median(w) for name, w in walls.items()}
    print(f"kernel {release}: {len(order)} modules into their own kernel, {REPEAT} runs each, taking turns")
    for name, w in walls.items():
        rss = peak_rss_mb(legs[name])
        print(f"  {name:<22} median {med[name] * 1e3:7.1f} ms (min {min(w) * 1e3:.1f}, max {max(w) * 1e3:.1f}), "
              f"peak RSS {rss:.1f} MB")
    ratio = med["arguments"] / med["folder"]
    verdict = "ok" if ratio <= TARGET else "MISSED"
    print(f"arguments / folder (equal work): {ratio:.2f}x; target <= {TARGET:.1f}x: {verdict}")
    print(f"arguments in path order / folder: {med['arguments, path order'] / med['folder']:.2f}x (other work: the "
          "modules before their providers are refused and modprobe's answer is worked out)")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
