"""Looking inside the colorizer: stage feature maps, per-pixel uncertainty, suggested colors."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .color import lab_to_rgb_t
from .errors import InputError
from .hints import check_hints, rasterize_hints
from .inference import plane_lightness, predict_logits, work_shape
from .model import normalized_entropy, probabilities, split_output
from .modelfile import Colorizer

STAGES = ("enc1", "enc2", "enc3", "enc4", "dec3", "dec2")


def _prepare(model: Colorizer, plane: np.ndarray, points=None, colors=None):
    l_np = plane_lightness(plane)
    pts, cols, _ = check_hints(points, colors, l_np.shape)
    hint_ab, mask = rasterize_hints(pts, cols, l_np.shape, work_shape(l_np.shape, model.working_size))
    return l_np, torch.from_numpy(np.ascontiguousarray(l_np))[None, None], hint_ab, mask


def feature_maps(model: Colorizer, plane: np.ndarray, stage: str = "enc4", points=None, colors=None):
    """Activations of one network stage for a 2D plane.

    Returns
    -------
    maps : ndarray (C, h, w) float32
        One map per channel, at the stage's own resolution.
    scale : tuple of float
        Pixel size of the maps in input pixels (rows, columns), to overlay them on the input.
    """
    if stage not in STAGES:
        raise InputError(f"Unknown stage '{stage}'; choose one of {', '.join(STAGES)}.")
    l_np, l_full, hint_ab, mask = _prepare(model, plane, points, colors)
    _, _, feats = predict_logits(model, l_full, hint_ab, mask, capture=stage)
    maps = feats[0].numpy().astype(np.float32)
    return maps, (l_np.shape[0] / maps.shape[1], l_np.shape[1] / maps.shape[2])


def _probabilities(model: Colorizer, plane, points, colors, temperature):
    l_np, l_full, hint_ab, mask = _prepare(model, plane, points, colors)
    out, _ = predict_logits(model, l_full, hint_ab, mask)
    logits, _ = split_output(out, model.bins.shape[0])
    t = model.temperature if temperature is None else float(temperature)
    return l_np, probabilities(logits, t, model.log_bias)[0]


def uncertainty(model: Colorizer, plane: np.ndarray, points=None, colors=None, temperature: float = 1.0):
    """Entropy of the predicted ab distribution per pixel, normalised to [0, 1] by log(Q).

    0 means the network is sure of one color bin, 1 that every bin is equally likely. Computed
    at the network's output resolution and resized to the plane's shape.
    """
    l_np, p = _probabilities(model, plane, points, colors, temperature)
    # the entropy that ``calm`` decoding scales chroma by (there at temperature 1)
    ent = normalized_entropy(torch.log(p.clamp_min(1e-12))[None])
    ent = F.interpolate(ent, size=l_np.shape, mode="bilinear", align_corners=False)[0, 0]
    return ent.numpy().astype(np.float32)


def suggest_colors(model: Colorizer, plane: np.ndarray, row: float, col: float, k: int = 8,
                   points=None, colors=None, min_share: float = 0.01):
    """The model's most likely colors at one pixel, as ideepcolor's palette offers them.

    Returns
    -------
    rgb : ndarray (n, 3)
        Colors in [0, 1] at the pixel's own lightness, most likely first (n <= k; bins below
        ``min_share`` probability are left out, but at least one is returned).
    prob : ndarray (n,)
        Their probabilities.
    """
    l_np, p = _probabilities(model, plane, points, colors, 1.0)
    h, w = l_np.shape
    if not (-0.5 <= row < h - 0.5 and -0.5 <= col < w - 0.5):
        raise InputError(f"The point ({row:.0f}, {col:.0f}) lies outside the image ({h} x {w}).")
    r = min(p.shape[1] - 1, int((row + 0.5) * p.shape[1] / h))
    c = min(p.shape[2] - 1, int((col + 0.5) * p.shape[2] / w))
    probs = p[:, r, c]
    top = torch.topk(probs, min(k, probs.numel()))
    keep = [i for i, v in zip(top.indices.tolist(), top.values.tolist()) if v >= min_share] or [int(top.indices[0])]
    light = float(l_np[int(round(min(max(row, 0), h - 1))), int(round(min(max(col, 0), w - 1)))])
    ab = model.bins[keep]
    lab = torch.cat([torch.full((len(keep), 1), light), ab], 1).T[:, None, :]
    rgb = lab_to_rgb_t(lab)[:, 0, :].T.clamp(0, 1).numpy()
    return rgb.astype(np.float32), probs[keep].numpy().astype(np.float32)
