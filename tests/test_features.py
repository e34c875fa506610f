"""Feature layers, napari-free: preprocessing, the Canny steps, color spaces, segments, shapes."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from skimage import color as skcolor
from skimage import data as skdata
from skimage import transform

from napari_colorize import InputError
from napari_colorize.core import features as F


@pytest.fixture(scope="module")
def small_rgb():
    return skdata.astronaut()[::4, ::4].copy()  # 128 x 128 uint8


@pytest.fixture(scope="module")
def small_gray(small_rgb):
    return (skcolor.rgb2gray(small_rgb) * 255).astype(np.uint8)


def _l_shape(size=128):
    lab = np.zeros((size, size), np.int32)
    lab[30:80, 30:48] = 1
    lab[62:80, 48:90] = 1
    return lab


# -- preprocessing -----------------------------------------------------------------------------------
def test_resize_by_factor_and_to_size_keeps_range_and_transform(small_gray):
    half = F.resize(small_gray, 0.5)
    assert half.shape == (64, 64) and half.dtype == np.float32
    assert 0 <= half.min() and half.max() <= 255 and abs(half.mean() - small_gray.mean()) < 3
    out = F.resize(np.stack([small_gray, small_gray[::-1]]), size=(40, 30))
    assert out.shape == (2, 40, 30)
    np.testing.assert_allclose(out[1], F.resize(small_gray[::-1], size=(40, 30)), atol=1e-4)
    scale, translate = F.resize_transform((128, 128), (64, 64), (1.0, 2.0), (0.0, 10.0))
    np.testing.assert_allclose(scale, (2.0, 4.0))
    np.testing.assert_allclose(translate, (0.5, 11.0))  # output pixel 0 covers input pixels 0 and 1


def test_resize_anti_aliases_a_checkerboard():
    board = (np.indices((63, 63)).sum(0) % 2).astype(np.float32)
    assert F.resize(board, 1 / 3).shape == (21, 21)
    assert F.resize(board, 1 / 3).std() < 0.05  # the pattern is too fine to survive: uniform gray
    assert F.resize(board, 1 / 3, anti_aliasing=False).std() > 0.3  # aliased into a coarse board


def test_rotate_and_flip(small_rgb):
    img = np.zeros((40, 60), np.float32)
    img[5:10, 40:55] = 1.0  # a bar in the upper right
    r = F.rotate(img, 90)
    assert r.shape == img.shape
    big = F.rotate(img, 45, expand=True)
    assert big.shape[0] > 40 and big.shape[1] > 60
    r90 = F.rotate(np.ones((40, 60), np.float32), 90, expand=True)
    assert r90.shape == (60, 40)
    # counter-clockwise: the upper right bar moves to the upper left (as np.rot90)
    np.testing.assert_allclose(r90 * 0 + F.rotate(img, 90, expand=True), np.rot90(img), atol=1e-5)
    assert (F.flip(small_rgb, "horizontal") == small_rgb[:, ::-1]).all()
    assert (F.flip(small_rgb, "vertical") == small_rgb[::-1]).all()
    assert F.flip(small_rgb, "vertical").dtype == np.uint8


def test_grayscale_methods_on_known_colors():
    px = np.array([[[255, 0, 0], [0, 255, 0]], [[255, 255, 255], [0, 0, 0]]], np.uint8)
    np.testing.assert_allclose(F.to_gray(px, "luma709"), [[0.2126, 0.7152], [1, 0]], atol=1e-5)
    np.testing.assert_allclose(F.to_gray(px, "mean"), [[1 / 3, 1 / 3], [1, 0]], atol=1e-5)
    np.testing.assert_allclose(F.to_gray(px, "lab"), [[0.5324, 0.8774], [1, 0]], atol=2e-3)
    with pytest.raises(InputError, match="already grayscale"):
        F.to_gray(px[..., 0])


def test_smooth_and_normalize(small_gray):
    s = F.smooth(small_gray, 2.0)
    assert s.shape == small_gray.shape and s.std() < small_gray.std()
    assert abs(s.mean() - small_gray.mean()) < 1
    u16 = (small_gray.astype(np.uint16) * 200 + 1000)
    u16[0, 0] = 65535  # a hot pixel
    n = F.normalize(u16, 1, 99)
    assert n.min() == 0 and n.max() == 1 and np.median(n) > 0.2
    ref = F.normalize(small_gray, 1, 99)
    assert np.abs(n - ref)[1:, 1:].max() < 0.02  # the same picture, whatever the dtype
    with pytest.raises(InputError, match="constant"):
        F.normalize(np.full((8, 8), 7, np.uint16))


# -- edges -------------------------------------------------------------------------------------------
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


# -- color spaces and segments -----------------------------------------------------------------------
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


# -- shapes ------------------------------------------------------------------------------------------
def test_shape_descriptors_on_known_shapes():
    lab = np.zeros((100, 100), np.int32)
    yy, xx = np.mgrid[:100, :100]
    lab[(yy - 30) ** 2 + (xx - 30) ** 2 < 15**2] = 1  # a disc
    lab[60:70, 10:90] = 2  # a long bar
    lab[75:95, 60:95] = 3
    lab[80:90, 70:85] = 0  # a frame: not convex
    t = F.shape_descriptors(lab)
    assert list(t["index"]) == [1, 2, 3] and len({len(v) for v in t.values()}) == 1
    assert {"area", "perimeter", "eccentricity", "solidity", "circularity", "hu_0", "hu_6"} <= set(t)
    assert t["area"][1] == 800 and t["circularity"][0] > 0.85 > t["circularity"][1]
    assert t["eccentricity"][0] < 0.2 < 0.9 < t["eccentricity"][1]
    assert t["solidity"][2] < 0.9 < t["solidity"][0]
    t3 = F.shape_descriptors(np.stack([lab, np.where(lab == 2, 7, 0)]))
    assert list(t3["plane"]) == [0, 0, 0, 1] and list(t3["index"]) == [1, 2, 3, 7]


def test_hu_moments_are_invariant_to_rotation_and_scale():
    lab = _l_shape()
    base = F.log_hu([F.shape_descriptors(lab)[f"hu_{i}"][0] for i in range(7)])
    for angle, scale in ((37, 1.0), (90, 1.0), (0, 0.6), (120, 1.3)):
        moved = transform.rescale(transform.rotate(lab.astype(float), angle, resize=True, order=0), scale,
                                  order=0) > 0.5
        hu = F.log_hu([F.shape_descriptors(moved.astype(np.int32))[f"hu_{i}"][0] for i in range(7)])
        np.testing.assert_allclose(hu[:4], base[:4], rtol=0.05)
    disc = np.zeros((128, 128), np.int32)
    disc[np.hypot(*np.mgrid[-64:64, -64:64]) < 30] = 1
    d_hu = F.log_hu([F.shape_descriptors(disc)[f"hu_{i}"][0] for i in range(7)])
    assert np.abs(d_hu[:2] - base[:2]).max() > 0.3  # ... but tell an L from a disc


def test_matching_ranks_a_rotated_copy_first():
    canvas = np.zeros((128, 128), np.int32)
    shape = _l_shape()[28:82, 28:92] > 0  # 54 x 64
    canvas[:54, :64][shape] = 1
    rot = transform.rescale(transform.rotate(shape.astype(float), 70, resize=True, order=0), 0.8, order=0) > 0.5
    h, w = rot.shape
    canvas[128 - h:, 128 - w:][rot] = 2
    yy, xx = np.mgrid[:128, :128]
    canvas[(yy - 100) ** 2 + (xx - 25) ** 2 < 14**2] = 3  # disc
    canvas[5:20, 75:125] = 4  # rectangle
    canvas[25:45, 100:120] = 5  # square
    ids, dist = F.match_shapes(canvas, 1)
    assert ids[0] == 2 and 1 not in ids and (np.diff(dist) >= 0).all()
    for method in F.MATCH_METHODS:
        assert F.match_shapes(canvas, 1, method=method)[0][0] == 2
    # a drawn polygon: segment 4 turned upright
    mask = F.polygon_mask([[60, 70], [60, 85], [110, 85], [110, 70]], canvas.shape)
    assert F.match_shapes(canvas, mask)[0][0] == 4
    best = F.highlight(canvas, ids, 2)
    assert set(np.unique(best)) == {0, *ids[:2]}


# -- bad input ---------------------------------------------------------------------------------------
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


def test_constant_images_missing_labels_and_bad_parameters():
    flat = np.full((16, 16), 3, np.uint8)
    with pytest.raises(InputError, match="constant"):
        F.superpixels(flat)
    with pytest.raises(InputError, match="constant"):
        F.color_kmeans(flat)
    assert not F.canny_steps(flat)["canny"].any()
    lab = _l_shape(64)
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


def test_write_csv_round_trips(tmp_path):
    t = F.shape_descriptors(_l_shape(64))
    path = F.write_csv(t, tmp_path / "shapes.csv")
    rows = path.read_text().splitlines()
    assert rows[0].split(",")[:3] == ["index", "area", "perimeter"] and len(rows) == 2
    assert float(rows[1].split(",")[1]) == t["area"][0]
