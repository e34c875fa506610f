"""Colorization quality metrics (napari-free).

No-reference: colorfulness, saturation, contrast, color range. Full-reference: PSNR, SSIM,
CIEDE2000, ab RMSE, colorfulness difference. ``report`` gathers them and always adds the gray
baseline (the reference's L* with a = b = 0) beside the full-reference figures.

Every function takes RGB of shape (..., H, W, 3): float in [0, 1], or integers (unsigned ones
scaled by their full range, signed ones read as 0-255). A stack is measured plane by plane and the
figure returned is the mean over planes; ``per_plane=True`` returns the per-plane values instead.
Lazy arrays (dask, zarr) are read one plane at a time, so a stack never has to fit in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache

import numpy as np

from .errors import InputError

# Float RGB a hair outside [0, 1] (resampling, rounding) is clipped; beyond this it is rejected,
# because 0-255 data stored as float would otherwise be silently clipped to white.
_FLOAT_SLACK = 0.01
_HUE_BINS = 36
# Pixels below this chroma have no meaningful hue (noise around gray decides their angle).
_HUE_MIN_CHROMA = 5.0
_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5
_SSIM_PAD = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)  # half the 11 x 11 Gaussian window

NO_REFERENCE_KEYS = ("colorfulness", "chroma", "hsv_saturation", "contrast_rms", "contrast_michelson",
                     "ab_share", "ab_bins", "hue_entropy")
FULL_REFERENCE_KEYS = ("psnr", "ssim", "delta_e_mean", "delta_e_p95", "ab_rmse", "colorfulness_diff")


# -- input handling ---------------------------------------------------------------------------
def _lazy(image, name: str):
    """Array-likes with shape and dtype (numpy, dask, zarr) as they are; anything else as numpy."""
    if image is None:
        raise InputError(f"No {name} given.")
    if hasattr(image, "shape") and isinstance(getattr(image, "dtype", None), np.dtype) and hasattr(image, "__getitem__"):
        return image
    if type(image).__module__.startswith("torch"):
        image = image.detach().cpu()
    return np.asarray(image)


def _check(image, name: str):
    """Check shape and dtype without reading any pixels; returns the (possibly lazy) array."""
    arr = _lazy(image, name)
    shape = tuple(arr.shape)
    if len(shape) >= 3 and shape[-1] == 4:
        raise InputError(f"The {name} is RGBA (shape {shape}); drop the alpha channel first.")
    if len(shape) < 3 or shape[-1] != 3:
        raise InputError(f"The {name} must be RGB with a trailing channel axis of 3, shape (..., H, W, 3); "
                         f"got shape {shape}.")
    if 0 in shape:
        raise InputError(f"The {name} is empty (shape {shape}).")
    dtype = np.dtype(arr.dtype)
    if dtype.kind not in "uif":  # bool is kind "b"
        raise InputError(f"The {name} has pixel type {dtype}; expected integers or floats.")
    return arr


def _to01(plane, name: str) -> np.ndarray:
    """One plane (or a whole array) as float64 RGB in [0, 1]."""
    arr = np.asarray(plane)
    if arr.dtype.kind == "u":
        return arr.astype(np.float64) / np.iinfo(arr.dtype).max
    if arr.dtype.kind == "i":
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise InputError(f"The {name} has signed integers from {lo} to {hi}; signed RGB is read as 0-255. "
                             "Convert it to uint8 or uint16 first.")
        return arr.astype(np.float64) / 255.0
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"The {name} contains NaN or infinite values; replace them first.")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -_FLOAT_SLACK or hi > 1.0 + _FLOAT_SLACK:
        raise InputError(f"The {name} is float with values from {lo:.4g} to {hi:.4g}; float RGB must lie in "
                         "[0, 1] (divide 0-255 data by 255).")
    return np.clip(arr, 0.0, 1.0)


def _as_rgb01(image, name: str = "image") -> np.ndarray:
    """The whole image as float64 RGB in [0, 1], checked."""
    return _to01(_check(image, name), name)


def _planes(image, reference=None, name: str = "image") -> tuple[tuple, Iterator]:
    """Stack shape and an iterator of (index, plane, reference plane or None), each in [0, 1]."""
    arr = _check(image, name)
    ref = None if reference is None else _check(reference, "reference")
    if ref is not None and tuple(ref.shape) != tuple(arr.shape):
        raise InputError(f"The {name} and the reference differ in shape: {tuple(arr.shape)} vs "
                         f"{tuple(ref.shape)}.")
    lead = tuple(arr.shape[:-3])

    def gen():
        for idx in np.ndindex(*lead):
            yield (idx, _to01(arr[idx], name),
                   None if ref is None else _to01(ref[idx], "reference"))

    return lead, gen()


def _measure(fn: Callable[..., dict], image, reference=None, per_plane: bool = False, name="image") -> dict:
    """Apply ``fn`` (plane[, reference plane]) -> dict of floats to every plane; mean or per plane."""
    lead, planes = _planes(image, reference, name)
    rows = [fn(p) if r is None else fn(p, r) for _, p, r in planes]
    out = {k: np.array([row[k] for row in rows], dtype=np.float64).reshape(lead) for k in rows[0]}
    if per_plane:
        return out
    return {k: float(np.mean(v)) for k, v in out.items()}


def _single(result: dict):
    (value,) = result.values()
    return value


def _lab(rgb01: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(rgb01)


# -- no reference ---------------------------------------------------------------------------
def _colorfulness_plane(rgb: np.ndarray) -> float:
    rgb = rgb * 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def colorfulness(image, per_plane: bool = False):
    """Hasler and Suesstrunk (2003) colorfulness M, computed on 0-255 RGB.

    ``M = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)`` with ``rg = R - G`` and
    ``yb = (R + G) / 2 - B``; 0 for a gray image.

    Parameters
    ----------
    image : array-like
        RGB (..., H, W, 3), float in [0, 1] or integer.
    per_plane : bool
        Return one value per plane of a stack instead of their mean.

    Returns
    -------
    float or ndarray
    """
    return _single(_measure(lambda p: {"m": _colorfulness_plane(p)}, image, per_plane=per_plane))


def _saturation_plane(rgb: np.ndarray, lab: np.ndarray) -> dict:
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    sat = np.divide(mx - mn, mx, out=np.zeros_like(mx), where=mx > 0)
    return {"chroma": float(np.hypot(lab[..., 1], lab[..., 2]).mean()), "hsv_saturation": float(sat.mean())}


def saturation(image, per_plane: bool = False) -> dict:
    """Mean chroma C*ab = sqrt(a*^2 + b*^2) and mean HSV saturation.

    Returns
    -------
    dict
        ``chroma`` (CIELAB units, 0 for gray) and ``hsv_saturation`` (0 to 1); floats, or arrays
        with ``per_plane``.
    """
    return _measure(lambda p: _saturation_plane(p, _lab(p)), image, per_plane=per_plane)


def _contrast_plane(lab: np.ndarray) -> dict:
    lum = lab[..., 0]
    lo, hi = float(lum.min()), float(lum.max())
    return {"rms": float(lum.std()), "michelson": (hi - lo) / (hi + lo) if hi + lo > 0 else 0.0}


def contrast(image, per_plane: bool = False) -> dict:
    """RMS contrast (standard deviation of L*, in L* units 0-100) and Michelson contrast of L*.

    Returns
    -------
    dict
        ``rms`` and ``michelson`` ((max - min) / (max + min) of L*, 0 to 1).
    """
    return _measure(lambda p: _contrast_plane(_lab(p)), image, per_plane=per_plane)


@lru_cache(maxsize=1)
def _gamut_cells() -> np.ndarray:
    """Boolean (n, n) map of the in-gamut cells of the ab grid, indexed like ``_ab_cell``."""
    from .color import AB_GRID, AB_RANGE, ab_bins

    n = int(round(2 * AB_RANGE / AB_GRID)) + 1
    idx = np.rint((ab_bins() + AB_RANGE) / AB_GRID).astype(int)
    cells = np.zeros((n, n), dtype=bool)
    cells[idx[:, 0], idx[:, 1]] = True
    return cells


def _ab_cell(v: np.ndarray, n: int) -> np.ndarray:
    from .color import AB_GRID, AB_RANGE

    return np.clip(np.rint((v + AB_RANGE) / AB_GRID), 0, n - 1).astype(np.intp)


def _color_range_plane(lab: np.ndarray) -> dict:
    gamut = _gamut_cells()
    n = gamut.shape[0]
    a, b = lab[..., 1].ravel(), lab[..., 2].ravel()
    occupied = np.zeros_like(gamut)
    occupied[_ab_cell(a, n), _ab_cell(b, n)] = True
    nbins = int((occupied & gamut).sum())
    chromatic = np.hypot(a, b) >= _HUE_MIN_CHROMA
    entropy = 0.0
    if chromatic.any():
        hue = np.degrees(np.arctan2(b[chromatic], a[chromatic])) % 360.0
        counts = np.bincount(np.minimum((hue * _HUE_BINS / 360.0).astype(np.intp), _HUE_BINS - 1),
                             minlength=_HUE_BINS)
        p = counts[counts > 0] / chromatic.sum()
        entropy = float(-(p * np.log2(p)).sum() / np.log2(_HUE_BINS))
    return {"ab_share": nbins / int(gamut.sum()), "ab_bins": float(nbins), "hue_entropy": entropy}


def color_range(image, per_plane: bool = False) -> dict:
    """How much of the color gamut an image uses.

    Returns
    -------
    dict
        ``ab_bins``: in-gamut cells of the 10-unit ab grid (``core.color.ab_bins``) with at least
        one pixel; ``ab_share``: that count over all in-gamut cells (0 to 1); ``hue_entropy``:
        Shannon entropy of the hue angle histogram (36 bins of 10 degrees, pixels with
        C*ab >= 5), divided by log2(36) so 0 is a single hue (or none) and 1 all hues equally.
    """
    return _measure(lambda p: _color_range_plane(_lab(p)), image, per_plane=per_plane)


def ab_histogram(image, step: float = 2.5, limit: float = 110.0) -> tuple[np.ndarray, np.ndarray]:
    """Pixel counts over the ab plane, summed over all planes of a stack.

    Parameters
    ----------
    image : array-like
        RGB (..., H, W, 3).
    step, limit : float
        Bin width and half-range of the square grid in a* and b*; values beyond are counted in
        the edge bins.

    Returns
    -------
    counts : ndarray
        (n, n) float64, ``counts[i, j]`` for a* in bin i and b* in bin j.
    edges : ndarray
        (n + 1,) bin edges, the same for a* and b*.
    """
    from .arrays import check_number

    limit = check_number("limit", limit, 1.0, 200.0)
    step = check_number("step", step, limit / 400, limit, open_low=True)  # at most 800 x 800 bins
    edges = np.arange(-limit, limit + step / 2, step)
    total = np.zeros((edges.size - 1, edges.size - 1))
    _, planes = _planes(image)
    for _, p, _ in planes:
        lab = _lab(p)
        ab = np.clip(lab[..., 1:].reshape(-1, 2), -limit, limit)
        total += np.histogram2d(ab[:, 0], ab[:, 1], bins=(edges, edges))[0]
    return total, edges


# -- against a reference ----------------------------------------------------------------------
def _psnr_plane(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def psnr(image, reference, per_plane: bool = False):
    """PSNR in dB of RGB ``image`` against ``reference``, data range 1 (inf when identical).

    Returns
    -------
    float or ndarray
    """
    return _single(_measure(lambda p, r: {"v": _psnr_plane(p, r)}, image, reference, per_plane))


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.ndimage import gaussian_filter

    h, w = a.shape[:2]
    if min(h, w) < 2 * _SSIM_PAD + 1:
        raise InputError(f"SSIM needs planes of at least {2 * _SSIM_PAD + 1} x {2 * _SSIM_PAD + 1} pixels; "
                         f"got {h} x {w}.")

    def blur(z):
        return gaussian_filter(z, sigma=_SSIM_SIGMA, truncate=_SSIM_TRUNCATE, mode="reflect")

    c1, c2 = 0.01**2, 0.03**2  # K1, K2 of Wang et al. for data range 1
    scores = []
    for ch in range(3):
        x, y = a[..., ch], b[..., ch]
        mx, my = blur(x), blur(y)
        vx = blur(x * x) - mx * mx
        vy = blur(y * y) - my * my
        cxy = blur(x * y) - mx * my
        s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        # the border, where the window reaches past the image, is left out as in Wang et al.
        scores.append(s[_SSIM_PAD:-_SSIM_PAD, _SSIM_PAD:-_SSIM_PAD].mean())
    return float(np.mean(scores))


def ssim(image, reference, per_plane: bool = False):
    """Structural similarity (Wang et al. 2004) per RGB channel, averaged over the channels.

    Gaussian window with sigma 1.5 (11 x 11), K1 = 0.01, K2 = 0.03, data range 1, the image border
    of 5 pixels left out; equal to scikit-image's ``structural_similarity`` with
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1``.

    Returns
    -------
    float or ndarray
    """
    return _single(_measure(lambda p, r: {"v": _ssim_plane(p, r)}, image, reference, per_plane))


def ciede2000(lab1, lab2) -> np.ndarray:
    """CIEDE2000 color difference between Lab arrays (..., 3), kL = kC = kH = 1.

    scikit-image's implementation; it reproduces the test pairs of Sharma, Wu and Dalal (2005)
    to 5e-5 (see tests).
    """
    from skimage.color import deltaE_ciede2000

    return deltaE_ciede2000(np.asarray(lab1, dtype=np.float64), np.asarray(lab2, dtype=np.float64))


def _delta_e_plane(lab: np.ndarray, lab_ref: np.ndarray) -> dict:
    d = ciede2000(lab, lab_ref)
    return {"mean": float(d.mean()), "p95": float(np.percentile(d, 95))}


def delta_e(image, reference, per_plane: bool = False) -> dict:
    """CIEDE2000 difference of each pixel from the reference.

    Returns
    -------
    dict
        ``mean`` and ``p95`` (95th percentile) of the per-pixel ΔE00.
    """
    return _measure(lambda p, r: _delta_e_plane(_lab(p), _lab(r)), image, reference, per_plane)


def _ab_rmse_plane(lab: np.ndarray, lab_ref: np.ndarray) -> float:
    d = lab[..., 1:] - lab_ref[..., 1:]
    return float(np.sqrt(np.mean(np.sum(d * d, axis=-1))))


def ab_rmse(image, reference, per_plane: bool = False):
    """Root mean square over pixels of the Euclidean ab distance to the reference, in CIELAB units.

    Returns
    -------
    float or ndarray
    """
    return _single(_measure(lambda p, r: {"v": _ab_rmse_plane(_lab(p), _lab(r))}, image, reference,
                            per_plane))


NEUTRAL_CHROMA = 5.0


def _neutral_chroma_plane(lab: np.ndarray, lab_ref: np.ndarray, threshold: float) -> float:
    neutral = np.hypot(lab_ref[..., 1], lab_ref[..., 2]) < threshold
    if not neutral.any():
        return float("nan")
    return float(np.hypot(lab[..., 1], lab[..., 2])[neutral].mean())


def neutral_chroma(image, reference, threshold: float = NEUTRAL_CHROMA, per_plane: bool = False):
    """Mean chroma C*ab of ``image`` over the pixels that are neutral (C*ab < ``threshold``) in ``reference``.

    White, gray and black surfaces painted with color raise it; 0 is a perfect neutral. NaN for a
    reference with no neutral pixel.

    Returns
    -------
    float or ndarray
    """
    return _single(_measure(lambda p, r: {"v": _neutral_chroma_plane(_lab(p), _lab(r), threshold)},
                            image, reference, per_plane))


def colorfulness_diff(image, reference, per_plane: bool = False):
    """Colorfulness of ``image`` minus that of ``reference``: below 0 is washed out, above 0 garish.

    Returns
    -------
    float or ndarray
    """
    return _single(_measure(lambda p, r: {"v": _colorfulness_plane(p) - _colorfulness_plane(r)},
                            image, reference, per_plane))


def _gray_plane(lab_ref: np.ndarray) -> np.ndarray:
    from skimage.color import lab2rgb

    lab = lab_ref.copy()
    lab[..., 1:] = 0.0
    return np.clip(lab2rgb(lab), 0.0, 1.0)


def gray_baseline(reference) -> np.ndarray:
    """The reference's L* with a = b = 0, as RGB in [0, 1]: colorization with no color at all."""
    return _gray_plane(_lab(_as_rgb01(reference, "reference")))


# -- report -----------------------------------------------------------------------------------
def _full_reference(rgb, lab, ref, lab_ref, cf_ref) -> dict:
    de = _delta_e_plane(lab, lab_ref)
    return {"psnr": _psnr_plane(rgb, ref), "ssim": _ssim_plane(rgb, ref), "delta_e_mean": de["mean"],
            "delta_e_p95": de["p95"], "ab_rmse": _ab_rmse_plane(lab, lab_ref),
            "colorfulness_diff": _colorfulness_plane(rgb) - cf_ref}


def _plane_report(rgb: np.ndarray, ref: np.ndarray | None) -> dict:
    lab = _lab(rgb)
    sat, con = _saturation_plane(rgb, lab), _contrast_plane(lab)
    out = {"colorfulness": _colorfulness_plane(rgb), "chroma": sat["chroma"],
           "hsv_saturation": sat["hsv_saturation"], "contrast_rms": con["rms"],
           "contrast_michelson": con["michelson"], **_color_range_plane(lab)}
    if ref is not None:
        lab_ref = _lab(ref)
        cf_ref = _colorfulness_plane(ref)
        out.update(_full_reference(rgb, lab, ref, lab_ref, cf_ref))
        gray = _gray_plane(lab_ref)
        out.update({f"{k}_gray": v for k, v in _full_reference(gray, _lab(gray), ref, lab_ref, cf_ref).items()})
    return out


def report_planes(image, reference=None) -> tuple[tuple, Iterator[tuple[tuple, dict]]]:
    """Per-plane figures of ``report``, lazily, for callers that show progress or can stop early.

    Returns
    -------
    lead : tuple
        Stack shape (``()`` for a single plane).
    planes : iterator of (index, dict)
        One entry per plane, in C order; reading it computes that plane.
    """
    lead, planes = _planes(image, reference)
    return lead, ((idx, _plane_report(p, r)) for idx, p, r in planes)


def summarize(lead: tuple, rows: Iterable[dict]) -> dict:
    """Combine per-plane figures (as from ``report_planes``) into ``report``'s dict."""
    rows = list(rows)
    if not rows:
        raise InputError("Nothing was measured (no planes).")
    per = {k: np.array([r[k] for r in rows], dtype=np.float64).reshape(lead) for k in rows[0]}
    out: dict = {k: float(np.mean(v)) for k, v in per.items()}
    out["n_planes"] = len(rows)
    if lead:
        out["per_plane"] = per
    return out


def report(image, reference=None) -> dict:
    """All metrics of ``image``, and against ``reference`` when given, with the gray baseline.

    Parameters
    ----------
    image : array-like
        RGB (..., H, W, 3), float in [0, 1] or integer; numpy or lazy (dask).
    reference : array-like, optional
        Ground truth of the same shape.

    Returns
    -------
    dict
        Floats (means over the planes of a stack): ``colorfulness``, ``chroma``,
        ``hsv_saturation``, ``contrast_rms``, ``contrast_michelson``, ``ab_share``, ``ab_bins``,
        ``hue_entropy``; with a reference also ``psnr``, ``ssim``, ``delta_e_mean``,
        ``delta_e_p95``, ``ab_rmse``, ``colorfulness_diff`` and the same six with a ``_gray``
        suffix for the gray baseline. ``n_planes`` counts the planes; a stack adds
        ``per_plane``, a dict of arrays of the stack's shape.

    Raises
    ------
    InputError
        Not RGB, RGBA, empty, NaN, float outside [0, 1], or shapes that differ.
    """
    lead, planes = report_planes(image, reference)
    return summarize(lead, (r for _, r in planes))
