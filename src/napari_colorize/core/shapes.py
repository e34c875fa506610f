"""Per-segment shape descriptors and shape matching by Hu moments (as OpenCV's matchShapes)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from skimage.draw import polygon2mask
from skimage.measure import regionprops_table

from .errors import InputError

MATCH_METHODS = ("I1", "I2", "I3")
N_HU = 7
_PROPS = ("label", "area", "perimeter", "eccentricity", "solidity", "centroid", "moments_hu")


def _check_labels(labels, what: str = "label image") -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim < 2 or 0 in arr.shape:
        raise InputError(f"The {what} must have at least 2 non-empty dimensions; got shape {arr.shape}.")
    if arr.dtype.kind not in "biu":
        raise InputError(f"The {what} must hold integer labels; got {arr.dtype}.")
    return arr


def _plane_table(plane: np.ndarray) -> dict:
    t = regionprops_table(plane.astype(np.int64, copy=False), properties=_PROPS)
    area, perim = t["area"].astype(float), t["perimeter"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        circ = np.where(perim > 0, 4 * np.pi * area / np.maximum(perim, 1e-12) ** 2, np.nan)
    out = {"index": t["label"].astype(np.int64), "area": area, "perimeter": perim,
           "eccentricity": t["eccentricity"], "solidity": t["solidity"], "circularity": circ,
           "centroid_row": t["centroid-0"], "centroid_col": t["centroid-1"]}
    for i in range(N_HU):
        out[f"hu_{i}"] = t[f"moments_hu-{i}"]
    return out


def shape_descriptors(labels) -> dict:
    """Shape descriptors of every segment, one row per label (per plane for nD labels).

    Returns
    -------
    dict of 1D arrays
        ``index`` (the label), ``area`` and ``perimeter`` in pixels, ``eccentricity``,
        ``solidity``, ``circularity`` (4 pi area / perimeter^2; 1 for a disc), ``centroid_row``,
        ``centroid_col`` and Hu moments ``hu_0`` ... ``hu_6``; for nD labels also ``plane`` (the
        flat index of the plane over the leading axes). Usable as a napari Labels ``features`` table.
    """
    arr = _check_labels(labels)
    lead = arr.shape[:-2]
    tables = []
    for k, idx in enumerate(np.ndindex(*lead) if lead else [()]):
        t = _plane_table(arr[idx])
        if lead:
            t = {"index": t.pop("index"), "plane": np.full(len(t["area"]), k, np.int64), **t}
        tables.append(t)
    return {key: np.concatenate([t[key] for t in tables]) for key in tables[0]}


def write_csv(table: dict, path) -> Path:
    """Write a column table (dict of equal-length arrays, e.g. a features table) as CSV."""
    path = Path(path)
    cols = list(table)
    n = len(table[cols[0]]) if cols else 0
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for i in range(n):
            w.writerow([_cell(table[c][i]) for c in cols])
    return path


def _cell(v):
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return v.item() if hasattr(v, "item") else v


def log_hu(hu) -> np.ndarray:
    """Log-scaled Hu moments ``sign(h) * log10|h|`` (0 where |h| < 1e-30), as OpenCV compares them."""
    hu = np.asarray(hu, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(hu) > 1e-30, np.sign(hu) * np.log10(np.abs(hu)), 0.0)


def hu_distance(hu_a, hu_b, method: str = "I1", eps: float = 1e-5) -> np.ndarray:
    """OpenCV matchShapes distance between Hu moments ``hu_a`` (7,) and each row of ``hu_b`` (n, 7).

    ``I1`` sums |1/mA - 1/mB|, ``I2`` |mA - mB| and ``I3`` |mA - mB| / |mA| over the log-scaled
    moments m, skipping moments below ``eps`` in either shape; a shape with no usable moment is
    infinitely far.
    """
    if method not in MATCH_METHODS:
        raise InputError(f"Unknown match method '{method}'; choose one of {', '.join(MATCH_METHODS)}.")
    a, b = np.asarray(hu_a, float)[None, :], np.atleast_2d(np.asarray(hu_b, float))
    ok = (np.abs(a) > eps) & (np.abs(b) > eps)
    ma, mb = log_hu(a), log_hu(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "I1":
            terms = np.abs(1 / ma - 1 / mb)
        elif method == "I2":
            terms = np.abs(ma - mb)
        else:
            terms = np.abs(ma - mb) / np.abs(ma)
    d = np.where(ok, terms, 0.0).sum(1)
    return np.where(ok.any(1), d, np.inf)


def polygon_mask(vertices, shape) -> np.ndarray:
    """Boolean mask of ``shape`` (H, W) inside the polygon ``vertices`` (n, 2) in (row, col)."""
    v = np.asarray(vertices, float)
    if v.ndim != 2 or v.shape[0] < 3:
        raise InputError("A reference polygon needs at least 3 vertices.")
    return polygon2mask(tuple(shape[-2:]), v[:, -2:])


def match_shapes(labels, reference, *, method: str = "I1", min_area: int = 5):
    """Rank the segments of a 2D label image by Hu-moment shape distance to a reference.

    Parameters
    ----------
    labels : int array (H, W)
    reference : int or bool array (H', W')
        A label id of ``labels`` (it is left out of the ranking) or a boolean mask, e.g. from
        :func:`polygon_mask`.
    method : {'I1', 'I2', 'I3'}
        OpenCV's matchShapes distances, see :func:`hu_distance`.
    min_area : int
        Segments smaller than this many pixels are not ranked (their moments are noise).

    Returns
    -------
    ids : int array (n,)
        Labels, most similar first.
    distances : float array (n,)
        Their distances (ascending).
    """
    arr = _check_labels(labels)
    if arr.ndim != 2:
        raise InputError(f"Shape matching works on one 2D plane; got a {arr.ndim}D label image.")
    table = _plane_table(arr)
    hu = np.stack([table[f"hu_{i}"] for i in range(N_HU)], 1) if len(table["index"]) else np.zeros((0, N_HU))
    ids, area = table["index"], table["area"]
    if isinstance(reference, (int, np.integer)):
        ref_id = int(reference)
        if ref_id <= 0 or ref_id not in set(ids.tolist()):
            raise InputError(f"Label {ref_id} has no pixels in this plane; pick an existing segment.")
        ref_hu = hu[ids == ref_id][0]
        keep = ids != ref_id
    else:
        mask = np.asarray(reference)
        if mask.dtype != bool:
            raise InputError("The reference must be a label id or a boolean mask.")
        if mask.sum() < min_area:
            raise InputError(f"The reference shape covers {int(mask.sum())} pixels; it needs at least {min_area}.")
        ref_table = _plane_table(mask.astype(np.int64))
        ref_hu = np.array([ref_table[f"hu_{i}"][0] for i in range(N_HU)])
        keep = np.ones(len(ids), bool)
    keep &= area >= min_area
    d = hu_distance(ref_hu, hu[keep], method) if keep.any() else np.zeros(0)
    order = np.argsort(d, kind="stable")
    return ids[keep][order].astype(np.int64), d[order]


def highlight(labels, ids, n: int = 5) -> np.ndarray:
    """Labels with only the first ``n`` of ``ids`` kept (their own values), everything else 0."""
    arr = _check_labels(labels)
    best = np.asarray(ids[: max(int(n), 0)])
    return np.where(np.isin(arr, best), arr, 0).astype(arr.dtype)
