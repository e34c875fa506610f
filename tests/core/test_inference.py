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


def _disk_scene():
    import numpy as np

    yy, xx = np.mgrid[:160, :240]
    disk = (yy - 80) ** 2 + (xx - 120) ** 2 < 40**2
    return np.where(disk, 0.8, 0.25).astype(np.float32), disk


def _hint_effect(model):
    """Mean ab difference between a green and a magenta hint at the disk's center, inside and outside."""
    import numpy as np

    from napari_colorize import colorize
    from napari_colorize.core.color import rgb_to_lab

    gray, disk = _disk_scene()
    a = rgb_to_lab(colorize(gray, points=[[80, 120]], colors=[[0, 1, 0]], model=model))
    b = rgb_to_lab(colorize(gray, points=[[80, 120]], colors=[[1, 0, 1]], model=model))
    d = np.hypot(a[..., 1] - b[..., 1], a[..., 2] - b[..., 2])
    return float(d[disk].mean()), float(d[~disk].mean())


def test_a_hint_colors_its_region_and_stops_at_a_strong_edge():
    import copy

    from napari_colorize.core.modelfile import load

    base = load()
    inside, outside = _hint_effect(base)
    assert inside > 40  # the two hints give clearly different colors to the disk
    assert outside < 0.25 * inside
    # without the edge-aware weighting the network's own spread crosses the edge
    loose = copy.copy(base)
    loose.config = dict(base.config, hint_spread=0.0)
    assert _hint_effect(loose)[1] > outside + 5


def test_repeated_hint_edits_reuse_the_automatic_pass_and_never_go_stale():
    import numpy as np

    from napari_colorize import colorize
    from napari_colorize.core import inference
    from napari_colorize.core.modelfile import load

    model = load()
    calls = []
    real = inference.predict_logits

    def counting(*args, **kwargs):
        calls.append(kwargs.get("hint_ab") is None and (len(args) < 3 or args[2] is None))
        return real(*args, **kwargs)

    gray, _ = _disk_scene()
    inference._AUTO.clear()
    inference.predict_logits = counting
    try:
        first = colorize(gray, points=[[80, 120]], colors=[[0, 1, 0]], model=model)
        second = colorize(gray, points=[[82, 121]], colors=[[0, 1, 0]], model=model)
        assert calls.count(True) == 1  # the automatic pass ran once for both edits
        changed = gray.copy()
        changed[:20] = 0.6  # new content: computed again, not taken from the cache
        third = colorize(changed, points=[[82, 121]], colors=[[0, 1, 0]], model=model)
        assert calls.count(True) == 2
    finally:
        inference.predict_logits = real
    assert np.abs(first - second).max() > 1e-3  # the moved hint did change the result
    assert not np.allclose(third[:20], second[:20], atol=1e-3)


def test_hint_count_sees_a_path_as_one_hint_and_scattered_points_apart():
    import numpy as np

    from napari_colorize.core.inference import hint_count

    at = np.zeros((40, 60), bool)
    assert hint_count(at) == 0
    rr = np.arange(5, 35)
    at[rr, rr] = True  # a diagonal path: pixels touching at their corners
    assert hint_count(at) == 1
    at[2, 50] = at[30, 55] = at[38, 5] = True
    assert hint_count(at) == 4


def test_a_single_hint_ignores_the_smaller_hinted_pass_and_several_use_it(small_gray):
    import copy

    import numpy as np

    from napari_colorize import colorize
    from napari_colorize.core.modelfile import load

    small = copy.deepcopy(load())
    small.config.update(working_size=128, hint_working_size=64)
    same = copy.deepcopy(small)
    same.config["hint_working_size"] = 128
    one = ([[40, 60]], [[0.1, 0.3, 0.9]])
    two = ([[40, 60], [100, 20]], [[0.1, 0.3, 0.9], [0.9, 0.5, 0.1]])
    # one hint: exactly the pass at the working size, so the picture around it keeps its colors
    np.testing.assert_allclose(colorize(small_gray, points=one[0], colors=one[1], model=small),
                               colorize(small_gray, points=one[0], colors=one[1], model=same), atol=1e-6)
    # two separate hints: the smaller pass joins the hinted chroma
    a = colorize(small_gray, points=two[0], colors=two[1], model=small)
    b = colorize(small_gray, points=two[0], colors=two[1], model=same)
    assert np.abs(a - b).max() > 0.02
