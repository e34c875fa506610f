"""Public Python API: ``colorize`` and ``load_model``."""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Callable

import numpy as np

from .core.arrays import check_dtype, check_finite, check_number, is_dask, to_dtype
from .core.errors import InputError
from .core.gen import drain
from .core.hints import check_hints, float_array
from .core.inference import colorize_plane
from .core.lazy import iter_colorize_dask
from .core.modelfile import Colorizer, load
from .core.planes import check_image
from .core.reference import with_reference
from .core.stores import refuse_replacing_source
from .core.temporal import check_temporal
from .core.tiling import DEFAULT_TILE, array_writer, auto_downsample, iter_tiled, tile_geometry
from .omezarr import check_write, is_ome_path, open_ome, write_steps
from .omezarr import write as write_ome
from .outputs import ALLOWED, Output


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
    if points is None:
        return None, None, None
    pts = float_array(points, "Hint points")
    if pts.size == 0:
        return None, None, None
    if pts.ndim != 2 or pts.shape[1] not in (2, 2 + n_lead):
        alt = f" or (N, {2 + n_lead}) with plane indices first" if n_lead else ""
        raise InputError(f"Hint points must be (N, 2) row, column{alt}; got shape {pts.shape}.")
    if not np.isfinite(pts).all():
        raise InputError("Hint points contain NaN or infinite values.")
    lead = np.rint(pts[:, :-2]).astype(int) if pts.shape[1] > 2 else None
    return lead, pts[:, -2:], colors


MODES = ("auto", "whole", "tiled")


def colorize(image, *, points=None, colors=None, model=None, temperature: float | None = None,
             rgb: bool | None = None, progress: Callable[[int, int], None] | None = None,
             mode: str = "auto", tile: int | None = None, downsample: int | None = None, level: int = 0,
             temporal: float | bool = False, out=None, dtype=None, reference=None,
             reference_strength: float = 0.5, scale=None):
    """Colorize a grayscale image, stack, dask array or multiscale pyramid.

    Parameters
    ----------
    image : array-like, dask array or list of arrays
        2D grayscale of any dtype, RGB (..., 3) whose lightness is used, or a stack (..., H, W)
        colorized plane by plane over the leading axes. A list or tuple is a multiscale pyramid
        (largest first, as napari's multiscale layers); ``level`` picks the one colorized. Memmaps
        and zarr arrays are read window by window in tiled mode.
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
        ``progress(done, total)`` after each plane, or each row of tiles in tiled mode.
    mode : {"auto", "whole", "tiled"}
        "whole" shrinks each plane so that its longest side is at most the model's working size
        (``Colorizer.working_size``, from the model card); "tiled" runs the network at a fixed
        scale (``downsample``) over overlapping, seamlessly blended tiles with bounded memory.
        "auto" tiles planes whose longest side exceeds the model's ``tile_above``, or when
        ``tile`` is given.
    tile : int, optional
        Tile side in network pixels (multiple of 8, at least about 2.5 receptive fields);
        default 512.
    downsample : int, optional
        Image pixels per network pixel in tiled mode; default 2, coarser for planes of more
        than 8192 x 8192 pixels so that the network sees at most 4096 x 4096
        (``core.tiling.auto_downsample``).
    level : int
        Pyramid level of a multiscale ``image``; 0 (full resolution) by default.
    temporal : float or bool
        Smooth colors along the first axis of a stack (a time series), 0 or False: off, True:
        0.5. Static regions keep their colors from frame to frame, moving ones follow at once.
    out : path, array or zarr array, optional
        Where to write the result. A ``.npy``, ``.tif``/``.tiff`` or ``.zarr`` path is written
        as a new file, then moved into place, so an existing file is only replaced by a complete
        result; an array of the output shape is filled in place. Memory then stays bounded by a
        few tiles however big the image is.
        A ``.ome.zarr`` path gets a multiscale OME-Zarr (channels first), computed chunk by chunk.
    dtype : numpy dtype, optional
        Output type of a new ``out`` file: float32 (default), uint8 or uint16.
    reference : array-like (H, W, 3), optional
        A color image (numpy or dask, any size and dtype) whose palette the result takes: its
        ab distribution is a prior on the predicted colors and its chroma distribution the
        result's (:mod:`.core.reference`). With an RGB ``image`` this recolors it.
    reference_strength : float
        Weight of the reference's color prior, 0 to 4 (0: only its saturation is matched).
    scale : sequence of float, optional
        Pixel sizes of the leading and spatial axes (napari's layer scale: a multiscale image's
        first level's, scaled here to ``level``'s), kept in an OME-Zarr ``out``.

    Returns
    -------
    ndarray, dask array or the written array
        float32 RGB in [0, 1], shape ``spatial + (3,)``; dask in gives dask out, unless ``out`` is
        given: a single plane's low-resolution global pass runs at once, each chunk when computed.
    """
    steps = iter_colorize(image, points=points, colors=colors, model=model, temperature=temperature, rgb=rgb,
                          mode=mode, tile=tile, downsample=downsample, level=level, temporal=temporal,
                          out=out, dtype=dtype, reference=reference,
                          reference_strength=reference_strength, scale=scale)
    return drain(steps, lambda step: progress(*step) if progress and step[1] else None)


def _pick_level(image, level: int):
    if isinstance(image, (list, tuple)) or type(image).__name__ == "MultiScaleData":
        levels = list(image)
        if not levels:
            raise InputError("The multiscale image has no levels.")
        if not isinstance(level, (int, np.integer)) or not 0 <= int(level) < len(levels):
            raise InputError(f"level must be a whole number from 0 to {len(levels) - 1}; got {level!r}.")
        return levels[int(level)]
    if level:
        raise InputError(f"level={level!r} needs a multiscale image (a list of arrays, largest first).")
    return image


def iter_colorize(image, *, points=None, colors=None, model=None, temperature=None, rgb=None, mode="auto",
                  tile=None, downsample=None, level=0, temporal=False, out=None, dtype=None,
                  reference=None, reference_strength=0.5, scale=None):
    """Generator behind :func:`colorize` with the same parameters.

    Yields ``(done, total)`` after each plane (or row of tiles) and returns the result, so a
    caller can report progress and stop between steps.
    """
    m = _as_model(model)
    if reference is not None:
        m = with_reference(m, reference, reference_strength)
    full, image = image, _pick_level(image, level)
    if not hasattr(image, "shape") or not hasattr(image, "dtype"):
        raise InputError(f"Expected an array or a list of arrays; got {type(image).__name__}.")
    is_rgb = check_image(image, rgb, values=False)
    if level and scale is not None and np.ndim(scale) == 1 and all(isinstance(v, numbers.Real) for v in scale):
        # a multiscale layer's scale is its first level's: this level's pixels are larger by the ratio
        n = 3 if is_rgb else 2
        ratio = np.divide(tuple(full[0].shape)[-n:][:2], tuple(image.shape)[-n:][:2])
        scale = [*scale[:-2], *(np.asarray(scale[-2:], float) * ratio)] if len(scale) >= 2 else scale
    shape = tuple(image.shape)
    spatial = shape[-3:-1] if is_rgb else shape[-2:]
    lead_shape = shape[:-3] if is_rgb else shape[:-2]
    lead, pts, cols = _split_hints(points, colors, len(lead_shape))
    if pts is not None:
        _, _, dropped = check_hints(pts, cols, spatial)
        if lead is not None:
            dropped += int((~((lead >= 0) & (lead < np.asarray(lead_shape))).all(axis=1)).sum())
        if dropped:
            warnings.warn(f"{dropped} hint point(s) lie outside the image and were ignored.", stacklevel=3)
    if temperature is not None:
        temperature = check_number("temperature", temperature, 0.0, 5.0, open_low=True)
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}; got {mode!r}.")
    alpha = check_temporal(temporal)
    tiled = mode == "tiled" or (mode == "auto" and (tile is not None or max(spatial) > m.tile_above))
    k = auto_downsample(spatial) if downsample is None else check_number("downsample", downsample, 1, 64, integer=True)
    smallest = tile_geometry(m, None)["smallest"] if tiled and tile is not None else 8  # costs a network pass
    tile_px = DEFAULT_TILE if tile is None else check_number("tile", tile, smallest, 8192, integer=True)
    if tiled:
        tile_geometry(m, tile_px)  # a bad tile size fails before anything is written
    if out is None and dtype is not None:
        check_dtype("The output dtype", dtype, ALLOWED)
    if isinstance(out, (str, os.PathLike)):
        refuse_replacing_source(image, out)
        if is_ome_path(out):
            check_write(out, len(lead_shape) + 3, dtype, scale)  # before any work, not after a global pass
    elif isinstance(out, np.ndarray) and isinstance(image, np.ndarray) and np.may_share_memory(out, image):
        raise InputError("out shares memory with the input image; pass a separate array.")
    # arguments that would do nothing say so rather than pass unnoticed
    if scale is not None and not is_ome_path(out):
        warnings.warn("scale is kept only in an OME-Zarr out (a path ending in .ome.zarr); ignored.", stacklevel=3)
    if alpha and not lead_shape:
        warnings.warn("temporal smoothing works across the planes of a stack; a single image is not smoothed.",
                      stacklevel=3)

    def plane_hints(index: tuple[int, ...]):
        if pts is None:
            return None, None
        sel = np.ones(len(pts), bool) if lead is None else (lead == np.asarray(index)).all(axis=1)
        return pts[sel], np.asarray(cols)[sel]

    def state_for(states: dict, index: tuple[int, ...]):
        # one memory per position along the other leading axes; time is the first axis
        return states.setdefault(index[1:], {}) if alpha and index else None

    def run_plane(plane, index, write=None, state=None):
        """Generator: colorize one plane, yielding after each row of tiles; returns RGB or None."""
        p, c = plane_hints(index)
        if not tiled:
            plane = np.asarray(plane)
            check_finite(plane)
            return colorize_plane(m, plane, p, c, temperature, state=state, temporal=alpha, write=write)
        buf = None
        if write is None:
            buf = np.empty(tuple(plane.shape[:2]) + (3,), np.float32)
            write = array_writer(buf)
        yield from iter_tiled(m, plane, write, p, c, temperature, downsample=k, tile=tile_px, state=state,
                              temporal=alpha)
        return buf

    out_shape = lead_shape + spatial + (3,)
    if (is_dask(image) and out is None) or is_ome_path(out):
        # one count over the global pass and the writing, so progress never starts again
        writing = write_steps(out_shape) if out is not None else 0
        first = 0
        if alpha and lead_shape:
            res = _colorize_dask_temporal(_as_dask(image), is_rgb, lead_shape, run_plane, state_for)
        else:
            res, first = yield from _shifted(iter_colorize_dask(
                _as_dask(image), m, is_rgb=is_rgb, tiled=tiled, hints=plane_hints, temperature=temperature,
                downsample=k, tile=tile_px), 0, writing)
        if out is None:  # as a numpy result would be: integers scaled to their full range
            dt = None if dtype is None else np.dtype(dtype)
            return res if dt is None or dt == np.float32 else res.map_blocks(to_dtype, dt, dtype=dt)
        yield from _shifted(write_ome(res, out, dtype=dtype, scale=scale), first, 0)
        return open_ome(out)

    if isinstance(image, np.ndarray) and not isinstance(image, np.memmap):
        check_finite(image)
    target = Output(out, out_shape, dtype)
    try:
        n_planes = int(np.prod(lead_shape))
        rows_per_plane = _rows_per_plane(m, spatial, k, tile_px) if tiled else 1
        total, done = n_planes * rows_per_plane, 0
        states: dict = {}
        for idx in np.ndindex(*lead_shape):
            plane = image[idx] if idx else image
            steps = run_plane(plane, idx, array_writer(target.array, idx), state_for(states, idx))
            for _ in _iterate(steps):
                done += 1
                yield done, total
            if not tiled:
                done += 1
                yield done, total
    except BaseException:
        target.abort()
        raise
    return target.finish()


def _shifted(gen, before: int, after: int):
    """Yield ``gen``'s ``(done, total)`` steps as part of a longer count: ``before`` steps done
    ahead of them, ``after`` to come; returns ``(gen's result, gen's total)``."""
    total = 0
    while True:
        try:
            done, total = next(gen)
        except StopIteration as stop:
            return stop.value, total
        yield before + done, before + total + after


def _iterate(gen):
    """Iterate a generator or, for a plain return value, nothing."""
    if hasattr(gen, "__next__"):
        yield from gen


def _drain(gen):
    return drain(gen) if hasattr(gen, "__next__") else gen


def _rows_per_plane(m: Colorizer, spatial, k: int, tile: int) -> int:
    from .core.tiling import tiled_steps

    return tiled_steps(m, spatial, k, tile)


def _as_dask(image):
    import dask.array as da

    return image if is_dask(image) else da.from_array(image, chunks=(1,) * (image.ndim - 2) + (-1, -1))


def _colorize_dask_temporal(image, is_rgb: bool, lead_shape: tuple, run_plane, state_for):
    """Lazy temporal smoothing: each plane's task takes the memory left by the previous frame, so
    computing the whole stack runs every plane once, in order (one frame alone needs its past)."""
    import dask
    import dask.array as da

    n_lead = len(lead_shape)
    spatial = tuple(image.shape[n_lead : n_lead + 2])

    def step(plane, index, state):
        state = {key: dict(val) for key, val in (state or {}).items()}
        rgb = _drain(run_plane(np.asarray(plane), index, None, state_for(state, index)))
        return rgb, state

    state = None
    planes = []
    for idx in np.ndindex(*lead_shape):
        res = dask.delayed(step, pure=True, nout=2)(image[idx], idx, state)
        state = res[1]
        planes.append(da.from_delayed(res[0], spatial + (3,), np.float32))
    return da.stack(planes).reshape(lead_shape + spatial + (3,))
