"""Automatic colorization over decoding settings: the PSNR / colorfulness frontier of a model.

The network runs once per photo; each setting of ``vivid`` (regression moved toward the annealed
mean), ``temperature``, ``calm`` (uncertain pixels pulled toward neutral) and ``neutral`` (pixels
that may be gray pulled toward it) is decoded from the same output. Choose on ``bsds500-val``;
report on the test splits with ``benchmarks/eval_photos.py``.

    python scripts/sweep_decoding.py --model runs/photos/ckpt --vivid 0 0.2 0.4 --calm 0 0.5

With ``--save PATH`` the model is saved there with the chosen setting: the most colorful one
whose mean PSNR is at least ``--min-gain`` dB above gray's (the setting sweep and the rule go
into the model card).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from napari_colorize.core.color import lab_to_rgb_in_gamut
from napari_colorize.core.data import is_colorful, iter_images
from napari_colorize.core.inference import guided_upsample, plane_lightness, predict_logits
from napari_colorize.core.metrics import colorfulness, gray_baseline, neutral_chroma, psnr
from napari_colorize.core.modelfile import load

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "photos"


def pareto(table: list[dict]) -> list[tuple[float, float]]:
    """(colorfulness ratio, PSNR gain over gray) of the settings no other setting beats on both."""
    pts = [(r["colorfulness_ratio"], r["psnr"] - r["psnr_gray"]) for r in table]
    return sorted(p for p in pts if not any(q != p and q[0] >= p[0] and q[1] >= p[1] for q in pts))


def frontier_summary(table: list[dict], at=(0.6, 0.66, 0.7), gain: float = 1.0) -> str:
    """PSNR gain over gray interpolated along the frontier at colorfulness ratios ``at``, and the
    colorfulness ratio at which the frontier is ``gain`` dB above gray (nan outside the settings)."""
    c, g = map(np.asarray, zip(*pareto(table)))
    gains = ", ".join(f"{a:.2f}: {np.interp(a, c, g, left=np.nan, right=np.nan):+.3f} dB" for a in at)
    return f"frontier: gain at colorfulness {gains}; colorfulness at {gain:+.1f} dB: " \
           f"{np.interp(gain, g[::-1], c[::-1], left=np.nan, right=np.nan):.3f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--summarize", nargs="+", default=None, metavar="JSON",
                   help="only print the frontier of tables saved with --out (or model cards' decoding sweeps)")
    p.add_argument("--model", default=None, help="model name or path, or a training checkpoint folder")
    p.add_argument("--data", default=str(PHOTOS / "bsds500-val.tar"))
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--vivid", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6])
    p.add_argument("--temperature", type=float, nargs="+", default=[0.5])
    p.add_argument("--calm", type=float, nargs="+", default=[0.0, 0.5])
    p.add_argument("--neutral", type=float, nargs="+", default=[0.0])
    p.add_argument("--working-size", type=int, nargs="+", default=None)
    p.add_argument("--flip", action="store_true", help="average the outputs of the photo and its mirror image")
    p.add_argument("--out", default=None, help="write the table as JSON here")
    p.add_argument("--save", default=None, help="save the model with the chosen setting here")
    p.add_argument("--min-gain", type=float, default=1.0, help="dB above gray the chosen setting keeps")
    args = p.parse_args(argv)
    if args.summarize:
        for f in args.summarize:
            data = json.loads(Path(f).read_text())
            table = data["decoding"]["sweep"] if isinstance(data, dict) else data
            print(f"{f}: {len(table)} settings; {frontier_summary(table)}")
        return 0
    if args.model and Path(args.model, "checkpoint.safetensors").is_file():
        from napari_colorize.core.training import model_from_checkpoint

        model = model_from_checkpoint(args.model)
    else:
        model = copy.deepcopy(load(args.model))
    sizes = args.working_size or [model.working_size]
    settings = list(itertools.product(sizes, args.vivid, args.temperature, args.calm, args.neutral))
    rows = {s: [] for s in settings}
    gray_psnr = []
    for _, rgb in itertools.islice(iter_images(args.data), args.limit):
        if not is_colorful(rgb):
            continue
        ref = rgb.astype(np.float32) / 255.0
        gray_psnr.append(psnr(gray_baseline(ref), ref))
        l_full = torch.from_numpy(plane_lightness(rgb))[None, None]
        for size in sizes:
            model.config["working_size"] = size
            out, _ = predict_logits(model, l_full)
            if args.flip:
                out = 0.5 * (out + predict_logits(model, l_full.flip(-1))[0].flip(-1))
            l_low = None
            for s in (s for s in settings if s[0] == size):
                model.config.update(vivid=s[1], temperature=s[2], calm=s[3], neutral=s[4])
                ab_low = model.decode(out)
                if l_low is None:
                    l_low = F.interpolate(l_full, size=ab_low.shape[-2:], mode="area")
                ab = guided_upsample(ab_low, l_low, l_full)
                with torch.inference_mode():
                    res = lab_to_rgb_in_gamut(torch.cat([l_full, ab], 1)[0]).permute(1, 2, 0).numpy()
                rows[s].append((psnr(res, ref), colorfulness(res) / max(colorfulness(ref), 1e-6),
                                colorfulness(res), colorfulness(ref), neutral_chroma(res, ref)))
    g = np.array(gray_psnr)
    table = []
    print(f"{len(g)} color photos, gray baseline PSNR {g.mean():.3f}")
    print(f"{'size':>5}{'vivid':>7}{'T':>6}{'calm':>6}{'neut':>6}{'PSNR':>9}{'vs gray':>9}{'beats':>7}{'colorful':>10}{'neutral':>9}")
    for s, r in rows.items():
        a = np.array(r, dtype=np.float64)
        ratio = a[:, 2].mean() / a[:, 3].mean()
        row = {"working_size": s[0], "vivid": s[1], "temperature": s[2], "calm": s[3], "neutral": s[4],
               "psnr": float(a[:, 0].mean()), "psnr_gray": float(g.mean()),
               "beats_gray": float((a[:, 0] > g).mean()), "colorfulness_ratio": float(ratio),
               "neutral_chroma": float(np.nanmean(a[:, 4]))}
        table.append(row)
        print(f"{s[0]:>5}{s[1]:>7.2f}{s[2]:>6.2f}{s[3]:>6.2f}{s[4]:>6.2f}{row['psnr']:>9.3f}{row['psnr'] - g.mean():>+9.3f}"
              f"{row['beats_gray']:>7.0%}{ratio:>10.3f}{row['neutral_chroma']:>9.2f}")
    print(frontier_summary(table))
    if args.out:
        Path(args.out).write_text(json.dumps(table, indent=2) + "\n")
    if args.save:
        ok = [r for r in table if r["psnr"] - r["psnr_gray"] >= args.min_gain] or table
        best = max(ok, key=lambda r: r["colorfulness_ratio"])
        model.config.update({k: best[k] for k in ("working_size", "vivid", "temperature", "calm", "neutral")})
        model.card["decoding"] = {
            "data": f"{args.data}: {len(g)} color photos at native resolution",
            "rule": f"most colorful setting whose automatic PSNR is at least gray + {args.min_gain} dB",
            "chosen": best, "sweep": table, "command": "python scripts/sweep_decoding.py " + " ".join(
                argv if argv is not None else __import__("sys").argv[1:])}
        model.config.setdefault("hint_reach", model.hint_reach)
        glob = "global branch (image-level pooled features added back at 1/8 resolution)"
        heads = ["ab-regression head"] * model.regression + [glob] * (model.net.glob is not None)
        model.card["architecture"] = (f"ColorNet U-Net, width {model.config['width']}, {model.n_parameters()} "
                                      f"parameters, {model.bins.shape[0]} ab bins, {', '.join(heads) or 'bins only'}, "
                                      "input (L, hint a, hint b, hint mask)")
        model.card.pop("validation", None)  # figures of an earlier model
        print(f"chose {best}; saved {model.save(args.save)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
