"""Color spaces and segmentations: Lab/HSV/YCbCr channels, superpixels and color k-means.

Segmentations return int32 label images (0 = background, never produced here) with labels
unique over the whole stack: plane ``k``'s labels continue after plane ``k - 1``'s. They are
computed plane by plane (dask input is computed one plane at a time); the ``*_job`` generators
yield progress dicts ``{"done", "total"}`` for thread workers and return the labels.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.vq import kmeans2
from skimage import color as skcolor
from skimage import segmentation

from .color import to_unit_range
from .edges import plane_gradient
from .errors import InputError
from .gen import drain
from .planes import check_image, check_not_constant, iter_planes, map_planes

SPACES = {"lab": ("L*", "a*", "b*"), "hsv": ("H", "S", "V"), "ycbcr": ("Y", "Cb", "Cr")}
METHODS = ("slic", "felzenszwalb", "watershed", "kmeans")


def convert_colorspace(image, space: str = "lab"):
    """RGB (..., H, W, 3) to ``lab`` (L* 0-100, a*, b*), ``hsv`` (all in [0, 1]) or ``ycbcr`` (ITU-R BT.601, 16-235/240).

    Returns float32 (..., H, W, 3), lazy on dask; channel names are ``SPACES[space]``.
    """
    space = space.lower()
    if space not in SPACES:
        raise InputError(f"Unknown color space '{space}'; choose one of {', '.join(SPACES)}.")
    check_image(image, None, need_rgb=True)
    conv = {"lab": skcolor.rgb2lab, "hsv": skcolor.rgb2hsv, "ycbcr": skcolor.rgb2ycbcr}[space]
    return map_planes(lambda p: conv(np.clip(to_unit_range(p), 0, 1)), image, n_tail=3, out_tail=tuple(image.shape[-3:]))


def _features(plane: np.ndarray, rgb: bool) -> np.ndarray:
    """A plane in the space segmentations work in: Lab for RGB, [0, 1] intensity for gray."""
    u = to_unit_range(plane)
    return skcolor.rgb2lab(np.clip(u, 0, 1)).astype(np.float32) if rgb else u


def _plane_segmenter(method: str, rgb: bool, n_segments: int = 100, compactness: float | None = None,
                     sigma: float = 0.0, scale: float = 100.0, min_size: int = 20):
    if method == "slic":
        if n_segments < 1:
            raise InputError(f"The number of segments must be at least 1; got {n_segments}.")
        comp = (20.0 if rgb else 0.1) if compactness is None else float(compactness)

        def seg(p):
            return segmentation.slic(to_unit_range(p), n_segments=int(n_segments), compactness=comp, sigma=sigma,
                                     channel_axis=-1 if rgb else None, start_label=1,
                                     convert2lab=rgb)
    elif method == "felzenszwalb":
        if scale <= 0:
            raise InputError(f"The Felzenszwalb scale must be positive; got {scale}.")

        def seg(p):
            return segmentation.felzenszwalb(to_unit_range(p), scale=float(scale), sigma=float(sigma),
                                             min_size=int(min_size), channel_axis=-1 if rgb else None) + 1
    elif method == "watershed":
        if n_segments < 1:
            raise InputError(f"The number of segments must be at least 1; got {n_segments}.")
        comp = 0.0 if compactness is None else float(compactness)

        def seg(p):
            f = _features(p, rgb)
            if sigma > 0:
                from skimage.filters import gaussian

                f = gaussian(f, sigma, channel_axis=-1 if rgb else None)
            return segmentation.watershed(plane_gradient(f)[0], markers=int(n_segments), compactness=comp)
    else:
        raise InputError(f"Unknown segmentation method '{method}'; choose one of {', '.join(METHODS[:3])}.")
    return seg


def superpixels_job(image, method: str = "slic", *, rgb: bool | None = None, n_segments: int = 100,
                    compactness: float | None = None, sigma: float = 0.0, scale: float = 100.0,
                    min_size: int = 20):
    """Generator behind :func:`superpixels`: yields progress per plane, returns the labels."""
    rgb = check_image(image, rgb)
    check_not_constant(image)
    seg = _plane_segmenter(method, rgb, n_segments, compactness, sigma, scale, min_size)
    n_tail = 3 if rgb else 2
    out, offset = None, 0
    yield {"done": 0, "total": int(np.prod(image.shape[: image.ndim - n_tail]))}
    for done, (total, idx, lab) in enumerate(iter_planes(seg, image, n_tail=n_tail), 1):
        if out is None:
            out = np.zeros(tuple(image.shape[: image.ndim - n_tail]) + lab.shape, np.int32)
        lab = segmentation.relabel_sequential(np.asarray(lab, np.int32))[0]
        out[idx] = np.where(lab > 0, lab + offset, 0)
        offset += int(lab.max())
        yield {"done": done, "total": total}
    return out


def superpixels(image, method: str = "slic", **kwargs):
    """Superpixels of every plane as int32 labels.

    Parameters
    ----------
    method : {'slic', 'felzenszwalb', 'watershed'}
        ``slic`` (k-means in Lab + position; ``n_segments``, ``compactness``, ``sigma``),
        ``felzenszwalb`` (graph based; ``scale``, ``sigma``, ``min_size``) or ``watershed`` on the
        gradient magnitude (Di Zenzo on RGB) from ``n_segments`` grid markers.
    """
    return drain(superpixels_job(image, method, **kwargs))


def kmeans_job(image, k: int = 4, *, rgb: bool | None = None, seed: int = 0, sample: int = 50_000):
    """Generator behind :func:`color_kmeans`: yields progress per plane, returns the labels."""
    rgb = check_image(image, rgb)
    if not 2 <= int(k) <= 64:
        raise InputError(f"k must be between 2 and 64; got {k}.")
    check_not_constant(image)
    n_tail = 3 if rgb else 2
    lead = tuple(image.shape[: image.ndim - n_tail])
    total = int(np.prod(lead)) if lead else 1
    yield {"done": 0, "total": total + 1}
    rng = np.random.default_rng(seed)
    # fit on a random sample of pixels drawn over all planes, so a cluster means the same everywhere
    n_planes = min(total, 16)
    picks = rng.choice(total, n_planes, replace=False) if total > 1 else [0]
    samples = []
    for i in picks:
        idx = np.unravel_index(i, lead) if lead else ()
        f = _features(np.asarray(image[idx]), rgb).reshape(-1, 3 if rgb else 1)
        take = rng.choice(len(f), min(len(f), sample // n_planes), replace=False)
        samples.append(f[take])
    x = np.concatenate(samples).astype(np.float64)
    if len(np.unique(x, axis=0)) < k:
        raise InputError(f"The image has fewer than {k} distinct colors; lower k.")
    centers, _ = kmeans2(x, int(k), minit="++", rng=rng, iter=20)
    centers = centers[np.argsort(centers[:, 0])]  # label 1 is the darkest cluster
    yield {"done": 1, "total": total + 1}
    out = np.zeros(lead + tuple(image.shape[image.ndim - n_tail:][:2]), np.int32)
    for done, idx in enumerate(np.ndindex(*lead) if lead else [()]):
        f = _features(np.asarray(image[idx]), rgb).reshape(-1, 3 if rgb else 1)
        d = ((f[:, None, :] - centers[None].astype(np.float32)) ** 2).sum(-1)
        out[idx] = d.argmin(1).reshape(out.shape[-2:]) + 1
        yield {"done": done + 2, "total": total + 1}
    return out


def color_kmeans(image, k: int = 4, **kwargs):
    """Cluster pixel colors (Lab for RGB, intensity for gray) into ``k`` classes, labels 1..k by lightness.

    Centers are fitted on a pixel sample over all planes, then every pixel gets its nearest center.
    """
    return drain(kmeans_job(image, k, **kwargs))


def segment_job(image, method: str, **kwargs):
    """One generator for every method of :data:`METHODS` (``k`` for k-means, see the others above)."""
    if method == "kmeans":
        kk = {n: kwargs[n] for n in ("k", "rgb", "seed") if n in kwargs}
        return (yield from kmeans_job(image, **kk))
    kwargs.pop("k", None)
    kwargs.pop("seed", None)
    return (yield from superpixels_job(image, method, **kwargs))
