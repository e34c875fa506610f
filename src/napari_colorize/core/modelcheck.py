"""Validation of a model file's settings and weights before any network is built from them."""

from __future__ import annotations

import torch

from .arrays import check_number
from .errors import InputError, ModelLoadError
from .model import ColorNet

__all__ = ["CONFIG_RANGES", "check_config", "check_tensors", "has_regression_head"]


def has_regression_head(tensors: dict) -> bool:
    """Whether saved weights (keys ``net.*``) include a regression head."""
    return any(k.startswith("net.reg.") for k in tensors)



# decoding and architecture settings of a model card: (type, low, high), both ends included
CONFIG_RANGES = {
    "width": (int, 4, 64),
    "working_size": (int, 16, 4096),
    "temperature": (float, 1e-3, 5.0),
    "debias": (float, 0.0, 2.0),
    "vivid": (float, 0.0, 1.0),
    "tile_above": (int, 16, 10**6),
    "hint_reach": (float, 0.0, 1.0),
    "calm": (float, 0.0, 1.0),
    "neutral": (float, 0.0, 1.0),
    "hint_working_size": (int, 16, 4096),
    "hint_spread": (float, 0.0, 1.0),
    "hint_vivid": (float, 0.0, 1.0),
}


def check_config(config) -> dict:
    """The model card's settings, each of the right type and within range, or a ModelLoadError."""
    if not isinstance(config, dict) or "width" not in config:
        raise ModelLoadError("its settings are missing or not a JSON object with a 'width'")
    for key, (kind, lo, hi) in CONFIG_RANGES.items():
        if key not in config:
            continue
        v = config[key]
        try:
            check_number(key, v, lo, hi, integer=kind is int)
        except InputError:
            shown = repr(v) if len(repr(v)) < 40 else repr(v)[:37] + "..."
            raise ModelLoadError(f"setting '{key}' is {shown}; expected {kind.__name__} from {lo} to {hi}") from None
    return config


def check_tensors(tensors: dict, config: dict) -> bool:
    """Check weights against the network their card describes; returns whether it has a regression head.

    Names, shapes and dtypes come from a network built on the meta device (nothing is allocated),
    so a card that claims a huge width fails here, before any memory is spent on it.
    """
    bins, reb = tensors.get("bins"), tensors.get("rebalance")
    if bins is None or reb is None or bins.ndim != 2 or bins.shape[1] != 2 or not 2 <= bins.shape[0] <= 4096:
        raise ModelLoadError("its ab bins are missing or not a (Q, 2) table")
    if tuple(reb.shape) != (bins.shape[0],):
        raise ModelLoadError(f"rebalance has shape {tuple(reb.shape)}; expected ({bins.shape[0]},)")
    regression = has_regression_head(tensors)
    with torch.device("meta"):
        ref = ColorNet(bins.shape[0], int(config["width"]), regression=regression,
                       global_context=any(k.startswith("net.glob.") for k in tensors)).state_dict()
    want = {f"net.{k}": v for k, v in ref.items()} | {
        "bins": torch.empty(bins.shape, device="meta"), "rebalance": torch.empty(reb.shape, device="meta")}
    if set(want) != set(tensors):
        extra = sorted(set(tensors) - set(want))[:3]
        missing = sorted(set(want) - set(tensors))[:3]
        raise ModelLoadError(f"its weights do not match a width-{config['width']} network "
                             f"(unexpected {extra}, missing {missing})")
    for k, v in tensors.items():
        if tuple(v.shape) != tuple(want[k].shape) or v.dtype != want[k].dtype:
            raise ModelLoadError(f"'{k}' is {v.dtype} {tuple(v.shape)}; expected "
                                 f"{want[k].dtype} {tuple(want[k].shape)}")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ModelLoadError(f"'{k}' holds NaN or infinite values")
    if not (reb > 0).all() or bins.abs().max() > 128:
        raise ModelLoadError("its ab bins or rebalancing weights are out of range")
    if any(not (v >= 0).all() for k, v in tensors.items() if k.endswith("running_var")):
        raise ModelLoadError("a batch-norm variance is negative")
    # trained weights stay far below this; beyond it activations overflow float32 on real images
    big = [k for k, v in tensors.items() if k.startswith("net.") and v.is_floating_point()
           and v.abs().max() > (1e6 if k.endswith("running_var") else 1e4)]
    if big:
        raise ModelLoadError(f"'{big[0]}' holds implausibly large values")
    return regression
