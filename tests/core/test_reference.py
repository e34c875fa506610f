"""Reference palettes: the prior, chroma matching and the decoding that follows them."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_colorize import colorize
from napari_colorize.core.color import lab_to_rgb_t, rgb_to_lab
from napari_colorize.core.errors import InputError
from napari_colorize.core.modelfile import load
from napari_colorize.core.reference import match_chroma, reference_from, with_reference


def _flat_lab(l_val, a, b, shape=(40, 60)):
    lab = np.zeros((*shape, 3), np.float32)
    lab[...] = (l_val, a, b)
    rgb = lab_to_rgb_t(torch.from_numpy(lab).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    return np.clip(rgb, 0, 1)


@pytest.mark.parametrize("bad", [np.zeros((10, 10)), np.zeros((10, 10, 2)), np.zeros((0, 5, 3))])
def test_reference_must_be_rgb(bad):
    with pytest.raises(InputError, match="RGB"):
        reference_from(bad, load().bins)


def test_reference_with_nan_is_refused():
    ref = np.full((8, 8, 3), 0.5, np.float32)
    ref[2, 3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        reference_from(ref, load().bins)


def test_prior_peaks_at_the_reference_color():
    model = load()
    ref = reference_from(_flat_lab(60, -10, -45), model.bins)  # a saturated blue
    top = model.bins[int(torch.argmax(ref.log_prior))]
    assert abs(float(top[0]) + 10) <= 10 and abs(float(top[1]) + 45) <= 10
    # and chroma quantiles are those of one flat color
    assert np.allclose(ref.chroma, np.hypot(10, 45), atol=2.0)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, (1, 2, 6, 7), elements=st.floats(-100, 100, width=32)),
       st.lists(st.floats(0, 120), min_size=2, max_size=12))
def test_match_chroma_keeps_hue_and_takes_the_target_range(ab, q):
    quantiles = np.sort(np.asarray(q, np.float32))
    t = torch.from_numpy(ab)
    out = match_chroma(t, quantiles)
    c_in = torch.hypot(t[:, 0], t[:, 1])
    c_out = torch.hypot(out[:, 0], out[:, 1])
    moving = c_in > 1e-3
    assert (c_out[moving] >= quantiles[0] - 1e-3).all() and (c_out[moving] <= quantiles[-1] + 1e-3).all()
    assert (c_out[~moving] == 0).all()
    # hue (direction in ab) is kept wherever there is chroma in and out
    both = moving & (c_out > 1e-2)
    cos = (t[:, 0] * out[:, 0] + t[:, 1] * out[:, 1]) / (c_in * c_out).clamp_min(1e-6)
    assert (cos[both] > 0.999).all()


def test_match_chroma_is_rank_preserving():
    ab = torch.zeros(1, 2, 1, 5)
    ab[0, 0, 0] = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0])
    out = match_chroma(ab, np.array([10.0, 50.0], np.float32))
    c = out[0, 0, 0].numpy()
    assert np.all(np.diff(c) > 0) and c[0] == pytest.approx(10) and c[-1] == pytest.approx(50)


def test_with_reference_leaves_the_model_alone():
    model = load()
    ref_model = with_reference(model, _flat_lab(60, 40, 30))
    assert model.reference is None and ref_model.reference is not None
    assert ref_model.net is model.net  # weights shared, not copied


def _hist(rgb):
    lab = rgb_to_lab(rgb.astype(np.float32))
    h, _, _ = np.histogram2d(lab[..., 1].ravel(), lab[..., 2].ravel(), bins=8, range=[[-110, 110]] * 2)
    return h / h.sum()


def test_reference_pulls_colors_toward_its_palette():
    gray = (0.5 + 0.25 * np.sin(np.arange(96)[:, None] / 7.0) * np.cos(np.arange(128) / 9.0)).astype(np.float32)
    green = _flat_lab(55, -45, 35, shape=(50, 70))
    auto = colorize(gray)
    ref = colorize(gray, reference=green, reference_strength=1.0)
    target = _hist(green)
    tv_auto = 0.5 * np.abs(_hist(auto) - target).sum()
    tv_ref = 0.5 * np.abs(_hist(ref) - target).sum()
    assert tv_ref < tv_auto - 0.3
    # lightness is the input's either way: only chroma follows the reference
    assert np.allclose(rgb_to_lab(ref)[..., 0], rgb_to_lab(auto)[..., 0], atol=1.5)
