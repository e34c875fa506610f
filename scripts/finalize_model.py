"""Pick a trained model's decoding defaults on the validation shard and write its model card.

The decoding correction (``debias``), temperature and, for a model with a regression head, how
far its chroma moves toward the distribution's annealed mean (``vivid``) are chosen on the first ``--n`` validation
images: the highest automatic PSNR among settings whose colorfulness is at least ``--min-ratio``
of the ground truth's. The card then gets the validation figures (automatic and with 10 hints,
PSNR, SSIM, CIEDE2000, colorfulness, each beside the gray baseline) and those on
high-resolution photos.

    python scripts/finalize_model.py runs/default/default.safetensors src/napari_colorize/models/default
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--val", default=str(ROOT.parent / "shared/datasets/tiny-imagenet/val-00.tar"))
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--n-final", type=int, default=5000, help="images for the reported figures")
    ap.add_argument("--min-ratio", type=float, default=0.6)
    ap.add_argument("--debias", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--temperatures", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.7, 1.0])
    ap.add_argument("--vivid", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0],
                    help="values tried for a regression model (ignored for a bin-only one)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from eval_model import hires_photos

    from napari_colorize.core.data import iter_images
    from napari_colorize.core.evaluate import evaluate
    from napari_colorize.core.modelfile import load

    model = load(args.model)
    t0 = time.time()
    val = [rgb for _, rgb in itertools.islice(iter_images(args.val), args.n_final)]
    pick = val[: args.n]
    sweep = []
    vivid = args.vivid if model.regression else [0.0]
    for d, t, v in itertools.product(args.debias, args.temperatures, vivid):
        model.config.update({"debias": d, "vivid": v})
        r = evaluate(model, pick, n_hints=0, temperature=t, full=False)
        sweep.append({"debias": d, "temperature": t, "vivid": v, "psnr": r["psnr"], "psnr_gray": r["psnr_gray"],
                      "colorfulness_ratio": r["colorfulness_ratio"]})
        print(json.dumps(sweep[-1]), flush=True)
    ok = [s for s in sweep if s["colorfulness_ratio"] >= args.min_ratio] or sweep
    best = max(ok, key=lambda s: s["psnr"])
    model.config.update({"debias": best["debias"], "temperature": best["temperature"], "vivid": best["vivid"]})
    print(f"chose debias {best['debias']}, temperature {best['temperature']}, vivid {best['vivid']}", flush=True)

    figures = {}
    for n in (0, 10):
        figures[f"val_{n}_hints"] = evaluate(model, val, n_hints=n, full=True)
        print(json.dumps({f"val_{n}_hints": figures[f"val_{n}_hints"]}), flush=True)
    photos = hires_photos()
    for n in (0, 10):
        per = {k: evaluate(model, [v], n_hints=n, full=True) for k, v in photos.items()}
        figures[f"hires_{n}_hints"] = per
        print(json.dumps({f"hires_{n}_hints": {k: (v["psnr"], v["psnr_gray"], v["colorfulness_ratio"])
                                               for k, v in per.items()}}), flush=True)
    model.card["validation"] = {
        "data": f"{Path(args.val).name}: first {len(val)} images, gray and sepia ones skipped; "
                f"decoding chosen on the first {len(pick)}",
        "rule": f"highest automatic PSNR with colorfulness >= {args.min_ratio} of ground truth",
        "sweep": sweep,
        **figures,
        "hires_photos": {k: f"{v.shape[1]}x{v.shape[0]}" for k, v in photos.items()},
    }
    model.card["finalize_command"] = "python scripts/finalize_model.py " + " ".join(sys.argv[1:])
    model.card["finalize_seconds"] = round(time.time() - t0)
    print(f"saved {model.save(args.out)}")


if __name__ == "__main__":
    main()
