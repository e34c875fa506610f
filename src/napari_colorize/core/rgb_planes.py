"""RGB images as the quality metrics read them: checked, in [0, 1], one plane at a time (napari-free).

Every metric takes RGB of shape (..., H, W, 3): float in [0, 1], or integers (unsigned ones
scaled by their full range, signed ones read as 0-255). Unlike :func:`.color.to_unit_range`,
nothing is stretched: a metric must see the colors as they are, so data outside the range is an
error rather than rescaled. Lazy arrays (dask, zarr) are read one plane at a time, so a stack never
has to fit in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from .arrays import check_finite
from .errors import InputError
from .planes import check_image

# Float RGB a hair outside [0, 1] (resampling, rounding) is clipped; beyond this it is rejected,
# because 0-255 data stored as float would otherwise be silently clipped to white.
FLOAT_SLACK = 0.01


def _lazy(image, name: str):
    """Array-likes with shape and dtype (numpy, dask, zarr) as they are; anything else as numpy."""
    if image is None:
        raise InputError(f"No {name} given.")
    if hasattr(image, "shape") and isinstance(getattr(image, "dtype", None), np.dtype) and hasattr(image, "__getitem__"):
        return image
    if type(image).__module__.startswith("torch"):
        image = image.detach().cpu()
    return np.asarray(image)


def check_rgb(image, name: str = "image"):
    """Check shape and dtype without reading any pixels; returns the (possibly lazy) array.

    Raises
    ------
    InputError
        ``image`` is None, RGBA, not RGB with a trailing axis of 3, empty, or of a pixel type
        other than integers and floats.
    """
    arr = _lazy(image, name)
    if np.dtype(arr.dtype).kind == "b":  # a mask is not a color image, though check_image reads it
        raise InputError(f"The {name} has pixel type bool; expected integers or floats.")
    check_image(arr, rgb=True, need_rgb=True, what=name, values=False)
    return arr


def rgb01(plane, name: str = "image") -> np.ndarray:
    """One plane (or a whole array already checked by :func:`check_rgb`) as float64 RGB in [0, 1].

    Raises
    ------
    InputError
        Signed integers outside 0-255, NaN or infinite values, or floats outside [0, 1] by more
        than ``FLOAT_SLACK``.
    """
    arr = np.asarray(plane)
    if arr.dtype.kind == "u":
        return arr.astype(np.float64) / np.iinfo(arr.dtype).max
    if arr.dtype.kind == "i":
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise InputError(f"The {name} has signed integers from {lo} to {hi}; signed RGB is read as 0-255. "
                             "Convert it to uint8 or uint16 first.")
        return arr.astype(np.float64) / 255.0
    arr = arr.astype(np.float64)
    check_finite(arr, name)
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -FLOAT_SLACK or hi > 1.0 + FLOAT_SLACK:
        raise InputError(f"The {name} is float with values from {lo:.4g} to {hi:.4g}; float RGB must lie in "
                         "[0, 1] (divide 0-255 data by 255).")
    return np.clip(arr, 0.0, 1.0)


def rgb_planes(image, reference=None, name: str = "image") -> tuple[tuple, Iterator]:
    """Stack shape and an iterator of (index, plane, reference plane or None), each in [0, 1].

    Shapes and dtypes are checked at once; each plane's values when the iterator reaches it.
    """
    arr = check_rgb(image, name)
    ref = None if reference is None else check_rgb(reference, "reference")
    if ref is not None and tuple(ref.shape) != tuple(arr.shape):
        raise InputError(f"The {name} and the reference differ in shape: {tuple(arr.shape)} vs "
                         f"{tuple(ref.shape)}.")
    lead = tuple(arr.shape[:-3])

    def gen():
        for idx in np.ndindex(*lead):
            yield (idx, rgb01(arr[idx], name),
                   None if ref is None else rgb01(ref[idx], "reference"))

    return lead, gen()


def measure(fn: Callable[..., dict], image, reference=None, per_plane: bool = False, name="image") -> dict:
    """Apply ``fn`` (plane[, reference plane]) -> dict of floats to every plane.

    Returns
    -------
    dict
        The mean over the planes of each figure, or with ``per_plane`` arrays of the stack's shape.
    """
    lead, planes = rgb_planes(image, reference, name)
    rows = [fn(p) if r is None else fn(p, r) for _, p, r in planes]
    out = {k: np.array([row[k] for row in rows], dtype=np.float64).reshape(lead) for k in rows[0]}
    if per_plane:
        return out
    return {k: float(np.mean(v)) for k, v in out.items()}


def only(result: dict):
    """The one value of a one-figure result of :func:`measure`."""
    (value,) = result.values()
    return value


def to_lab(rgb01_plane: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of float RGB in [0, 1], in float64 as scikit-image computes it."""
    from skimage.color import rgb2lab

    return by_rows(rgb2lab, rgb01_plane)


# Pixels per band of :func:`by_rows`: float64 temporaries of a few MB each
BAND_PIXELS = 1 << 19


def by_rows(fn, *planes: np.ndarray) -> np.ndarray:
    """A per-pixel function of (H, W, ...) planes, computed in bands of rows on parallel threads.

    Parameters
    ----------
    fn : callable
        ``fn(*planes)`` of arrays that broadcast together, giving an array with their leading
        shape (H, W, ...); numpy lets go of the GIL in its loops, so bands run at once.
    planes : ndarrays

    Returns
    -------
    ndarray
        The same values as ``fn(*planes)``, written band by band into one output, so the
        temporaries are a band's per thread rather than the whole plane's.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .runtime import default_threads

    planes = np.broadcast_arrays(*planes)
    if planes[0].ndim < 2:
        return fn(*planes)
    h = planes[0].shape[0]
    step = max(1, BAND_PIXELS // max(1, planes[0].shape[1]))
    if h <= step:
        return fn(*planes)
    first = fn(*(p[:step] for p in planes))
    out = np.empty((h, *first.shape[1:]), first.dtype)
    out[:step] = first

    def band(y: int) -> None:
        out[y : y + step] = fn(*(p[y : y + step] for p in planes))

    with ThreadPoolExecutor(max_workers=min(-(-h // step) - 1, default_threads())) as pool:
        list(pool.map(band, range(step, h, step)))
    return out
