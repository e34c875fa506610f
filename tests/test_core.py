"""Core colorizer: color conversions, quantization, hints, luminance, shapes, dask, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from napari_colorize import InputError, colorize
from napari_colorize.core.color import ab_bins, gray_to_l, lab_to_rgb_in_gamut, rgb_to_lab, to_unit_range
from napari_colorize.core.hints import check_hints, rasterize_hints, simulate_hints
from napari_colorize.core.inference import guided_upsample, work_shape
from napari_colorize.core.model import annealed_mean, rebalance_weights, soft_encode


# -- color ---------------------------------------------------------------------------------------
def test_lab_matches_scikit_image_and_round_trips():
    rng = np.random.default_rng(0)
    rgb = rng.random((32, 32, 3)).astype(np.float32)
    lab = rgb_to_lab(rgb)
    np.testing.assert_allclose(lab, rgb2lab(rgb), atol=0.05)
    back = lab_to_rgb_in_gamut(torch.from_numpy(lab).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(back, rgb, atol=1e-3)


def test_gray_to_l_matches_lab_of_gray_rgb():
    g = np.linspace(0, 1, 101, dtype=np.float32)
    expected = rgb2lab(np.repeat(g[:, None, None], 3, axis=2))[..., 0].ravel()
    np.testing.assert_allclose(gray_to_l(g), expected, atol=0.02)


def test_gamut_fix_keeps_lightness_of_out_of_gamut_colors():
    lab = torch.tensor([[70.0, 90.0, 50.0], [30.0, -100.0, 100.0], [50.0, 0.0, 0.0]]).T[:, None, :]
    rgb = lab_to_rgb_in_gamut(lab.clone())[:, 0, :].T.numpy()
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    np.testing.assert_allclose(rgb2lab(rgb[None])[0, :, 0], [70.0, 30.0, 50.0], atol=0.3)


@pytest.mark.parametrize(
    "arr, lo, hi",
    [
        (np.array([[0, 255]], np.uint8), 0.0, 1.0),
        (np.array([[0.2, 0.4]], np.float32), 0.2, 0.4),  # float already in [0, 1] is kept
        (np.arange(1000, dtype=np.uint16).reshape(10, 100) * 60, 0.0, 1.0),
    ],
)
def test_to_unit_range(arr, lo, hi):
    out = to_unit_range(arr)
    assert out.dtype == np.float32 and out.shape == arr.shape
    assert out.min() == pytest.approx(lo, abs=1e-6) and out.max() == pytest.approx(hi, abs=1e-6)


def test_to_unit_range_is_robust_to_a_hot_pixel():
    arr = np.tile(np.arange(100, dtype=np.uint16), (100, 1))
    arr[0, 0] = 60000
    out = to_unit_range(arr)
    assert out[50, 50] > 0.4  # a linear stretch to the hot pixel would give 0.0008


# -- quantization and decoding ------------------------------------------------------------------------
def test_ab_bins_are_in_gamut_cells():
    bins = ab_bins()
    assert 200 < len(bins) <= 441
    assert (np.abs(bins) <= 110).all()
    assert any((bins == [0.0, 0.0]).all(axis=1))
    # a saturated sRGB primary falls in a kept cell
    for rgb in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]):
        ab = rgb2lab(np.array([[rgb]], float))[0, 0, 1:]
        assert np.min(np.abs(bins - ab).max(axis=1)) <= 5.0 + 1e-6


def test_soft_encoding_and_annealed_mean_decode_a_bin_center():
    bins = torch.from_numpy(ab_bins())
    target = bins[[10, 100]].T.reshape(1, 2, 1, 2)
    idx, w = soft_encode(target, bins)
    assert torch.allclose(w.sum(1), torch.ones(1, 1, 2))
    assert idx[0, 0, 0, 0] == 10 and idx[0, 0, 0, 1] == 100
    logits = torch.full((1, len(bins), 1, 2), -20.0)
    logits[0, 10, 0, 0] = logits[0, 100, 0, 1] = 20.0
    ab = annealed_mean(logits, bins, 0.38)
    assert torch.allclose(ab, target, atol=1e-3)


def test_temperature_moves_from_mode_to_mean():
    bins = torch.tensor([[0.0, 0.0], [60.0, 0.0]])
    logits = torch.log(torch.tensor([0.6, 0.4])).reshape(1, 2, 1, 1)
    mean = annealed_mean(logits, bins, 1.0)[0, 0, 0, 0]
    cold = annealed_mean(logits, bins, 0.05)[0, 0, 0, 0]
    assert mean == pytest.approx(24.0, abs=1e-4)
    assert float(cold) < 0.1


def test_debiasing_undoes_the_rebalancing_weights():
    bins = torch.tensor([[0.0, 0.0], [50.0, 0.0]])
    w = torch.tensor([0.5, 4.0])
    # a network trained with weights w predicts roughly w * p; log-bias -log(w) recovers p
    p = torch.tensor([0.8, 0.2])
    biased = torch.log(w * p / (w * p).sum()).reshape(1, 2, 1, 1)
    ab = annealed_mean(biased, bins, 1.0, -torch.log(w))
    assert float(ab[0, 0, 0, 0]) == pytest.approx(10.0, abs=1e-4)
    assert float(annealed_mean(biased, bins, 1.0)[0, 0, 0, 0]) > 30.0


def test_rebalancing_favours_rare_bins():
    prior = torch.tensor([0.7, 0.2, 0.09, 0.01])
    w = rebalance_weights(prior, 0.5)
    assert float((prior * w).sum()) == pytest.approx(1.0, abs=1e-5)
    assert (torch.diff(w) > 0).all()


# -- hints ------------------------------------------------------------------------------------------
def test_simulated_hints_reveal_patch_means():
    rng = np.random.default_rng(1)
    ab = torch.randn(8, 2, 32, 32) * 20
    hint_ab, mask = simulate_hints(ab, rng, p_none=0.0)
    assert mask.sum() > 0 and set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(hint_ab[mask.expand_as(hint_ab) == 0] == 0)
    none_ab, none_mask = simulate_hints(ab, np.random.default_rng(1), p_none=1.0)
    assert none_mask.sum() == 0


def test_rasterized_hint_lands_at_the_scaled_position_with_the_color_ab():
    pts = np.array([[100.0, 300.0]], np.float32)
    col = np.array([[0.9, 0.1, 0.1]], np.float32)
    hint_ab, mask = rasterize_hints(pts, col, (400, 400), (100, 100))
    r, c = 25, 75
    assert mask[0, 0, r, c] == 1 and mask.sum() == 9
    np.testing.assert_allclose(hint_ab[0, :, r, c].numpy(), rgb2lab(col[None])[0, 0, 1:], atol=0.1)


def test_check_hints_drops_outside_points_and_rejects_bad_colors():
    pts, cols, dropped = check_hints([[5, 5], [50, 5], [-3, 2]], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], (10, 10))
    assert dropped == 2 and len(pts) == 1
    with pytest.raises(InputError, match="in \\[0, 1\\]"):
        check_hints([[1, 1]], [[255, 0, 0]], (10, 10))
    with pytest.raises(InputError, match="NaN"):
        check_hints([[np.nan, 1]], [[1, 0, 0]], (10, 10))
    with pytest.raises(InputError, match="without colors"):
        check_hints([[1, 1]], None, (10, 10))


# -- guided upsampling -------------------------------------------------------------------------------
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


# -- colorize: luminance, shapes, dtypes -----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_colorize_keeps_luminance_and_returns_float_rgb(model, gray_photo, dtype):
    img = gray_photo[::2, ::2]
    if dtype is np.uint16:
        img = img.astype(np.uint16) * 257
    elif dtype is np.float32:
        img = img.astype(np.float32) / 255.0
    before = img.copy()
    out = colorize(img, model=model)
    assert out.shape == img.shape + (3,) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    l_in = gray_to_l(to_unit_range(img))
    l_out = rgb2lab(out)[..., 0]
    assert np.abs(l_out - l_in).max() < 0.6
    np.testing.assert_array_equal(img, before)  # input untouched


def test_colorize_rgb_input_uses_its_lightness(model, photo):
    img = photo[::4, ::4]
    out = colorize(img, model=model)
    np.testing.assert_allclose(rgb2lab(out)[..., 0], rgb2lab(img)[..., 0], atol=0.6)


def test_colorize_output_has_color(model, gray_photo):
    out = colorize(gray_photo, model=model)
    chroma = np.hypot(*np.moveaxis(rgb2lab(out)[..., 1:], -1, 0))
    assert chroma.mean() > 3.0


def test_stacks_are_colorized_plane_by_plane(model, gray_photo):
    a, b = gray_photo[:64, :64], gray_photo[200:264, 200:264]
    stack = np.stack([a, b])
    out = colorize(stack, model=model)
    assert out.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(out[1], colorize(b, model=model), atol=1e-5)


def test_hints_in_stacks_apply_to_their_plane(model, gray_photo):
    stack = np.stack([gray_photo[:128, :128]] * 2)
    pts = np.array([[1, 64, 64]])
    out = colorize(stack, points=pts, colors=[[0.0, 0.8, 0.0]], model=model)
    assert not np.allclose(out[0], out[1], atol=1e-3)
    np.testing.assert_allclose(out[0], colorize(stack[0], model=model), atol=1e-5)


def test_a_hint_pulls_the_color_toward_it(model, gray_photo):
    # a mid-gray, flat spot: near black or white almost no chroma is in gamut, whatever the hint
    lum = gray_photo.astype(float)
    flat = np.abs(lum - 140) + 4 * np.abs(lum - np.roll(lum, 3, axis=0)) + 4 * np.abs(lum - np.roll(lum, 3, axis=1))
    r, c = np.unravel_index(np.argmin(flat[100:-100, 100:-100]), (312, 312))
    r, c = r + 100, c + 100
    green = np.array([[0.1, 0.8, 0.1]])
    target_ab = rgb2lab(green[None])[0, 0, 1:]
    free = rgb2lab(colorize(gray_photo, model=model))[r, c, 1:]
    hinted = rgb2lab(colorize(gray_photo, points=[[r, c]], colors=green, model=model))[r, c, 1:]
    assert np.linalg.norm(hinted - target_ab) < 0.5 * np.linalg.norm(free - target_ab)


def test_dask_in_dask_out_and_lazy(model, gray_photo):
    da = pytest.importorskip("dask.array")
    calls = []

    def source(block):
        if block.size:  # dask probes with empty arrays to infer the output type
            calls.append(1)
        return block

    stack = da.from_array(np.stack([gray_photo[:96, :96], gray_photo[100:196, 100:196]]), chunks=(1, 48, 48))
    lazy = colorize(stack.map_blocks(source, dtype=stack.dtype), model=model)
    assert isinstance(lazy, da.Array) and lazy.shape == (2, 96, 96, 3) and lazy.dtype == np.float32
    assert calls == []  # nothing computed yet
    plane = lazy[1].compute()
    np.testing.assert_allclose(plane, colorize(gray_photo[100:196, 100:196], model=model), atol=1e-5)


# -- bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "img, match",
    [
        (np.zeros((0, 10)), "empty"),
        (np.zeros((1, 1)), "too small"),
        (np.zeros((5, 5, 4)), "RGBA"),
        (np.array([[0.0, np.nan], [1.0, 0.5]]), "NaN"),
        (np.array([[0.0, np.inf], [1.0, 0.5]]), "NaN or infinite"),
        (np.zeros(7), "2D"),
    ],
)
def test_bad_images_give_clear_errors(model, img, match):
    with pytest.raises(InputError, match=match):
        colorize(img, model=model)


def test_constant_image_is_colorized_without_error(model):
    out = colorize(np.full((40, 40), 128, np.uint8), model=model)
    assert np.isfinite(out).all()
    assert np.ptp(rgb2lab(out)[..., 0]) < 0.5  # still one lightness


def test_points_outside_the_image_are_ignored_with_a_warning(model, gray_photo):
    img = gray_photo[:64, :64]
    with pytest.warns(UserWarning, match="outside"):
        out = colorize(img, points=[[500, 500]], colors=[[1, 0, 0]], model=model)
    np.testing.assert_allclose(out, colorize(img, model=model), atol=1e-6)


def test_temperature_out_of_range(model, gray_photo):
    with pytest.raises(InputError, match="(?i)temperature"):
        colorize(gray_photo[:16, :16], model=model, temperature=0)


def test_lab_round_trip_of_in_gamut_photo(photo):
    rgb = photo[::8, ::8].astype(np.float32) / 255
    np.testing.assert_allclose(lab2rgb(rgb_to_lab(rgb)), rgb, atol=2e-3)


def _tiny_model(regression: bool):
    from napari_colorize.core.modelfile import Colorizer

    torch.manual_seed(0)
    bins = torch.from_numpy(ab_bins())
    return Colorizer.new(bins, width=4, working_size=64, regression=regression)


def test_regression_head_is_split_from_the_logits_and_starts_at_gray():
    from napari_colorize.core.model import decode, split_output

    m = _tiny_model(regression=True)
    m.net.eval()
    out = m.net(torch.randn(2, 4, 32, 32))
    q = m.bins.shape[0]
    assert out.shape == (2, q + 2, 16, 16)
    logits, ab = split_output(out, q)
    assert logits.shape[1] == q and ab.shape[1] == 2
    assert torch.all(ab == 0)  # zero-initialised last layer: the gray baseline
    assert torch.all(decode(out, m.bins, 0.5) == 0)
    # vivid 1 is the distribution's annealed mean, vivid 0.5 half way there
    full = decode(out, m.bins, 0.5, vivid=1.0)
    assert torch.allclose(full, annealed_mean(logits, m.bins, 0.5))
    assert torch.allclose(decode(out, m.bins, 0.5, vivid=0.5), 0.5 * full)
    # a bin-only network is decoded as before
    bare = _tiny_model(regression=False).net.eval()
    out2 = bare(torch.randn(1, 4, 32, 32))
    assert split_output(out2, q)[1] is None
    assert torch.allclose(decode(out2, m.bins, 0.5), annealed_mean(out2, m.bins, 0.5))


def test_adding_a_regression_head_keeps_the_bin_head(tmp_path):
    from napari_colorize.core.model import split_output
    from napari_colorize.core.modelfile import load

    m = _tiny_model(regression=False)
    m.net.eval()
    x = torch.randn(1, 4, 32, 32)
    before = m.net(x)
    m.add_regression_head()
    m.net.eval()
    logits, ab = split_output(m.net(x), m.bins.shape[0])
    assert torch.allclose(logits, before, atol=1e-6)
    assert ab is not None and m.regression
    with torch.no_grad():
        m.net.reg[-1].bias.fill_(0.1)
    back = load(m.save(tmp_path / "reg"))
    assert back.regression
    assert torch.allclose(back.net(x), m.net(x), atol=1e-6)


def test_regression_loss_trains_the_regression_head():
    from napari_colorize.core.model import split_output
    from napari_colorize.core.training import loss_fn

    rng = np.random.default_rng(0)
    rgb = np.zeros((4, 32, 32, 3), np.uint8)
    rgb[..., 0] = 200  # saturated red: the regressed ab must move away from zero
    m = _tiny_model(regression=True)
    opt = torch.optim.Adam(m.net.parameters(), lr=1e-2)
    m.net.train()
    for _ in range(30):
        loss = loss_fn(m, rgb, rng)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.net.eval()
    x = torch.zeros(1, 4, 32, 32)
    _, ab = split_output(m.net(x), m.bins.shape[0])
    assert ab[:, 0].mean() > 10  # red has a > 0 in Lab


def test_calm_pulls_uncertain_pixels_toward_neutral_unless_hinted():
    from napari_colorize.core.color import ab_bins
    from napari_colorize.core.modelfile import Colorizer

    bins = torch.from_numpy(ab_bins())
    m = Colorizer.new(bins, regression=True, width=8)
    q = bins.shape[0]
    out = torch.zeros(1, q + 2, 2, 2)
    out[:, q:] = 40.0 / 110.0  # regressed ab of 40
    out[0, 0, 0, 0] = 50.0  # one confident pixel; the others are uniform (entropy 1)
    m.config.update(vivid=0.0, calm=0.5)
    ab = m.decode(out)
    assert torch.allclose(ab[0, :, 0, 0], torch.tensor([40.0, 40.0]), atol=0.1)  # sure: kept
    assert torch.allclose(ab[0, :, 1, 1], torch.tensor([20.0, 20.0]), atol=0.1)  # unsure: halved
    assert torch.allclose(m.decode(out, hinted=True), torch.full((1, 2, 2, 2), 40.0))


def test_windows_share_the_context_of_the_whole_plane(model, photo):
    from napari_colorize.core.model import encode_input

    assert model.net.glob is not None  # the bundled model has a global branch
    l_chan = torch.from_numpy(rgb_to_lab(photo[::4, ::4] / 255.0)[..., 0].copy())[None, None]
    x = encode_input(l_chan, torch.zeros(1, 2, 128, 128), torch.zeros(1, 1, 128, 128))
    with torch.no_grad():
        whole = model.net(x)
        ctx = model.net.context(x)
        assert torch.allclose(model.net(x, context=ctx), whole, atol=1e-5)
        # a window given the whole plane's context differs from the window pooling only itself
        win, win_own = model.net(x[..., :64], context=ctx), model.net(x[..., :64])
    assert (win - win_own).abs().max() > 1e-2
