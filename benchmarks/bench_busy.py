"""Colorize time on a machine busy with other work, with and without the package's OpenMP setting.

Each case runs in a fresh process (OpenMP reads ``GOMP_SPINCOUNT`` when torch loads), beside
``--load`` busy-looping processes: the package's default (3000, set on import) against OpenMP's own
(300,000, given explicitly). Prints the median time of a 256 px and a 1 MP photo, in ms.

    python benchmarks/bench_busy.py [--load 0 2 3] [--repeat 9]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

CHILD = """
import sys, time
import numpy as np
from skimage import data
from skimage.transform import resize
from napari_colorize import colorize, load_model
m = load_model()
out = []
for size in (256, 1024):
    g = resize(data.camera().astype(np.float32) / 255, (size, size), anti_aliasing=True).astype(np.float32)
    for _ in range(3):
        colorize(g, model=m)
    ts = []
    for _ in range(int(sys.argv[1])):
        t = time.perf_counter()
        colorize(g, model=m)
        ts.append(time.perf_counter() - t)
    out.append(np.median(ts) * 1e3)
print(" ".join(f"{v:.1f}" for v in out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--load", type=int, nargs="+", default=[0, 2, 3], help="busy-looping processes beside it")
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    import os

    print("| busy processes | GOMP_SPINCOUNT | 256 px (ms) | 1024 px (ms) |")
    print("|---|---|---|---|")
    for load in args.load:
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
        time.sleep(1)
        try:
            for spin in ("3000 (package)", "300000 (OpenMP's)"):
                env = {**os.environ, "GOMP_SPINCOUNT": spin.split()[0]}
                out = subprocess.run([sys.executable, "-c", CHILD, str(args.repeat)], env=env, capture_output=True,
                                     text=True, check=True).stdout.split()
                print(f"| {load} | {spin} | {out[0]} | {out[1]} |", flush=True)
        finally:
            for h in hogs:
                h.kill()


if __name__ == "__main__":
    main()
