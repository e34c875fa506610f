"""Fine-tune a model on real photos at the scale it sees them at inference, beside Tiny ImageNet.

Each step is a batch of either whole Tiny ImageNet thumbnails (64 px) or crops of BSDS500 train
photos resized so that their longest side is near the model's working size: at inference a photo
is seen whole at that size, so this is the scale whose context the network has to learn. With
``--global`` the network gets a global branch (zero at first); with ``--width`` a new network of
that width (with regression head and global branch) starts from scratch instead of ``--base``.
``--seconds`` fits the step total to a time budget after the first 50 steps, so that the learning
rate schedule ends with the budget. Resumable from ``--checkpoint-dir``.

Example (the bundled model's run)::

    python scripts/train_photos.py --base default --global --steps 3000 --out runs/photos/default \\
        --checkpoint-dir runs/photos/ckpt --cache-dir .cache --threads 2
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from napari_colorize.core.data import is_colorful, iter_images, load_array
from napari_colorize.core.evaluate import evaluate
from napari_colorize.core.modelfile import load
from napari_colorize.core.training import TrainConfig, Trainer, new_model

D = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def color_photos(source, count: int | None = None, seed: int = 0) -> list[np.ndarray]:
    """The color photos of ``source``; with ``count``, a seeded random subset of that many."""
    rgbs = [rgb for _, rgb in iter_images(source) if is_colorful(rgb)]
    if count is not None and count < len(rgbs):
        keep = np.random.default_rng(seed).choice(len(rgbs), count, replace=False)
        rgbs = [rgbs[i] for i in sorted(keep)]
    return rgbs


def photo_scales(rgbs, sizes=(112, 128, 160)) -> list[list[np.ndarray]]:
    """Each photo of ``rgbs`` resized so that its longest side is each of ``sizes``."""
    out = [[] for _ in sizes]
    for rgb in rgbs:
        t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
        for k, s in enumerate(sizes):
            f = s / max(rgb.shape[:2])
            hw = (max(80, round(rgb.shape[0] * f)), max(80, round(rgb.shape[1] * f)))
            r = F.interpolate(t, size=hw, mode="bilinear", antialias=True, align_corners=False)
            out[k].append(r[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy())
    return out


def whole_photos(rgbs, size: int = 128) -> list[np.ndarray]:
    """Photos of ``rgbs`` as inference sees them whole: longest side ``size``, the other
    rounded to a multiple of 8; stacked by shape (N, h, w, 3), landscape and portrait apart."""
    groups: dict = {}
    for rgb in rgbs:
        f = size / max(rgb.shape[:2])
        hw = tuple(max(8, int(round(d * f / 8)) * 8) for d in rgb.shape[:2])
        t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
        r = F.interpolate(t, size=hw, mode="bilinear", antialias=True, align_corners=False)
        groups.setdefault(hw, []).append(r[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy())
    return [np.stack(g) for g in groups.values() if len(g) >= 8]


def make_sampler(photos: list[list[np.ndarray]], share: float, crop: int = 80, whole=None,
                 whole_share: float = 0.0):
    """Batch maker: with probability ``share`` a batch of photos, else thumbnails. Of the photo
    batches, a share ``whole_share`` are whole photos of one shape from ``whole`` (with random
    horizontal flips), the others crops of ``crop`` px."""
    from napari_colorize.core.training import random_crops

    def sampler(images, n, _crop, rng):
        if rng.random() < share:
            if whole and rng.random() < whole_share:
                group = whole[int(rng.integers(len(whole)))]
                batch = group[rng.integers(0, len(group), n)]
                flip = rng.random(n) < 0.5
                batch[flip] = batch[flip][:, :, ::-1]
                return batch
            scale = photos[int(rng.integers(len(photos)))]
            return random_crops(scale, n, crop, rng)
        return random_crops(images, n, images.shape[1], rng)

    return sampler


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", nargs="+", default=[str(D / f"tiny-imagenet/train-0{i}.tar") for i in range(5)])
    p.add_argument("--photos", default=str(D / "photos/bsds500-train.tar"))
    p.add_argument("--photo-count", type=int, default=None,
                   help="train on a seeded random subset of this many color photos (a learning curve)")
    p.add_argument("--val", default=str(D / "photos/bsds500-val.tar"))
    p.add_argument("--val-count", type=int, default=50, help="0: no validation")
    p.add_argument("--base", default="default")
    p.add_argument("--width", type=int, default=None, help="train a new network of this width")
    p.add_argument("--seconds", type=float, default=None, help="time budget (sets the step total)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--global", dest="glob", action="store_true", help="add a global branch")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=48)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--share", type=float, default=0.5, help="share of batches made of photo crops")
    p.add_argument("--whole-share", type=float, default=0.0,
                   help="share of photo batches made of whole photos at the working size (the rest: crops)")
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--checkpoint-dir", required=True)
    p.add_argument("--cache-dir", default=".cache")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    tiny = load_array([Path(s) for s in args.tiny], size=64, cache_dir=args.cache_dir)
    rgbs = color_photos(args.photos, args.photo_count, args.seed)
    photos = photo_scales(rgbs)
    whole = whole_photos(rgbs, int(load(args.base).config["working_size"])) if args.whole_share else None
    val = [rgb for _, rgb in itertools.islice(iter_images(args.val), args.val_count)] if args.val_count else []
    print(f"{len(tiny)} thumbnails, {len(photos[0])} photos, read in {time.time() - t0:.0f}s", file=sys.stderr)
    base = load(args.base)
    torch.manual_seed(args.seed)
    if args.width:
        model = new_model(tiny, width=args.width, seed=args.seed, regression=True)
        model.config.update({k: v for k, v in base.config.items() if k != "width"})
    else:
        model = copy.deepcopy(base)
    if args.glob or args.width:
        model.add_global_branch()
    model.config["vivid"] = 0.0  # validation watches the regression head; decoding is chosen later
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=args.warmup,
                      seed=args.seed, width=model.config["width"], crop=64, val_every=args.val_every,
                      checkpoint_every=50, device=args.device)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    def validate(m):
        r = evaluate(m, val, full=False, seed=0)
        return {"val_psnr": r["psnr"], "val_psnr_gray": r["psnr_gray"],
                "val_colorfulness_ratio": r["colorfulness_ratio"]}

    trainer = Trainer(model, tiny, cfg, checkpoint_dir=args.checkpoint_dir, validate=validate if val else None,
                      sampler=make_sampler(photos, args.share, whole=whole, whole_share=args.whole_share))
    if trainer.load_checkpoint():
        print(f"resumed at step {trainer.step}", file=sys.stderr)
    t_start = time.time()
    if args.seconds:
        cfg.seconds = args.seconds - (t_start - t0)  # a hard stop as well, should the pace drop
    for info in trainer.steps():
        if args.seconds and info.done in (50, 300):
            pace = (time.time() - t_start) / info.done
            cfg.steps = info.step + max(1, int((args.seconds - (time.time() - t0)) / pace))
            print(f"{pace:.3f} s/step: {cfg.steps} steps in all", file=sys.stderr)
        if info.step % 10 == 0 or info.val:
            print(json.dumps({"step": info.step, "loss": round(info.loss, 4),
                              "s_per_step": round((time.time() - t_start) / info.done, 2), **info.val}),
                  flush=True)
    model.card["photo_training"] = {
        "command": "python scripts/train_photos.py " + " ".join(sys.argv[1:]),
        "tiny": args.tiny, "photos": args.photos, "n_thumbnails": int(len(tiny)),
        "n_photos": len(photos[0]), "photo_count": args.photo_count, "steps": trainer.step, "seed": args.seed,
        "batch_size": args.batch_size, "lr": args.lr, "share": args.share, "whole_share": args.whole_share,
        "global": bool(args.glob or args.width), "device": args.device,
        "torch": torch.__version__,
    }
    model.card["history"] = trainer.history
    print(f"saved {model.save(args.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
