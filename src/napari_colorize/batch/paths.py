"""Which files a batch reads and where each result goes: inputs found in folders, output names."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..core.errors import InputError
from ..core.stores import is_ome_image, zarr_node

READ_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
WRITE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# an output with one of these suffixes names a file, never a folder to create
IMAGE_SUFFIXES = (*READ_SUFFIXES, ".gif", ".webp", ".jp2", ".ppm", ".pgm", ".heic")


def is_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a zarr array or group (a ``.zarr`` folder or one with zarr metadata)."""
    p = Path(path)
    return p.suffix.lower() == ".zarr" or zarr_node(p) is not None


OME = ".ome.zarr"
OUTPUT_NAME = re.compile(r".+_colorized\.(png|tif|zarr|ome\.zarr)\Z")
"""Names :func:`output_paths` gives in an output folder; such files found there are never inputs."""


def _walk(top: Path) -> list[Path]:
    """Files under ``top``, and its zarr arrays and OME-Zarr images as single entries; other zarr
    groups (labels, containers) are neither inputs nor walked into."""
    found = []
    for root, dirs, files in os.walk(top):
        r = Path(root)
        nodes = {d: zarr_node(r / d) for d in dirs}
        dirs[:] = [d for d in dirs if nodes[d] is None]
        found += [r / d for d, n in nodes.items() if n == "array" or (n == "group" and is_ome_image(r / d))]
        found += [r / f for f in files if (r / f).is_file()]  # not a broken link
    return found


def expand_inputs(inputs: list[str], output: str | os.PathLike | None = None) -> list[Path]:
    """Image files and zarr stores named, or inside the folders named, in a stable order.

    In folders, hidden files (temporaries, macOS ``._`` forks) are left out, and so are earlier
    outputs: files named like :data:`OUTPUT_NAME` in the folder ``output``, so that a rerun into an
    input folder does not colorize its own results again. A ``.zarr`` folder found there is one
    input (what is inside it is not).
    """
    out_dir = Path(output).resolve() if output is not None else None

    def wanted(f: Path) -> bool:  # f: a file, or a zarr store _walk found
        if f.name.startswith(".") or not (f.suffix.lower() in READ_SUFFIXES or f.is_dir()):
            return False
        return not (out_dir is not None and OUTPUT_NAME.match(f.name) and f.parent.resolve() == out_dir)

    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if is_zarr(p) and p.exists():
            files.append(p)
        elif p.is_dir():
            files.extend(sorted(f for f in _walk(p) if wanted(f)))
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"No such file or folder: {p}")
    if not files:
        raise InputError("No image files (PNG, TIFF, JPEG) found in the inputs.")
    return files


def _stem(f: Path) -> str:
    return f.name[: -len(OME)] if f.name.lower().endswith(OME) else f.stem


def output_paths(files: list[Path], output: str, fmt: str = "auto") -> list[Path]:
    """Where each input's result goes.

    ``output`` itself for a single input whose suffix fits (an image suffix, ``.zarr`` for a zarr
    input, ``.ome.zarr`` for any), else ``output/<stem>_colorized<suffix>``: TIFF stays TIFF, zarr
    stays zarr, OME-Zarr stays OME-Zarr, the rest become PNG. ``fmt="ome-zarr"`` makes every
    output an OME-Zarr image.
    """
    out = Path(output)
    suffix = out.suffix.lower()
    ome = [fmt == "ome-zarr" or is_ome_image(f) for f in files]
    # an image suffix names a file (an existing folder of that name stays a folder)
    if suffix in IMAGE_SUFFIXES and not out.is_dir():
        if fmt == "ome-zarr":
            raise InputError(f"OME-Zarr outputs go to a folder or a name ending in .ome.zarr, not '{out}'.")
        if suffix not in WRITE_SUFFIXES:
            raise InputError(f"Unsupported output type '{suffix}'; use one of {', '.join(WRITE_SUFFIXES)}.")
        if len(files) > 1:
            raise InputError(f"{len(files)} inputs need an output folder, not the file name '{out}'.")
        if is_zarr(files[0]):
            kind = ".ome.zarr" if ome[0] else ".zarr"
            raise InputError(f"A{'n OME-Zarr' if ome[0] else ' zarr'} input needs a {kind} output or a folder, "
                             f"not '{out}'.")
        return [out]
    if suffix == ".zarr":  # one zarr result; named .ome.zarr, an OME-Zarr image of any input
        if len(files) > 1:
            raise InputError(f"{len(files)} inputs need an output folder, not the zarr name '{out}'.")
        if not out.name.lower().endswith(OME):
            if ome[0]:
                raise InputError(f"OME-Zarr outputs go to a folder or a name ending in .ome.zarr, not '{out}'.")
            if not is_zarr(files[0]):
                raise InputError(f"'{files[0].name}' is an image file: name an image or .ome.zarr output, "
                                 f"or a folder, not '{out}'.")
        return [out]
    paths = []
    for f, o in zip(files, ome, strict=True):
        if o:
            kind = OME
        elif is_zarr(f):
            kind = ".zarr"
        else:
            kind = ".tif" if f.suffix.lower() in (".tif", ".tiff") else ".png"
        paths.append(out / f"{_stem(f)}_colorized{kind}")
    return paths
