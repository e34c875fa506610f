"""Preprocessing of 2D planes and nD stacks: resize, rotate, flip, grayscale, smoothing, normalisation.

Every function takes ``(..., H, W)`` grayscale or ``(..., H, W, 3)`` RGB numpy or dask arrays and
works plane by plane; dask input gives a lazy result. Outputs are float32 except for ``flip``,
which keeps the dtype.
"""

from __future__ import annotations

import numpy as np
from skimage import color as skcolor
from skimage import filters, transform

from .arrays import check_finite
from .color import to_unit_range
from .errors import InputError
from .planes import check_image, check_not_constant, is_dask, map_planes

GRAY_METHODS = ("lab", "luma709", "mean")


def _float_plane(plane: np.ndarray) -> np.ndarray:
    plane = np.asarray(plane)
    if plane.dtype.kind == "f":
        check_finite(plane)
        return plane.astype(np.float32, copy=False)
    return plane.astype(np.float32)


def resized_shape(shape: tuple, factor: float | None = None, size: tuple | None = None) -> tuple[int, int]:
    """Output plane shape of :func:`resize` for an input plane ``shape`` (H, W)."""
    if size is not None:
        out = tuple(int(s) for s in size)
    elif factor is not None:
        if not factor > 0:
            raise InputError(f"The resize factor must be positive; got {factor}.")
        out = tuple(max(1, int(round(s * factor))) for s in shape[:2])
    else:
        raise InputError("Give a resize factor or a target size.")
    if len(out) != 2 or min(out) < 1:
        raise InputError(f"The target size must be two positive integers (rows, columns); got {size}.")
    return out


def resize(image, factor: float | None = None, size: tuple | None = None, *, rgb: bool | None = None,
           order: int = 1, anti_aliasing: bool = True):
    """Resize every plane by ``factor`` or to ``size`` = (rows, columns), anti-aliased when shrinking.

    Intensities keep their range (no rescaling to [0, 1]). The pixel size of the result is the
    input's times ``input shape / output shape``; see :func:`resize_transform`.
    """
    rgb = check_image(image, rgb)
    n_tail = 3 if rgb else 2
    plane_shape = tuple(image.shape[image.ndim - n_tail:][:2])
    out = resized_shape(plane_shape, factor, size)
    out_tail = out + ((3,) if rgb else ())

    def one(p):
        return transform.resize(_float_plane(p), out_tail, order=order, anti_aliasing=anti_aliasing,
                                preserve_range=True, mode="reflect")

    return map_planes(one, image, n_tail=n_tail, out_tail=out_tail)


def resize_transform(in_shape, out_shape, scale, translate):
    """Scale and translate of the last two axes that lay a resized plane over the original.

    ``skimage.transform.resize`` maps pixel edges onto pixel edges, so the first output pixel's
    center sits half an output pixel (in input pixels) from the input's first edge.
    """
    f = np.asarray(in_shape[:2], float) / np.asarray(out_shape[:2], float)
    scale = np.asarray(scale, float)
    return scale * f, np.asarray(translate, float) + (f - 1) / 2 * scale


def rotate(image, angle: float, *, expand: bool = False, rgb: bool | None = None, order: int = 1,
           cval: float = 0.0):
    """Rotate every plane counter-clockwise by ``angle`` degrees about its center.

    With ``expand`` the output grows to hold the whole rotated plane; otherwise it keeps the size.
    Areas outside the input get ``cval``.
    """
    rgb = check_image(image, rgb)
    n_tail = 3 if rgb else 2

    def one(p):
        return transform.rotate(_float_plane(p), float(angle), resize=expand, order=order, cval=cval,
                                preserve_range=True, mode="constant")

    probe = transform.rotate(np.zeros(image.shape[image.ndim - n_tail:][:2], np.float32), float(angle),
                             resize=expand)
    out_tail = probe.shape + ((3,) if rgb else ())
    return map_planes(one, image, n_tail=n_tail, out_tail=out_tail)


def flip(image, direction: str = "horizontal", *, rgb: bool | None = None):
    """Mirror every plane left-right (``horizontal``) or top-bottom (``vertical``); dtype kept."""
    rgb = check_image(image, rgb)
    if direction not in ("horizontal", "vertical"):
        raise InputError(f"Flip direction must be 'horizontal' or 'vertical'; got '{direction}'.")
    axis = (-2 if rgb else -1) if direction == "horizontal" else (-3 if rgb else -2)
    if is_dask(image):
        import dask.array as da

        return da.flip(image, axis)
    return np.flip(np.asarray(image), axis).copy()


def to_gray(image, method: str = "lab", *, rgb: bool | None = None):
    """Grayscale of an RGB image, in [0, 1].

    Parameters
    ----------
    method : {'lab', 'luma709', 'mean'}
        ``lab``: CIE L* / 100 (perceptual lightness, D65); ``luma709``: Rec. 709 luma
        0.2126 R' + 0.7152 G' + 0.0722 B' of the gamma-encoded values; ``mean``: channel mean.
    """
    rgb = check_image(image, rgb)
    if not rgb:
        raise InputError("The image is already grayscale; grayscale conversion needs an RGB image.")
    if method not in GRAY_METHODS:
        raise InputError(f"Unknown grayscale method '{method}'; choose one of {', '.join(GRAY_METHODS)}.")

    def one(p):
        u = np.clip(to_unit_range(p), 0.0, 1.0)
        if method == "lab":
            return skcolor.rgb2lab(u)[..., 0] / 100.0
        if method == "luma709":
            return u @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        return u.mean(axis=-1)

    return map_planes(one, image, n_tail=3, out_tail=tuple(image.shape[-3:-1]))


def smooth(image, sigma: float = 1.0, *, rgb: bool | None = None):
    """Gaussian smoothing of every plane (each channel separately for RGB); range kept, float32."""
    rgb = check_image(image, rgb)
    if not sigma >= 0:
        raise InputError(f"Sigma must be zero or positive; got {sigma}.")
    n_tail = 3 if rgb else 2

    def one(p):
        return filters.gaussian(_float_plane(p), sigma=float(sigma), channel_axis=-1 if rgb else None,
                                preserve_range=True, mode="nearest", truncate=4.0)

    return map_planes(one, image, n_tail=n_tail, out_tail=tuple(image.shape[image.ndim - n_tail:]))


def normalize(image, low: float = 1.0, high: float = 99.0, *, rgb: bool | None = None, per_plane: bool = True):
    """Robust intensity normalisation: clip to the ``low``/``high`` percentiles and map them to 0 and 1.

    Works on any dtype (uint16 included). With ``per_plane`` every plane gets its own percentiles
    (lazy on dask); otherwise the whole stack shares them. A constant plane maps to 0.
    """
    rgb = check_image(image, rgb)
    if not 0.0 <= low < high <= 100.0:
        raise InputError(f"Percentiles must satisfy 0 <= low < high <= 100; got {low} and {high}.")
    n_tail = 3 if rgb else 2
    if not per_plane or image.ndim == n_tail:
        check_not_constant(image)

    def stretch(p, lo, hi):
        if hi - lo <= 0:
            return np.zeros(p.shape, np.float32)
        return np.clip((p - lo) / (hi - lo), 0.0, 1.0)

    if per_plane:
        def one(p):
            p = _float_plane(p)
            lo, hi = np.percentile(p, [low, high])
            return stretch(p, lo, hi)
    else:
        if is_dask(image):
            import dask.array as da

            lo, hi = da.percentile(image.ravel().astype(np.float64), [low, high]).compute()
        else:
            lo, hi = np.percentile(np.asarray(image), [low, high])

        def one(p):
            return stretch(_float_plane(p), lo, hi)

    return map_planes(one, image, n_tail=n_tail, out_tail=tuple(image.shape[image.ndim - n_tail:]))
