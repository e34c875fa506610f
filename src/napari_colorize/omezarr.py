"""Multiscale OME-Zarr output (the ``ome-zarr`` package), written atomically.

The result is written into a temporary folder beside the target, level by level (each level
read back from the one before it, so no level is computed twice), and renamed into place once
complete (:mod:`.core.atomic`). Axes are in OME-Zarr's order (time, channel, space): RGB
(H, W, 3) becomes (c, y, x), a stack (Z, H, W, 3) becomes (c, z, y, x), (T, Z, H, W, 3) becomes
(t, c, z, y, x).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .core.arrays import check_dtype, to_dtype
from .core.atomic import clean_stale, commit, remove, temp_path
from .core.errors import InputError
from .core.stores import check_replaceable, multiscales

SUFFIX = ".ome.zarr"
SMALLEST = 256  # levels are added until the longest side is at most this
_LEAD_AXES = ("z", "t")  # names of leading axes, innermost first


def is_ome_path(out) -> bool:
    """Whether ``out`` is a path that names an OME-Zarr output (``*.ome.zarr``)."""
    return isinstance(out, (str, os.PathLike)) and str(out).lower().rstrip("/\\").endswith(SUFFIX)


def _import():
    try:
        import ome_zarr.writer  # noqa: F401
        import zarr
    except ImportError as exc:
        raise InputError("Writing OME-Zarr needs the ome-zarr package: "
                         "pip install 'napari-colorize[ome-zarr]'.") from exc
    return zarr


def check_target(path: Path) -> None:
    """Refuse a target that is not a new path or an earlier zarr result (never a user's other files)."""
    if not path.parent.is_dir():
        raise InputError(f"The output folder '{path.parent}' does not exist.")
    check_replaceable(path, "ome")


def axes_for(ndim: int, lead=None) -> list[str]:
    """OME-Zarr axis names, in the order on disk, of an RGB result with ``ndim`` axes (..., H, W, 3);
    ``lead`` names its leading axes ("t", "z"; by default z, then t, innermost first)."""
    return sorted(_memory_axes(ndim, lead), key="tczyx".index)


def _memory_axes(ndim: int, lead=None) -> list[str]:
    n_lead = ndim - 3
    if n_lead > len(_LEAD_AXES):
        raise InputError(f"OME-Zarr output takes at most {len(_LEAD_AXES)} leading axes; got {n_lead}.")
    if lead is None:
        lead = list(reversed(_LEAD_AXES[:n_lead]))
    if len(lead) != n_lead or len(set(lead)) != n_lead or not set(lead) <= set(_LEAD_AXES):
        raise InputError(f"Leading axes must be {n_lead} distinct names of {', '.join(_LEAD_AXES)}; got {lead!r}.")
    return list(lead) + ["y", "x", "c"]


def check_scale(scale, n_axes: int) -> tuple[float, ...]:
    """Pixel sizes of the image's leading and spatial axes (napari's layer scale); ones when None."""
    if scale is None:
        return (1.0,) * n_axes
    vals = tuple(float(v) if isinstance(v, numbers.Real) else np.nan for v in np.ravel(np.asarray(scale, object)))
    if len(vals) != n_axes or not all(np.isfinite(v) and v > 0 for v in vals):
        raise InputError(f"scale needs {n_axes} positive pixel sizes (leading axes, then rows, columns); "
                         f"got {scale!r}.")
    return vals


def _halve(arr):
    """The next level: 2 x 2 means over rows and columns (an odd edge keeps its last row or column)."""
    import dask.array as da

    pads = [(0, 0)] * (arr.ndim - 2) + [(0, arr.shape[-2] % 2), (0, arr.shape[-1] % 2)]
    if any(p[1] for p in pads):
        arr = da.pad(arr, pads, mode="edge")
    f = arr.astype(np.float32)
    out = da.coarsen(np.mean, f, {arr.ndim - 2: 2, arr.ndim - 1: 2})
    return out


def write(result, path, *, dtype=None, scale=None, units=None, lead_axes=None,
          chunk: int = 1024) -> Iterator[tuple[int, int]]:
    """Write lazy RGB ``result`` (..., H, W, 3) as a multiscale OME-Zarr at ``path``.

    Arguments are checked at once; the returned generator writes, yielding ``(done, total)`` per
    band of level-0 rows (per plane for a stack) and per further level.

    Parameters
    ----------
    result : dask array
        float32 RGB in [0, 1].
    path : str or path
        The ``.ome.zarr`` folder to create (an earlier result there is replaced when done).
    dtype : numpy dtype, optional
        float32 (default), uint8 or uint16.
    scale : sequence of float, optional
        Pixel sizes of the leading and spatial axes (as napari's layer scale).
    units : str or dict, optional
        Unit of the spatial pixel sizes, e.g. "micrometer", or a unit per axis name.
    lead_axes : sequence of str, optional
        Names of the leading axes, "t" or "z" (default: "z" for one, "t", "z" for two).
    """
    zarr = _import()
    path = Path(path)
    lead = None if lead_axes is None else list(lead_axes)
    dt, axes, sizes = check_write(path, result.ndim, dtype, scale, lead)
    unit_map = units if isinstance(units, dict) else {a: units for a in ("y", "x")} if units else {}
    unit_map = {a: u for a, u in unit_map.items() if a in axes and a != "c" and u}
    return _write(zarr, result, path, dt, axes, _memory_axes(result.ndim, lead), sizes, unit_map or None, chunk)


def check_write(path, ndim: int, dtype=None, scale=None, lead_axes=None):
    """The checks of :func:`write`, for a result with ``ndim`` axes, run before any work; returns
    ``(dtype, axes on disk, pixel sizes)``."""
    check_target(Path(path))
    dt = check_dtype("The OME-Zarr output dtype", np.float32 if dtype is None else dtype,
                     (np.float32, np.uint8, np.uint16))
    axes = axes_for(ndim, None if lead_axes is None else list(lead_axes))
    return dt, axes, check_scale(scale, ndim - 1)


def _levels(shape) -> int:
    levels = 1
    while max(shape[-3:-1]) / 2 ** (levels - 1) > SMALLEST:
        levels += 1
    return levels


def write_steps(shape, chunk: int = 1024) -> int:
    """How many ``(done, total)`` steps :func:`write` yields for an RGB result of ``shape``."""
    lead = tuple(shape[:-3])
    pieces = int(np.prod(lead)) if lead else -(-int(shape[-3]) // chunk)
    return pieces + _levels(shape) - 1


def _write(zarr, result, path: Path, dt, axes, mem_axes, sizes, units, chunk):
    import dask.array as da
    from ome_zarr.writer import write_multiscales_metadata

    clean_stale(path.parent)
    tmp = temp_path(path)
    levels = _levels(result.shape)
    h = result.shape[-3]
    lead = tuple(result.shape[:-3])
    # a single plane in bands of chunk rows; a stack plane by plane, so each plane's global pass
    # runs once (a band of a stack would run every plane's again)
    pieces = [(slice(r0, min(h, r0 + chunk)),) for r0 in range(0, h, chunk)] if not lead \
        else list(np.ndindex(*lead))
    total = write_steps(result.shape, chunk)
    size_of = dict(zip(mem_axes[:-1], sizes, strict=True))
    try:
        group = zarr.open_group(str(tmp), mode="w")
        level = result.transpose(tuple(mem_axes.index(a) for a in axes))
        datasets = []
        for i in range(levels):
            shape = dict(zip(axes, level.shape, strict=True))
            arr = group.create_array(str(i), shape=tuple(shape.values()), dtype=dt, chunks=tuple(
                min(chunk, shape[a]) if a in "yx" else 1 for a in axes))
            if i == 0:
                for b, key in enumerate(pieces):
                    band = np.moveaxis(np.asarray(result[key].compute()), -1, 0)  # (3, rows, W)
                    named = dict(zip(mem_axes, key))
                    arr[tuple(named.get(a, slice(None)) for a in axes)] = to_dtype(band, dt)
                    yield b + 1, total
            else:
                da.to_zarr(da.map_blocks(to_dtype, level, dt, dtype=dt), arr)
                yield len(pieces) + i, total
            f = 2.0 ** i
            datasets.append({"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [
                1.0 if a == "c" else size_of[a] * (f if a in "yx" else 1.0) for a in axes]}]})
            if i + 1 < levels:
                prev = da.from_zarr(arr)
                if dt.kind != "f":
                    prev = prev.astype(np.float32) / float(np.iinfo(dt).max)
                level = _halve(prev).rechunk(tuple(chunk if a in "yx" else 3 if a == "c" else 1 for a in axes))
        write_multiscales_metadata(group, datasets, axes=axes, axes_units=units, name=path.name[: -len(SUFFIX)],
                                   metadata={"omero": {"channels": [
                                       {"label": n, "color": c, "window": {"min": 0.0, "max": _peak(dt),
                                                                           "start": 0.0, "end": _peak(dt)}}
                                       for n, c in (("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF"))],
                                       "rdefs": {"model": "color"}}})
        del group
    except BaseException:
        remove(tmp)
        raise
    commit(tmp, path)


def _peak(dt: np.dtype) -> float:
    return float(np.iinfo(dt).max) if dt.kind in "ui" else 1.0


def open_ome(path, level: int = 0):
    """A level of an OME-Zarr result as a read-only dask array in the in-memory layout (..., H, W, 3)."""
    import dask.array as da

    arr = da.from_zarr(str(Path(path) / str(level)))
    disk = _axis_names(multiscales(path) or {}) or axes_for(arr.ndim)
    mem = [a for a in disk if a not in "yxc"] + ["y", "x", "c"]
    return arr.transpose(tuple(disk.index(a) for a in mem))


def _axis_names(ms: dict) -> list[str]:
    return [a["name"] if isinstance(a, dict) else a for a in ms.get("axes", [])]


def read_input(src: str | os.PathLike, max_pixels: int):
    """An input of the command line as an array, and what it says of its axes.

    Returns ``(array, scale, lead_axes, units)``: OME-Zarr images give their full-resolution level
    (lazily) with its pixel sizes, the names of its leading axes where they are t or z, and its
    units; a size-1 channel axis is dropped and three channels moved last (RGB). Other zarr arrays
    are read lazily, image files whole (:func:`napari_colorize.batch.files.read_image`), with None
    for the rest.
    """
    import dask.array as da

    from .batch.files import read_image
    from .batch.paths import is_zarr
    from .core.data import check_pixels

    path = Path(src)
    if not is_zarr(path):
        return read_image(path, max_pixels), None, None, None
    import zarr

    node = zarr.open(str(path), mode="r")
    ms = multiscales(path)
    if not ms:
        arr = da.from_zarr(node) if hasattr(node, "shape") else None
        if arr is None:
            raise InputError(f"'{path}' is a zarr group without multiscales metadata; name one of its arrays.")
        check_pixels(*arr.shape[-2:], path, max_pixels)
        return arr, None, None, None
    first = ms["datasets"][0]
    arr = da.from_zarr(node[first["path"]])
    axes = _axis_names(ms) or list("tczyx"[-arr.ndim:])
    units = {a["name"]: a["unit"] for a in ms.get("axes", []) if isinstance(a, dict) and a.get("unit")}
    scale = next((t["scale"] for t in first.get("coordinateTransformations", []) if t.get("type") == "scale"),
                 [1.0] * arr.ndim)
    if "c" in axes:
        c = axes.index("c")
        keep = [i for i in range(arr.ndim) if i != c]
        if arr.shape[c] == 1:
            arr = arr[tuple(0 if i == c else slice(None) for i in range(arr.ndim))]
        elif arr.shape[c] == 3:
            arr = da.moveaxis(arr, c, -1)
        else:
            raise InputError(f"'{path}' has {arr.shape[c]} channels; expected 1 (gray) or 3 (RGB).")
        scale = [scale[i] for i in keep]
    check_pixels(*(arr.shape[-3:-1] if arr.shape[-1] == 3 and "c" in axes else arr.shape[-2:]), path, max_pixels)
    lead = [a for a in axes if a != "c"][:-2]
    try:
        _memory_axes(len(lead) + 3, lead)
    except InputError:  # names other than t and z: named by position instead
        lead = None
    return arr, [float(v) for v in scale], lead, (units or None)


def colorize_task(job: int, src: str, dst: str, model, temperature, max_pixels: int):
    """Batch task: colorize one input into a uint8 OME-Zarr ``dst``; returns ``(job, error or None)``."""
    import dask
    import dask.array as da

    from .api import colorize
    from .batch.runner import OutputError, describe
    from .core.gen import drain

    try:
        image, scale, lead, units = read_input(src, max_pixels)
        if image.ndim == 3 and image.shape[-1] == 4:
            image = image[..., :3]  # alpha does not carry luminance
        with dask.config.set(scheduler="threads"):  # chunks of this one input on this worker's threads
            # lazily, so that the writer keeps the input's axis names and units
            res = colorize(image if hasattr(image, "dask") else da.from_array(image, chunks=-1), model=model,
                           temperature=temperature)
            drain(write(res, dst, dtype="uint8", scale=scale, units=units, lead_axes=lead))
    except OSError as exc:
        raise OutputError(f"Cannot write '{dst}': {exc.strerror or exc}.") from None
    except Exception as exc:  # noqa: BLE001 - one bad input must not end a batch
        return job, describe(exc)
    return job, None
