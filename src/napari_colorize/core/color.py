"""Color conversions, intensity normalisation and the quantized ab gamut.

Lab follows CIE L*a*b* under D65, as in scikit-image and kornia; L lies in [0, 100] and a, b
roughly in [-110, 110].
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from kornia.color import lab_to_rgb as _k_lab_to_rgb
from kornia.color import rgb_to_lab as _k_rgb_to_lab

from .arrays import check_finite
from .errors import InputError

AB_GRID = 10.0
AB_RANGE = 110.0


def to_unit_range(image: np.ndarray) -> np.ndarray:
    """Map intensities of any dtype to float32 in [0, 1].

    uint8 and bool are scaled by their full range, float data already inside [0, 1] is kept, and
    anything else (uint16, int, float outside [0, 1]) is stretched between its 0.1 and 99.9
    percentiles, which keeps a few hot pixels from crushing the rest.

    Parameters
    ----------
    image : ndarray
        Intensities; NaN and inf are rejected.

    Returns
    -------
    ndarray
        float32 array of the same shape, values in [0, 1].
    """
    arr = np.asarray(image)
    if arr.size == 0:
        raise InputError("The image is empty (it has no pixels).")
    lo, hi = intensity_range(arr, arr.dtype)
    return stretch(arr, lo, hi)


def intensity_range(sample: np.ndarray, dtype) -> tuple[float, float]:
    """The intensities that :func:`to_unit_range` maps to 0 and 1, from (a sample of) an image.

    Full range for uint8 and bool, (0, 1) for float data inside it, else the 0.1 and 99.9
    percentiles (min and max if those coincide); ``lo == hi`` for a constant image. Statistics
    are taken in float64, so values near the float32 or float64 limits do not overflow.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return 0.0, 1.0
    if dtype == np.uint8:
        return 0.0, 255.0
    if dtype.kind not in "uif":
        raise InputError(f"Unsupported pixel type {dtype}; expected integers or floats.")
    sample = np.asarray(sample)
    check_finite(sample)
    lo, hi = float(sample.min()), float(sample.max())
    if dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    # halved: the percentile interpolation and the spread hi - lo stay finite up to float64's limit
    plo, phi = (2.0 * float(v) for v in np.percentile(sample.astype(np.float64) / 2.0, [0.1, 99.9]))
    if not phi > plo:
        plo, phi = lo, hi
    return plo, phi


def stretch(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``arr`` mapped linearly from [lo, hi] to [0, 1] and clipped, float32; a constant image gives
    0.5 (or 0 where it is 0 or below)."""
    arr = np.asarray(arr)
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if not hi > lo:
        return np.full(arr.shape, 0.5 if hi > 0 else 0.0, dtype=np.float32)
    if (lo, hi) == (0.0, 1.0) and arr.dtype.kind == "f":
        return np.clip(arr, 0.0, 1.0).astype(np.float32)
    x = arr.astype(np.float64)
    out = (x / 2.0 - lo / 2.0) / (hi / 2.0 - lo / 2.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)


def gray_to_l(gray: np.ndarray) -> np.ndarray:
    """L* of a gray sRGB intensity in [0, 1] (R = G = B), float32 in [0, 100]."""
    y = _srgb_to_linear(np.asarray(gray, dtype=np.float32))
    f = np.where(y > 0.008856, np.cbrt(y), 7.787 * y + 16.0 / 116.0)
    return (116.0 * f - 16.0).astype(np.float32)


def rgb_to_lab_t(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (..., 3, H, W) in [0, 1] to Lab, in torch."""
    return _k_rgb_to_lab(rgb.clamp(0.0, 1.0))


def lab_to_rgb_t(lab: torch.Tensor) -> torch.Tensor:
    """Lab (..., 3, H, W) to sRGB in [0, 1], in torch, without clipping."""
    return _k_lab_to_rgb(lab, clip=False)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) in [0, 1] to Lab (..., 3), float32."""
    t = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
    t = t.movedim(-1, -3)
    return rgb_to_lab_t(t).movedim(-3, -1).numpy()


def lab_to_rgb_in_gamut(lab: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Lab (3, H, W) to sRGB in [0, 1], pulling out-of-gamut chroma toward gray.

    Plain clipping of RGB changes lightness; here each out-of-gamut pixel keeps its L and hue and
    its chroma is reduced (bisection over a scale factor), so the output's L* equals the input L*.
    """
    rgb = lab_to_rgb_t(lab)
    bad = ((rgb < 0.0) | (rgb > 1.0)).any(dim=0)
    if bool(bad.any()):
        idx = bad.nonzero(as_tuple=True)
        sub = lab[:, idx[0], idx[1]]  # (3, K)
        lo = torch.zeros(sub.shape[1], dtype=lab.dtype)
        hi = torch.ones(sub.shape[1], dtype=lab.dtype)
        for _ in range(steps):
            mid = (lo + hi) / 2
            trial = torch.cat([sub[:1], sub[1:] * mid], dim=0)
            out = lab_to_rgb_t(trial[:, None, :])[:, 0, :]
            ok = ((out >= -1e-4) & (out <= 1 + 1e-4)).all(dim=0)
            lo = torch.where(ok, mid, lo)
            hi = torch.where(ok, hi, mid)
        fixed = torch.cat([sub[:1], sub[1:] * lo], dim=0)
        rgb[:, idx[0], idx[1]] = lab_to_rgb_t(fixed[:, None, :])[:, 0, :]
    return rgb.clamp_(0.0, 1.0)


@lru_cache(maxsize=1)
def ab_bins() -> np.ndarray:
    """Centers (Q, 2) of the in-gamut cells of a 10-unit ab grid (Zhang et al. 2016).

    A cell is kept when some point inside it is a displayable sRGB color for some lightness.
    """
    centers = np.arange(-AB_RANGE, AB_RANGE + 1e-6, AB_GRID, dtype=np.float32)
    aa, bb = np.meshgrid(centers, centers, indexing="ij")
    cells = np.stack([aa.ravel(), bb.ravel()], axis=1)  # (G, 2)
    offsets = np.linspace(-AB_GRID / 2, AB_GRID / 2, 5, dtype=np.float32)
    oa, ob = np.meshgrid(offsets, offsets, indexing="ij")
    pts = cells[:, None, :] + np.stack([oa.ravel(), ob.ravel()], axis=1)[None]  # (G, S, 2)
    ls = np.linspace(1.0, 99.0, 50, dtype=np.float32)
    g, s = pts.shape[:2]
    lab = np.empty((3, ls.size, g * s), dtype=np.float32)
    lab[0] = ls[:, None]
    lab[1] = pts[..., 0].ravel()[None]
    lab[2] = pts[..., 1].ravel()[None]
    rgb = lab_to_rgb_t(torch.from_numpy(lab)).numpy()
    ok = ((rgb >= 0.0) & (rgb <= 1.0)).all(axis=0).any(axis=0).reshape(g, s).any(axis=1)
    return cells[ok].copy()
