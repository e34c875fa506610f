"""Output paths: what they may replace, names the file system can hold, files an input reads.

A result replaces only what it could have written itself: a zarr array for a ``.zarr`` output, an
OME-Zarr image for an ``.ome.zarr`` one. A zarr group (which may hold a user's other arrays) or any
other folder is never removed, and no output may replace a file its own input is read from.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .errors import InputError


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def zarr_node(path: str | os.PathLike) -> str | None:
    """``"array"`` or ``"group"`` for a zarr (v2 or v3) folder, None for anything else."""
    path = Path(path)
    if not path.is_dir():
        return None
    if (path / "zarr.json").is_file():
        kind = _json(path / "zarr.json").get("node_type")
        return kind if kind in ("array", "group") else None
    if (path / ".zarray").is_file():
        return "array"
    return "group" if (path / ".zgroup").is_file() else None


def multiscales(path: str | os.PathLike) -> dict | None:
    """The first OME-Zarr multiscales entry (v0.4 or v0.5) of the zarr group at ``path``, else None."""
    path = Path(path)
    if zarr_node(path) != "group":
        return None
    attrs = _json(path / "zarr.json").get("attributes") or _json(path / ".zattrs")
    found = attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")
    return found[0] if isinstance(found, list) and found and isinstance(found[0], dict) else None


def is_ome_image(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zarr group with OME-Zarr multiscales metadata."""
    return multiscales(path) is not None


def check_replaceable(path: str | os.PathLike, kind: str) -> None:
    """Raise :class:`InputError` if ``path`` exists and is not a ``kind`` result ("array" or "ome")."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    node = zarr_node(path)
    if not (node == "array" if kind == "array" else is_ome_image(path)):
        what = "a zarr array" if kind == "array" else "an OME-Zarr image"
        found = f"a zarr {node}" if node else "a folder" if path.is_dir() else "a file"
        raise InputError(f"'{path}' is {found}, not {what}: it is never replaced; name a new output.")


def source_paths(image) -> list[Path]:
    """Files and zarr stores that ``image`` (a memmap, a zarr array, a dask array of a zarr array)
    reads. A dask array made from a memmap holds copies of its chunks that do not name the file."""
    objs = [image]
    if hasattr(image, "__dask_graph__"):
        graph = image.__dask_graph__()
        layers = getattr(graph, "layers", None)
        if layers is not None:  # dask keeps a wrapped array in its own "original-" layer: read only those
            graph = {k: v for name, layer in layers.items() if name.startswith("original-") for k, v in layer.items()}
        objs += [v for v in dict(graph).values() if hasattr(v, "shape")]
    found = []
    for o in objs:
        if isinstance(o, np.memmap) and getattr(o, "filename", None):
            found.append(Path(o.filename))
        store = getattr(o, "store", None)
        root = (getattr(store, "root", None) or getattr(store, "path", None)) if store is not None else None
        if root and isinstance(root, (str, os.PathLike)):
            found.append(Path(root) / (getattr(o, "path", "") or ""))
    return found


def refuse_replacing_source(image, out: str | os.PathLike) -> None:
    """Raise :class:`InputError` if writing ``out`` would replace a file ``image`` is read from."""
    target = Path(out).resolve()
    for src in source_paths(image):
        src = src.resolve()
        if src == target or src.is_relative_to(target):
            raise InputError(f"out '{out}' would replace the input image's file '{src}'; name another output.")


def name_problem(dst: Path) -> str | None:
    """Why the file system cannot hold ``dst`` (a name or path too long), else None."""

    def limit(name: str, default: int) -> int:
        try:
            return os.pathconf(dst.parent, name)
        except (OSError, ValueError, AttributeError):  # no pathconf (Windows), or no such limit
            return default

    n, name_max = len(os.fsencode(dst.name)), limit("PC_NAME_MAX", 255)
    if n > name_max:
        return f"the output name is {n} bytes, longer than the file system allows ({name_max})"
    n, path_max = len(os.fsencode(str(dst))), limit("PC_PATH_MAX", 4096)
    if n >= path_max:
        return f"the output path is {n} bytes, longer than the file system allows ({path_max - 1})"
    return None


def output_problem(dst: Path, overwrite: bool) -> tuple[str | None, bool]:
    """Why ``dst`` cannot be written, else None; and whether it exists. With ``overwrite``, only an
    earlier result of the same kind (a zarr array, an OME-Zarr image) may be replaced."""
    problem = name_problem(dst)
    if problem is not None:
        return problem, False
    try:
        exists = dst.exists()
    except OSError as exc:
        return f"cannot look for the output '{dst}': {exc.strerror or exc}", False
    kind = "ome" if dst.name.lower().endswith(".ome.zarr") else "array" if dst.suffix.lower() == ".zarr" else None
    if exists and overwrite and kind is not None:
        try:
            check_replaceable(dst, kind)
        except InputError as exc:
            return str(exc), True
    return None, exists
