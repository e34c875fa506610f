"""Photos at camera size: whole mode against tiled mode and the gray baseline.

BSDS500 validation photos are enlarged ``--factor`` times (bilinear; 9 gives 4329 x 2889, above
the 4096 px where auto mode used to tile) and colorized from their own lightness in both modes.
Prints per-photo PSNR and the means, the share of photos above gray and the seconds per photo.

    python benchmarks/eval_big_photos.py [--factor 9] [--count 12]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from skimage.transform import resize

from napari_colorize import colorize, load_model
from napari_colorize.core.data import is_colorful, iter_images
from napari_colorize.core.metrics import gray_baseline, psnr

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "photos"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(PHOTOS / "bsds500-val.tar"))
    ap.add_argument("--factor", type=int, default=9)
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model()
    scores = {"gray": [], "whole": [], "tiled": []}
    secs = {"whole": [], "tiled": []}
    shape = None
    for _, rgb in iter_images(args.data):
        if len(scores["gray"]) >= args.count:
            break
        if not is_colorful(rgb):
            continue
        img = rgb.astype(np.float32) / 255.0
        shape = (img.shape[0] * args.factor, img.shape[1] * args.factor)
        big = resize(img, shape, order=1).astype(np.float32)
        scores["gray"].append(psnr(gray_baseline(big), big))
        for mode in secs:
            t0 = time.perf_counter()
            out = colorize(big, rgb=True, model=model, mode=mode)
            secs[mode].append(time.perf_counter() - t0)
            scores[mode].append(psnr(out, big))
        print(" ".join(f"{k} {v[-1]:.2f}" for k, v in scores.items()), flush=True)
    gray = np.array(scores["gray"])
    print(f"\n{len(gray)} photos, {shape[1]} x {shape[0]}: gray {gray.mean():.2f} dB")
    for mode in secs:
        s = np.array(scores[mode])
        print(f"{mode}: {s.mean():.2f} dB, above gray {np.mean(s > gray):.0%}, {np.mean(secs[mode]):.1f} s per photo")


if __name__ == "__main__":
    main()
