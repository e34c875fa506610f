"""Tiled colorization of big planes at a fixed pixel scale, with bounded memory.

The network sees the plane downsampled by a fixed integer factor, in overlapping windows whose
margins exceed its receptive field, so every output pixel is computed from the same context it
would have in one huge pass. Low-resolution chroma of neighbouring windows is blended with
raised-cosine weights that sum to one, and the lightness-guided fit of the whole plane is kept
(:class:`.chroma.ChromaField`, 1/16 of a float RGB plane at the default scale). Full-resolution
output is then produced band by band and written into ``out`` (an array, memmap or zarr array);
the input is read one band of window rows, then one output piece, at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .arrays import to_dtype
from .chroma import ChromaField, UnitMap, bands, fit_coefficients, write_field
from .errors import InputError
from .hints import check_hints, rasterize_hints
from .inference import hint_cells, hint_count, match_hints, reach_weight, work_shape
from .model import encode_input
from .modelfile import Colorizer
from .temporal import smooth_ab

DEFAULT_TILE = 512  # network pixels per window side
DEFAULT_DOWNSAMPLE = 2  # image pixels per network pixel in tiled mode
# Side, in network pixels, of the largest square view the default scale lets the network see:
# above 8192 x 8192 pixels the scale coarsens, so the global pass of a huge plane costs what an
# 8192 px one does.
MAX_VIEW = 4096
BLEND = 32  # network pixels over which neighbouring windows cross-fade
_STRIP_PIXELS = 1 << 21  # full-resolution pixels read at once in the global pass (bounds its memory)

_RADIUS: dict[int, int] = {}


def receptive_radius(model: Colorizer) -> int:
    """Measured receptive-field radius of the network, in network pixels.

    The gradient of a few output logits with respect to a random input shows how far an input
    pixel can reach; taking the maximum over both output parities covers the stride-2 stages.
    """
    key = id(model.net)
    if key not in _RADIUS:
        n = 384
        x = torch.randn(1, 4, n, n, generator=torch.Generator().manual_seed(0), requires_grad=True)
        radius = 0
        was_training = model.net.training
        model.net.eval()
        with torch.enable_grad():
            # a fixed image-level context: in tiled mode it comes from the whole plane, not the window
            ctx = model.net.context(x).detach() if model.net.glob is not None else None
            out = model.net(x, context=ctx)
            for i in (n // 4, n // 4 + 1):
                (g,) = torch.autograd.grad(out[0, :, i, i].sum(), x, retain_graph=True)
                rows = (g.abs().sum(dim=(0, 1, 3)) > 0).nonzero()[:, 0]
                radius = max(radius, int(2 * i - rows.min()), int(rows.max() - (2 * i + 1)))
        model.net.train(was_training)
        _RADIUS[key] = radius
    return _RADIUS[key]


def tile_geometry(model: Colorizer, tile: int | None = DEFAULT_TILE, blend: int = BLEND) -> dict:
    """Window size, margin and step (network pixels) for ``tile``; None means one window.

    The margin is the receptive radius (rounded up to the stride 8)
    plus the blend band, so blending only mixes predictions that saw their full context.
    """
    radius = int(math.ceil((receptive_radius(model) + 1) / 8)) * 8
    blend = int(math.ceil(blend / 8)) * 8
    margin = radius + blend
    smallest = 2 * radius + blend + 64
    if tile is not None:
        tile = int(tile)
        if tile < smallest or tile % 8:
            raise InputError(f"tile must be a multiple of 8 and at least {smallest} (the network's "
                             f"receptive field); got {tile}.")
    return {"tile": tile, "radius": radius, "blend": blend, "margin": margin, "smallest": smallest,
            "step": None if tile is None else tile - 2 * radius - blend}


def axis_windows(n: int, geo: dict) -> list[tuple[int, int]]:
    """(origin, size) of windows along an axis of ``n`` network pixels; sizes are multiples of 8."""
    m, tile, step = geo["margin"], geo["tile"], geo["step"]
    whole = int(math.ceil((n + 2 * m) / 8)) * 8
    if tile is None or whole <= tile:
        return [(-m, whole)]
    count = 1 + int(math.ceil((n + 2 * m - tile) / step))
    wins = [(-m + i * step, tile) for i in range(count)]
    o = wins[-1][0]
    wins[-1] = (o, min(tile, int(math.ceil((n + m - o) / 8)) * 8))  # the last one only as big as needed
    return wins


def _ramp(size_lo: int, geo: dict) -> np.ndarray:
    """1D blend weight over a window of ``size_lo`` low-resolution pixels (zero where the
    window's zero padding reaches, raised cosine over the blend band, one inside)."""
    r, b = geo["radius"] / 2, geo["blend"] / 2
    d = np.arange(size_lo) + 0.5
    d = np.minimum(d, size_lo - d)
    t = np.clip((d - r) / b, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def _reflect(idx: np.ndarray, n: int) -> np.ndarray:
    period = 2 * (n - 1)
    m = np.mod(idx, period)
    return np.where(m < n, m, period - m)


def _read_l(plane, unit: UnitMap, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Lightness (y1-y0, x1-x0) of an image window, mirrored beyond the plane's edges."""
    h, w = plane.shape[:2]
    ys, xs = _reflect(np.arange(y0, y1), h), _reflect(np.arange(x0, x1), w)
    ya, yb, xa, xb = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    lum = unit.lightness(plane[ya:yb, xa:xb])
    return lum[np.ix_(ys - ya, xs - xa)]


def _read_net(plane, unit: UnitMap, y0: int, y1: int, x0: int, x1: int, k: int) -> torch.Tensor:
    """Lightness at the network's scale (1, 1, (y1-y0)/k, (x1-x0)/k) of a band of the plane, read
    in pieces of bounded size and mirrored beyond its edges (one read per piece, also for dask)."""
    piece = max(8 * k, (_STRIP_PIXELS // max(1, (y1 - y0))) // (8 * k) * (8 * k))
    parts = []
    for xa in range(x0, x1, piece):
        xb = min(x1, xa + piece)
        lum = torch.from_numpy(np.ascontiguousarray(_read_l(plane, unit, y0, y1, xa, xb), np.float32))
        parts.append(F.avg_pool2d(lum[None, None], k) if k > 1 else lum[None, None])
    return torch.cat(parts, dim=3)


@torch.inference_mode()
def plane_context(model: Colorizer, plane, unit: UnitMap) -> torch.Tensor | None:
    """Image-level context of a whole plane for the global branch (None without one).

    The plane is read strided (a few times the working size, so memory stays small whatever its
    size), reduced to the working size and pooled as in whole-image colorization.
    """
    if model.net.glob is None:
        return None
    h, w = plane.shape[:2]
    s = max(1, min(h, w) // (4 * model.working_size))
    lum = unit.lightness(np.asarray(plane[::s, ::s]))
    l_full = torch.from_numpy(np.ascontiguousarray(lum, dtype=np.float32))[None, None]
    hw = work_shape(tuple(l_full.shape[-2:]), model.working_size)
    l_work = F.interpolate(l_full, size=hw, mode="area")
    zeros = torch.zeros((1, 2, *hw))
    return model.fast.context(encode_input(l_work, zeros, zeros[:, :1]))


def iter_tiled(model: Colorizer, plane, write: Callable[[slice, slice, np.ndarray], None], points=None,
               colors=None, temperature: float | None = None, *, downsample: int = DEFAULT_DOWNSAMPLE,
               tile: int | None = DEFAULT_TILE, state: dict | None = None,
               temporal: float = 0.0) -> Iterator[tuple[int, int]]:
    """Colorize a plane: the global pass window row by window row, then the full-resolution pass
    band by band; yields ``(steps_done, steps_total)`` (see :func:`tiled_steps`).

    Parameters
    ----------
    model : Colorizer
    plane : array-like (H, W) or (H, W, 3)
        Gray or RGB plane; anything sliceable (ndarray, memmap, zarr, dask): only the windows
        being worked on are read.
    write : callable
        ``write(rows, cols, rgb)`` stores a finished float32 RGB piece of the output.
    points, colors, temperature, downsample, tile, state, temporal :
        As for :func:`tiled_field`.
    """
    total = tiled_steps(model, plane.shape[:2], downsample, tile)
    fld = yield from _steps(tiled_field(model, plane, points, colors, temperature, downsample=downsample,
                                        tile=tile, state=state, temporal=temporal), 0, total)
    yield from _steps(write_field(fld, plane, write), total - len(bands(plane.shape[0])), total)


def _steps(gen, offset: int, total: int):
    """Re-number a step generator's yields onto a longer count; returns its result."""
    while True:
        try:
            done, _ = next(gen)
        except StopIteration as stop:
            return stop.value
        yield offset + done, total


def auto_downsample(shape: tuple[int, int], max_view: int = MAX_VIEW) -> int:
    """Default scale of tiled mode: :data:`DEFAULT_DOWNSAMPLE`, or coarser so that the network
    sees at most ``max_view`` squared pixels of a plane of ``shape`` (height, width).

    By area, not by the longest side, so a long thin strip keeps its detail across."""
    h, w = shape
    return max(DEFAULT_DOWNSAMPLE, math.ceil(math.sqrt(h * w) / max_view))


def tiled_steps(model: Colorizer, shape, downsample: int = DEFAULT_DOWNSAMPLE, tile: int | None = DEFAULT_TILE) -> int:
    """Steps :func:`iter_tiled` yields for a plane of ``shape``: window rows plus output bands."""
    f = 2 * int(downsample)
    return len(axis_windows(2 * -(-shape[0] // f), tile_geometry(model, tile))) + len(bands(shape[0]))


def tiled_field(model: Colorizer, plane, points=None, colors=None, temperature: float | None = None, *,
                downsample: int = DEFAULT_DOWNSAMPLE, tile: int | None = DEFAULT_TILE, state: dict | None = None,
                temporal: float = 0.0, unit: UnitMap | None = None):
    """Global pass of tiled colorization; a generator yielding ``(rows_done, rows_total)`` per row of
    windows and returning the plane's :class:`.chroma.ChromaField`.

    Parameters
    ----------
    model : Colorizer
    plane : array-like (H, W) or (H, W, 3)
        Gray or RGB plane; read one band of window rows at a time.
    points, colors : arrays, optional
        Hints, (N, 2) row, column in plane pixels and (N, 3) RGB in [0, 1].
    temperature : float, optional
    downsample : int
        Image pixels per network pixel: the fixed scale the network sees everywhere.
    tile : int or None
        Window side in network pixels; None runs one window over the whole plane (the untiled
        result at the same scale).
    state, temporal :
        Per-stack memory and strength of temporal smoothing (:func:`.temporal.smooth_ab`).
    unit : UnitMap, optional
        The plane's intensity normalisation, if already known.
    """
    k = int(downsample)
    if k < 1:
        raise InputError(f"downsample must be a positive integer; got {downsample}.")
    geo = tile_geometry(model, tile)
    h, w = plane.shape[:2]
    f = 2 * k  # image pixels per low-resolution (network output) pixel
    hl, wl = -(-h // f), -(-w // f)  # the plane is mirrored up to a multiple of f
    pts, cols, _ = check_hints(points, colors, (h, w))
    unit = UnitMap(plane) if unit is None else unit
    context = plane_context(model, plane, unit)
    rows, cols_w = axis_windows(2 * hl, geo), axis_windows(2 * wl, geo)
    ramps_x = [_ramp(sx // 2, geo) for _, sx in cols_w]
    bx0, bx1 = cols_w[0][0], cols_w[-1][0] + cols_w[-1][1]  # network columns of a band
    acc = np.zeros((2, hl, wl), np.float32)
    # the hinted windows' change over their automatic chroma, blended alike and kept only where
    # the hints reach (as in whole mode), so a hint neither recolors its window nor, by the
    # hinted decoding, the rest of the plane
    gated = len(pts) > 0 and model.hint_spread > 0  # without a spread, hints reach everywhere
    change = np.zeros((2, hl, wl), np.float32) if gated else None
    wsum = np.zeros((hl, wl), np.float32)
    l_low = np.zeros((hl, wl), np.float32)

    def run(l_net, h_ab, h_mask, hinted: bool, key) -> np.ndarray:
        logits = model.fast(encode_input(l_net, h_ab, h_mask), context=context)
        ab = model.decode(logits, temperature, hinted=hinted)
        return smooth_ab(state, key, ab, F.avg_pool2d(l_net, 2), temporal)[0].numpy()

    for i, (oy, sy) in enumerate(rows):
        band = _read_net(plane, unit, oy * k, (oy + sy) * k, bx0 * k, bx1 * k, k)
        ly0, ly1 = oy // 2, (oy + sy) // 2
        ya, yb = max(ly0, 0), min(ly1, hl)
        l_low[ya:yb] = F.avg_pool2d(band, 2)[0, 0, ya - ly0 : yb - ly0, -bx0 // 2 : -bx0 // 2 + wl].numpy()
        ramp_y = _ramp(sy // 2, geo)
        for j, (ox, sx) in enumerate(cols_w):
            l_net = band[..., ox - bx0 : ox - bx0 + sx]
            hint_ab, mask = _window_hints(pts, cols, oy * k, ox * k, sy * k, sx * k, (sy, sx))
            with torch.inference_mode():
                if gated:  # the automatic pass, and the hinted one in windows with hints
                    ab = run(l_net, hint_ab * 0, mask * 0, False, (i, j))
                    hinted = run(l_net, hint_ab, mask, True, (i, j, "hinted")) - ab if mask.any() else None
                else:  # every window decoded alike, so no seams
                    ab, hinted = run(l_net, hint_ab, mask, len(pts) > 0, (i, j)), None
            wgt = ramp_y[:, None] * ramps_x[j][None, :]
            lx0 = ox // 2
            xa, xb = max(lx0, 0), min(lx0 + sx // 2, wl)  # the part of this window inside the plane
            sub_w = wgt[ya - ly0 : yb - ly0, xa - lx0 : xb - lx0]
            inside = (slice(None), slice(ya - ly0, yb - ly0), slice(xa - lx0, xb - lx0))
            acc[:, ya:yb, xa:xb] += ab[inside] * sub_w
            if hinted is not None:
                change[:, ya:yb, xa:xb] += hinted[inside] * sub_w
            wsum[ya:yb, xa:xb] += sub_w
        yield i + 1, len(rows)
    acc /= np.maximum(wsum, 1e-6)[None]
    if change is not None:
        change /= np.maximum(wsum, 1e-6)[None]
        acc += _reach(model, l_low, pts, cols, (h, w))[None] * change
        del change
    del wsum
    fld = ChromaField((h, w), unit)
    a, b = fit_coefficients(acc, l_low, in_place=True)  # the blended chroma's memory becomes A
    del acc
    fld.add(a, b, (1.0 / f, 1.0 / f))
    match_hints(model, fld, l_low, pts, cols, lambda r, c: _lightness_at(plane, unit, r, c))
    return fld


def _reach(model: Colorizer, l_low: np.ndarray, pts: np.ndarray, cols: np.ndarray,
           shape: tuple[int, int]) -> np.ndarray:
    """:func:`.inference.reach_weight` of the hints over the plane's low-resolution lightness
    ``l_low``, solved on the grid whole mode solves it on (the network's output for the plane at
    the model's working size, hints seeded alike) and resized to ``l_low``'s shape."""
    hw = work_shape(shape, model.working_size)
    grid = (max(2, hw[0] // 2), max(2, hw[1] // 2))
    at = hint_cells(rasterize_hints(pts, cols, shape, hw)[1], grid)
    l_t = torch.from_numpy(np.ascontiguousarray(l_low, np.float32))[None, None]
    l_grid = F.interpolate(l_t, size=grid, mode="area")[0, 0].numpy()
    w = torch.from_numpy(reach_weight(model, l_grid, at, max(1, hint_count(at))))[None, None]
    return F.interpolate(w, size=l_low.shape, mode="bilinear", align_corners=False)[0, 0].numpy()


def _lightness_at(plane, unit: UnitMap, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Full-resolution L at pixels of a plane that may only be sliceable (zarr, dask)."""
    if isinstance(plane, np.ndarray):
        return unit.lightness(plane[rows, cols])
    return np.array([unit.lightness(np.asarray(plane[r : r + 1, c : c + 1]))[0, 0] for r, c in zip(rows, cols)])


def _window_hints(pts, cols, y0, x0, hh, ww, net_shape):
    if len(pts) == 0:
        return rasterize_hints(pts, cols, (hh, ww), net_shape)
    local = pts - np.array([y0, x0], np.float32)
    inside = (local[:, 0] >= -0.5) & (local[:, 0] < hh - 0.5) & (local[:, 1] >= -0.5) & (local[:, 1] < ww - 0.5)
    return rasterize_hints(local[inside], cols[inside], (hh, ww), net_shape)


def colorize_tiled(model: Colorizer, plane, points=None, colors=None, temperature: float | None = None,
                   *, downsample: int = DEFAULT_DOWNSAMPLE, tile: int | None = DEFAULT_TILE, out=None,
                   state: dict | None = None, temporal: float = 0.0) -> np.ndarray:
    """Colorize one plane in overlapping windows at a fixed scale; float32 RGB (H, W, 3).

    See :func:`iter_tiled` for the parameters. ``out`` (an (H, W, 3) array, memmap or zarr
    array, float or uint8/uint16) receives the result piece by piece and is returned.
    """
    h, w = plane.shape[:2]
    if out is None:
        out = np.empty((h, w, 3), np.float32)
    write = array_writer(out)
    for _ in iter_tiled(model, plane, write, points, colors, temperature, downsample=downsample, tile=tile,
                        state=state, temporal=temporal):
        pass
    return out


def array_writer(out, index: tuple = ()) -> Callable[[slice, slice, np.ndarray], None]:
    """``write(rows, cols, rgb)`` into ``out[index + (rows, cols)]``, converting float RGB to the
    output's dtype (integers are scaled to their full range)."""
    dtype = np.dtype(out.dtype)

    def write(rows: slice, cols: slice, rgb: np.ndarray) -> None:
        out[index + (rows, cols)] = to_dtype(rgb, dtype)

    return write
