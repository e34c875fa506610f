"""The colorization network and its ab-distribution head.

A compact U-Net takes L, hint a, hint b and the hint mask (Zhang et al. 2017) at a working
resolution and predicts, at half that resolution, a distribution over quantized in-gamut ab bins
(Zhang et al. 2016). Chroma is decoded with an annealed mean whose temperature the user sets.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

L_SCALE = 100.0
AB_SCALE = 110.0
# Bins nearer gray than this are "neutral" for ``decode(neutral=...)``; chosen on bsds500-val
# with 12 against 8, 16 and 20 (the neutral-area metric's own threshold is C*ab 5).
NEUTRAL_BIN_CHROMA = 12.0


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ColorNet(nn.Module):
    """U-Net from (L, hint a, hint b, hint mask) to ab-bin logits at half resolution.

    Parameters
    ----------
    n_bins : int
        Number of quantized ab bins of the output distribution.
    width : int
        Channels of the first stage; stages double it down to 1/8 resolution.
    regression : bool
        Add a second head that regresses ab directly (Zhang et al. 2017's main output); its two
        channels follow the logits in the output, in units of ``AB_SCALE``.
    global_context : bool
        Add a global branch (Iizuka et al. 2016): the deepest features pooled over the whole
        image and added back to every position, so that a flat region can be told apart as sky
        or wall from the rest of the picture. It starts at zero, so adding it to a trained
        network changes nothing until it is trained.
    """

    def __init__(self, n_bins: int, width: int = 16, regression: bool = False,
                 global_context: bool = False):
        super().__init__()
        w = width
        self.enc1 = nn.Sequential(_conv(4, w), _conv(w, w))
        self.enc2 = nn.Sequential(_conv(w, 2 * w, stride=2), _conv(2 * w, 2 * w))
        self.enc3 = nn.Sequential(_conv(2 * w, 4 * w, stride=2), _conv(4 * w, 4 * w))
        self.enc4 = nn.Sequential(
            _conv(4 * w, 8 * w, stride=2),
            _conv(8 * w, 8 * w, dilation=2),
            _conv(8 * w, 8 * w, dilation=2),
            _conv(8 * w, 8 * w),
        )
        self.dec3 = nn.Sequential(_conv(12 * w, 4 * w), _conv(4 * w, 4 * w))
        self.dec2 = nn.Sequential(_conv(6 * w, 2 * w), _conv(2 * w, 2 * w))
        self.head = nn.Conv2d(2 * w, n_bins, 1)
        self.reg = None
        if regression:
            self.reg = nn.Sequential(_conv(2 * w, 2 * w), nn.Conv2d(2 * w, 2, 1))
            # zero output at first: a head added to a trained network starts at the gray baseline
            nn.init.zeros_(self.reg[-1].weight)
            nn.init.zeros_(self.reg[-1].bias)
        self.glob = None
        if global_context:
            self.glob = nn.Sequential(nn.Linear(8 * w, 8 * w), nn.ReLU(inplace=True), nn.Linear(8 * w, 8 * w))
            nn.init.zeros_(self.glob[-1].weight)
            nn.init.zeros_(self.glob[-1].bias)
        self.stages = {
            "enc1": self.enc1,
            "enc2": self.enc2,
            "enc3": self.enc3,
            "enc4": self.enc4,
            "dec3": self.dec3,
            "dec2": self.dec2,
        }

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """The image-level features (B, 8 * width) the global branch pools from input ``x``."""
        return self.enc4(self.enc3(self.enc2(self.enc1(x)))).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor, capture: str | None = None, context: torch.Tensor | None = None):
        """Output (B, Q [+ 2], H/2, W/2) for input (B, 4, H, W); H and W must be multiples of 8.

        The Q bin logits, followed for a regression network by ab / ``AB_SCALE`` (see
        :func:`split_output`). With ``capture`` naming a stage, returns ``(output, feature_map)``.
        ``context`` (from :meth:`context` on the whole image) replaces the global branch's own
        pooling, so that windows of a big image share the context of the whole.
        """
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e4 = self.enc4(e3)
        if self.glob is not None:
            pooled = e4.mean(dim=(2, 3)) if context is None else context
            e4 = e4 + self.glob(pooled)[:, :, None, None]
        d3 = self.dec3(torch.cat([F.interpolate(e4, size=e3.shape[-2:], mode="nearest"), e3], 1))
        d2 = self.dec2(torch.cat([F.interpolate(d3, size=e2.shape[-2:], mode="nearest"), e2], 1))
        logits = self.head(d2)
        if self.reg is not None:
            logits = torch.cat([logits, self.reg(d2)], 1)
        if capture is None:
            return logits
        feats = {"enc1": e1, "enc2": e2, "enc3": e3, "enc4": e4, "dec3": d3, "dec2": d2}
        return logits, feats[capture]

    def for_inference(self) -> ColorNet:
        """A copy for inference: batch norms folded into their convolutions, channels-last.

        The same function as this network in eval mode (to float rounding), about a quarter
        faster on CPU; its parameters do not require gradients.
        """
        # ordinary tensors even when asked for inside inference mode: the copy outlives the call
        with torch.inference_mode(False), torch.no_grad():
            net = copy.deepcopy(self).eval()
            for block in net.modules():
                if isinstance(block, nn.Sequential) and len(block) == 3 and isinstance(block[1], nn.BatchNorm2d):
                    block[0] = fuse_conv_bn_eval(block[0], block[1])
                    block[1] = nn.Identity()
            return net.requires_grad_(False).to(memory_format=torch.channels_last)


def split_output(out: torch.Tensor, n_bins: int):
    """``(logits, ab)`` from a network output; ``ab`` (B, 2, h, w) is None without a regression head."""
    if out.shape[1] == n_bins:
        return out, None
    return out[:, :n_bins], out[:, n_bins:] * AB_SCALE


def decode(out: torch.Tensor, bins: torch.Tensor, temperature: float,
           log_bias: torch.Tensor | None = None, vivid: float = 0.0, calm: float = 0.0,
           neutral: float = 0.0) -> torch.Tensor:
    """Chroma ab (B, 2, h, w) from a network output.

    A bin-only network is decoded with :func:`annealed_mean`. A regression network gives its
    regressed ab, moved by ``vivid`` (0 to 1) toward the annealed mean of its distribution: 0 is
    the PSNR-safe regression, 1 the distribution's more colorful guess. ``calm`` (0 to 1) then
    pulls uncertain pixels toward neutral: chroma is scaled by ``1 - calm * H``, with H the
    entropy of the bin distribution over its maximum, so a pixel the network cannot decide on
    is left gray rather than painted. ``neutral`` (0 to 1) scales chroma by ``1 - neutral *
    sqrt(P0)``, with P0 the probability the network gives to near-gray bins (C*ab below
    ``NEUTRAL_BIN_CHROMA``): a pixel that may well be white, gray or black is not tinted.
    """
    logits, ab = split_output(out, bins.shape[0])
    if not (ab is None or vivid > 0 or calm > 0 or neutral > 0):
        return ab
    z, e = _exp_last(logits)
    if ab is None or vivid > 0:
        t = max(float(temperature), 1e-3)
        # 1 / temperature a whole number (0.5, the bundled one): exp(z / t) is a power of exp(z)
        powered = e.pow(round(1 / t)) if log_bias is None and abs(1 / t - round(1 / t)) < 1e-6 else None
        mean = _annealed(logits, bins, t, log_bias, powered)
        ab = mean if ab is None else ab + float(vivid) * (mean - ab)
    if calm > 0:
        ab = ab * (1.0 - float(calm) * _entropy(z, e))
    if neutral > 0:
        ab = ab * (1.0 - float(neutral) * _near_gray(e, bins).sqrt())
    return ab


# Logits more than this below a pixel's largest are raised to it: their probability (< 1e-17)
# changes nothing, while the exponential of such numbers (the network's logits span hundreds)
# underflows to denormals, which CPUs compute about ten times slower; 40 keeps exp(z) squared
# (the annealed mean at temperature 0.5) clear of them too.
LOGIT_FLOOR = 40.0


def _exp_last(logits: torch.Tensor, scale: float = 1.0, log_bias: torch.Tensor | None = None):
    """``(z, exp(z))``, both (B, h, w, Q): logits (B, Q, h, w) with the bins last, biased, scaled,
    shifted to a maximum of 0 and floored. Softmax is ``exp(z)`` over its sum; sums over the last,
    contiguous axis (as the channels-last output of :meth:`ColorNet.for_inference` has them)
    run several times faster than over axis 1, and one matrix product gives several at once."""
    z = logits.movedim(1, -1)
    if log_bias is not None:
        z = z + log_bias
    z = z * scale if scale != 1.0 else z
    z = (z - z.amax(-1, keepdim=True)).clamp_(min=-LOGIT_FLOOR)
    return z, z.exp()


def _near_gray(e: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Probability (B, 1, h, w) of the near-gray bins from :func:`_exp_last`'s ``exp(z)``."""
    near = (torch.hypot(bins[:, 0], bins[:, 1]) < NEUTRAL_BIN_CHROMA).to(e.dtype)
    return ((e @ near) / e.sum(-1)).clamp_(0.0, 1.0).unsqueeze(1)


def _entropy(z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Normalized entropy (B, 1, h, w) from :func:`_exp_last`'s ``(z, exp(z))``."""
    total = e.sum(-1)
    # H = -sum p log p with p = e / total and log p = z - log total
    h = (total.log() - (e * z).sum(-1) / total) / math.log(z.shape[-1])
    return h.clamp_(0.0, 1.0).unsqueeze(1)


def neutral_probability(logits: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Probability (B, 1, h, w) of the bins whose chroma is below ``NEUTRAL_BIN_CHROMA``."""
    return _near_gray(_exp_last(logits)[1], bins)


def normalized_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (B, 1, h, w) of the bin distribution, divided by its maximum ``log Q``: 0 to 1."""
    return _entropy(*_exp_last(logits))


def probabilities(logits: torch.Tensor, temperature: float = 1.0, log_bias: torch.Tensor | None = None):
    """Bin probabilities (B, Q, h, w) from logits, optionally re-weighted and annealed.

    ``log_bias`` (Q,) is added to the logits first; ``-beta * log(rebalance)`` undoes (beta = 1)
    the pull toward rare colors that class rebalancing puts into the trained network.
    """
    _, e = _exp_last(logits, 1.0 / max(float(temperature), 1e-3), log_bias)
    return (e / e.sum(-1, keepdim=True)).movedim(-1, 1)


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor, temperature: float,
                  log_bias: torch.Tensor | None = None) -> torch.Tensor:
    """Decode logits (B, Q, h, w) to ab (B, 2, h, w) with an annealed mean.

    ``temperature`` 1 gives the distribution's mean (safe, desaturated); toward 0 it approaches the
    mode (vivid, riskier).
    """
    return _annealed(logits, bins, max(float(temperature), 1e-3), log_bias)


def _annealed(logits, bins, temperature, log_bias, powered=None):
    e = _exp_last(logits, 1.0 / temperature, log_bias)[1] if powered is None else powered
    b = bins.to(e.dtype)
    sums = e @ torch.cat([b, torch.ones_like(b[:, :1])], 1)
    return (sums[..., :2] / sums[..., 2:]).movedim(-1, 1)


def soft_encode(ab: torch.Tensor, bins: torch.Tensor, k: int = 5, sigma: float = 5.0):
    """Soft-encode ab targets (B, 2, h, w) on the ``k`` nearest bins with Gaussian weights.

    Returns
    -------
    idx : LongTensor (B, k, h, w)
        The nearest bins, nearest first.
    weight : Tensor (B, k, h, w)
        Their weights, summing to 1 over ``k``.
    """
    b, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d2 = torch.cdist(flat, bins).pow_(2)
    dist, idx = torch.topk(d2, k, dim=1, largest=False)
    wgt = torch.softmax(-dist / (2 * sigma**2), dim=1)
    idx = idx.reshape(b, h, w, k).permute(0, 3, 1, 2)
    wgt = wgt.reshape(b, h, w, k).permute(0, 3, 1, 2)
    return idx, wgt


def rebalance_weights(prior: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Class-rebalancing weights from an empirical bin prior (Zhang et al. 2016, eq. 4).

    ``w ~ 1 / ((1 - lam) * p + lam / Q)``, normalised so that ``sum(p * w) == 1``. The prior is
    accumulated from soft-encoded targets, which already smooths it as the paper's Gaussian does.
    """
    q = prior.numel()
    p = prior / prior.sum()
    w = 1.0 / ((1 - lam) * p + lam / q)
    return w / (p * w).sum()


def encode_input(l_chan: torch.Tensor, hint_ab: torch.Tensor, hint_mask: torch.Tensor) -> torch.Tensor:
    """Stack network input from L (B,1,H,W) in [0,100], hint ab (B,2,H,W), mask (B,1,H,W)."""
    return torch.cat([l_chan / L_SCALE - 0.5, hint_ab / AB_SCALE * hint_mask, hint_mask], dim=1)
