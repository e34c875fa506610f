"""Colorize like a reference: PSNR and colorfulness with a photo's own original, and another's.

For each color photo of the data set, its lightness (L*) is colorized three ways with the public
``colorize``: automatic, with the photo's own color original as ``reference`` (an upper bound of
what a well-chosen reference gives), and with the next photo's original (a different palette:
the result's colorfulness and ab histogram should follow that photo's, not the truth's). Prints
per-image means, and the mean ab-histogram distance (total variation over 10 x 10 ab cells) of
the result to the reference's and to the truth's.

    python benchmarks/bench_reference.py                     # bsds500-test, strength 0.5
    python benchmarks/bench_reference.py --strength 0 0.5 1 --limit 50
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from napari_colorize import colorize
from napari_colorize.core.color import rgb_to_lab
from napari_colorize.core.data import is_colorful, iter_images
from napari_colorize.core.metrics import colorfulness, psnr

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "photos"


def ab_hist(rgb01: np.ndarray) -> np.ndarray:
    """Normalised 2D histogram of Lab ab over 10 x 10 cells from -110 to 110."""
    lab = rgb_to_lab(rgb01.astype(np.float32))
    h, _, _ = np.histogram2d(lab[..., 1].ravel(), lab[..., 2].ravel(), bins=10, range=[[-110, 110]] * 2)
    return h / h.sum()


def tv(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - q).sum())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(PHOTOS / "bsds500-test.tar"))
    p.add_argument("--strength", type=float, nargs="+", default=[0.5])
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", default=None, help="write the table as JSON here")
    args = p.parse_args(argv)
    photos = [rgb for _, rgb in itertools.islice(iter_images(args.data), args.limit) if is_colorful(rgb)]
    n = len(photos)
    rows = {}
    auto = []
    for i, rgb in enumerate(photos):
        truth = rgb.astype(np.float32) / 255.0
        gray = rgb  # colorize reads the lightness of an RGB image: the truth's L*, exactly
        plain = colorize(gray)
        auto.append((psnr(plain, truth), colorfulness(plain) / max(colorfulness(truth), 1e-6)))
        other = photos[(i + 1) % n].astype(np.float32) / 255.0
        for s in args.strength:
            own = colorize(gray, reference=rgb, reference_strength=s)
            shifted = colorize(gray, reference=photos[(i + 1) % n], reference_strength=s)
            rows.setdefault(s, []).append([
                psnr(own, truth), colorfulness(own) / max(colorfulness(truth), 1e-6),
                colorfulness(shifted) / max(colorfulness(other), 1e-6),
                tv(ab_hist(shifted), ab_hist(other)), tv(ab_hist(shifted), ab_hist(truth)),
            ])
    a = np.mean(auto, axis=0)
    print(f"{n} color photos of {Path(args.data).name}; automatic PSNR {a[0]:.2f}, colorfulness {a[1]:.2f}")
    print("strength  PSNR own  gain  colorful own  colorful other  hist TV to other  to truth")
    table = {"photos": n, "auto_psnr": float(a[0]), "auto_colorfulness": float(a[1]), "rows": {}}
    for s, r in rows.items():
        m = np.mean(r, axis=0)
        print(f"{s:8.2f}  {m[0]:8.2f}  {m[0] - a[0]:+.2f}  {m[1]:12.2f}  {m[2]:14.2f}  {m[3]:16.3f}  {m[4]:8.3f}")
        table["rows"][str(s)] = dict(zip(["psnr_own", "colorfulness_own", "colorfulness_other",
                                          "hist_tv_other", "hist_tv_truth"], map(float, m)))
    if args.out:
        Path(args.out).write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
