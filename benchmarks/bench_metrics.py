"""Time and peak memory of the full metrics report of a big result against its reference.

Each case runs in a fresh process: Lab and CIEDE2000 in bands of rows on all cores (the package's
way) against one piece (``BAND_PIXELS`` set beyond the plane). Prints seconds and the growth of
peak RSS during the report.

    python benchmarks/bench_metrics.py [--size 3000 4000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = """
import resource, sys, time
import numpy as np
from skimage import data
from skimage.transform import resize
from napari_colorize.core import metrics, rgb_planes
h, w, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if mode == "one piece":
    rgb_planes.BAND_PIXELS = 1 << 40
ref = resize(data.astronaut(), (h, w), order=1).astype(np.float32)
img = np.clip(ref + 0.05, 0, 1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
metrics.report(img, ref)
print(f"{time.perf_counter() - t:.1f} {(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024:.0f}")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=[3000, 4000], metavar=("H", "W"))
    args = ap.parse_args()
    print("| mode | report (s) | peak RSS growth (MB) |")
    print("|---|---|---|")
    for mode in ("bands of rows", "one piece"):
        out = subprocess.run([sys.executable, "-c", CHILD, *map(str, args.size), mode], capture_output=True,
                             text=True, check=True).stdout.split()
        print(f"| {mode} | {out[0]} | {out[1]} |", flush=True)


if __name__ == "__main__":
    main()
