"""Colorizing planes, stacks and dask arrays with a :class:`Colorizer`."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
import torch.nn.functional as F

from .chroma import GUIDE_EPS, GUIDE_RADIUS, ChromaField, UnitMap, fit, read_lightness, to_rgb, write_field
from .color import gray_to_l, rgb_to_lab, to_unit_range
from .hints import check_hints, rasterize_hints
from .model import encode_input
from .modelfile import Colorizer
from .propagate import hint_correction, hint_pixels, propagate
from .temporal import smooth_ab


def guided_upsample(
    ab_low: torch.Tensor, l_low: torch.Tensor, l_full: torch.Tensor, radius: int = 1, eps: float = 1e-4
) -> torch.Tensor:
    """Upsample chroma guided by lightness (fast guided filter, He and Sun 2015).

    Local linear models ``ab = A * L + b`` are fitted at low resolution and applied to the full
    resolution L, so chroma changes where L has edges instead of bleeding across them. Planes are
    colorized with the same fit in pieces (:class:`.chroma.ChromaField`).

    Parameters
    ----------
    ab_low : Tensor (B, 2, h, w)
    l_low : Tensor (B, 1, h, w)
        Lightness at the same low resolution, in [0, 100].
    l_full : Tensor (B, 1, H, W)
        Lightness at the output resolution, in [0, 100].
    """
    a, b = fit(ab_low, l_low, radius, eps)
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
                   capture: str | None = None, hw: tuple[int, int] | None = None):
    """Network logits for lightness ``l_full`` (B, 1, H, W) at the model's working size.

    Hints, when given, are already at the working size. ``hw`` is the working shape (by default
    that of ``l_full``; given when ``l_full`` is already a reduced view of a bigger plane).
    Returns ``(logits, l_work)`` or, with ``capture``, ``(logits, l_work, features)``.
    """
    hw = work_shape(tuple(l_full.shape[-2:]), model.working_size) if hw is None else tuple(hw)
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
        logits, feats = model.fast(x, capture=capture)
        return logits, l_work, feats
    return model.fast(x), l_work


def plane_lightness(plane: np.ndarray) -> np.ndarray:
    """L* (H, W) in [0, 100] of a 2D gray plane (any dtype) or an RGB (H, W, 3) plane."""
    if plane.ndim == 3:
        rgb = to_unit_range(plane)
        return rgb_to_lab(rgb)[..., 0]
    return gray_to_l(to_unit_range(plane))


def mid_factor(shape: tuple[int, int], working_size: int) -> int:
    """Cell size of the block-mean lightness the whole-plane pass starts from: 1 up to four times
    the working size, so the network's view of small planes comes straight from full resolution."""
    return max(1, max(shape) // (4 * working_size))


_AUTO: dict = {}


def _automatic(model: Colorizer, l_t, hw, temperature) -> torch.Tensor:
    """The network's automatic chroma for reduced lightness ``l_t``, kept for the last image:
    while a user edits hints only the hinted pass changes. Keyed on the model, its decoding
    settings and the lightness's content, so it is never stale."""
    arr = np.ascontiguousarray(l_t.numpy(), np.float32)
    key = (id(model.net), id(model.reference), repr(sorted(model.config.items())), temperature, tuple(hw),
           arr.shape, hashlib.blake2b(arr.tobytes(), digest_size=16).hexdigest())
    if key not in _AUTO:
        logits, _ = predict_logits(model, l_t, hw=hw)
        _AUTO.clear()
        # the network and reference are held too, so their ids in the key cannot be reused
        _AUTO[key] = (model.net, model.reference, model.decode(logits, temperature, hinted=False))
    return _AUTO[key][2]


# The propagated ones fall off inside a hint's own region too; scaled by this, a pixel a quarter
# connected to the hints takes their change in full. Measured on bsds500-val with 10 random true
# hints and on a disk: outside change 37 -> 8 ab units, PSNR 26.38 -> 26.05 dB (1 would give 1.9
# outside but cost 1.5 dB: the hinted region itself lost its color).
HINT_GAIN = 4.0


def hint_count(at: np.ndarray) -> int:
    """Separate hints in a boolean hint mask: its 8-connected groups (a path or a region is one)."""
    from scipy import ndimage

    return int(ndimage.label(at, structure=np.ones((3, 3), bool))[1])


# How fast the hinted pass at the smaller scale takes over as separate hints accumulate: weight
# (n - 1) / (n - 1 + HINT_SCALE_HALF) for n hints, none for a single hint. Chosen on bsds500-val
# with 10 random hints: 0.5 / 1 / 2 / 4 / 9 gave 28.41 / 28.43 / 28.46 / 28.48 / 28.46 dB.
HINT_SCALE_HALF = 4.0


def local_hints(model: Colorizer, l_t, l_low, ab_hinted, mask, hw, temperature=None,
                hints=None) -> torch.Tensor:
    """The network's hinted chroma kept only where the hints reach; automatic chroma elsewhere.

    The network spreads a hint's color by what it knows of objects, which can cross a strong
    edge (a point on a face tinting the hair). Its change over the automatic result is weighted
    by each pixel's edge-aware connection to the hints: the propagation of ones from the hint
    pixels (:func:`.propagate.propagate`, pull ``hint_spread`` toward zero) times ``HINT_GAIN``,
    clipped to 1, so the change covers the hinted object, fades with distance and stops at edges.
    The pull is divided by the square root of the number ``n`` of separate hints
    (:func:`hint_count`): a single hint stays on its object, while many hints together cover the
    picture, as Levin et al. 2004's do. With ``hints`` (hint ab and mask rasterized at the
    model's ``hint_working_size``), a hinted pass at that scale is mixed in with weight
    ``(n - 1) / (n - 1 + HINT_SCALE_HALF)``: none for a single hint.
    """
    ab_auto = _automatic(model, l_t, hw, temperature)
    at = hint_cells(mask, l_low.shape[-2:])
    n = max(1, hint_count(at))
    if hints is not None and n > 1:
        logits, _ = predict_logits(model, l_t, *hints, hw=hints[0].shape[-2:])
        small = F.interpolate(model.decode(logits, temperature, hinted=True), size=ab_hinted.shape[-2:],
                              mode="bilinear", align_corners=False)
        ab_hinted = ab_hinted + (n - 1) / (n - 1 + HINT_SCALE_HALF) * (small - ab_hinted)
    w = torch.from_numpy(reach_weight(model, l_low[0, 0].numpy(), at, n))[None, None]
    return ab_auto + w * (ab_hinted - ab_auto)


def hint_cells(mask: torch.Tensor, grid: tuple[int, int]) -> np.ndarray:
    """Cells of a coarser ``grid`` (h, w) holding any of the hints of ``mask`` (1, 1, H, W), as
    :func:`.hints.rasterize_hints` paints them at the working size: bool (h, w)."""
    return F.adaptive_max_pool2d(mask, tuple(grid))[0, 0].numpy() > 0


def reach_weight(model: Colorizer, l_low: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    """How much of the network's hinted change each pixel keeps (see :func:`local_hints`).

    Parameters
    ----------
    model : Colorizer
        Its ``hint_spread`` is the pull toward zero, divided by ``sqrt(n)``.
    l_low : ndarray (h, w)
        Lightness whose edges stop the reach.
    at : bool ndarray (h, w)
        The hint cells (:func:`hint_cells`).
    n : int
        Number of separate hints (:func:`hint_count`).

    Returns
    -------
    ndarray (h, w), float32
        The edge-aware connection to the hints times ``HINT_GAIN``, clipped to [0, 1].
    """
    reach = propagate(l_low, at, np.ones((*at.shape, 1), np.float32),
                      np.zeros((*at.shape, 1), np.float32), model.hint_spread / math.sqrt(n))
    return np.clip(HINT_GAIN * reach[..., 0], 0.0, 1.0)


@torch.inference_mode()
def whole_field(model: Colorizer, l_mid: np.ndarray, shape: tuple[int, int], unit: UnitMap, points=None,
                colors=None, temperature: float | None = None, l_at=None) -> ChromaField:
    """Global pass of whole-plane colorization: the network at its working size on the plane.

    Parameters
    ----------
    model : Colorizer
    l_mid : ndarray (h, w)
        Block-mean lightness of the plane (:func:`.chroma.read_lightness` at
        :func:`mid_factor`); the network's input and the guide's low-resolution lightness.
    shape : (int, int)
        The plane's height and width.
    unit : UnitMap
        The plane's intensity normalisation.
    points, colors : arrays, optional
        Hints (N, 2) row, column and (N, 3) RGB in [0, 1].
    l_at : callable, optional
        ``l_at(rows, cols)`` gives full-resolution L at those pixels; needed with hints.
    """
    pts, cols, _ = check_hints(points, colors, shape)
    hw = work_shape(shape, model.working_size)
    hint_ab, mask = rasterize_hints(pts, cols, shape, hw)
    l_t = torch.from_numpy(np.ascontiguousarray(l_mid, np.float32))[None, None]
    logits, _ = predict_logits(model, l_t, hint_ab, mask, hw=hw)
    ab_low = model.decode(logits, temperature, hinted=bool(mask.any()))
    l_low = F.interpolate(l_t, size=ab_low.shape[-2:], mode="area")
    if mask.any() and model.hint_spread > 0:
        hw_small = work_shape(shape, model.hint_working_size)
        small = rasterize_hints(pts, cols, shape, hw_small) if hw_small != hw else None
        ab_low = local_hints(model, l_t, l_low, ab_low, mask, hw, temperature, small)
    fld = ChromaField(tuple(shape), unit)
    a, b = fit(ab_low, l_low, GUIDE_RADIUS, GUIDE_EPS)
    fld.add(a[0].numpy(), b[0].numpy(), (ab_low.shape[-2] / shape[0], ab_low.shape[-1] / shape[1]))
    match_hints(model, fld, l_mid, pts, cols, l_at)
    return fld


def match_hints(model: Colorizer, fld: ChromaField, l_src: np.ndarray, points: np.ndarray,
                colors: np.ndarray, l_at) -> None:
    """Add to ``fld`` the edge-aware correction that makes it match the hints' colors.

    What is left between each hint's color and the field's chroma at its pixel is spread by
    :func:`.propagate.hint_correction` over lightness ``l_src`` (the plane's, full or reduced),
    with the model's ``hint_reach``; nothing is added without hints or with ``hint_reach`` 0.
    ``l_at(rows, cols)`` gives full-resolution L at those pixels.
    """
    if not len(points) or model.hint_reach <= 0:
        return
    r, c = hint_pixels(points, fld.shape)
    l_pts = np.asarray(l_at(r, c), np.float32).reshape(-1)
    now = [fld.ab(torch.tensor([[v]]), int(y), int(x))[:, 0, 0].numpy() for v, y, x in zip(l_pts, r, c)]
    resid = rgb_to_lab(colors.reshape(-1, 1, 3))[:, 0, 1:] - np.stack(now)
    fld.add(*hint_correction(l_src, fld.shape, points, resid, model.hint_reach))


def colorize_plane(model: Colorizer, plane: np.ndarray, points=None, colors=None,
                   temperature: float | None = None, *, state: dict | None = None,
                   temporal: float = 0.0, write=None) -> np.ndarray | None:
    """Colorize one 2D plane (gray, or RGB whose L is used): float32 RGB (H, W, 3) in [0, 1].

    The whole plane is reduced to the model's working size. ``state`` (a dict kept across the
    planes of a stack) and ``temporal`` > 0 smooth chroma with the previous plane's
    (:func:`.temporal.smooth_ab`). With ``write`` (as :func:`.chroma.write_field` takes), the
    result goes there piece by piece and None is returned.
    """
    plane = np.asarray(plane)
    shape = tuple(plane.shape[:2])
    unit = UnitMap(plane)
    q = mid_factor(shape, model.working_size)
    l_mid = read_lightness(plane, unit, q)
    fld = whole_field(model, l_mid, shape, unit, points, colors, temperature,
                      l_at=lambda r, c: unit.lightness(plane[r, c]))
    if state is None or temporal <= 0:
        if write is not None:
            for _ in write_field(fld, plane, write):
                pass
            return None
        return fld.rgb(plane, lightness=l_mid if q == 1 else None)
    l_full = fld.lightness(plane) if q > 1 else torch.from_numpy(l_mid)
    # smoothed at full resolution: the guided filter passes each frame's sensor noise in L into ab
    ab = smooth_ab(state, "whole", fld.ab(l_full, 0, 0)[None], l_full[None, None], temporal)[0]
    rgb = to_rgb(l_full, ab)
    if write is None:
        return rgb
    write(slice(None), slice(None), rgb)
    return None
