"""Flicker of colorized time series with and without temporal smoothing.

    python benchmarks/bench_temporal.py [--frames 12] [--size 192]

Flicker is the mean absolute change of a*b* between consecutive output frames. Scenes:
"static+noise" (one photo crop with fresh sensor noise per frame), "drift" (a crop sliding 1 px
per frame; frames are aligned before differencing so motion itself does not count), and "cut"
(half the frames from one crop, half from another: the change of color at the cut must survive,
so the table also shows how far the frame after the cut is from its unsmoothed colors).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from skimage import data
from skimage.color import rgb2gray, rgb2lab

from napari_colorize import colorize, load_model


def _ab(rgb):
    return rgb2lab(rgb)[..., 1:]


def flicker(rgb, shift: int = 0) -> float:
    ab = _ab(rgb)
    if shift:  # frame t+1 is frame t moved left by `shift` pixels
        return float(np.abs(ab[1:, :, :-shift] - ab[:-1, :, shift:]).mean())
    return float(np.abs(np.diff(ab, axis=0)).mean())


def scenes(n: int, size: int, rng):
    gray = (rgb2gray(data.astronaut()) * 255).astype(float)
    y, x = 120, 150
    static = gray[y : y + size, x : x + size]
    noisy = np.clip(static + rng.normal(0, 10, (n,) + static.shape), 0, 255).astype(np.uint8)
    drift = np.stack([gray[y : y + size, x + t : x + t + size] for t in range(n)])
    drift = np.clip(drift + rng.normal(0, 4, drift.shape), 0, 255).astype(np.uint8)
    other = gray[300 : 300 + size, 300 : 300 + size]
    cut = np.stack([static] * (n // 2) + [other] * (n - n // 2)).astype(np.uint8)
    return {"static+noise": (noisy, 0), "drift 1px/frame": (drift, 1), "cut": (cut, 0)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--strengths", type=float, nargs="*", default=[0.0, 0.5, 0.7, 0.9])
    args = ap.parse_args(argv)
    model = load_model()
    rng = np.random.default_rng(0)
    print(f"{'scene':>16} {'temporal':>8} {'flicker':>8} {'chroma':>7} {'after cut':>9} {'s/frame':>7}")
    for name, (stack, shift) in scenes(args.frames, args.size, rng).items():
        plain = None
        for a in args.strengths:
            t0 = time.perf_counter()
            rgb = colorize(stack, model=model, temporal=a)
            dt = (time.perf_counter() - t0) / len(stack)
            plain = rgb if a == 0 else plain
            ab = _ab(rgb)
            f = flicker(rgb[1:] if name == "cut" else rgb, shift) if name != "cut" else flicker(
                np.concatenate([rgb[: len(rgb) // 2], rgb[len(rgb) // 2 + 1 :]]))
            chroma = float(np.hypot(ab[..., 0], ab[..., 1]).mean())
            after = "" if name != "cut" else f"{np.abs(ab[len(rgb) // 2] - _ab(plain)[len(rgb) // 2]).mean():9.2f}"
            print(f"{name:>16} {a:8.2f} {f:8.3f} {chroma:7.2f} {after:>9} {dt:7.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
