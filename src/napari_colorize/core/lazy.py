"""Lazy colorization of dask arrays and pyramids: the global pass once, then chunk by chunk.

The global pass (:func:`plane_field`) reads a plane in bounded pieces and leaves a small
:class:`.chroma.ChromaField`; every output chunk is then the per-chunk pass over that chunk's own
pixels alone. A single plane's field is computed when the lazy result is made, so that showing
or storing any part of it costs only the chunks read; a stack's fields are one task per plane,
which all of that plane's chunk tasks share.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .arrays import is_dask
from .chroma import ChromaField, UnitMap, block_mean, read_lightness
from .errors import InputError
from .gen import drain
from .inference import mid_factor, whole_field
from .modelfile import Colorizer
from .tiling import DEFAULT_TILE, auto_downsample, tiled_field

CHUNK = 2048  # output chunk side when the input's chunks are far from a useful size
CHUNK_RANGE = (512, 4096)  # input chunk sides kept as they are


def plane_field(model: Colorizer, plane, *, tiled: bool, points=None, colors=None,
                temperature: float | None = None, downsample: int | None = None,
                tile: int | None = DEFAULT_TILE) -> ChromaField:
    """Global pass of one plane (ndarray, memmap, zarr or dask), gray (H, W) or RGB (H, W, 3).

    ``tiled`` picks tiled colorization at ``downsample`` (None: :func:`.tiling.auto_downsample`
    of the plane) in windows of ``tile`` (:func:`.tiling.tiled_field`), else the whole plane at
    the working size (:func:`.inference.whole_field`). A dask plane is read chunk by chunk, never
    whole. :func:`iter_plane_field` is the same pass, reporting its progress.
    """
    return drain(iter_plane_field(model, plane, tiled=tiled, points=points, colors=colors,
                                  temperature=temperature, downsample=downsample, tile=tile))


def iter_plane_field(model: Colorizer, plane, *, tiled: bool, points=None, colors=None,
                     temperature: float | None = None, downsample: int | None = None,
                     tile: int | None = DEFAULT_TILE):
    """Generator of :func:`plane_field`: yields ``(done, total)`` per row of windows in tiled
    mode and returns the field."""
    unit = UnitMap(plane)
    if tiled:
        downsample = auto_downsample(plane.shape[:2]) if downsample is None else downsample
        return (yield from tiled_field(model, plane, points, colors, temperature, downsample=downsample,
                                       tile=tile, unit=unit))
    shape = tuple(plane.shape[:2])
    q = mid_factor(shape, model.working_size)
    l_mid = _dask_lightness(plane, unit, q) if is_dask(plane) else read_lightness(plane, unit, q)

    def l_at(rows, cols):
        return unit.lightness(np.stack([np.asarray(plane[int(r), int(c)]) for r, c in zip(rows, cols)]))

    return whole_field(model, l_mid, shape, unit, points, colors, temperature, l_at=l_at)


def _dask_lightness(plane, unit: UnitMap, q: int) -> np.ndarray:
    """Block-mean L of a dask plane, one task per chunk (chunks re-cut to whole q x q cells)."""
    import dask.array as da

    rgb = plane.ndim == 3
    sides = [max(q, int(round(c[0] / q)) * q) for c in plane.chunks[:2]]
    plane = plane.rechunk(tuple(sides) + ((-1,) if rgb else ()))

    def cells(block):
        return block_mean(unit.lightness(block), q)

    out_chunks = tuple(tuple(-(-c // q) for c in axis) for axis in plane.chunks[:2])
    kw = {"drop_axis": 2} if rgb else {}
    return da.map_blocks(cells, plane, dtype=np.float32, chunks=out_chunks, **kw).compute()


def output_chunks(plane) -> tuple:
    """Spatial chunking of a lazy result: the input's, or :data:`CHUNK` where those are too small or
    too big to be worth a task."""
    lo, hi = CHUNK_RANGE
    sides = []
    for axis, n in zip(plane.chunks[:2], plane.shape[:2]):
        main = max(axis)
        sides.append(axis if lo <= main <= hi or main >= n <= hi else min(CHUNK, n))
    return tuple(sides)


def lazy_rgb(plane, fld, factor=(1.0, 1.0)):
    """Lazy float32 RGB (H, W, 3) of a dask plane: the per-chunk pass of a field on each chunk.

    Parameters
    ----------
    plane : dask array (H, W) or (H, W, 3)
    fld : ChromaField or callable
        The plane's field, or ``fld(plane_ndarray)`` making it: then one task, run once per
        compute, reads the plane (from the same chunk tasks as the output chunks) and every
        output chunk waits for it.
    factor : (float, float)
        Pixels of the field's plane that one pixel of ``plane`` spans (for pyramid levels).
    """
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    rgb = plane.ndim == 3
    plane = plane.rechunk(output_chunks(plane) + ((-1,) if rgb else ()))
    token = tokenize(plane.name, id(fld) if isinstance(fld, ChromaField) else fld, factor)
    field_key = ("chroma-field-" + token,)
    deps = [plane]
    if isinstance(fld, ChromaField):
        dsk = {field_key: (_same, fld)}  # a key of its own: dask would otherwise hash its arrays
    else:
        whole = plane.rechunk((-1, -1) + ((-1,) if rgb else ()))
        dsk = {field_key: (fld, (whole.name, 0, 0) + ((0,) if rgb else ()))}
        deps.append(whole)
    name = "colorize-chunks-" + token
    offsets = [np.cumsum((0,) + c[:-1]) for c in plane.chunks[:2]]
    for i, y0 in enumerate(offsets[0]):
        for j, x0 in enumerate(offsets[1]):
            src = (plane.name, i, j) + ((0,) if rgb else ())
            dsk[(name, i, j, 0)] = (_chunk_rgb, field_key, src, int(y0), int(x0), tuple(factor))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=deps)
    return da.Array(graph, name, plane.chunks[:2] + ((3,),), dtype=np.float32,
                    meta=np.empty((0, 0, 0), np.float32))


def _same(x):
    return x


def _chunk_rgb(fld: ChromaField, block, y0: int, x0: int, factor) -> np.ndarray:
    return fld.rgb(block, y0, x0, factor)


def iter_colorize_dask(image, model: Colorizer, *, is_rgb: bool, tiled: bool, hints=None, temperature=None,
                       downsample: int | None = None, tile: int | None = DEFAULT_TILE):
    """Lazy float32 RGB of a dask image (..., H, W) or (..., H, W, 3), chunked like the input.

    Parameters
    ----------
    image : dask array
    model : Colorizer
    is_rgb : bool
        Whether the last axis is RGB.
    tiled : bool
        Tiled rather than whole-plane colorization (see :func:`plane_field`).
    hints : callable, optional
        ``hints(index)`` gives ``(points, colors)`` for the plane at leading index ``index``.
    temperature, downsample, tile :
        As for :func:`plane_field`.

    A generator: a single plane's global pass runs now and yields ``(done, total)`` per row of
    windows in tiled mode; a stack's run when chunks are computed. Returns the lazy result.
    """
    import dask.array as da

    n_lead = image.ndim - (3 if is_rgb else 2)
    lead = tuple(image.shape[:n_lead])
    kw = {"tiled": tiled, "temperature": temperature, "downsample": downsample, "tile": tile}

    def iter_field_of(plane, index):
        p, c = hints(index) if hints is not None else (None, None)
        return (yield from iter_plane_field(model, plane, points=p, colors=c, **kw))

    def field_of(plane, index):
        return drain(iter_field_of(plane, index))

    if int(np.prod(lead)) == 1:
        index = (0,) * n_lead
        plane = image[index] if n_lead else image
        res = lazy_rgb(plane, (yield from iter_field_of(plane, index)))
        return res.reshape(lead + res.shape)
    planes = [lazy_rgb(image[index], partial(_field_task, field_of, index)) for index in np.ndindex(*lead)]
    return da.stack(planes).reshape(lead + planes[0].shape)


def _field_task(field_of, index, plane):
    return field_of(plane, index)


def pick_global_level(levels: list, tile_above: int, min_side: int | None = None) -> int:
    """The pyramid level for the global pass: among the levels whose longest side is at most
    ``tile_above`` (seen whole), the coarsest one still at least ``min_side`` on its longest
    side, else the finest of them; the coarsest level if none is seen whole.

    Whole mode reduces any plane to a block mean of about four times the working size first
    (:func:`.inference.mid_factor`), so with that as ``min_side`` a finer level would only be
    read for nothing.
    """
    sides = [max(arr.shape[-3:-1] if _rgb(arr) else arr.shape[-2:]) for arr in levels]
    whole = [i for i, side in enumerate(sides) if side <= tile_above]
    if not whole:
        return len(levels) - 1
    enough = [i for i in whole if min_side is not None and sides[i] >= min_side]
    return max(enough) if enough else min(whole)


def _rgb(arr) -> bool:
    return arr.ndim >= 3 and arr.shape[-1] == 3


def colorize_pyramid(levels: list, model: Colorizer, *, global_level: int | None = None,
                     temperature: float | None = None, downsample: int | None = None,
                     tile: int | None = DEFAULT_TILE):
    """Lazy multiscale RGB of a 2D pyramid (largest first): one global pass, at ``global_level``
    (default :func:`pick_global_level`), and every level's chunks from it.

    Returns
    -------
    (list of dask arrays, int)
        float32 RGB levels (H_i, W_i, 3), and the level the global pass used.
    """
    import dask.array as da

    levels = [lv if is_dask(lv) else da.from_array(lv, chunks=CHUNK) for lv in levels]
    if not levels:
        raise InputError("The multiscale image has no levels.")
    spatial = [tuple(lv.shape[:2]) for lv in levels]
    if any(len(lv.shape) != (3 if _rgb(lv) else 2) for lv in levels):
        raise InputError(f"Expected 2D levels (gray or RGB); got shapes {[tuple(lv.shape) for lv in levels]}.")
    g = (pick_global_level(levels, model.tile_above, 4 * model.working_size) if global_level is None
         else int(global_level))
    if not 0 <= g < len(levels):
        raise InputError(f"global_level must be between 0 and {len(levels) - 1}; got {global_level}.")
    src = levels[g]
    tiled = max(spatial[g]) > model.tile_above
    fld = plane_field(model, src, tiled=tiled, temperature=temperature, downsample=downsample, tile=tile)
    out = []
    for shape, lv in zip(spatial, levels):
        factor = (spatial[g][0] / shape[0], spatial[g][1] / shape[1])  # field pixels per pixel here
        out.append(lazy_rgb(lv, fld, factor))
    return out, g
