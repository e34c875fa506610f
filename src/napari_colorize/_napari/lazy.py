"""Lazy, multiscale results for big image layers: napari computes only the tiles it shows.

:func:`lazy_multiscale` turns a layer's data (a dask or zarr array, or a multiscale pyramid)
into a pyramid of lazily computed RGB levels that share one low-resolution global pass;
:func:`add_lazy_result` publishes it as a multiscale layer beside its input.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import InputError

SMALLEST = 512  # a pyramid made for a single array stops once its longest side is at most this


def _levels(data) -> list:
    if isinstance(data, (list, tuple)) or type(data).__name__ == "MultiScaleData":
        return list(data)
    import dask.array as da

    from ..core.arrays import is_dask
    from ..core.lazy import CHUNK

    base = data if is_dask(data) else da.from_array(data, chunks=CHUNK)
    rgb = base.ndim == 3 and base.shape[-1] == 3
    levels = [base]
    while max(levels[-1].shape[:2]) > SMALLEST:
        prev = levels[-1]
        # plain 2 x 2 subsampling: a level only guides the view, colors come from the shared pass
        levels.append(prev[::2, ::2] if not rgb else prev[::2, ::2, :])
    return levels


def lazy_multiscale(data, model=None, *, global_level: int | None = None, temperature: float | None = None):
    """Lazily colorized multiscale result of an image layer's data.

    Parameters
    ----------
    data : array-like or list of array-likes
        A 2D gray or RGB image (numpy, dask or zarr), or a multiscale pyramid, largest first
        (napari's ``layer.data`` of a multiscale layer).
    model : Colorizer, str or path, optional
        As for :func:`napari_colorize.colorize`.
    global_level : int, optional
        Pyramid level of the global pass; by default the coarsest one with all the detail
        whole mode uses (:func:`napari_colorize.core.lazy.pick_global_level`).
    temperature : float, optional

    Returns
    -------
    (list of dask arrays, int)
        float32 RGB levels (H_i, W_i, 3), largest first, and the level the global pass used.
    """
    from ..api import load_model
    from ..core.lazy import colorize_pyramid

    levels = _levels(data)
    if not levels or any(np.ndim(lv) not in (2, 3) for lv in levels):
        raise InputError("Lazy colorization takes a 2D image or a pyramid of 2D levels.")
    m = model if hasattr(model, "net") else load_model(model)
    return colorize_pyramid(levels, m, global_level=global_level, temperature=temperature)


def add_lazy_result(viewer, layer, model=None, **kwargs):
    """Add the lazy multiscale colorization of image ``layer`` to ``viewer``, named
    ``<layer> colorized`` and placed over it; returns ``(new_layer, global_level)``."""
    from .layers import publish

    levels, used = lazy_multiscale(layer.data, model, **kwargs)
    new = publish(viewer, layer, list(levels), "colorized", {}, rgb=True, multiscale=True,
                  scale=tuple(layer.scale)[-2:], translate=tuple(layer.translate)[-2:])
    new.metadata["colorize_global_level"] = used
    return new, used
