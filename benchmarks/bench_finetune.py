"""Fine-tuning on color domains the base model does not know: ab error on held-out images.

Domains:

* ``stain``: scikit-image's immunohistochemistry slide (brown DAB, blue hematoxylin) cut into
  eight 128 x 256 strips; six train, two are held out.
* ``hue``: scikit-image color photos with every hue turned by ``--hue`` degrees in CIELAB
  (lightness kept, so the gray input is the same and only the colors differ); astronaut,
  coffee and rocket train, chelsea is held out.
* ``photos-hue``: 16 BSDS500 training photos (481 x 321) with hue turned 120 degrees, tested
  on 200 BSDS500 test photos turned alike: a few small photos of a shifted palette, as a user
  might bring. Read from ``--data`` (default ``../shared/datasets/photos`` beside the
  repository); nothing is copied.

For each domain it prints the held-out ab RMSE (CIELAB units, no hints, through ``colorize``
as a user gets it) of the base model and of the fine-tuned one, the cut, the gray baseline,
and for ``photos-hue`` the base model's error on the same test photos unturned (what it does
on its home domain: a fine-tuned model that matched it would cut about 1 - that / before).
It also reports how the run went: steps, the best step, the step estimates (settled at which
share of the run, largest move after), the time from start to the first progress update, and,
with ``--stop-after``, how long a stop takes to end a run that keeps its best weights.

    nice python benchmarks/bench_finetune.py [--model NAME] [--seconds 120] [--threads 2]
        [--domains stain hue photos-hue] [--test-images 200] [--stop-after 10] [--steps N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.50


def rotate_hue(rgb_u8: np.ndarray, degrees: float) -> np.ndarray:
    """Turn every hue by ``degrees`` in CIELAB, keeping L; out-of-gamut colors are clipped."""
    import warnings

    from skimage.color import lab2rgb, rgb2lab

    lab = rgb2lab(rgb_u8)
    t = np.deg2rad(degrees)
    a, b = lab[..., 1].copy(), lab[..., 2].copy()
    lab[..., 1] = np.cos(t) * a - np.sin(t) * b
    lab[..., 2] = np.sin(t) * a + np.cos(t) * b
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clipped out-of-gamut colors are expected here
        return (np.clip(lab2rgb(lab), 0, 1) * 255).round().astype(np.uint8)


def stain_domain() -> tuple[dict, dict, dict]:
    from skimage import data

    ihc = data.immunohistochemistry()
    strips = {f"ihc {r},{c}": ihc[r * 128 : (r + 1) * 128, c * 256 : (c + 1) * 256]
              for r in range(4) for c in range(2)}
    held = ("ihc 1,1", "ihc 3,0")
    return {k: v for k, v in strips.items() if k not in held}, {k: strips[k] for k in held}, {}


def hue_domain(degrees: float) -> tuple[dict, dict, dict]:
    from skimage import data

    train = {f"{n} hue+{degrees:g}": rotate_hue(getattr(data, n)(), degrees) for n in ("astronaut", "coffee", "rocket")}
    held = {f"chelsea hue+{degrees:g}": rotate_hue(data.chelsea(), degrees)}
    return train, held, {}


def photos_hue_domain(folder: Path, n_test: int, degrees: float = 120.0) -> tuple[dict, dict, dict]:
    """16 turned training photos, ``n_test`` turned test photos, and the test photos as they were."""
    from napari_colorize.core.data import iter_images

    def first(tar: str, n: int) -> dict:
        out = {}
        for name, rgb in iter_images(folder / tar):
            out[name] = rgb
            if len(out) >= n:
                break
        return out

    train = {f"{k} hue+{degrees:g}": rotate_hue(v, degrees) for k, v in first("bsds500-train.tar", 16).items()}
    plain = first("bsds500-test.tar", n_test)
    held = {f"{k} hue+{degrees:g}": rotate_hue(v, degrees) for k, v in plain.items()}
    return train, held, plain


def ab_rmse(model, images: dict) -> float:
    """Pooled ab RMSE of the model's hint-free colors over the images (None: the gray baseline)."""
    from napari_colorize import colorize
    from napari_colorize.core.color import rgb_to_lab

    sq, n = 0.0, 0
    for rgb in images.values():
        ref = rgb_to_lab(rgb.astype(np.float32) / 255.0)[..., 1:]
        d = ref if model is None else rgb_to_lab(colorize(rgb, model=model))[..., 1:] - ref
        sq += float((d**2).sum())
        n += d.shape[0] * d.shape[1]
    return float(np.sqrt(sq / n))


def settling(totals: list[tuple[float, int]], seconds: float) -> dict:
    """When the step estimate settled (share of the run) and how far it moved after a tenth of it."""
    late = [n for t, n in totals if t >= 0.1 * seconds]
    ref = late[0] if late else 0
    move = max((abs(n - ref) / max(ref, 1) for n in late), default=0.0)
    return {"estimates": len({n for _, n in totals}), "total_at_10pct": ref, "largest_move_after": round(move, 3)}


def run_domain(base, train: dict, seconds: float | None, seed: int, stop_after: float | None = None,
               steps: int | None = None) -> dict:
    from napari_colorize.core.finetune import FinetuneRun, FinetuneSettings

    t0 = time.perf_counter()
    run = FinetuneRun(train, model=base, settings=FinetuneSettings(seconds=seconds, steps=steps, seed=seed))
    t_start = time.perf_counter() - t0  # the dock shows the base model's error here
    totals, first_step, asked = [], None, []

    def stop() -> bool:
        if stop_after is not None and not asked and time.perf_counter() - t0 >= stop_after:
            asked.append(time.perf_counter())
        return bool(asked)

    for info in run.events(stop):
        first_step = first_step or time.perf_counter() - t0
        totals.append((info.elapsed, info.total))
    stop_s = time.perf_counter() - asked[0] if asked else None
    tuned = run.result()
    return {"model": tuned, "run": run, "wall": time.perf_counter() - t0, "to_start": t_start,
            "to_first_step": first_step, "stop_s": stop_s, "totals": totals}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="base model (default: the bundled one)")
    ap.add_argument("--seconds", type=float, default=120.0, help="training budget per domain")
    ap.add_argument("--steps", type=int, default=None,
                    help="a step budget instead of the time budget (to compare machines at equal work)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hue", type=float, default=150.0, help="hue turn of the 'hue' domain, degrees")
    ap.add_argument("--domains", nargs="+", default=["stain", "hue", "photos-hue"],
                    choices=["stain", "hue", "photos-hue"])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "photos"),
                    help="folder with bsds500-train.tar and bsds500-test.tar")
    ap.add_argument("--test-images", type=int, default=200, help="test photos of 'photos-hue'")
    ap.add_argument("--stop-after", type=float, default=None,
                    help="also time a Stop pressed this many seconds into a 'photos-hue' run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from napari_colorize import load_model

    base = load_model(args.model)
    load = os.getloadavg()[0]
    print(f"base model: {base.name}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"budget {f'{args.steps} steps' if args.steps else f'{args.seconds:g} s'}; load average at start {load:.1f} on {os.cpu_count()} cores")
    rows = []
    for domain in args.domains:
        if domain == "photos-hue":
            train, held, plain = photos_hue_domain(Path(args.data), args.test_images)
        else:
            train, held, plain = stain_domain() if domain == "stain" else hue_domain(args.hue)
        before = ab_rmse(base, held)
        r = run_domain(base, train, None if args.steps else args.seconds, args.seed, steps=args.steps)
        after = ab_rmse(r["model"], held)
        run = r["run"]
        differs = any(not torch.equal(v, base.net.state_dict()[k]) for k, v in r["model"].net.state_dict().items())
        row = {"domain": domain, "train_images": len(train), "held_out_images": len(held),
               "ab_rmse_before": round(before, 3), "ab_rmse_after": round(after, 3),
               "cut": round(1 - after / before, 4), "gray_baseline": round(ab_rmse(None, held), 3),
               "finetune_seconds": round(r["wall"], 1), "steps": run.trainer.step, "best_step": run.best["step"],
               "saved_model_differs": differs, "verdict": run.verdict(), "validation": r["model"].card["validation"],
               "to_start_s": round(r["to_start"], 2), "to_first_step_s": round(r["to_first_step"] or -1, 2),
               **settling(r["totals"], r["wall"])}
        if plain:
            row["base_on_unturned"] = round(ab_rmse(base, plain), 3)
        rows.append(row)
        print(f"\n[{domain}] {len(train)} training images, {len(held)} held out")
        print(f"  held-out ab RMSE  base {before:6.2f}   fine-tuned {after:6.2f}   cut {100 * row['cut']:5.1f}%  "
              f"(goal >= {100 * GOAL:.0f}%); gray {row['gray_baseline']:.2f}"
              + (f"; base on the photos unturned {row['base_on_unturned']:.2f}" if plain else ""))
        print(f"  {row['finetune_seconds']:.1f} s, {row['steps']} steps, best at step {row['best_step']}; "
              f"{row['verdict']}; saved model differs from base: {differs}")
        print(f"  base measured after {row['to_start_s']:.2f} s, first step after {row['to_first_step_s']:.2f} s; "
              f"step total at 10% {row['total_at_10pct']}, largest move after {100 * row['largest_move_after']:.1f}%")
    stop = None
    if args.stop_after is not None:
        train, _, _ = photos_hue_domain(Path(args.data), 1)
        r = run_domain(base, train, args.seconds, args.seed, stop_after=args.stop_after)
        stop = {"stop_after_s": args.stop_after, "stop_took_s": round(r["stop_s"], 2),
                "steps": r["run"].trainer.step, "best_step": r["run"].best["step"]}
        print(f"\nStop pressed {args.stop_after:g} s in: the run ended {stop['stop_took_s']:.2f} s later at step "
              f"{stop['steps']}, keeping the weights of step {stop['best_step']}")
    ok = all(r["cut"] >= GOAL for r in rows)
    print(f"\n{'PASS' if ok else 'FAIL'}: every domain >= {100 * GOAL:.0f}% less held-out ab error "
          f"in {f'{args.steps} steps' if args.steps else f'{args.seconds:g} s'} (load average now {os.getloadavg()[0]:.1f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": base.name, "threads": args.threads, "seconds": args.seconds, "steps": args.steps,
                       "load_at_start": load,
                       "rows": rows, "stop": stop}, f, indent=2)


if __name__ == "__main__":
    main()
