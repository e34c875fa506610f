"""Where the API's array results go: memory, a user's array, or a new file moved into place."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .core.arrays import check_dtype
from .core.atomic import clean_stale, commit, remove, temp_path
from .core.errors import InputError
from .core.stores import check_replaceable

ALLOWED = (np.float32, np.float64, np.uint8, np.uint16)


class Output:
    """The array results go to: in memory, a user's array, or a new file moved into place at the end."""

    def __init__(self, out, shape: tuple, dtype):
        self.path = self.tmp = None
        dt = check_dtype("The output dtype", np.float32 if dtype is None else dtype, ALLOWED)
        if out is None:
            self.array = np.empty(shape, dt)
        elif isinstance(out, (str, os.PathLike)):
            self.path = Path(out)
            suffix = self.path.suffix.lower()
            if suffix not in (".npy", ".zarr", ".tif", ".tiff"):
                raise InputError(f"Output files must end in .npy, .zarr, .tif or .tiff; got '{self.path.name}'.")
            if not self.path.parent.is_dir():
                raise InputError(f"The output folder '{self.path.parent}' does not exist.")
            if suffix == ".zarr":
                check_replaceable(self.path, "array")
            elif self.path.is_dir():
                raise InputError(f"'{self.path}' is an existing folder; name a new file as out.")
            clean_stale(self.path.parent)
            self.tmp = temp_path(self.path)
            self.array = create(self.tmp, suffix, shape, dt)
        else:
            if tuple(getattr(out, "shape", ())) != tuple(shape):
                raise InputError(f"out has shape {tuple(getattr(out, 'shape', ()))}; the result needs {shape}.")
            check_dtype("The dtype of out", getattr(out, "dtype", None), ALLOWED)
            flags = getattr(out, "flags", None)
            if (flags is not None and not flags.writeable) or getattr(out, "read_only", False):
                raise InputError("out is read-only; pass a writable array.")
            self.array = out

    def abort(self):
        if self.tmp is not None:
            self.array = None
            remove(self.tmp)

    def finish(self):
        if self.tmp is None:
            return self.array
        suffix = self.path.suffix.lower()
        if hasattr(self.array, "flush"):
            self.array.flush()
        self.array = None
        commit(self.tmp, self.path)  # a zarr store already there is replaced only now, complete
        return open_read(self.path, suffix)


def create(path: Path, suffix: str, shape: tuple, dt: np.dtype):
    if suffix == ".npy":
        return np.lib.format.open_memmap(path, mode="w+", dtype=dt, shape=shape)
    if suffix in (".tif", ".tiff"):
        import tifffile

        return tifffile.memmap(path, shape=shape, dtype=dt, photometric="rgb")
    try:
        import zarr
    except ImportError as exc:
        raise InputError("Writing .zarr needs the zarr package: pip install 'napari-colorize[zarr]'.") from exc
    chunks = (1,) * (len(shape) - 3) + (min(1024, shape[-3]), min(1024, shape[-2]), 3)
    return zarr.open_array(str(path), mode="w", shape=shape, chunks=chunks, dtype=dt)


def open_read(path: Path, suffix: str):
    if suffix == ".npy":
        return np.load(path, mmap_mode="r")
    if suffix in (".tif", ".tiff"):
        import tifffile

        return tifffile.memmap(path, mode="r")
    import zarr

    return zarr.open_array(str(path), mode="r")
