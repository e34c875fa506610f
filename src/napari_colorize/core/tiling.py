"""Tiled colorization of big planes at a fixed pixel scale, with bounded memory.

The network sees the plane downsampled by a fixed integer factor, in overlapping windows whose
margins exceed its receptive field, so every output pixel is computed from the same context it
would have in one huge pass. Low-resolution chroma of neighbouring windows is blended with
raised-cosine weights that sum to one; full-resolution output is then produced strip by strip by
the lightness-guided upsampling, and written into ``out`` (an array, memmap or zarr array) as
soon as no later window can change it. Only one row of windows is held in memory at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .color import gray_to_l, intensity_range, lab_to_rgb_in_gamut, rgb_to_lab, stretch
from .errors import InputError
from .hints import check_hints, rasterize_hints
from .inference import guided_upsample, work_shape
from .model import encode_input
from .modelfile import Colorizer
from .temporal import smooth_ab

DEFAULT_TILE = 512  # network pixels per window side
DEFAULT_DOWNSAMPLE = 2  # image pixels per network pixel in tiled mode
BLEND = 32  # network pixels over which neighbouring windows cross-fade
HALO = 4  # low-resolution pixels the guided filter and bilinear upsampling reach beyond a strip
_STRIP_PIXELS = 2_000_000  # full-resolution pixels per output piece (bounds the working memory)

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
    if tile is not None:
        tile = int(tile)
        smallest = 2 * radius + blend + 64
        if tile < smallest or tile % 8:
            raise InputError(f"tile must be a multiple of 8 and at least {smallest} (the network's "
                             f"receptive field); got {tile}.")
    return {"tile": tile, "radius": radius, "blend": blend, "margin": margin,
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


class UnitMap:
    """One intensity normalisation for a whole plane, so that every tile maps gray values alike.

    Follows :func:`.color.to_unit_range`, with statistics from a strided subsample of big planes
    so that they cost bounded memory.
    """

    def __init__(self, plane, max_pixels: int = 4_000_000):
        dtype = np.dtype(plane.dtype)
        self.lut = None
        if dtype == np.uint8 and len(plane.shape) == 2:
            # L* of gray uint8 by table: the per-pixel cube roots are costly
            self.lut = gray_to_l(np.arange(256, dtype=np.float32) / 255.0)
        h, w = plane.shape[:2]
        # uint8 and bool have fixed ranges: no need to read a sample of the plane
        s = max(1, int(math.ceil(math.sqrt(h * w / max_pixels))))
        sample = np.zeros(1, dtype) if dtype.kind == "b" or dtype == np.uint8 else np.asarray(plane[::s, ::s])
        self.lo, self.hi = intensity_range(sample, dtype)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        arr = np.asarray(block)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise InputError("The image contains NaN or infinite values; replace them first.")
        return stretch(arr, self.lo, self.hi)


def _read_l(plane, unit: UnitMap, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    """Lightness (1, 1, y1-y0, x1-x0) of an image window, mirrored beyond the plane's edges."""
    h, w = plane.shape[:2]
    ys, xs = _reflect(np.arange(y0, y1), h), _reflect(np.arange(x0, x1), w)
    ya, yb, xa, xb = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if unit.lut is not None:
        lum = unit.lut[np.asarray(plane[ya:yb, xa:xb])[np.ix_(ys - ya, xs - xa)]]
        return torch.from_numpy(np.ascontiguousarray(lum))[None, None]
    block = unit(plane[ya:yb, xa:xb])
    block = block[np.ix_(ys - ya, xs - xa)]
    lum = rgb_to_lab(block)[..., 0] if block.ndim == 3 else gray_to_l(block)
    return torch.from_numpy(np.ascontiguousarray(lum, dtype=np.float32))[None, None]


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
    sample = np.asarray(plane[::s, ::s])
    block = unit(sample)
    lum = rgb_to_lab(block)[..., 0] if block.ndim == 3 else gray_to_l(block)
    l_full = torch.from_numpy(np.ascontiguousarray(lum, dtype=np.float32))[None, None]
    hw = work_shape(tuple(l_full.shape[-2:]), model.working_size)
    l_work = F.interpolate(l_full, size=hw, mode="area")
    zeros = torch.zeros((1, 2, *hw))
    return model.net.context(encode_input(l_work, zeros, zeros[:, :1]))


def iter_tiled(model: Colorizer, plane, write: Callable[[slice, slice, np.ndarray], None], points=None,
               colors=None, temperature: float | None = None, *, downsample: int = DEFAULT_DOWNSAMPLE,
               tile: int | None = DEFAULT_TILE, state: dict | None = None,
               temporal: float = 0.0) -> Iterator[tuple[int, int]]:
    """Colorize a plane window row by window row, yielding ``(rows_done, rows_total)``.

    Parameters
    ----------
    model : Colorizer
    plane : array-like (H, W) or (H, W, 3)
        Gray or RGB plane; anything sliceable (ndarray, memmap, zarr, dask): only the windows
        being worked on are read.
    write : callable
        ``write(rows, cols, rgb)`` stores a finished float32 RGB piece of the output.
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
    """
    k = int(downsample)
    if k < 1:
        raise InputError(f"downsample must be a positive integer; got {downsample}.")
    geo = tile_geometry(model, tile)
    h, w = plane.shape[:2]
    f = 2 * k  # image pixels per low-resolution (network output) pixel
    hl, wl = -(-h // f), -(-w // f)  # the plane is mirrored up to a multiple of f
    pts, cols, _ = check_hints(points, colors, (h, w))
    unit = UnitMap(plane)
    context = plane_context(model, plane, unit)
    rows, cols_w = axis_windows(2 * hl, geo), axis_windows(2 * wl, geo)
    ramps_x = [_ramp(sx // 2, geo) for _, sx in cols_w]

    # running sums over low-resolution rows [base, base + len)
    acc = np.zeros((2, 0, wl), np.float32)
    wsum = np.zeros((0, wl), np.float32)
    base = 0
    done_lo = 0  # low-resolution rows already written out
    rows_lo = (geo["step"] // 2 if geo["step"] else hl) + 2 * HALO  # low-res rows written at once
    strip_w = min(wl, max(16, _STRIP_PIXELS // (f * f * rows_lo)))

    for i, (oy, sy) in enumerate(rows):
        ly0, ly1 = oy // 2, (oy + sy) // 2
        need = min(hl, ly1) - base
        if need > acc.shape[1]:
            grow = need - acc.shape[1]
            acc = np.concatenate([acc, np.zeros((2, grow, wl), np.float32)], axis=1)
            wsum = np.concatenate([wsum, np.zeros((grow, wl), np.float32)], axis=0)
        ramp_y = _ramp(sy // 2, geo)
        for j, (ox, sx) in enumerate(cols_w):
            y0, x0 = oy * k, ox * k
            l_win = _read_l(plane, unit, y0, y0 + sy * k, x0, x0 + sx * k)
            l_net = F.avg_pool2d(l_win, k) if k > 1 else l_win
            hint_ab, mask = _window_hints(pts, cols, y0, x0, sy * k, sx * k, (sy, sx))
            with torch.inference_mode():
                logits = model.net(encode_input(l_net, hint_ab, mask), context=context)
                ab = model.decode(logits, temperature, hinted=len(pts) > 0)
                ab = smooth_ab(state, (i, j), ab, F.avg_pool2d(l_net, 2), temporal)
            ab = ab[0].numpy()
            wgt = ramp_y[:, None] * ramps_x[j][None, :]
            lx0 = ox // 2
            # the part of this window inside the plane, in accumulator coordinates
            # rows above ``base`` are already written; this window gives them zero weight anyway
            ya, yb = max(ly0, base), min(ly1, hl)
            xa, xb = max(lx0, 0), min(lx0 + sx // 2, wl)
            sub_w = wgt[ya - ly0 : yb - ly0, xa - lx0 : xb - lx0]
            acc[:, ya - base : yb - base, xa:xb] += ab[:, ya - ly0 : yb - ly0, xa - lx0 : xb - lx0] * sub_w
            wsum[ya - base : yb - base, xa:xb] += sub_w

        last = i == len(rows) - 1
        # rows below where the next window row starts to weigh in are final
        final = hl if last else min(hl, (rows[i + 1][0] + geo["radius"]) // 2)
        emit = final if last else max(done_lo, final - HALO)
        if emit > done_lo:
            ab_rows = acc[:, : final - base] / np.maximum(wsum[: final - base], 1e-6)
            _upsample_rows(plane, unit, ab_rows, base, done_lo, emit, f, strip_w, write)
            done_lo = emit
            keep = max(0, done_lo - HALO) - base
            acc, wsum, base = acc[:, keep:], wsum[keep:], base + keep
        yield i + 1, len(rows)


def _window_hints(pts, cols, y0, x0, hh, ww, net_shape):
    if len(pts) == 0:
        return rasterize_hints(pts, cols, (hh, ww), net_shape)
    local = pts - np.array([y0, x0], np.float32)
    inside = (local[:, 0] >= -0.5) & (local[:, 0] < hh - 0.5) & (local[:, 1] >= -0.5) & (local[:, 1] < ww - 0.5)
    return rasterize_hints(local[inside], cols[inside], (hh, ww), net_shape)


def _upsample_rows(plane, unit, ab_rows, base, r0, r1, f, strip_w, write):
    """Guided upsampling of low-resolution rows [r0, r1) to full resolution, piece by piece."""
    h, w = plane.shape[:2]
    hl, wl = base + ab_rows.shape[1], ab_rows.shape[2]
    ya, yb = max(r0 - HALO, base), min(r1 + HALO, hl)
    for c0 in range(0, wl, strip_w):
        c1 = min(wl, c0 + strip_w)
        xa, xb = max(c0 - HALO, 0), min(c1 + HALO, wl)
        l_full = _read_l(plane, unit, ya * f, yb * f, xa * f, xb * f)
        l_low = F.avg_pool2d(l_full, f)
        ab_low = torch.from_numpy(np.ascontiguousarray(ab_rows[:, ya - base : yb - base, xa:xb]))[None]
        with torch.inference_mode():
            ab = guided_upsample(ab_low, l_low, l_full)
            oy, ox = (r0 - ya) * f, (c0 - xa) * f
            ny, nx = min((r1 - r0) * f, h - r0 * f), min((c1 - c0) * f, w - c0 * f)
            lab = torch.cat([l_full, ab], dim=1)[0, :, oy : oy + ny, ox : ox + nx]
            rgb = lab_to_rgb_in_gamut(lab).permute(1, 2, 0).numpy().astype(np.float32, copy=False)
        write(slice(r0 * f, r0 * f + ny), slice(c0 * f, c0 * f + nx), rgb)


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
    scale = float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else None

    def write(rows: slice, cols: slice, rgb: np.ndarray) -> None:
        if scale is not None:
            rgb = np.rint(np.clip(rgb, 0.0, 1.0) * scale).astype(dtype)
        out[index + (rows, cols)] = rgb

    return write
