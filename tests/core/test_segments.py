"""Color spaces and segments: superpixels, k-means, stacks with unique labels."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from skimage import color as skcolor

from napari_colorize import InputError
from napari_colorize.core import features as F


def test_color_spaces_known_values_and_round_trip(small_rgb):
    px = np.array([[[255, 0, 0], [255, 255, 255]], [[0, 0, 0], [0, 0, 255]]], np.uint8)
    hsv = F.convert_colorspace(px, "hsv")
    np.testing.assert_allclose(hsv[0, 0], (0, 1, 1), atol=1e-6)
    np.testing.assert_allclose(F.convert_colorspace(px, "lab")[0, 1], (100, 0, 0), atol=1e-2)
    np.testing.assert_allclose(F.convert_colorspace(px, "ycbcr")[0, 1], (235, 128, 128), atol=0.1)
    for space, back in (("lab", skcolor.lab2rgb), ("hsv", skcolor.hsv2rgb), ("ycbcr", skcolor.ycbcr2rgb)):
        np.testing.assert_allclose(back(F.convert_colorspace(small_rgb, space).astype(np.float64)),
                                   small_rgb / 255, atol=2e-3)
    with pytest.raises(InputError, match="Unknown color space"):
        F.convert_colorspace(px, "xyz")


def test_slic_yields_roughly_the_requested_count(small_rgb):
    counts = []
    for n in (25, 100, 200):
        lab = F.superpixels(small_rgb, "slic", n_segments=n)
        assert lab.dtype == np.int32 and lab.min() >= 1
        assert len(np.unique(lab)) == lab.max()  # sequential labels
        counts.append(lab.max())
        assert 0.5 * n <= lab.max() <= 1.5 * n
    assert counts == sorted(counts)


def test_felzenszwalb_watershed_and_kmeans(small_rgb, small_gray):
    fz = F.superpixels(small_rgb, "felzenszwalb", scale=100, min_size=30)
    assert fz.shape == small_rgb.shape[:2] and 5 < fz.max() < 500
    sizes = np.bincount(fz.ravel())[1:]
    assert sizes.min() >= 30
    ws = F.superpixels(small_gray, "watershed", n_segments=64)
    assert 40 <= ws.max() <= 64 and ws.min() >= 1
    km = F.color_kmeans(small_rgb, 3)
    assert set(np.unique(km)) == {1, 2, 3}
    light = skcolor.rgb2lab(small_rgb)[..., 0]
    means = [light[km == c].mean() for c in (1, 2, 3)]
    assert means == sorted(means)  # label 1 is the darkest cluster


def test_segment_stacks_have_unique_labels_and_report_progress(small_gray):
    stack = da.from_array(np.stack([small_gray[:64, :64], small_gray[64:, 64:]]), chunks=(1, 64, 64))
    job = F.segment_job(stack, "slic", n_segments=20)
    progress = []
    try:
        while True:
            progress.append(next(job))
    except StopIteration as stop:
        lab = stop.value
    assert progress[-1] == {"done": 2, "total": 2}
    assert lab.shape == (2, 64, 64)
    assert not set(np.unique(lab[0])) & set(np.unique(lab[1]))
