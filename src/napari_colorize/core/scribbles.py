"""Scribbles, regions and palettes as color hints.

Levin, Lischinski and Weiss 2004 steer colorization with scribbles. Here a drawn path, a filled
region or a labelled segment becomes hint points, sampled along the path or on a grid inside the
region, each with the stroke's color. They then go where single hint points go (the network's
hint input and the edge-aware refinement of :mod:`.propagate`), so a scribble recolors its
object and stops at its edges like a point does. The number of points is bounded: the sampling
step grows with the total length and area drawn.

A *global* hint is a palette rather than a place: :func:`palette` turns hint colors (with, if
given, a reference photo's pixels) into the small RGB image that ``colorize(reference=...)``
reads its color distribution from (:mod:`.reference`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .arrays import is_dask
from .color import to_unit_range
from .errors import InputError

#: most hint points one layer of scribbles or regions gives
MAX_POINTS = 400
#: finest sampling step in pixels: neighbouring hint pixels add nothing the propagation lacks
MIN_STEP = 2.0


@dataclass(frozen=True)
class Stroke:
    """One drawn hint in image pixel coordinates.

    Attributes
    ----------
    vertices : ndarray (K, 2)
        Row, column of the vertices.
    color : ndarray (3,)
        RGB in [0, 1].
    region : bool
        True: the filled polygon is the hint; False: the path through the vertices is.
    closed : bool
        For a path, whether it returns to its first vertex (a polygon's outline).
    """

    vertices: np.ndarray
    color: np.ndarray
    region: bool = False
    closed: bool = False


def ellipse_polygon(corners, n: int = 48) -> np.ndarray:
    """Vertices (n, 2) of the ellipse inscribed in a (possibly rotated) box of 4 corners, in order."""
    c = np.asarray(corners, dtype=float)[:, -2:]
    center = c.mean(axis=0)
    a, b = (c[1] - c[0]) / 2.0, (c[3] - c[0]) / 2.0
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)[:, None]
    return center + np.cos(t) * a + np.sin(t) * b


def _path_length(v: np.ndarray, closed: bool) -> float:
    seg = np.diff(np.vstack([v, v[:1]]) if closed and len(v) > 2 else v, axis=0)
    return float(np.hypot(seg[:, 0], seg[:, 1]).sum())


def _polygon_area(v: np.ndarray) -> float:
    y, x = v[:, 0], v[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def sample_path(vertices, step: float, closed: bool = False) -> np.ndarray:
    """Points (M, 2) every ``step`` pixels along a polyline, its first and last vertex included."""
    v = np.asarray(vertices, dtype=float)[:, -2:]
    if closed and len(v) > 2:
        v = np.vstack([v, v[:1]])
    if len(v) < 2:
        return v.copy()
    seg = np.hypot(*np.diff(v, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] == 0:
        return v[:1].copy()
    n = max(2, int(np.ceil(arc[-1] / step)) + 1)
    at = np.linspace(0.0, arc[-1], n)
    return np.stack([np.interp(at, arc, v[:, 0]), np.interp(at, arc, v[:, 1])], axis=1)


def _grid(size: int, step: float) -> np.ndarray:
    return np.unique(np.clip(np.round(np.arange(step / 2.0, size, step) - 0.5), 0, size - 1).astype(int))


def sample_region(vertices, shape: tuple[int, int], step: float) -> np.ndarray:
    """Points (M, 2) on a grid of ``step`` pixels inside a polygon, clipped to an image of ``shape``.

    A region smaller than the grid still gives one point: its pixel nearest its centre (or, for one
    thinner than a pixel, the pixel at its centre).
    """
    from skimage.draw import polygon

    v = np.asarray(vertices, dtype=float)[:, -2:]
    lo = np.maximum(np.floor(v.min(axis=0)).astype(int), 0)
    hi = np.minimum(np.ceil(v.max(axis=0)).astype(int) + 1, shape)
    if (hi <= lo).any():
        return np.zeros((0, 2))
    box = tuple(hi - lo)
    mask = np.zeros(box, bool)
    mask[polygon(v[:, 0] - lo[0], v[:, 1] - lo[1], box)] = True
    if not mask.any():  # thinner than a pixel: its centre stands for it
        centre = np.clip(np.round(v.mean(axis=0)), lo, hi - 1)
        return centre[None]
    return _mask_points(mask, step) + lo


def _mask_points(mask: np.ndarray, step: float) -> np.ndarray:
    rows, cols = _grid(mask.shape[0], step), _grid(mask.shape[1], step)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    keep = mask[rr, cc]
    if keep.any():
        return np.stack([rr[keep], cc[keep]], axis=1).astype(float)
    return _centre_pixel(mask)


def _centre_pixel(mask: np.ndarray) -> np.ndarray:
    """The pixel (1, 2) of ``mask`` nearest its centroid, or none (0, 2) for an empty mask."""
    inside = np.argwhere(mask)
    if len(inside) == 0:
        return np.zeros((0, 2))
    centre = inside.mean(axis=0)
    return inside[[np.argmin(((inside - centre) ** 2).sum(axis=1))]].astype(float)


def _step_for(lengths, areas, max_points: int) -> float:
    """The finest step (at least MIN_STEP) at which paths and regions give at most ``max_points``."""
    total_len, total_area, n = float(sum(lengths)), float(sum(areas)), len(lengths) + len(areas)
    step = MIN_STEP
    while total_len / step + total_area / step**2 + 2 * n > max_points and step < 1e6:
        step *= 1.25
    return step


def _bounded(points: list, colors: list, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    if not points:
        return np.zeros((0, 2), np.float32), np.zeros((0, 3), np.float32)
    pts, cols = np.concatenate(points), np.concatenate(colors)
    if len(pts) > max_points:  # the step's estimate was short: thin evenly, keeping the ends
        keep = np.unique(np.linspace(0, len(pts) - 1, max_points).round().astype(int))
        pts, cols = pts[keep], cols[keep]
    return pts.astype(np.float32), cols.astype(np.float32)


def check_colors(color, what: str) -> np.ndarray:
    """RGB(A) colors (..., 3 or 4) as RGB (..., 3) in [0, 1], or an InputError naming ``what``."""
    c = np.asarray(color, dtype=float)
    if c.size == 0:
        return np.zeros(c.shape[:-1] + (3,)) if c.ndim > 1 else np.zeros((0, 3))
    if c.shape[-1] not in (3, 4) or not np.isfinite(c).all() or c.min() < 0 or c.max() > 1:
        raise InputError(f"{what} must be RGB colors in [0, 1]; got {c.ravel()[:4].tolist()}.")
    return c[..., :3]


def stroke_hints(strokes, shape: tuple[int, int], max_points: int = MAX_POINTS):
    """Hint points and colors from drawn paths and regions.

    Parameters
    ----------
    strokes : sequence of Stroke
        Paths (hints along them) and regions (hints on a grid inside them), in pixel coordinates.
    shape : (int, int)
        Height and width of the image plane; points outside it are dropped.
    max_points : int
        Most points returned: the sampling step grows (from ``MIN_STEP`` pixels) until the
        strokes fit, every stroke keeping at least one point.

    Returns
    -------
    points : ndarray (N, 2) float32
        Row, column.
    colors : ndarray (N, 3) float32
        RGB in [0, 1].
    """
    strokes = [s for s in strokes if len(np.asarray(s.vertices)) > 0]
    paths = [s for s in strokes if not s.region]
    regions = [s for s in strokes if s.region]
    step = _step_for([_path_length(np.asarray(s.vertices, float)[:, -2:], s.closed) for s in paths],
                     [_polygon_area(np.asarray(s.vertices, float)[:, -2:]) for s in regions], max_points)
    points, colors = [], []
    for s in strokes:
        color = check_colors(s.color, "A stroke's color")
        pts = (sample_region(s.vertices, shape, step) if s.region
               else sample_path(s.vertices, step, s.closed))
        inside = ((pts >= -0.5) & (pts < np.asarray(shape) - 0.5)).all(axis=1)
        points.append(pts[inside])
        colors.append(np.repeat(color[None], int(inside.sum()), axis=0))
    return _bounded(points, colors, max_points)


def label_hints(labels, colors: Mapping[int, object], max_points: int = MAX_POINTS):
    """Hint points and colors inside labelled regions, each label with its color.

    Parameters
    ----------
    labels : ndarray (H, W) of int
        Label image; 0 and labels missing from ``colors`` give no hints.
    colors : mapping of int to RGB(A)
        Color of each label, in [0, 1]; a color with alpha 0 gives no hints.
    max_points : int
        Most points returned; every label present keeps at least one.

    Returns
    -------
    points : ndarray (N, 2) float32
    colors : ndarray (N, 3) float32
    """
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise InputError(f"A label image for hints must be 2D; got shape {lab.shape}.")
    wanted = {}
    for k, c in colors.items():
        c = np.asarray(c, dtype=float).ravel()
        if int(k) != 0 and (c.size < 4 or c[3] > 0):
            wanted[int(k)] = check_colors(c, f"The color of label {k}")
    if not wanted or lab.size == 0:
        return _bounded([], [], max_points)
    ids = np.fromiter(wanted, dtype=np.int64)
    present = np.isin(lab, ids)
    area = int(present.sum())
    if area == 0:
        return _bounded([], [], max_points)
    step = _step_for([], [area], max_points - len(ids))
    rows, cols = _grid(lab.shape[0], step), _grid(lab.shape[1], step)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    keep = present[rr, cc]
    pts = np.stack([rr[keep], cc[keep]], axis=1).astype(float)
    found = lab[rr[keep], cc[keep]]
    points, cols_out = [pts], [np.stack([wanted[int(v)] for v in found]) if len(found) else np.zeros((0, 3))]
    for k in set(wanted) - {int(v) for v in np.unique(found)}:
        where = lab == k  # a label too small for the grid: one point near its centre
        if where.any():
            points.append(_centre_pixel(where))
            cols_out.append(wanted[k][None])
    return _bounded(points, cols_out, max_points)


def palette(colors, reference=None, share: float = 0.5, side: int = 64) -> np.ndarray:
    """A small RGB image (h, w, 3) float32 made of hint colors, for ``colorize(reference=...)``.

    Parameters
    ----------
    colors : array (N, 3) or (N, 4)
        Hint colors, RGB in [0, 1]; repeated colors weigh more (a region's hints are many).
    reference : array (H, W, 3), optional
        A color image (numpy or dask, any dtype) whose pixels, read at most ``side`` px long, join
        the palette.
    share : float
        With ``reference``, the part of the palette's pixels that are hint colors (0 to 1).
    """
    cols = check_colors(colors, "Palette colors").reshape(-1, 3)
    parts = []
    if reference is not None:
        shp = tuple(getattr(reference, "shape", ()))
        if len(shp) != 3 or shp[-1] not in (3, 4):
            raise InputError(f"reference must be an RGB image (H, W, 3), got shape {shp}")
        step = max(1, int(np.ceil(max(shp[:2]) / side)))
        view = reference[::step, ::step, :3]
        view = to_unit_range(np.asarray(view.compute() if is_dask(view) else view))
        parts.append(view.reshape(-1, 3))
        if len(cols):
            n_hint = int(round(len(parts[0]) * share / max(1e-6, 1.0 - share)))
            parts.append(np.resize(cols, (max(len(cols), n_hint), 3)))
    elif len(cols):
        parts.append(cols)
    if not parts:
        raise InputError("A palette needs at least one color or a reference image.")
    flat = np.concatenate(parts).astype(np.float32)
    width = int(np.ceil(np.sqrt(len(flat))))
    rows = int(np.ceil(len(flat) / width))
    # a square-ish image: the reference reader subsamples long sides, which would drop colors
    return np.resize(flat, (rows * width, 3)).reshape(rows, width, 3)
