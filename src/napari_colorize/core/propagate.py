"""Edge-aware propagation of color hints over the full-resolution lightness.

Levin, Lischinski and Weiss 2004 ("Colorization using optimization") ask each pixel's chroma to
be the affinity-weighted mean of its 3 x 3 neighbours', with weights that fall where lightness
changes, so colors spread within regions and stop at edges; hint pixels are fixed. Given a prior
(the network's chroma) with a weight, the same solve propagates only what the hints correct: far
from a hint, or beyond an edge, the result returns to the prior.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def affinity(l_chan: np.ndarray) -> sp.csr_matrix:
    """Row-normalised neighbour weights W (N, N) of Levin et al. 2004 for lightness (H, W).

    ``w_rs ~ exp(-(Y_r - Y_s)^2 / sigma_r^2)`` over the 8 neighbours s of r, with sigma_r^2
    0.6 times the variance of Y in r's 3 x 3 window (floored, so flat regions stay connected).
    """
    y = np.asarray(l_chan, np.float64) / 100.0
    h, w = y.shape
    pad = np.pad(y, 1, mode="edge")
    shifted = np.stack([pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _OFFSETS])
    window = np.concatenate([y[None], shifted])
    d2 = (shifted - y[None]) ** 2
    # as in the authors' code: sigma^2 from the window variance, but large enough that the most
    # similar neighbour keeps a weight of at least 0.01, and never below 2e-6
    var = np.maximum.reduce([window.var(axis=0) * 0.6, d2.min(axis=0) / np.log(100.0),
                             np.full_like(y, 2e-6)])
    wgt = np.exp(-d2 / var[None])
    idx = np.arange(h * w).reshape(h, w)
    rows, cols, vals = [], [], []
    for k, (dy, dx) in enumerate(_OFFSETS):
        ys = slice(max(0, -dy), h - max(0, dy))
        xs = slice(max(0, -dx), w - max(0, dx))
        r = idx[ys, xs].ravel()
        rows.append(r)
        cols.append(r + dy * w + dx)
        vals.append(wgt[k][ys, xs].ravel())
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    sums = np.bincount(rows, weights=vals, minlength=h * w)
    return sp.csr_matrix((vals / sums[rows], (rows, cols)), shape=(h * w, h * w))


def propagate(l_chan: np.ndarray, mask: np.ndarray, values: np.ndarray,
              prior: np.ndarray | None = None, prior_weight: float = 0.0) -> np.ndarray:
    """Chroma (H, W, C) that matches ``values`` where ``mask`` and spreads them edge-aware.

    Parameters
    ----------
    l_chan : ndarray (H, W)
        Lightness L* in [0, 100]; its edges stop the spread.
    mask : bool ndarray (H, W)
        Pixels whose chroma is fixed (the hints).
    values : ndarray (H, W, C)
        Their chroma; read only where ``mask``.
    prior : ndarray (H, W, C), optional
        Chroma to return to away from the hints; without it (Levin et al. 2004) every pixel takes
        the colors of the hints it is best connected to.
    prior_weight : float
        Pull toward ``prior`` (0 to 1): the larger, the shorter the distance a hint reaches.

    Returns
    -------
    ndarray (H, W, C), float32
    """
    h, w = l_chan.shape
    mask = np.asarray(mask, bool).ravel()
    values = np.asarray(values, np.float64).reshape(h * w, -1)
    base = np.zeros_like(values) if prior is None else np.asarray(prior, np.float64).reshape(h * w, -1)
    if not mask.any():
        return base.reshape(h, w, -1).astype(np.float32)
    if prior is None and prior_weight > 0:
        raise ValueError("prior_weight needs a prior")
    free = ~mask
    # (1 + lam) u_r - sum_s w_rs u_s = lam * prior_r on free pixels; u = value on hint pixels
    a = sp.identity(h * w, format="csr") * (1.0 + prior_weight) - affinity(l_chan)
    a_ff = a[free][:, free].tocsc()
    rhs = prior_weight * base[free] - a[free][:, mask] @ values[mask]
    out = values.copy()
    if prior is None and prior_weight == 0:
        # a region with no hint is a singular block: tie every pixel weakly to zero chroma
        a_ff = (a_ff + sp.identity(a_ff.shape[0], format="csc") * 1e-6).tocsc()
    out[free] = splu(a_ff).solve(rhs)
    return out.reshape(h, w, -1).astype(np.float32)


def refine_with_hints(l_full, ab_full, points: np.ndarray, hint_ab: np.ndarray,
                      reach: float = 1e-3, max_side: int = 320):
    """Correct chroma so that it matches the hints at their pixels, edge-aware, fading with distance.

    The residual (hint minus current chroma at each hint pixel) is propagated with
    :func:`propagate` (prior zero, weight ``reach``) over lightness scaled to a longest side of
    at most ``max_side``, brought back to full resolution by the lightness-guided upsampling,
    and added: a hint recolors its object and stops at its edges.

    Parameters
    ----------
    l_full : Tensor (1, 1, H, W)
        Lightness L* in [0, 100].
    ab_full : Tensor (1, 2, H, W)
        Current chroma (e.g. the network's).
    points : ndarray (N, 2)
        Hint pixels (row, column) inside the image.
    hint_ab : ndarray (N, 2)
        Their chroma.
    """
    import torch
    import torch.nn.functional as F

    from .inference import guided_upsample

    h, w = l_full.shape[-2:]
    if len(points) == 0:
        return ab_full
    s = min(1.0, max_side / max(h, w))
    hw = (max(2, round(h * s)), max(2, round(w * s)))
    l_low = F.interpolate(l_full, size=hw, mode="area") if hw != (h, w) else l_full
    r = np.clip(np.floor(points[:, 0] + 0.5), 0, h - 1).astype(int)
    c = np.clip(np.floor(points[:, 1] + 0.5), 0, w - 1).astype(int)
    resid = np.asarray(hint_ab, np.float32) - ab_full[0, :, r, c].T.numpy()
    rl = np.minimum((r * hw[0]) // h, hw[0] - 1)
    cl = np.minimum((c * hw[1]) // w, hw[1] - 1)
    mask = np.zeros(hw, bool)
    values = np.zeros((*hw, 2), np.float32)
    mask[rl, cl] = True
    values[rl, cl] = resid  # the last of several hints on one low-resolution pixel wins
    low = propagate(l_low[0, 0].numpy(), mask, values, np.zeros_like(values), reach)
    low_t = torch.from_numpy(low).permute(2, 0, 1)[None]
    up = low_t if hw == (h, w) else guided_upsample(low_t, l_low, l_full)
    return ab_full + up
