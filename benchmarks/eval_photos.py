"""Colorize real photos at their own resolution and compare with gray and with Levin et al. 2004.

For each data set (default: BSDS500 test and Urban100): the automatic result and the result with
10 random ground-truth point hints, beside the gray baseline and, for the hints, Levin et al.
2004's optimization given the same hint pixels (``default_rng([seed, i])`` for the i-th photo).
Prints per-image means of PSNR, CIEDE2000, colorfulness ratio, neutral-area chroma and the share
of photos beating gray, writes them to ``<out>/eval_photos.json``, and writes a grid of a dozen
photos (gray | automatic | 10 hints | Levin 2004 | truth) to ``<out>/grid-<set>.png``.

    python benchmarks/eval_photos.py                       # the bundled model, test splits
    python benchmarks/eval_photos.py --data ../shared/datasets/photos/bsds500-val.tar --set vivid=0.3
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import time
from pathlib import Path

import numpy as np

from napari_colorize.core.data import iter_images
from napari_colorize.core.evaluate import evaluate, gt_hints, levin_baseline
from napari_colorize.core.inference import colorize_plane
from napari_colorize.core.metrics import gray_baseline
from napari_colorize.core.modelfile import load

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "photos"
LEVIN_CACHE = Path(".cache") / "levin.json"
SHOWN = ("psnr", "ciede2000", "colorfulness_ratio", "neutral_chroma", "beats_gray")


def grid(images: list[np.ndarray], model, n_hints: int, seed: int, width: int = 240) -> np.ndarray:
    """Rows of gray | automatic | hints | Levin 2004 | truth, each photo scaled to ``width``."""
    from skimage.transform import resize

    rows = []
    for i, rgb in enumerate(images):
        ref = rgb.astype(np.float32) / 255.0
        pts, cols = gt_hints(ref, n_hints, np.random.default_rng([seed, i]))
        hinted = colorize_plane(model, rgb, pts, cols)
        for r, c in pts.astype(int):  # mark the hint pixels
            hinted[max(0, r - 2) : r + 3, max(0, c - 2) : c + 3] = [1, 0, 1]
        cells = [gray_baseline(ref), colorize_plane(model, rgb), hinted, levin_baseline(ref, pts, cols), ref]
        h = round(ref.shape[0] * width / ref.shape[1])
        rows.append(np.concatenate([resize(c, (h, width), anti_aliasing=True) for c in cells], axis=1))
    return (np.concatenate(rows, axis=0).clip(0, 1) * 255).astype(np.uint8)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=[str(PHOTOS / "bsds500-test.tar"), str(PHOTOS / "urban100.tar")])
    p.add_argument("--model", default=None, help="model name or path, or a training checkpoint folder")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override decoding settings of the model card (vivid, temperature, working_size...)")
    p.add_argument("--hints", type=int, default=10)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-levin", action="store_true", help="skip the (slow) Levin et al. 2004 baseline")
    p.add_argument("--grid", type=int, default=12, help="photos in the grid (0: none)")
    p.add_argument("--out", default="runs/eval")
    args = p.parse_args(argv)
    if args.model and Path(args.model, "checkpoint.safetensors").is_file():  # a training run's latest
        from napari_colorize.core.training import model_from_checkpoint

        model = model_from_checkpoint(args.model)
        model.name = f"checkpoint {args.model} step {model.card['training']['steps']}"
    else:
        model = copy.deepcopy(load(args.model))
    for kv in args.set:
        k, v = kv.split("=", 1)
        model.config[k] = type(model.config.get(k, 0.0))(float(v))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"model": model.name, "config": model.config, "sets": {}}
    for src in args.data:
        name = Path(src).name.split(".")[0]
        images = [rgb for _, rgb in itertools.islice(iter_images(src), args.limit)]
        t0 = time.perf_counter()
        auto = evaluate(model, images, 0, seed=args.seed)
        hinted = {}
        if args.hints:
            # Levin's solve does not depend on the model and is slow at 1 MP: reuse earlier figures
            key = f"{name}|{args.hints}|{args.seed}|{args.limit}"
            cache = json.loads(LEVIN_CACHE.read_text()) if LEVIN_CACHE.exists() else {}
            again = not args.no_levin and key not in cache
            hinted = evaluate(model, images, args.hints, seed=args.seed, levin=again)
            if again:
                cache[key] = {k: v for k, v in hinted.items() if k.endswith("_levin")}
                LEVIN_CACHE.parent.mkdir(parents=True, exist_ok=True)
                LEVIN_CACHE.write_text(json.dumps(cache, indent=2) + "\n")
            if not args.no_levin:
                hinted.update(cache[key])
        results["sets"][name] = {"automatic": auto, f"{args.hints}_hints": hinted,
                                 "seconds": round(time.perf_counter() - t0, 1)}
        print(f"\n{name}: {auto['n_images']} color photos ({auto['n_skipped_gray']} gray skipped)")
        print(f"{'':<22}" + "".join(f"{k:>20}" for k in SHOWN))
        print(f"{'gray':<22}" + "".join(f"{auto.get(k + '_gray', 0.0):>20.3f}" for k in SHOWN[:2])
              + f"{0.0:>20.3f}" + f"{auto['neutral_chroma_gray']:>20.3f}")
        print(f"{'automatic':<22}" + "".join(f"{auto[k]:>20.3f}" for k in SHOWN))
        if hinted:
            print(f"{f'{args.hints} hints':<22}" + "".join(f"{hinted[k]:>20.3f}" for k in SHOWN))
            if "psnr_levin" in hinted:
                print(f"{f'Levin 2004, {args.hints} hints':<22}{hinted['psnr_levin']:>20.3f}"
                      f"{hinted['ciede2000_levin']:>20.3f}")
        if args.grid:
            from PIL import Image

            picks = images[:: max(1, len(images) // args.grid)][: args.grid]
            Image.fromarray(grid(picks, model, args.hints, args.seed)).save(out / f"grid-{name}.png")
    (out / "eval_photos.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
