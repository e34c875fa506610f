"""Quality of a model on the validation shard and on high-resolution photos, beside the gray baseline.

Sweeps the annealed-mean temperature with 0 and 10 ground-truth point hints and prints Markdown
tables. With ``--json PATH`` the figures are also written there (the model card takes them).

    python benchmarks/eval_model.py [--model NAME] [--val ../shared/datasets/tiny-imagenet/val-00.tar]
        [--n 1000] [--temperatures 0.2 0.3 0.4 0.6 1.0]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

HIRES = {
    "astronaut": "astronaut",
    "coffee": "coffee",
    "chelsea": "chelsea",
    "rocket": "rocket",
    "retina": "retina",
}


def hires_photos() -> dict[str, np.ndarray]:
    """Color photos shipped with scikit-image (300 to 1411 px), none of them in the training data."""
    from skimage import data

    return {name: getattr(data, fn)() for name, fn in HIRES.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    default_val = Path(__file__).resolve().parents[1].parent / "shared/datasets/tiny-imagenet/val-00.tar"
    ap.add_argument("--model", default=None)
    ap.add_argument("--val", default=str(default_val))
    ap.add_argument("--n", type=int, default=1000, help="validation images to use")
    ap.add_argument("--temperatures", type=float, nargs="+", default=[0.2, 0.3, 0.4, 0.5, 0.7, 1.0])
    ap.add_argument("--hints", type=int, nargs="+", default=[0, 10])
    ap.add_argument("--debias", type=float, nargs="+", default=None,
                    help="decoding corrections to sweep (default: the model's own)")
    ap.add_argument("--working-size", type=int, default=None, help="override the model's working size")
    ap.add_argument("--skip-val", action="store_true")
    ap.add_argument("--full", action="store_true", help="also SSIM and CIEDE2000 (slower)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from napari_colorize import load_model
    from napari_colorize.core.data import iter_images
    from napari_colorize.core.evaluate import evaluate

    model = load_model(args.model)
    own = float(model.config.get("debias", 0.0))
    if args.working_size:
        model.config["working_size"] = args.working_size
    settings = [(b, t) for b in (args.debias or [own]) for t in args.temperatures]
    results: dict = {"model": model.name, "val": {}, "hires": {}}
    t0 = time.time()
    if args.val and Path(args.val).exists() and not args.skip_val:
        val = [rgb for _, rgb in itertools.islice(iter_images(args.val), args.n)]
        print(f"## {Path(args.val).name}: first {len(val)} images ({model.name})\n")
        print("| debias | T | hints | PSNR | gray PSNR | colorfulness ratio |" + (" SSIM | gray SSIM | CIEDE2000 | gray CIEDE2000 |" if args.full else ""))
        print("|---|---|---|---|---|---|" + ("---|---|---|---|" if args.full else ""))
        for b, t in settings:
            model.config["debias"] = b
            for n in args.hints:
                r = evaluate(model, val, n_hints=n, temperature=t, full=args.full)
                results["val"][f"d{b}_T{t}_h{n}"] = r
                extra = (f" {r['ssim']:.4f} | {r['ssim_gray']:.4f} | {r['ciede2000']:.2f} | {r['ciede2000_gray']:.2f} |"
                         if args.full else "")
                print(f"| {b} | {t} | {n} | {r['psnr']:.2f} | {r['psnr_gray']:.2f} | {r['colorfulness_ratio']:.2f} |{extra}",
                      flush=True)
    photos = hires_photos()
    print(f"\n## high-resolution photos ({', '.join(f'{k} {v.shape[1]}x{v.shape[0]}' for k, v in photos.items())})\n")
    print("| debias | T | hints | mean PSNR | gray PSNR | colorfulness ratio | per photo PSNR (gray) |")
    print("|---|---|---|---|---|---|---|")
    for b, t in settings:
        model.config["debias"] = b
        for n in args.hints:
            per = {k: evaluate(model, [v], n_hints=n, temperature=t, full=False) for k, v in photos.items()}
            mean = {key: float(np.mean([r[key] for r in per.values()])) for key in ("psnr", "psnr_gray")}
            ratio = float(np.mean([r["colorfulness"] for r in per.values()]) /
                          np.mean([r["colorfulness_gt"] for r in per.values()]))
            results["hires"][f"d{b}_T{t}_h{n}"] = {"psnr": round(mean["psnr"], 3), "psnr_gray": round(mean["psnr_gray"], 3),
                                              "colorfulness_ratio": round(ratio, 3), "per_photo": per}
            detail = ", ".join(f"{k} {r['psnr']:.1f} ({r['psnr_gray']:.1f})" for k, r in per.items())
            print(f"| {b} | {t} | {n} | {mean['psnr']:.2f} | {mean['psnr_gray']:.2f} | {ratio:.2f} | {detail} |", flush=True)
    model.config["debias"] = own
    print(f"\n{time.time() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
