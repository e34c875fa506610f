"""How an image's colors spread over the ab plane: gamut cells used, hue entropy, ab histogram.

Napari-free; images are read as in :mod:`.rgb_planes` (RGB (..., H, W, 3), a stack plane by plane).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .arrays import check_number
from .color import AB_GRID, AB_RANGE, ab_bins
from .rgb_planes import measure, rgb_planes, to_lab

HUE_BINS = 36
# Pixels below this chroma have no meaningful hue (noise around gray decides their angle).
HUE_MIN_CHROMA = 5.0


@lru_cache(maxsize=1)
def _gamut_cells() -> np.ndarray:
    """Boolean (n, n) map of the in-gamut cells of the ab grid, indexed like ``_ab_cell``."""
    n = int(round(2 * AB_RANGE / AB_GRID)) + 1
    idx = np.rint((ab_bins() + AB_RANGE) / AB_GRID).astype(int)
    cells = np.zeros((n, n), dtype=bool)
    cells[idx[:, 0], idx[:, 1]] = True
    return cells


def _ab_cell(v: np.ndarray, n: int) -> np.ndarray:
    return np.clip(np.rint((v + AB_RANGE) / AB_GRID), 0, n - 1).astype(np.intp)


def color_range_plane(lab_plane: np.ndarray) -> dict:
    """:func:`color_range` of one plane given as CIELAB (H, W, 3)."""
    gamut = _gamut_cells()
    n = gamut.shape[0]
    a, b = lab_plane[..., 1].ravel(), lab_plane[..., 2].ravel()
    occupied = np.zeros_like(gamut)
    occupied[_ab_cell(a, n), _ab_cell(b, n)] = True
    nbins = int((occupied & gamut).sum())
    chromatic = np.hypot(a, b) >= HUE_MIN_CHROMA
    entropy = 0.0
    if chromatic.any():
        hue = np.degrees(np.arctan2(b[chromatic], a[chromatic])) % 360.0
        counts = np.bincount(np.minimum((hue * HUE_BINS / 360.0).astype(np.intp), HUE_BINS - 1),
                             minlength=HUE_BINS)
        p = counts[counts > 0] / chromatic.sum()
        entropy = float(-(p * np.log2(p)).sum() / np.log2(HUE_BINS))
    return {"ab_share": nbins / int(gamut.sum()), "ab_bins": float(nbins), "hue_entropy": entropy}


def color_range(image, per_plane: bool = False) -> dict:
    """How much of the color gamut an image uses.

    Parameters
    ----------
    image : array-like
        RGB (..., H, W, 3) as :mod:`.rgb_planes` reads it.
    per_plane : bool
        Arrays of the stack's shape instead of means over its planes.

    Returns
    -------
    dict
        ``ab_bins``: in-gamut cells of the 10-unit ab grid (``core.color.ab_bins``) with at least
        one pixel; ``ab_share``: that count over all in-gamut cells (0 to 1); ``hue_entropy``:
        Shannon entropy of the hue angle histogram (36 bins of 10 degrees, pixels with
        C*ab >= 5), divided by log2(36) so 0 is a single hue (or none) and 1 all hues equally.
    """
    return measure(lambda p: color_range_plane(to_lab(p)), image, per_plane=per_plane)


def ab_histogram(image, step: float = 2.5, limit: float = 110.0) -> tuple[np.ndarray, np.ndarray]:
    """Pixel counts over the ab plane, summed over all planes of a stack.

    Parameters
    ----------
    image : array-like
        RGB (..., H, W, 3).
    step, limit : float
        Bin width and half-range of the square grid in a* and b*; values beyond are counted in
        the edge bins.

    Returns
    -------
    counts : ndarray
        (n, n) float64, ``counts[i, j]`` for a* in bin i and b* in bin j.
    edges : ndarray
        (n + 1,) bin edges, the same for a* and b*.

    Raises
    ------
    InputError
        ``limit`` outside [1, 200], or ``step`` so small that the grid would exceed 800 x 800
        bins, or the image is not RGB.
    """
    limit = check_number("limit", limit, 1.0, 200.0)
    step = check_number("step", step, limit / 400, limit, open_low=True)  # at most 800 x 800 bins
    edges = np.arange(-limit, limit + step / 2, step)
    total = np.zeros((edges.size - 1, edges.size - 1))
    _, planes = rgb_planes(image)
    for _, p, _ in planes:
        ab = np.clip(to_lab(p)[..., 1:].reshape(-1, 2), -limit, limit)
        total += np.histogram2d(ab[:, 0], ab[:, 1], bins=(edges, edges))[0]
    return total, edges
