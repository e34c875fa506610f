"""One plane through the network: working size and lightness-guided upsampling."""

from __future__ import annotations

import torch

from napari_colorize.core.inference import guided_upsample, work_shape


def test_guided_upsampling_stops_chroma_at_lightness_edges():
    size, low = 1024, 64
    l_full = torch.full((1, 1, size, size), 30.0)
    l_full[..., 531:] = 80.0  # an edge that is not on the low-res grid
    l_low = torch.nn.functional.interpolate(l_full, size=(low, low), mode="area")
    ab_low = torch.zeros((1, 2, low, low))
    ab_low[:, 0] = torch.where(l_low[0, 0] > 55, -40.0, 40.0)  # a stays with its side of the edge
    guided = guided_upsample(ab_low, l_low, l_full)[0, 0, 512]
    plain = torch.nn.functional.interpolate(ab_low, size=(size, size), mode="bilinear")[0, 0, 512]
    # columns whose chroma is more than 25% off its side's value: the bleed width
    truth = torch.where(torch.arange(size) >= 531, -40.0, 40.0)
    bleed_guided = int(((guided - truth).abs() > 10).sum())
    bleed_plain = int(((plain - truth).abs() > 10).sum())
    assert bleed_guided <= 6  # well under one low-res pixel (16 px here)
    assert bleed_plain >= 2 * max(1, bleed_guided)


def test_work_shape_never_upscales_and_is_a_multiple_of_8():
    assert work_shape((64, 64), 256) == (64, 64)
    assert work_shape((2000, 1000), 256) == (256, 128)
    assert work_shape((30, 21), 256) == (32, 24)
