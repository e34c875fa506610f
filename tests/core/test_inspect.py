"""Looking inside the CNN: feature maps, uncertainty, suggested colors."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab

from napari_colorize import InputError
from napari_colorize.core.inspect import feature_maps, suggest_colors, uncertainty


@pytest.mark.parametrize("stage, down", [("enc1", 1), ("enc2", 2), ("enc4", 8), ("dec2", 2)])
def test_feature_maps_have_the_stage_resolution(model, gray_photo, stage, down):
    img = gray_photo[:120, :96]  # inside the working size: maps at the stage's own resolution
    maps, scale = feature_maps(model, img, stage)
    assert maps.ndim == 3 and maps.shape[0] == model.net.stages[stage][-1][0].out_channels
    assert maps.shape[1:] == (120 // down, 96 // down)
    np.testing.assert_allclose(scale, (down, down))
    assert np.isfinite(maps).all() and maps.std() > 0


def test_unknown_stage_is_a_clear_error(model, gray_photo):
    with pytest.raises(InputError, match="Unknown stage"):
        feature_maps(model, gray_photo, "enc9")


def test_uncertainty_is_normalised_and_drops_at_a_hint(model, gray_photo):
    img = gray_photo[:256, :256]
    u = uncertainty(model, img)
    assert u.shape == img.shape and u.dtype == np.float32
    assert 0.0 <= u.min() and u.max() <= 1.0 and u.std() > 0
    hinted = uncertainty(model, img, points=[[128, 128]], colors=[[0.8, 0.1, 0.1]])
    assert hinted[124:133, 124:133].mean() < u[124:133, 124:133].mean()


def test_suggested_colors_are_sorted_and_keep_the_pixel_lightness(model, gray_photo):
    rgb, prob = suggest_colors(model, gray_photo, 300, 200, k=8)
    assert 1 <= len(rgb) <= 8 and rgb.shape[1] == 3
    assert (np.diff(prob) <= 1e-6).all() and prob.sum() <= 1.0 + 1e-5
    l_pix = rgb2lab(np.repeat(gray_photo[300, 200].astype(float)[None, None, None] / 255, 3, 2))[0, 0, 0]
    assert np.abs(rgb2lab(rgb[None])[0, :, 0] - l_pix).max() < 3.0  # gamut clipping may shift a little
    with pytest.raises(InputError, match="outside"):
        suggest_colors(model, gray_photo, 9999, 0)
