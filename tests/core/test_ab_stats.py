"""How colors spread over the ab plane: gamut cells used, hue entropy, the ab histogram."""

from __future__ import annotations

import numpy as np
import pytest

from napari_colorize.core import ab_stats as M


def _const(rgb, shape=(16, 16)):
    return np.broadcast_to(np.asarray(rgb, dtype=np.uint8), (*shape, 3)).copy()


def test_color_range_single_color_is_one_bin_and_full_gamut_is_all_bins():
    from napari_colorize.core.color import ab_bins

    q = len(ab_bins())
    for rgb in [(200, 40, 90), (128, 128, 128), (0, 0, 255)]:
        cr = M.color_range(_const(rgb))
        assert cr["ab_bins"] == 1 and cr["ab_share"] == pytest.approx(1 / q)
        assert cr["hue_entropy"] == 0.0
    v = np.linspace(0, 1, 64)  # every sRGB color to 1/63: each in-gamut cell holds some of them
    cube = np.stack(np.meshgrid(v, v, v, indexing="ij"), axis=-1).reshape(512, 512, 3)
    assert M.color_range(cube)["ab_share"] == pytest.approx(1.0)


def test_hue_entropy_of_two_equal_hues_is_one_bit():
    img = np.zeros((10, 10, 3), dtype=np.uint8)
    img[:5] = (220, 30, 30)  # hue about 40 degrees
    img[5:] = (30, 160, 30)  # hue about 135 degrees
    assert M.color_range(img)["hue_entropy"] == pytest.approx(1 / np.log2(36), rel=1e-9)


def test_ab_histogram_counts_every_pixel_where_its_ab_lies():
    from skimage.color import rgb2lab

    img = _const((30, 160, 30), (6, 7))
    counts, edges = M.ab_histogram(np.stack([img, img]))
    assert counts.sum() == 2 * 42 and counts.max() == 2 * 42
    a, b = rgb2lab(img[0, 0] / 255.0)[1:]
    i, j = np.unravel_index(counts.argmax(), counts.shape)
    assert edges[i] <= a < edges[i + 1] and edges[j] <= b < edges[j + 1]
