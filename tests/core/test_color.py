"""Lab conversions, the gamut fix, the intensity normaliser and the quantized ab gamut."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from napari_colorize.core.color import ab_bins, gray_to_l, lab_to_rgb_in_gamut, rgb_to_lab, to_unit_range


def test_lab_matches_scikit_image_and_round_trips():
    rng = np.random.default_rng(0)
    rgb = rng.random((32, 32, 3)).astype(np.float32)
    lab = rgb_to_lab(rgb)
    np.testing.assert_allclose(lab, rgb2lab(rgb), atol=0.05)
    back = lab_to_rgb_in_gamut(torch.from_numpy(lab).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(back, rgb, atol=1e-3)


def test_lab_round_trip_of_in_gamut_photo(photo):
    rgb = photo[::8, ::8].astype(np.float32) / 255
    np.testing.assert_allclose(lab2rgb(rgb_to_lab(rgb)), rgb, atol=2e-3)


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


def test_ab_bins_are_in_gamut_cells():
    bins = ab_bins()
    assert 200 < len(bins) <= 441
    assert (np.abs(bins) <= 110).all()
    assert any((bins == [0.0, 0.0]).all(axis=1))
    # a saturated sRGB primary falls in a kept cell
    for rgb in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]):
        ab = rgb2lab(np.array([[rgb]], float))[0, 0, 1:]
        assert np.min(np.abs(bins - ab).max(axis=1)) <= 5.0 + 1e-6
