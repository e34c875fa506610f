"""Color hints: simulated ones for training, and user points encoded for the network."""

from __future__ import annotations

import numpy as np
import torch

from .errors import InputError


def simulate_hints(
    ab: torch.Tensor,
    rng: np.random.Generator,
    p_geometric: float = 1 / 8,
    p_none: float = 0.25,
    max_hints: int = 40,
    max_patch: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random point hints revealed from ground-truth ab (B, 2, H, W), as in Zhang et al. 2017.

    Per image: no hint with probability ``p_none``, else a geometric number of points (mostly
    few), centers drawn from a Gaussian around the image center (sigma = size / 4), square patches
    of random size, and each hint the mean ground-truth ab of its patch.

    Returns
    -------
    hint_ab : Tensor (B, 2, H, W)
    mask : Tensor (B, 1, H, W)
    """
    b, _, h, w = ab.shape
    hint_ab = torch.zeros_like(ab)
    mask = torch.zeros((b, 1, h, w), dtype=ab.dtype)
    max_patch = max_patch or max(1, min(h, w) // 16)
    for i in range(b):
        if rng.random() < p_none:
            continue
        n = min(int(rng.geometric(p_geometric)), max_hints)
        rows = np.clip(rng.normal(h / 2, h / 4, n), 0, h - 1).astype(int)
        cols = np.clip(rng.normal(w / 2, w / 4, n), 0, w - 1).astype(int)
        sizes = rng.integers(1, max_patch + 1, n)
        for r, c, s in zip(rows, cols, sizes):
            r0, c0 = max(0, r - s // 2), max(0, c - s // 2)
            r1, c1 = min(h, r0 + s), min(w, c0 + s)
            val = ab[i, :, r0:r1, c0:c1].mean(dim=(1, 2))
            hint_ab[i, :, r0:r1, c0:c1] = val[:, None, None]
            mask[i, :, r0:r1, c0:c1] = 1.0
    return hint_ab, mask


def float_array(values, what: str) -> np.ndarray:
    """``values`` as a float64 array, or an InputError naming ``what`` if they are not numbers."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be numbers; got {np.asarray(values, dtype=object).ravel()[:3].tolist()}"
                         "...") from None
    return arr


def check_hints(
    points: np.ndarray | None, colors: np.ndarray | None, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate user hints against an image plane of ``shape``.

    Returns the points (N, 2) and RGB colors (N, 3) that lie inside the image, and how many
    points were dropped for lying outside it. Colors must be RGB(A) in [0, 1].
    """
    pts = np.zeros((0, 2)) if points is None else float_array(points, "Hint points")
    if pts.size == 0:
        return np.zeros((0, 2), np.float32), np.zeros((0, 3), np.float32), 0
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise InputError(f"Hint points must be an (N, 2) array of row, column; got shape {pts.shape}.")
    if colors is None:
        raise InputError("Hint points were given without colors; pass colors as (N, 3) RGB in [0, 1].")
    cols = float_array(colors, "Hint colors")
    if cols.ndim != 2 or cols.shape[0] != pts.shape[0] or cols.shape[1] not in (3, 4):
        raise InputError(
            f"Hint colors must be (N, 3) RGB matching {pts.shape[0]} points; got shape {cols.shape}."
        )
    if not (np.isfinite(pts).all() and np.isfinite(cols).all()):
        raise InputError("Hint points or colors contain NaN or infinite values.")
    if cols.min() < 0.0 or cols.max() > 1.0:
        raise InputError(
            "Hint colors must be RGB values in [0, 1] "
            f"(got values from {cols.min():.3g} to {cols.max():.3g})."
        )
    inside = (
        (pts[:, 0] >= -0.5) & (pts[:, 0] < shape[0] - 0.5)
        & (pts[:, 1] >= -0.5) & (pts[:, 1] < shape[1] - 0.5)
    )
    return (
        pts[inside].astype(np.float32),
        cols[inside, :3].astype(np.float32),
        int((~inside).sum()),
    )


def rasterize_hints(
    points: np.ndarray,
    colors: np.ndarray,
    full_shape: tuple[int, int],
    work_shape: tuple[int, int],
    radius: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paint hints at the working resolution: (1, 2, h, w) ab and (1, 1, h, w) mask.

    Each hint becomes a (2 * radius + 1) square patch of the ab of its color; the color's own
    lightness is ignored because the output keeps the input's luminance.
    """
    from .color import rgb_to_lab

    h, w = work_shape
    hint_ab = torch.zeros((1, 2, h, w))
    mask = torch.zeros((1, 1, h, w))
    if len(points) == 0:
        return hint_ab, mask
    ab = rgb_to_lab(colors.reshape(-1, 1, 3))[:, 0, 1:]
    sy, sx = h / full_shape[0], w / full_shape[1]
    rows = np.clip(np.floor((points[:, 0] + 0.5) * sy), 0, h - 1).astype(int)
    cols = np.clip(np.floor((points[:, 1] + 0.5) * sx), 0, w - 1).astype(int)
    for (r, c), v in zip(zip(rows, cols), ab):
        r0, r1 = max(0, r - radius), min(h, r + radius + 1)
        c0, c1 = max(0, c - radius), min(w, c + radius + 1)
        hint_ab[0, :, r0:r1, c0:c1] = torch.from_numpy(v)[:, None, None]
        mask[0, :, r0:r1, c0:c1] = 1.0
    return hint_ab, mask
