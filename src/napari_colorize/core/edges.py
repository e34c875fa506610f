"""The Canny edge pipeline step by step: smoothing, gradient, non-maximum suppression, hysteresis.

Gradients follow image axes: ``gy`` is the derivative along rows (downwards), ``gx`` along
columns, and the direction is ``arctan2(gy, gx)`` in radians. On RGB input the gradient is
Di Zenzo's color gradient (largest eigenvalue of the channel-summed structure tensor), whose
direction is defined modulo pi. All functions work plane by plane and stay lazy on dask.
"""

from __future__ import annotations

import numpy as np
from skimage import filters

from .color import to_unit_range
from .errors import InputError
from .planes import check_image, map_planes

OPERATORS = ("sobel", "scharr")
STEPS = ("gaussian", "gradient magnitude", "gradient direction", "nms", "canny")


def _derivatives(plane: np.ndarray, operator: str):
    if operator not in OPERATORS:
        raise InputError(f"Unknown gradient operator '{operator}'; choose one of {', '.join(OPERATORS)}.")
    fy, fx = (filters.sobel_h, filters.sobel_v) if operator == "sobel" else (filters.scharr_h, filters.scharr_v)
    # skimage's kernels give twice the slope per pixel (a central difference over 2 pixels)
    return 0.5 * fy(plane), 0.5 * fx(plane)


def plane_gradient(plane: np.ndarray, operator: str = "sobel") -> np.ndarray:
    """Magnitude and direction (2, H, W) of one grayscale (H, W) or color (H, W, C) plane."""
    plane = np.asarray(plane, np.float32)
    if plane.ndim == 2:
        gy, gx = _derivatives(plane, operator)
        return np.stack([np.hypot(gx, gy), np.arctan2(gy, gx)])
    gxx = gyy = gxy = 0.0
    for c in range(plane.shape[-1]):
        gy, gx = _derivatives(plane[..., c], operator)
        gxx, gyy, gxy = gxx + gx * gx, gyy + gy * gy, gxy + gx * gy
    lam = 0.5 * (gxx + gyy + np.sqrt((gxx - gyy) ** 2 + 4 * gxy**2))
    theta = 0.5 * np.arctan2(2 * gxy, gxx - gyy)
    return np.stack([np.sqrt(np.maximum(lam, 0.0)), theta])


def gradient(image, operator: str = "sobel", *, rgb: bool | None = None, normalize: bool = True):
    """Gradient magnitude and direction of every plane.

    Parameters
    ----------
    image : array (..., H, W) or (..., H, W, 3)
        Grayscale or RGB (then Di Zenzo's color gradient).
    operator : {'sobel', 'scharr'}
    normalize : bool
        Map each plane to [0, 1] first (robustly for uint16 and floats), so magnitudes compare
        across dtypes.

    Returns
    -------
    magnitude, direction : arrays (..., H, W) float32
        Direction in radians, ``arctan2(gy, gx)`` with gy along rows.
    """
    rgb = check_image(image, rgb)
    if operator not in OPERATORS:
        raise InputError(f"Unknown gradient operator '{operator}'; choose one of {', '.join(OPERATORS)}.")
    n_tail = 3 if rgb else 2
    hw = tuple(image.shape[image.ndim - n_tail:][:2])

    def one(p):
        return plane_gradient(to_unit_range(p) if normalize else np.asarray(p, np.float32), operator)

    both = map_planes(one, image, n_tail=n_tail, out_tail=(2, *hw))
    return both[..., 0, :, :], both[..., 1, :, :]


def color_gradient(image, operator: str = "sobel"):
    """Di Zenzo color gradient (magnitude, direction) of an RGB or multichannel (..., H, W, C) image."""
    check_image(image, None, need_rgb=True)
    return gradient(image, operator, rgb=True)


# neighbour offsets (row, col) along the gradient for directions 0, 45, 90, 135 degrees
_OFFSETS = ((0, 1), (1, 1), (1, 0), (1, -1))


def plane_nms(magnitude: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Non-maximum suppression of one plane: keep ridge pixels of the magnitude across the edge.

    The direction is quantised to 0, 45, 90 or 135 degrees (modulo 180) and a pixel is kept when
    its magnitude is positive, strictly above its backward neighbour and at least its forward one,
    so a two-pixel plateau across the edge keeps exactly one pixel.
    """
    m = np.asarray(magnitude, np.float32)
    sector = np.round(np.mod(np.asarray(direction), np.pi) / (np.pi / 4)).astype(np.int64) % 4
    pad = np.pad(m, 1, mode="constant")
    h, w = m.shape
    keep = np.zeros(m.shape, bool)
    for k, (dr, dc) in enumerate(_OFFSETS):
        sel = sector == k
        fwd = pad[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]
        bwd = pad[1 - dr:1 - dr + h, 1 - dc:1 - dc + w]
        keep |= sel & (m > bwd) & (m >= fwd)
    return np.where(keep & (m > 0), m, 0.0).astype(np.float32)


def non_max_suppression(magnitude, direction):
    """:func:`plane_nms` on every plane of (..., H, W) magnitude and direction arrays."""
    check_image(magnitude, False, what="gradient magnitude")
    if tuple(magnitude.shape) != tuple(direction.shape):
        raise InputError("Gradient magnitude and direction must have the same shape.")
    stacked = _stack(magnitude, direction)
    return map_planes(lambda p: plane_nms(p[0], p[1]), stacked, n_tail=3, out_tail=tuple(magnitude.shape[-2:]))


def _stack(a, b):
    from .planes import is_dask

    if is_dask(a) or is_dask(b):
        import dask.array as da

        return da.stack([da.asarray(a), da.asarray(b)], axis=-3)
    return np.stack([np.asarray(a), np.asarray(b)], axis=-3)


def _thresholds(low: float, high: float):
    if not 0.0 <= low <= high:
        raise InputError(f"Thresholds must satisfy 0 <= low <= high; got {low} and {high}.")


def plane_hysteresis(nms: np.ndarray, low: float, high: float, relative: bool = True) -> np.ndarray:
    """Canny's hysteresis on one NMS plane: strong pixels and weak ones connected to them.

    With ``relative`` the thresholds are fractions of the plane's largest NMS magnitude.
    """
    nms = np.asarray(nms, np.float32)
    top = float(nms.max()) if relative else 1.0
    if top <= 0:
        return np.zeros(nms.shape, bool)
    return filters.apply_hysteresis_threshold(nms, low * top, high * top) & (nms > 0)


def hysteresis(nms, low: float = 0.1, high: float = 0.2, relative: bool = True):
    """:func:`plane_hysteresis` on every plane; boolean edges (the Canny result)."""
    check_image(nms, False, what="NMS image")
    _thresholds(low, high)
    return map_planes(lambda p: plane_hysteresis(p, low, high, relative), nms, n_tail=2,
                      out_tail=tuple(nms.shape[-2:]), dtype=bool)


def canny_steps(image, sigma: float = 1.0, operator: str = "sobel", low: float = 0.1, high: float = 0.2,
                *, rgb: bool | None = None) -> dict:
    """Every step of the Canny pipeline, keyed by :data:`STEPS`.

    The image is mapped to [0, 1] per plane, smoothed with ``sigma`` (``gaussian``; RGB stays
    RGB), differentiated (``gradient magnitude`` / ``gradient direction``, Di Zenzo on RGB),
    thinned (``nms``) and thresholded with hysteresis at ``low``/``high`` times the plane's largest
    NMS magnitude (``canny``, boolean). Dask input gives lazy dask arrays sharing one graph.
    """
    from .preprocess import smooth

    rgb = check_image(image, rgb)
    if operator not in OPERATORS:
        raise InputError(f"Unknown gradient operator '{operator}'; choose one of {', '.join(OPERATORS)}.")
    _thresholds(low, high)
    n_tail = 3 if rgb else 2
    normed = map_planes(to_unit_range, image, n_tail=n_tail, out_tail=tuple(image.shape[image.ndim - n_tail:]))
    smoothed = smooth(normed, sigma, rgb=rgb)
    mag, direction = gradient(smoothed, operator, rgb=rgb, normalize=False)
    nms = non_max_suppression(mag, direction)
    edges = hysteresis(nms, low, high)
    return dict(zip(STEPS, (smoothed, mag, direction, nms, edges)))
