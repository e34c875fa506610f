"""Plane-by-plane application of 2D operations to nD, RGB and dask arrays, and input checks.

An image here is ``(..., H, W)`` for grayscale or ``(..., H, W, 3)`` for RGB; the leading axes
are stacks (time, z, ...) that every operation walks plane by plane.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from .arrays import check_finite, is_dask
from .errors import InputError


def infer_rgb(data, rgb: bool | None) -> bool:
    """``rgb`` as given, else True for a trailing axis of 3 (or 4, RGBA, which is then rejected)."""
    if rgb is not None:
        return bool(rgb)
    return data.ndim >= 3 and data.shape[-1] in (3, 4)


def check_image(data, rgb: bool | None = None, *, need_rgb: bool = False, what: str = "image",
                values: bool = True) -> bool:
    """Check shape and dtype of an image (numpy or dask); return whether it is RGB.

    Raises
    ------
    InputError
        For RGBA, a missing plane, fewer than 2 pixels along a plane axis, a non-numeric dtype,
        or (numpy input only; dask is checked plane by plane when computed) NaN or inf.
        ``values=False`` skips that scan, for callers that check each plane as they read it.
    """
    if not hasattr(data, "shape") or not hasattr(data, "dtype"):
        data = np.asarray(data)
    rgb = infer_rgb(data, rgb)
    n_tail = 3 if rgb else 2
    if rgb and data.ndim >= 1 and data.shape[-1] == 4:
        raise InputError(f"The {what} is RGBA; drop the alpha channel (keep the first 3 channels) first.")
    if rgb and (data.ndim < 3 or data.shape[-1] != 3):
        raise InputError(f"An RGB {what} needs a trailing axis of 3 channels; got shape {tuple(data.shape)}.")
    if data.ndim < n_tail:
        raise InputError(f"The {what} needs at least 2 dimensions; got shape {tuple(data.shape)}.")
    if 0 in data.shape:
        raise InputError(f"The {what} is empty (shape {tuple(data.shape)}).")
    plane = data.shape[data.ndim - n_tail:][:2]
    if min(plane) < 2:
        raise InputError(f"The {what} is too small ({plane[0]} x {plane[1]} pixels); it needs at least 2 x 2.")
    try:
        kind = np.dtype(data.dtype).kind
    except TypeError:  # a dtype numpy does not name (torch): read it off one element
        kind = np.asarray(data.reshape(-1)[:1]).dtype.kind
    if kind not in "biuf":
        raise InputError(f"Unsupported pixel type {data.dtype}; expected integers, floats or booleans.")
    if need_rgb and not rgb:
        raise InputError(f"This step needs an RGB {what}; the chosen one is grayscale.")
    if values and not is_dask(data):
        check_finite(data, what)
    return rgb


def check_not_constant(data, what: str = "image"):
    """Reject an image whose pixels all have the same value (numpy input only)."""
    if is_dask(data):
        return
    arr = np.asarray(data)
    if arr.size and arr.min() == arr.max():
        raise InputError(f"The {what} is constant (every pixel is {arr.flat[0]}); there is nothing to find.")


def _lead(data, n_tail: int) -> tuple:
    return tuple(data.shape[: data.ndim - n_tail])


def map_planes(func: Callable[[np.ndarray], np.ndarray], data, *, n_tail: int, out_tail: tuple | None = None,
               dtype=np.float32):
    """Apply ``func`` to every plane (the last ``n_tail`` axes) of ``data``.

    ``func`` maps one plane to an array of shape ``out_tail`` (found by running it on the first
    plane when not given). Dask input gives a lazy dask result with one chunk per plane; numpy
    input is computed at once.
    """
    lead = _lead(data, n_tail)
    if is_dask(data):
        import dask.array as da

        if out_tail is None:
            out_tail = np.shape(func(np.asarray(data[(0,) * len(lead)])))
        out_tail = tuple(int(s) for s in out_tail)
        x = data.rechunk(tuple([1] * len(lead) + [-1] * n_tail))

        def block(b):
            out = np.empty(b.shape[: len(lead)] + out_tail, dtype)
            for idx in np.ndindex(*b.shape[: len(lead)]):
                out[idx] = func(np.asarray(b[idx]))
            return out

        chunks = x.chunks[: len(lead)] + tuple((s,) for s in out_tail)
        n_out = len(out_tail)
        kw = {}
        if n_out > n_tail:
            kw["new_axis"] = list(range(x.ndim, len(lead) + n_out))
        elif n_out < n_tail:
            kw["drop_axis"] = list(range(len(lead) + n_out, x.ndim))
        return da.map_blocks(block, x, chunks=chunks, dtype=dtype, **kw)
    out = None
    for _, idx, res in iter_planes(func, data, n_tail=n_tail):
        if out is None:
            out = np.empty(lead + np.shape(res), dtype)
        out[idx] = res
    return out


def iter_planes(func, data, *, n_tail: int) -> Iterator[tuple[int, tuple, np.ndarray]]:
    """Yield ``(total, index, func(plane))`` for each plane of a numpy or dask array."""
    lead = _lead(data, n_tail)
    total = int(np.prod(lead)) if lead else 1
    for idx in np.ndindex(*lead) if lead else [()]:
        yield total, idx, func(np.asarray(data[idx]))
