"""Evaluating a colorizer on color photos, beside the gray baseline."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

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


def evaluate(
    model: Colorizer,
    images: Iterable[np.ndarray],
    n_hints: int = 0,
    temperature: float | None = None,
    seed: int = 0,
    full: bool = True,
    progress=None,
    skip_gray: bool = True,
) -> dict:
    """Mean metrics of the model and of the gray baseline over uint8 RGB ``images``.

    Each photo's own L is colorized (optionally with ``n_hints`` ground-truth point hints).
    Returns per-image means of PSNR (RGB, data range 1) and colorfulness, and, with ``full``,
    SSIM and mean CIEDE2000; plus the colorfulness ratio model / ground truth and the pooled
    PSNR (of the mean squared error over all images).

    With ``skip_gray``, gray and sepia photos (:func:`.data.is_colorful`) are left out and
    counted in ``n_skipped_gray``: they have no colors to recover, the gray baseline is exact on
    them (per-image PSNR near 90 dB), and a handful of them would outweigh every other photo in
    the per-image mean.
    """
    from .data import is_colorful
    from .metrics import ciede2000, ssim

    rng = np.random.default_rng(seed)
    rows = []
    skipped = 0
    for rgb in images:
        if skip_gray and not is_colorful(rgb):
            skipped += 1
            if progress is not None:
                progress(1)
            continue
        ref = rgb.astype(np.float32) / 255.0
        pts, cols = gt_hints(ref, n_hints, rng)
        out = colorize_plane(model, rgb, pts, cols, temperature)
        gray = gray_baseline(ref)
        row = {
            "psnr": psnr(out, ref), "psnr_gray": psnr(gray, ref),
            "colorfulness": colorfulness(out), "colorfulness_gt": colorfulness(ref),
            "mse": float(np.mean((out - ref) ** 2)), "mse_gray": float(np.mean((gray - ref) ** 2)),
        }
        if full:
            from skimage.color import rgb2lab

            lab_ref = rgb2lab(ref)
            row["ssim"] = ssim(out, ref)
            row["ssim_gray"] = ssim(gray, ref)
            row["ciede2000"] = float(ciede2000(rgb2lab(out), lab_ref).mean())
            row["ciede2000_gray"] = float(ciede2000(rgb2lab(gray), lab_ref).mean())
        rows.append(row)
        if progress is not None:
            progress(1)
    if not rows:
        return {"n_images": 0, "n_skipped_gray": skipped}
    res = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    for k in ("", "_gray"):
        res[f"psnr_pooled{k}"] = float(-10 * np.log10(max(res.pop(f"mse{k}"), 1e-12)))
    res["colorfulness_ratio"] = res["colorfulness"] / max(res["colorfulness_gt"], 1e-9)
    res["n_images"] = len(rows)
    res["n_skipped_gray"] = skipped
    res["n_hints"] = n_hints
    res["temperature"] = model.temperature if temperature is None else float(temperature)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}
