"""Colorizing planes, stacks and dask arrays with a :class:`Colorizer`."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .color import gray_to_l, lab_to_rgb_in_gamut, rgb_to_lab, to_unit_range
from .errors import InputError
from .hints import check_hints, rasterize_hints
from .model import encode_input
from .modelfile import Colorizer
from .propagate import refine_with_hints
from .temporal import smooth_ab


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided_upsample(
    ab_low: torch.Tensor, l_low: torch.Tensor, l_full: torch.Tensor, radius: int = 1, eps: float = 1e-4
) -> torch.Tensor:
    """Upsample chroma guided by lightness (fast guided filter, He and Sun 2015).

    Local linear models ``ab = A * L + b`` are fitted at low resolution and applied to the full
    resolution L, so chroma changes where L has edges instead of bleeding across them.

    Parameters
    ----------
    ab_low : Tensor (B, 2, h, w)
    l_low : Tensor (B, 1, h, w)
        Lightness at the same low resolution, in [0, 100].
    l_full : Tensor (B, 1, H, W)
        Lightness at the output resolution, in [0, 100].
    """
    g = l_low / 100.0
    mean_g = _box(g, radius)
    var_g = _box(g * g, radius) - mean_g * mean_g
    mean_p = _box(ab_low, radius)
    cov = _box(g * ab_low, radius) - mean_g * mean_p
    a = cov / (var_g + eps)
    b = mean_p - a * mean_g
    a = _box(a, radius)
    b = _box(b, radius)
    size = l_full.shape[-2:]
    if tuple(size) != tuple(a.shape[-2:]):
        a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
    return a * (l_full / 100.0) + b


def work_shape(shape: tuple[int, int], working_size: int) -> tuple[int, int]:
    """Network input size: longest side at most ``working_size``, never upscaled, multiple of 8."""
    h, w = shape
    s = min(1.0, working_size / max(h, w))
    return max(8, int(math.ceil(h * s / 8)) * 8), max(8, int(math.ceil(w * s / 8)) * 8)


@torch.inference_mode()
def predict_logits(model: Colorizer, l_full: torch.Tensor, hint_ab=None, hint_mask=None,
                   capture: str | None = None):
    """Network logits for lightness ``l_full`` (B, 1, H, W) at the model's working size.

    Hints, when given, are already at the working size. Returns ``(logits, l_work)`` or, with
    ``capture``, ``(logits, l_work, features)``.
    """
    hw = work_shape(tuple(l_full.shape[-2:]), model.working_size)
    l_work = (
        l_full if tuple(l_full.shape[-2:]) == hw
        else F.interpolate(l_full, size=hw, mode="bilinear", antialias=True, align_corners=False)
    )
    bsz = l_full.shape[0]
    if hint_ab is None:
        hint_ab = torch.zeros((bsz, 2, *hw))
        hint_mask = torch.zeros((bsz, 1, *hw))
    x = encode_input(l_work, hint_ab, hint_mask)
    if capture:
        logits, feats = model.net(x, capture=capture)
        return logits, l_work, feats
    return model.net(x), l_work


@torch.inference_mode()
def predict_ab(model: Colorizer, l_full: torch.Tensor, hint_ab=None, hint_mask=None,
               temperature: float | None = None, state: dict | None = None,
               temporal: float = 0.0) -> torch.Tensor:
    """Full-resolution ab (B, 2, H, W) for lightness (B, 1, H, W) in [0, 100].

    With ``state`` (a dict kept across the frames of a stack) and ``temporal`` > 0, ab is
    smoothed with the previous frame's (:func:`.temporal.smooth_ab`).
    """
    logits, _ = predict_logits(model, l_full, hint_ab, hint_mask)
    ab_low = model.decode(logits, temperature, hinted=hint_mask is not None and bool(hint_mask.any()))
    l_low = F.interpolate(l_full, size=ab_low.shape[-2:], mode="area")
    ab = guided_upsample(ab_low, l_low, l_full)
    # smoothed at full resolution: the guided filter passes each frame's sensor noise in L into ab
    return smooth_ab(state, "whole", ab, l_full, temporal)


def plane_lightness(plane: np.ndarray) -> np.ndarray:
    """L* (H, W) in [0, 100] of a 2D gray plane (any dtype) or an RGB (H, W, 3) plane."""
    if plane.ndim == 3:
        rgb = to_unit_range(plane)
        return rgb_to_lab(rgb)[..., 0]
    return gray_to_l(to_unit_range(plane))


def colorize_plane(model: Colorizer, plane: np.ndarray, points=None, colors=None,
                   temperature: float | None = None, *, state: dict | None = None,
                   temporal: float = 0.0) -> np.ndarray:
    """Colorize one 2D plane (gray, or RGB whose L is used): float32 RGB (H, W, 3) in [0, 1].

    The whole plane is resized to the model's working size. ``state`` and ``temporal`` smooth
    chroma across consecutive planes of a stack (see :func:`predict_ab`).
    """
    l_np = plane_lightness(plane)
    shape = l_np.shape
    pts, cols, _ = check_hints(points, colors, shape)
    l_full = torch.from_numpy(np.ascontiguousarray(l_np))[None, None]
    hw = work_shape(shape, model.working_size)
    hint_ab, mask = rasterize_hints(pts, cols, shape, hw)
    ab = predict_ab(model, l_full, hint_ab, mask, temperature, state, temporal)
    if len(pts) and model.hint_reach > 0:
        ab = refine_with_hints(l_full, ab, pts, rgb_to_lab(cols.reshape(-1, 1, 3))[:, 0, 1:],
                               model.hint_reach)
    lab = torch.cat([l_full, ab], dim=1)[0]
    with torch.inference_mode():
        rgb = lab_to_rgb_in_gamut(lab)
    return rgb.permute(1, 2, 0).numpy().astype(np.float32, copy=False)


def validate_image(image, rgb: bool | None = None) -> bool:
    """Check shape and values of an input image; returns whether the last axis is RGB."""
    shape = tuple(image.shape)
    if len(shape) == 0 or 0 in shape:
        raise InputError(f"The image is empty (shape {shape}).")
    if rgb is None:
        rgb = len(shape) >= 3 and shape[-1] in (3, 4)
    if rgb and shape[-1] == 4:
        raise InputError(
            "RGBA images are not supported: drop the alpha channel (image[..., :3]) first."
        )
    spatial = shape[-3:-1] if rgb else shape[-2:]
    if len(spatial) < 2:
        raise InputError(f"Expected a 2D image or a stack of 2D planes, got shape {shape}.")
    if min(spatial) < 2:
        raise InputError(f"The image is too small to colorize (planes of {spatial[0]} x {spatial[1]} pixels).")
    return bool(rgb)
