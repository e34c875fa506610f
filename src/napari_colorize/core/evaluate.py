"""Evaluating a colorizer on color photos, beside the gray baseline."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .color import rgb_to_lab
from .inference import colorize_plane
from .metrics import colorfulness, gray_baseline, psnr
from .modelfile import Colorizer


def gt_hints(rgb01: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random points and their ground-truth colors (mean of a 3 x 3 patch)."""
    h, w = rgb01.shape[:2]
    pts = np.stack([rng.integers(0, h, n), rng.integers(0, w, n)], axis=1)
    cols = np.stack([
        rgb01[max(0, r - 1) : r + 2, max(0, c - 1) : c + 2].reshape(-1, 3).mean(0) for r, c in pts
    ]) if n else np.zeros((0, 3))
    return pts.astype(np.float32), cols.astype(np.float32)


def levin_baseline(rgb01: np.ndarray, pts: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Levin et al. 2004 given the same point hints: RGB (H, W, 3) in [0, 1] on the photo's own L."""
    import torch

    from .color import lab_to_rgb_in_gamut, rgb_to_lab
    from .propagate import propagate

    lab = rgb_to_lab(rgb01)
    h, w = lab.shape[:2]
    mask = np.zeros((h, w), bool)
    values = np.zeros((h, w, 2), np.float32)
    if len(pts):
        r, c = pts[:, 0].astype(int), pts[:, 1].astype(int)
        mask[r, c] = True
        values[r, c] = rgb_to_lab(cols.reshape(-1, 1, 3))[:, 0, 1:]
    ab = propagate(lab[..., 0], mask, values)
    lab_out = torch.from_numpy(np.concatenate([lab[..., :1], ab], -1)).permute(2, 0, 1)
    return lab_to_rgb_in_gamut(lab_out).permute(1, 2, 0).numpy()


def score(out: np.ndarray, ref: np.ndarray, full: bool = True, prefix: str = "") -> dict:
    """Figures of one colorized photo ``out`` against ``ref`` (both RGB in [0, 1])."""
    row = {"psnr": psnr(out, ref), "colorfulness": colorfulness(out),
           "mse": float(np.mean((out - ref) ** 2))}
    if full:
        from .metrics import ciede2000, neutral_chroma, ssim

        row["ssim"] = ssim(out, ref)
        row["ciede2000"] = float(ciede2000(rgb_to_lab(out), rgb_to_lab(ref)).mean())
        row["neutral_chroma"] = neutral_chroma(out, ref)
    return {f"{k}{prefix}": v for k, v in row.items()}


def evaluate(
    model: Colorizer,
    images: Iterable[np.ndarray],
    n_hints: int = 0,
    temperature: float | None = None,
    seed: int = 0,
    full: bool = True,
    progress=None,
    skip_gray: bool = True,
    levin: bool = False,
) -> dict:
    """Mean metrics of the model and of the gray baseline over uint8 RGB ``images``.

    Each photo's own L is colorized (optionally with ``n_hints`` ground-truth point hints, drawn
    from ``default_rng([seed, i])`` for the i-th photo, so every method sees the same ones).
    Returns per-image means of PSNR (RGB, data range 1) and colorfulness, with ``full`` SSIM,
    mean CIEDE2000 and the neutral-area chroma (:func:`.metrics.neutral_chroma`); the share of
    photos whose PSNR beats gray, the colorfulness ratio model / ground truth and the pooled PSNR
    (of the mean squared error over all images). With ``levin`` and hints, the same figures of
    Levin et al. 2004 given the same hints follow with the suffix ``_levin``.

    With ``skip_gray``, gray and sepia photos (:func:`.data.is_colorful`) are left out and
    counted in ``n_skipped_gray``: they have no colors to recover, the gray baseline is exact on
    them (per-image PSNR near 90 dB), and a handful of them would outweigh every other photo in
    the per-image mean.
    """
    from .data import is_colorful

    rows = []
    skipped = 0
    for i, rgb in enumerate(images):
        if progress is not None:
            progress(1)
        if skip_gray and not is_colorful(rgb):
            skipped += 1
            continue
        ref = rgb.astype(np.float32) / 255.0
        pts, cols = gt_hints(ref, n_hints, np.random.default_rng([seed, i]))
        out = colorize_plane(model, rgb, pts, cols, temperature)
        row = {**score(out, ref, full), **score(gray_baseline(ref), ref, full, "_gray"),
               "colorfulness_gt": colorfulness(ref)}
        row["beats_gray"] = float(row["psnr"] > row["psnr_gray"])
        if levin and n_hints:
            row.update(score(levin_baseline(ref, pts, cols), ref, full, "_levin"))
        rows.append(row)
    if not rows:
        return {"n_images": 0, "n_skipped_gray": skipped}
    res = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
    for k in [k for k in res if k.startswith("mse")]:
        res[k.replace("mse", "psnr_pooled")] = float(-10 * np.log10(max(res.pop(k), 1e-12)))
    res["colorfulness_ratio"] = res["colorfulness"] / max(res["colorfulness_gt"], 1e-9)
    res["n_images"] = len(rows)
    res["n_skipped_gray"] = skipped
    res["n_hints"] = n_hints
    res["temperature"] = model.temperature if temperature is None else float(temperature)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}
