"""Colorization quality metrics (napari-free).

No-reference: colorfulness, saturation, contrast, color range. Full-reference: PSNR, SSIM,
CIEDE2000, ab RMSE. ``report`` gathers them and always adds the gray baseline.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError


def _as_rgb01(image, name: str = "image") -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim < 3 or arr.shape[-1] not in (3, 4):
        raise InputError(f"The {name} must be RGB with a trailing channel axis of 3; got shape {arr.shape}.")
    if arr.shape[-1] == 4:
        raise InputError(f"The {name} is RGBA; drop the alpha channel first.")
    if arr.size == 0:
        raise InputError(f"The {name} is empty.")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.float64) / np.iinfo(arr.dtype).max
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"The {name} contains NaN or infinite values.")
    return np.clip(arr, 0.0, 1.0)


def colorfulness(image) -> float:
    """Hasler and Suesstrunk (2003) colorfulness M of an RGB image, computed on 0-255 values."""
    rgb = _as_rgb01(image) * 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def psnr(image, reference) -> float:
    """PSNR in dB of RGB ``image`` against ``reference``, data range 1."""
    a, b = _as_rgb01(image), _as_rgb01(reference, "reference")
    _same_shape(a, b)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def _same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise InputError(f"Image and reference differ in shape: {a.shape} vs {b.shape}.")


def gray_baseline(reference) -> np.ndarray:
    """The reference's L* with a = b = 0, as RGB in [0, 1]: colorization with no color at all."""
    from skimage.color import lab2rgb, rgb2lab

    lab = rgb2lab(_as_rgb01(reference, "reference"))
    lab[..., 1:] = 0.0
    return np.clip(lab2rgb(lab), 0.0, 1.0)
