"""Temporal smoothing of predicted chroma across the frames of a stack, to reduce flicker."""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F

# L* difference (0-100 scale) at which the smoothing weight has fallen to 1/e: below it a pixel counts
# as static (sensor noise, slow drift); well above it, something moved and must not leave a ghost.
MOTION_SIGMA = 8.0


def check_temporal(temporal) -> float:
    """Validated smoothing strength in [0, 1); ``False``/``None`` give 0 (off)."""
    from .errors import InputError

    if isinstance(temporal, np.bool_):
        temporal = bool(temporal)
    if temporal is None or temporal is False:
        return 0.0
    ok = temporal is True or (isinstance(temporal, numbers.Real) and not isinstance(temporal, bool))
    a = 0.5 if temporal is True else float(temporal) if ok else math.nan
    if not 0.0 <= a < 1.0:
        raise InputError(f"temporal must be True, False or a number in [0, 1) (0: off, 0.5: typical); "
                         f"got {temporal!r}.")
    return a


def smooth_ab(state: dict | None, key, ab_low: torch.Tensor, l_low: torch.Tensor, alpha: float) -> torch.Tensor:
    """Exponentially smooth low-resolution ab with the previous frame's, gated by motion.

    ``ab = g * ab_prev + (1 - g) * ab`` with ``g = alpha * exp(-(dL / MOTION_SIGMA)^2)``, where
    ``dL`` is the 3x3-averaged lightness change, so static regions keep their colors from frame to
    frame while moving objects take the new prediction at once. ``state[key]`` holds the previous
    frame and is updated; with no state or ``alpha == 0`` the input is returned unchanged.

    Parameters
    ----------
    state : dict or None
        Per-stack memory, one entry per ``key`` (a window of a tiled plane, or the whole plane).
    ab_low : Tensor (1, 2, h, w)
        Chroma of this frame (any resolution: low in tiled mode, full in whole mode).
    l_low : Tensor (1, 1, h, w)
        Lightness at the same resolution, in [0, 100].
    alpha : float
        Strength in [0, 1): the weight of the past in a static region.
    """
    if state is None or alpha <= 0.0:
        return ab_low
    prev = state.get(key)
    if prev is not None and prev[0].shape == ab_low.shape:
        prev_ab, prev_l = prev
        d = F.avg_pool2d((l_low - prev_l).abs(), 3, stride=1, padding=1, count_include_pad=False)
        g = alpha * torch.exp(-((d / MOTION_SIGMA) ** 2))
        ab_low = g * prev_ab + (1.0 - g) * ab_low
    state[key] = (ab_low, l_low)
    return ab_low
