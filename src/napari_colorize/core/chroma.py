"""Low-resolution chroma fields and the full-resolution pass that turns any piece of a plane into RGB.

Colorizing a plane has two parts. The *global pass* runs the network on a low-resolution view of
the whole plane and fits, on that grid, the local linear models ``ab = A * L / 100 + B`` of the
lightness-guided filter (He and Sun 2015). The *per-chunk pass* needs only a piece's own L: it
interpolates A and B bilinearly at the piece's pixels and converts Lab to RGB. So a big or lazy
plane is produced piece by piece, in any order and with any chunking, and every piece agrees
with the whole-plane result.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .arrays import check_finite
from .color import gray_to_l, intensity_range, lab_to_rgb_in_gamut, rgb_to_lab, stretch

GUIDE_RADIUS = 1  # low-resolution pixels of the guided filter's box
GUIDE_EPS = 1e-4
_PIECE_PIXELS = 1 << 20  # full-resolution pixels converted at once (bounds the temporaries)
_COEF_ROWS = 256  # low-resolution rows of coefficients fitted at once
_BAND_ROWS = 1024  # output rows per band of a whole plane (zarr outputs are chunked by 1024)
_WRITE_PIXELS = 1 << 21  # full-resolution pixels per piece written


class UnitMap:
    """One intensity normalisation for a whole plane, so that every piece maps gray values alike.

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

    def __call__(self, block) -> np.ndarray:
        arr = np.asarray(block)
        check_finite(arr)
        return stretch(arr, self.lo, self.hi)

    def lightness(self, block) -> np.ndarray:
        """L* (h, w) in [0, 100], float32, of a gray (h, w) or RGB (h, w, 3) block."""
        if self.lut is not None:
            return self.lut[np.asarray(block)]
        unit = self(block)
        return rgb_to_lab(unit)[..., 0] if unit.ndim == 3 else gray_to_l(unit)


def block_mean(l_chan: np.ndarray, q: int) -> np.ndarray:
    """Mean of ``l_chan`` (h, w) over aligned q x q cells; cells cut by the edge average what they hold."""
    if q == 1:
        return np.asarray(l_chan, np.float32)
    h, w = l_chan.shape
    hq, wq = -(-h // q), -(-w // q)
    sums = np.zeros((hq * q, wq * q), np.float64)
    sums[:h, :w] = l_chan
    count = np.zeros_like(sums)
    count[:h, :w] = 1.0
    s = sums.reshape(hq, q, wq, q).sum(axis=(1, 3))
    c = count.reshape(hq, q, wq, q).sum(axis=(1, 3))
    return (s / c).astype(np.float32)


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


@torch.inference_mode()
def fit(ab_low: torch.Tensor, l_low: torch.Tensor, radius: int = GUIDE_RADIUS, eps: float = GUIDE_EPS):
    """Guided-filter coefficients A, B (B, 2, h, w) from chroma (B, 2, h, w) and L (B, 1, h, w)."""
    g = l_low / 100.0
    mean_g = _box(g, radius)
    var_g = _box(g * g, radius) - mean_g * mean_g
    mean_p = _box(ab_low, radius)
    cov = _box(g * ab_low, radius) - mean_g * mean_p
    a = cov / (var_g + eps)
    b = mean_p - a * mean_g
    return _box(a, radius), _box(b, radius)


def fit_coefficients(ab_low, l_low, radius: int = GUIDE_RADIUS, eps: float = GUIDE_EPS, *,
                     in_place: bool = False):
    """Guided-filter coefficients A, B (2, h, w) float32 from chroma (2, h, w) and L (h, w).

    Fitted in bands of rows with a halo of ``2 * radius`` rows, so that big grids cost bounded
    memory and give the same numbers as one pass. ``in_place`` returns A in ``ab_low``'s memory
    (a float32 array), each band stored once the next band no longer reads the rows it covers.
    """
    ab_np = np.asarray(ab_low, np.float32)
    ab = torch.from_numpy(ab_np)
    lum = torch.as_tensor(np.asarray(l_low, np.float32))
    h = lum.shape[0]
    a_out = ab_np if in_place else np.empty(ab_np.shape, np.float32)
    b_out = np.empty(ab_np.shape, np.float32)
    halo = 2 * radius
    pending = None
    for r0 in range(0, h, _COEF_ROWS):
        r1 = min(h, r0 + _COEF_ROWS)
        ya, yb = max(0, r0 - halo), min(h, r1 + halo)
        a, b = fit(ab[None, :, ya:yb], lum[None, None, ya:yb], radius, eps)
        b_out[:, r0:r1] = b[0, :, r0 - ya : r1 - ya].numpy()
        if pending is not None:  # this band has read the rows above it: they may be replaced now
            a_out[:, pending[0] : pending[1]] = pending[2]
        pending = (r0, r1, a[0, :, r0 - ya : r1 - ya].numpy().copy())
    if pending is not None:
        a_out[:, pending[0] : pending[1]] = pending[2]
    return a_out, b_out


def _axis_weights(start: int, stop: int, scale: float, n_src: int):
    """Source indices and weights of PyTorch's bilinear resize (align_corners=False) for output
    positions [start, stop), where one output pixel spans ``scale`` source pixels."""
    src = np.maximum((np.arange(start, stop, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_src - 1)
    i1 = np.minimum(i0 + 1, n_src - 1)
    lam = torch.from_numpy((src - i0).astype(np.float32))
    return torch.from_numpy(i0), torch.from_numpy(i1), lam


def resample(grid: torch.Tensor, rows: tuple, cols: tuple, scale: tuple[float, float]) -> torch.Tensor:
    """Bilinear values (C, y1-y0, x1-x0) of ``grid`` (C, h, w) at output pixels rows [y0, y1),
    cols [x0, x1); equals ``F.interpolate(..., mode="bilinear")`` of the whole grid, cropped."""
    i0, i1, ly = _axis_weights(rows[0], rows[1], scale[0], grid.shape[1])
    j0, j1, lx = _axis_weights(cols[0], cols[1], scale[1], grid.shape[2])
    lo, hi = int(min(i0.min(), i1.min())), int(max(i0.max(), i1.max())) + 1
    sub = grid[:, lo:hi]
    r = sub[:, i0 - lo] * (1 - ly)[None, :, None] + sub[:, i1 - lo] * ly[None, :, None]
    return r[:, :, j0] * (1 - lx)[None, None, :] + r[:, :, j1] * lx[None, None, :]


@dataclass
class ChromaField:
    """What the global pass leaves for the per-chunk pass: everything but full-resolution L.

    Attributes
    ----------
    shape : (int, int)
        Plane height and width in pixels of the level the field was made for.
    unit : UnitMap
        The plane's intensity normalisation.
    terms : list of (A, B, (sy, sx))
        Guided-filter coefficient grids (2, h, w) each, and the grid pixels per plane pixel; chroma
        is the sum of ``A * L / 100 + B`` over the terms (the network's, then hint corrections).
    """

    shape: tuple[int, int]
    unit: UnitMap
    terms: list = field(default_factory=list)

    def add(self, a: np.ndarray, b: np.ndarray, scale: tuple[float, float]) -> None:
        self.terms.append((np.ascontiguousarray(a, np.float32), np.ascontiguousarray(b, np.float32),
                           (float(scale[0]), float(scale[1]))))

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes + b.nbytes for a, b, _ in self.terms)

    def ab(self, l_piece: torch.Tensor, y0: int, x0: int, factor=(1.0, 1.0)) -> torch.Tensor:
        """Chroma (2, h, w) at a piece whose lightness (h, w) starts at plane pixel (y0, x0).

        ``factor`` is how many pixels of the field's plane one pixel of the piece's level spans
        (pyramid levels of the same image share one field).
        """
        h, w = l_piece.shape
        g = l_piece[None] / 100.0
        out = torch.zeros((2, h, w))
        for a, b, (sy, sx) in self.terms:
            scale = (sy * factor[0], sx * factor[1])
            rows, cols = (y0, y0 + h), (x0, x0 + w)
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            out += resample(ta, rows, cols, scale) * g + resample(tb, rows, cols, scale)
        return out

    def lightness(self, block) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.unit.lightness(block), np.float32))

    @torch.inference_mode()
    def rgb(self, block, y0: int = 0, x0: int = 0, factor=(1.0, 1.0), lightness=None) -> np.ndarray:
        """The per-chunk pass: float32 RGB (h, w, 3) in [0, 1] of a gray or RGB ``block`` of the
        plane whose first pixel is (y0, x0), converted in bands of rows to bound memory.
        ``lightness`` is the block's L when the caller already has it."""
        block = np.asarray(block)
        h, w = block.shape[:2]
        out = np.empty((h, w, 3), np.float32)
        step = max(1, _PIECE_PIXELS // max(1, w))
        for r0 in range(0, h, step):
            r1 = min(h, r0 + step)
            lum = self.lightness(block[r0:r1]) if lightness is None else torch.from_numpy(lightness[r0:r1])
            out[r0:r1] = to_rgb(lum, self.ab(lum, y0 + r0, x0, factor))
        return out


def to_rgb(l_chan: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    """float32 RGB (h, w, 3) from L (h, w) and ab (2, h, w), out-of-gamut chroma pulled to gray."""
    with torch.inference_mode():
        rgb = lab_to_rgb_in_gamut(torch.cat([l_chan[None], ab], dim=0))
    return rgb.permute(1, 2, 0).numpy().astype(np.float32, copy=False)


def read_lightness(plane, unit: UnitMap, q: int, rows: tuple[int, int] | None = None,
                   max_pixels: int = 4_000_000) -> np.ndarray:
    """Block-mean L (``block_mean`` at ``q``) of plane rows [r0, r1) (all by default), read in bands
    aligned to ``q`` so that a memmap or zarr plane is never held whole."""
    h, w = plane.shape[:2]
    r0, r1 = rows if rows is not None else (0, h)
    if r0 % q:
        raise ValueError(f"rows must start on a cell boundary (multiple of {q}); got {r0}.")
    band = max(q, (max_pixels // max(1, w)) // q * q)
    parts = [block_mean(unit.lightness(plane[y : min(r1, y + band)]), q) for y in range(r0, r1, band)]
    return np.concatenate(parts, axis=0)


def bands(h: int, rows: int = _BAND_ROWS) -> list[tuple[int, int]]:
    """Row ranges of the bands :func:`write_field` works in."""
    return [(r, min(h, r + rows)) for r in range(0, h, rows)]


def write_field(fld: ChromaField, plane, write) -> Iterator[tuple[int, int]]:
    """The per-chunk pass over a whole plane, piece by piece into ``write(rows, cols, rgb)``;
    yields ``(bands_done, bands_total)`` after each band of rows."""
    h, w = plane.shape[:2]
    todo = bands(h)
    cols = max(64, _WRITE_PIXELS // min(h, _BAND_ROWS) // 64 * 64)
    for i, (r0, r1) in enumerate(todo):
        for c0 in range(0, w, cols):
            c1 = min(w, c0 + cols)
            write(slice(r0, r1), slice(c0, c1), fld.rgb(plane[r0:r1, c0:c1], r0, c0))
        yield i + 1, len(todo)
