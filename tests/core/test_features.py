"""Feature layers, napari-free, all through ``core.features``: bad input, constant images, inputs untouched."""

from __future__ import annotations

import numpy as np
import pytest

from napari_colorize import InputError
from napari_colorize.core import features as F


@pytest.mark.parametrize("bad, match", [
    (np.zeros((8, 8, 4), np.uint8), "RGBA"),
    (np.full((8, 8), np.nan, np.float32), "NaN"),
    (np.zeros((0, 8), np.uint8), "empty"),
    (np.zeros((1, 8), np.uint8), "too small"),
    (np.zeros((8,), np.uint8), "at least 2 dimensions"),
    (np.array([["a", "b"], ["c", "d"]]), "Unsupported"),
])
def test_bad_images_raise_clear_errors(bad, match):
    for fn in (lambda x: F.smooth(x, 1.0), lambda x: F.canny_steps(x), lambda x: F.superpixels(x),
               lambda x: F.resize(x, 0.5), lambda x: F.normalize(x)):
        with pytest.raises(InputError, match=match):
            fn(bad)


def test_constant_images_missing_labels_and_bad_parameters(l_shape):
    flat = np.full((16, 16), 3, np.uint8)
    with pytest.raises(InputError, match="constant"):
        F.superpixels(flat)
    with pytest.raises(InputError, match="constant"):
        F.color_kmeans(flat)
    assert not F.canny_steps(flat)["canny"].any()
    lab = l_shape(64)
    with pytest.raises(InputError, match="no pixels"):
        F.match_shapes(lab, 9)
    with pytest.raises(InputError, match="at least"):
        F.match_shapes(lab, np.zeros(lab.shape, bool))
    with pytest.raises(InputError, match="2D plane"):
        F.match_shapes(np.stack([lab, lab]), 1)
    with pytest.raises(InputError, match="Thresholds"):
        F.canny_steps(lab.astype(np.float32), low=0.5, high=0.2)
    with pytest.raises(InputError, match="factor"):
        F.resize(lab.astype(np.float32), -1)
    with pytest.raises(InputError, match="needs an RGB"):
        F.convert_colorspace(lab.astype(np.float32))


def test_inputs_are_not_modified(small_rgb):
    before = small_rgb.copy()
    F.canny_steps(small_rgb)
    F.superpixels(small_rgb, "slic", n_segments=10)
    F.normalize(small_rgb)
    assert (small_rgb == before).all()
