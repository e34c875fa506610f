"""Colorize like a reference: a color image's palette as a prior on the predicted chroma.

The network predicts, per pixel, a distribution over ab bins. A reference photo gives two things
the decoding then follows: which bins it uses (its soft-encoded ab histogram, added as a log prior
to the logits, so colors absent from the reference are unlikely), and how saturated it is (the
quantiles of its chroma C*ab, onto which the decoded chroma is mapped, keeping each pixel's hue
and its rank). Both are computed once per reference and work at the network's resolution, so the
rest of the pipeline (guided upsampling, tiling, stacks) is unchanged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from .arrays import check_finite, check_number, is_dask
from .color import rgb_to_lab, to_unit_range
from .errors import InputError
from .model import annealed_mean, soft_encode, split_output

#: longest side the reference is read at: its palette, not its detail, matters
REFERENCE_SIDE = 256
_FLOOR = 1e-3  # probability floor of bins the reference does not use: unlikely, not impossible
_QUANTILES = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class Reference:
    """A reference palette: log bin prior (Q,), chroma quantiles (101,) and the prior's strength."""

    log_prior: torch.Tensor
    chroma: np.ndarray
    strength: float

    def decode(self, out: torch.Tensor, bins: torch.Tensor, temperature: float) -> torch.Tensor:
        """Chroma ab (B, 2, h, w) from a network output, following this palette.

        The annealed mean of the distribution re-weighted by the reference's bin prior, then each
        image's chroma mapped rank for rank onto the reference's chroma quantiles.
        """
        logits, _ = split_output(out, bins.shape[0])
        bias = self.strength * self.log_prior.to(logits.device)
        ab = annealed_mean(logits, bins, temperature, bias)
        return match_chroma(ab, self.chroma)


def _reference_lab(reference) -> np.ndarray:
    """Lab (h, w, 3) of an RGB(A) array or dask array, read at most REFERENCE_SIDE px long."""
    shape = tuple(getattr(reference, "shape", ()))
    if len(shape) != 3 or shape[-1] not in (3, 4) or min(shape[:2]) < 1:
        raise InputError(f"reference must be an RGB image (H, W, 3), got shape {shape}")
    step = max(1, int(np.ceil(max(shape[:2]) / REFERENCE_SIDE)))
    view = reference[::step, ::step, :3]
    view = np.asarray(view.compute() if is_dask(view) else view)
    check_finite(view, "reference")
    return rgb_to_lab(to_unit_range(view).astype(np.float32))


def reference_from(reference, bins: torch.Tensor, strength: float = 0.5) -> Reference:
    """The palette of a color image, for :meth:`Reference.decode`.

    Parameters
    ----------
    reference : array-like (H, W, 3) or (H, W, 4)
        Any RGB(A) numpy or dask array, of any size and dtype (normalised as images are).
    bins : Tensor (Q, 2)
        The model's ab bins.
    strength : float
        Weight of the reference's log prior on the logits, 0 to 4. 0 keeps the network's
        distribution (only chroma is matched); larger values restrict colors to the reference's.

    Raises
    ------
    InputError
        If ``reference`` is not an RGB image or holds non-finite values.
    """
    strength = check_number("strength", strength, 0.0, 4.0)
    lab = _reference_lab(reference)
    ab = torch.from_numpy(np.ascontiguousarray(lab[..., 1:].reshape(-1, 2)))
    counts = torch.zeros(bins.shape[0])
    for i in range(0, ab.shape[0], 8192):  # bounded memory: the distance matrix is (n, Q)
        part = ab[i : i + 8192].T[None, :, :, None]
        idx, wgt = soft_encode(part, bins.float())
        counts.index_add_(0, idx.reshape(-1), wgt.reshape(-1))
    prior = counts / counts.sum()
    chroma = np.quantile(np.hypot(lab[..., 1], lab[..., 2]), _QUANTILES).astype(np.float32)
    return Reference(torch.log(prior + _FLOOR), chroma, strength)


def match_chroma(ab: torch.Tensor, chroma_quantiles: np.ndarray) -> torch.Tensor:
    """Map each image's chroma C*ab onto given quantiles, rank for rank, keeping hue.

    Parameters
    ----------
    ab : Tensor (B, 2, h, w)
    chroma_quantiles : array (K,)
        Increasing chroma values at evenly spaced quantiles 0 to 1.
    """
    out = ab.clone()
    grid = np.linspace(0.0, 1.0, len(chroma_quantiles))
    for b in range(ab.shape[0]):
        c = torch.hypot(ab[b, 0], ab[b, 1]).cpu().numpy()
        flat = c.ravel()
        order = np.sort(flat)
        rank = np.searchsorted(order, flat, side="left") / max(1, flat.size - 1)
        target = np.interp(rank, grid, chroma_quantiles).reshape(c.shape)
        scale = torch.from_numpy((target / np.maximum(c, 1e-3)).astype(np.float32)).to(ab.device)
        # a pixel with (almost) no chroma has no hue to keep: it stays neutral
        out[b] = ab[b] * torch.where(torch.from_numpy(c).to(ab.device) > 1e-3, scale, 0.0)
    return out


def with_reference(model, reference, strength: float = 0.5):
    """A shallow copy of ``model`` whose decoding follows ``reference``'s palette.

    The network's weights are shared, not copied; ``model`` itself is unchanged. ``reference``
    is an RGB array (see :func:`reference_from`) or an already computed :class:`Reference`.
    """
    ref = reference if isinstance(reference, Reference) else reference_from(reference, model.bins, strength)
    out = copy.copy(model)
    out.reference = ref
    return out
