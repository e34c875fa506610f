"""The Canny steps: gradients, non-maximum suppression, hysteresis, color gradient, dask."""

from __future__ import annotations

import dask.array as da
import numpy as np
from skimage import color as skcolor
from skimage import data as skdata

from napari_colorize.core import features as F


def test_gradient_direction_on_ramps():
    down = np.tile(np.linspace(0, 1, 32, dtype=np.float32)[:, None], (1, 32))
    for op in ("sobel", "scharr"):
        mag, d = F.gradient(down, op, normalize=False)
        np.testing.assert_allclose(mag[8:24, 8:24], 1 / 31, rtol=1e-3)
        np.testing.assert_allclose(d[8:24, 8:24], np.pi / 2, atol=1e-4)
    mag, d = F.gradient(down.T[:, ::-1].copy(), normalize=False)  # brighter to the left
    np.testing.assert_allclose(np.abs(d[8:24, 8:24]), np.pi, atol=1e-4)


def test_nms_gives_one_pixel_wide_edges_on_a_blurred_step():
    img = np.zeros((48, 48), np.float32)
    img[:, 24:] = 1.0
    img[30:, :] = np.where(np.arange(48) >= 20, 1.0, 0.0)  # a second, shifted step below
    steps = F.canny_steps(img, sigma=2.0)
    assert list(steps) == list(F.STEPS)
    assert (steps["gradient magnitude"] > 0).sum(1)[10] > 3  # the blurred edge is wide
    nms = steps["nms"] > 0
    rows = np.r_[6:24, 36:44]
    assert (nms[rows].sum(1) == 1).all()
    assert set(np.nonzero(nms[10])[0]) <= {23, 24} and set(np.nonzero(nms[40])[0]) <= {19, 20}
    assert steps["canny"].dtype == bool and (steps["canny"][rows].sum(1) == 1).all()


def test_hysteresis_keeps_weak_edges_connected_to_strong_ones():
    nms = np.zeros((10, 20), np.float32)
    nms[5, 2:10] = [1.0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]  # weak tail on a strong pixel
    nms[2, 14:18] = 0.3  # isolated weak segment
    edges = F.hysteresis(nms, 0.2, 0.5)
    assert edges[5, 2:10].all() and not edges[2].any()


def test_color_gradient_sees_an_isoluminant_edge():
    img = np.zeros((32, 32, 3), np.float32)
    img[:, :16] = skcolor.lab2rgb(np.array([[[60.0, 60, 40]]]))[0, 0]  # red and green of one L*
    img[:, 16:] = skcolor.lab2rgb(np.array([[[60.0, -40, 40]]]))[0, 0]
    gray_mag, _ = F.gradient(F.to_gray(img, "lab"), normalize=False)
    mag, d = F.color_gradient(img)
    assert mag[:, 15:17].min() > 10 * gray_mag[:, 15:17].max()
    np.testing.assert_allclose(np.cos(d[10, 15:17]) ** 2, 1.0, atol=1e-4)  # across the columns


def test_canny_on_dask_stays_lazy_and_matches_numpy(small_gray):
    stack = np.stack([small_gray, small_gray[:, ::-1]])
    lazy = F.canny_steps(da.from_array(stack, chunks=(1, 64, 64)), sigma=1.5)
    eager = F.canny_steps(stack, sigma=1.5)
    for k in F.STEPS:
        assert isinstance(lazy[k], da.Array) and lazy[k].shape == eager[k].shape
    np.testing.assert_allclose(lazy["nms"][1].compute(), eager["nms"][1], atol=1e-6)
    assert (lazy["canny"].compute() == eager["canny"]).all()
    assert isinstance(F.resize(da.from_array(stack), 0.5), da.Array)
    assert isinstance(F.to_gray(da.from_array(np.stack([skdata.astronaut()[:32, :32]] * 2))), da.Array)
