"""Public Python API: ``colorize`` and ``load_model``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import numpy as np

from .core.errors import InputError
from .core.hints import check_hints
from .core.inference import colorize_plane, validate_image
from .core.modelfile import Colorizer, load


def load_model(name_or_path: str | os.PathLike | None = None) -> Colorizer:
    """Load a colorization model.

    Parameters
    ----------
    name_or_path : str or path, optional
        A model name (bundled or in the user's model folder) or a ``.safetensors`` path; None gives
        the bundled default.

    Returns
    -------
    Colorizer
    """
    return load(name_or_path)


def _as_model(model) -> Colorizer:
    return model if isinstance(model, Colorizer) else load(model)


def _split_hints(points, colors, n_lead: int):
    """Hints as (lead_index_or_None, (row, col), color); leading coordinates pick a plane."""
    if points is None or len(points) == 0:
        return None, None, None
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] not in (2, 2 + n_lead):
        alt = f" or (N, {2 + n_lead}) with plane indices first" if n_lead else ""
        raise InputError(f"Hint points must be (N, 2) row, column{alt}; got shape {pts.shape}.")
    lead = np.rint(pts[:, :-2]).astype(int) if pts.shape[1] > 2 else None
    return lead, pts[:, -2:], colors


def colorize(image, *, points=None, colors=None, model=None, temperature: float | None = None,
             rgb: bool | None = None, progress: Callable[[int, int], None] | None = None):
    """Colorize a grayscale image, stack or dask array.

    Parameters
    ----------
    image : array-like or dask array
        2D grayscale of any dtype, RGB (..., 3) whose lightness is used, or a stack (..., H, W)
        colorized plane by plane over the leading axes.
    points : (N, 2) array, optional
        Hint positions as row, column pixel coordinates; for stacks (N, ndim) rows whose leading
        coordinates select the plane they apply to.
    colors : (N, 3) array, optional
        Hint colors, RGB in [0, 1] (an alpha column is ignored).
    model : Colorizer, str or path, optional
        Model or its name or path; the bundled default if None.
    temperature : float, optional
        Annealed-mean temperature: lower is more vivid, 1 is the distribution's mean. Default:
        the model's.
    rgb : bool, optional
        Whether the last axis is RGB; guessed from a trailing axis of 3 when None.
    progress : callable, optional
        ``progress(done, total)`` after each plane (numpy input only).

    Returns
    -------
    ndarray or dask array
        float32 RGB in [0, 1], shape ``spatial + (3,)``; dask in gives dask out, computed lazily.
    """
    m = _as_model(model)
    is_rgb = validate_image(image, rgb)
    shape = tuple(image.shape)
    spatial = shape[-3:-1] if is_rgb else shape[-2:]
    lead_shape = shape[:-3] if is_rgb else shape[:-2]
    lead, pts, cols = _split_hints(points, colors, len(lead_shape))
    if pts is not None:
        _, _, dropped = check_hints(pts, cols, spatial)
        if dropped:
            warnings.warn(f"{dropped} hint point(s) lie outside the image and were ignored.", stacklevel=2)
    if temperature is not None and not (0.0 < float(temperature) <= 5.0):
        raise InputError(f"Temperature must be in (0, 5]; got {temperature}.")

    def plane_hints(index: tuple[int, ...]):
        if pts is None:
            return None, None
        sel = np.ones(len(pts), bool) if lead is None else (lead == np.asarray(index)).all(axis=1)
        return pts[sel], np.asarray(cols)[sel]

    def run_plane(plane: np.ndarray, index: tuple[int, ...]) -> np.ndarray:
        p, c = plane_hints(index)
        plane = np.asarray(plane)
        if np.issubdtype(plane.dtype, np.floating) and not np.isfinite(plane).all():
            raise InputError("The image contains NaN or infinite values; replace them first.")
        return colorize_plane(m, plane, p, c, temperature)

    if _is_dask(image):
        return _colorize_dask(image, is_rgb, len(lead_shape), run_plane)

    arr = np.asarray(image)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        raise InputError("The image contains NaN or infinite values; replace them first.")
    if not lead_shape:
        out = run_plane(arr, ())
        if progress:
            progress(1, 1)
        return out
    out = np.empty(lead_shape + spatial + (3,), np.float32)
    total = int(np.prod(lead_shape))
    for k, idx in enumerate(np.ndindex(*lead_shape)):
        out[idx] = run_plane(arr[idx], idx)
        if progress:
            progress(k + 1, total)
    return out


def _is_dask(x) -> bool:
    return type(x).__module__.startswith("dask")


def _colorize_dask(image, is_rgb: bool, n_lead: int, run_plane):
    import dask.array as da

    # one block per plane, whole plane in a block: the network needs the full field of view
    plane_axes = image.ndim - n_lead
    chunks = (1,) * n_lead + (-1,) * plane_axes
    image = image.rechunk(chunks)

    def block(b, block_info=None):
        loc = block_info[0]["chunk-location"][:n_lead] if block_info else (0,) * n_lead
        plane = b.reshape(b.shape[n_lead:])
        res = run_plane(plane, tuple(loc))
        return res.reshape((1,) * n_lead + res.shape)

    out_chunks = image.chunks[:n_lead] + tuple((c,) for c in image.shape[n_lead : n_lead + 2]) + ((3,),)
    if is_rgb:
        return da.map_blocks(block, image, dtype=np.float32, chunks=out_chunks, meta=np.empty((0,) * image.ndim, np.float32))
    return da.map_blocks(block, image, dtype=np.float32, chunks=out_chunks, new_axis=image.ndim,
                         meta=np.empty((0,) * (image.ndim + 1), np.float32))
