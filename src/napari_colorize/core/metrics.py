"""Colorization quality metrics (napari-free).

No-reference: colorfulness, saturation, contrast, color range. Full-reference: PSNR, SSIM,
CIEDE2000, ab RMSE, colorfulness difference, chroma on neutral areas. ``report`` gathers them and
always adds the gray baseline (the reference's L* with a = b = 0) beside the full-reference figures.

Every function takes RGB of shape (..., H, W, 3): float in [0, 1], or integers (unsigned ones
scaled by their full range, signed ones read as 0-255); see :mod:`.rgb_planes`. A stack is measured
plane by plane and the figure returned is the mean over planes; ``per_plane=True`` returns the
per-plane values instead. Lazy arrays (dask, zarr) are read one plane at a time, so a stack never
has to fit in memory. How colors spread over the ab plane (``color_range``, ``ab_histogram``) is
computed in :mod:`.ab_stats` and re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from .ab_stats import ab_histogram, color_range, color_range_plane
from .errors import InputError
from .rgb_planes import by_rows, check_rgb, measure, only, rgb01, rgb_planes, to_lab

_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5
_SSIM_PAD = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)  # half the 11 x 11 Gaussian window

NO_REFERENCE_KEYS = ("colorfulness", "chroma", "hsv_saturation", "contrast_rms", "contrast_michelson",
                     "ab_share", "ab_bins", "hue_entropy")
FULL_REFERENCE_KEYS = ("psnr", "ssim", "delta_e_mean", "delta_e_p95", "ab_rmse", "colorfulness_diff")

__all__ = [
    "FULL_REFERENCE_KEYS", "NEUTRAL_CHROMA", "NO_REFERENCE_KEYS", "ab_histogram", "ab_rmse", "ciede2000",
    "color_range", "colorfulness", "colorfulness_diff", "contrast", "delta_e", "gray_baseline",
    "neutral_chroma", "psnr", "report", "report_planes", "saturation", "ssim", "summarize",
]


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
    return only(measure(lambda p: {"m": _colorfulness_plane(p)}, image, per_plane=per_plane))


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
    return measure(lambda p: _saturation_plane(p, to_lab(p)), image, per_plane=per_plane)


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
    return measure(lambda p: _contrast_plane(to_lab(p)), image, per_plane=per_plane)


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
    return only(measure(lambda p, r: {"v": _psnr_plane(p, r)}, image, reference, per_plane))


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
    return only(measure(lambda p, r: {"v": _ssim_plane(p, r)}, image, reference, per_plane))


def ciede2000(lab1, lab2) -> np.ndarray:
    """CIEDE2000 color difference between Lab arrays (..., 3), kL = kC = kH = 1.

    scikit-image's implementation; it reproduces the test pairs of Sharma, Wu and Dalal (2005)
    to 5e-5 (see tests).
    """
    from skimage.color import deltaE_ciede2000

    return by_rows(deltaE_ciede2000, np.asarray(lab1, dtype=np.float64), np.asarray(lab2, dtype=np.float64))


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
    return measure(lambda p, r: _delta_e_plane(to_lab(p), to_lab(r)), image, reference, per_plane)


def _ab_rmse_plane(lab: np.ndarray, lab_ref: np.ndarray) -> float:
    d = lab[..., 1:] - lab_ref[..., 1:]
    return float(np.sqrt(np.mean(np.sum(d * d, axis=-1))))


def ab_rmse(image, reference, per_plane: bool = False):
    """Root mean square over pixels of the Euclidean ab distance to the reference, in CIELAB units.

    Returns
    -------
    float or ndarray
    """
    return only(measure(lambda p, r: {"v": _ab_rmse_plane(to_lab(p), to_lab(r))}, image, reference,
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
    return only(measure(lambda p, r: {"v": _neutral_chroma_plane(to_lab(p), to_lab(r), threshold)},
                        image, reference, per_plane))


def colorfulness_diff(image, reference, per_plane: bool = False):
    """Colorfulness of ``image`` minus that of ``reference``: below 0 is washed out, above 0 garish.

    Returns
    -------
    float or ndarray
    """
    return only(measure(lambda p, r: {"v": _colorfulness_plane(p) - _colorfulness_plane(r)},
                        image, reference, per_plane))


def _gray_plane(lab_ref: np.ndarray) -> np.ndarray:
    from skimage.color import lab2rgb

    lab = lab_ref.copy()
    lab[..., 1:] = 0.0
    return np.clip(lab2rgb(lab), 0.0, 1.0)


def gray_baseline(reference) -> np.ndarray:
    """The reference's L* with a = b = 0, as RGB in [0, 1]: colorization with no color at all."""
    return _gray_plane(to_lab(rgb01(check_rgb(reference, "reference"), "reference")))


# -- report -----------------------------------------------------------------------------------
def _full_reference(rgb, lab, ref, lab_ref, cf_ref) -> dict:
    de = _delta_e_plane(lab, lab_ref)
    return {"psnr": _psnr_plane(rgb, ref), "ssim": _ssim_plane(rgb, ref), "delta_e_mean": de["mean"],
            "delta_e_p95": de["p95"], "ab_rmse": _ab_rmse_plane(lab, lab_ref),
            "colorfulness_diff": _colorfulness_plane(rgb) - cf_ref}


def _plane_report(rgb: np.ndarray, ref: np.ndarray | None) -> dict:
    lab = to_lab(rgb)
    sat, con = _saturation_plane(rgb, lab), _contrast_plane(lab)
    out = {"colorfulness": _colorfulness_plane(rgb), "chroma": sat["chroma"],
           "hsv_saturation": sat["hsv_saturation"], "contrast_rms": con["rms"],
           "contrast_michelson": con["michelson"], **color_range_plane(lab)}
    if ref is not None:
        lab_ref = to_lab(ref)
        cf_ref = _colorfulness_plane(ref)
        out.update(_full_reference(rgb, lab, ref, lab_ref, cf_ref))
        gray = _gray_plane(lab_ref)
        out.update({f"{k}_gray": v for k, v in _full_reference(gray, to_lab(gray), ref, lab_ref, cf_ref).items()})
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
    lead, planes = rgb_planes(image, reference)
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
