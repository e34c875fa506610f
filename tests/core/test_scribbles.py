"""Scribbles, regions and palettes as hints: sampling, bounds, locality, and palettes as references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as skdata

from napari_colorize import colorize
from napari_colorize.core.ab_stats import ab_histogram
from napari_colorize.core.color import rgb_to_lab
from napari_colorize.core.errors import InputError
from napari_colorize.core.propagate import refine_with_hints
from napari_colorize.core.scribbles import (
    MIN_STEP,
    Stroke,
    ellipse_polygon,
    label_hints,
    palette,
    sample_path,
    sample_region,
    stroke_hints,
)

GREEN, MAGENTA = np.array([0.1, 0.8, 0.1]), np.array([0.9, 0.2, 0.6])


def test_a_path_is_sampled_evenly_from_end_to_end():
    pts = sample_path([[10, 10], [10, 50], [40, 50]], step=5.0)
    np.testing.assert_allclose(pts[0], (10, 10))
    np.testing.assert_allclose(pts[-1], (40, 50))
    gaps = np.hypot(*np.diff(pts, axis=0).T)
    assert gaps.max() <= 5.0 + 1e-6 and gaps.min() > 4.0
    closed = sample_path([[0, 0], [0, 10], [10, 10]], step=1.0, closed=True)
    np.testing.assert_allclose(closed[-1], (0, 0))  # an outline returns to its start


def test_region_points_lie_inside_the_polygon_and_a_tiny_one_keeps_a_point():
    square = [[20, 20], [20, 60], [60, 60], [60, 20]]
    pts = sample_region(square, (100, 100), step=4.0)
    assert len(pts) > 50
    assert pts.min() >= 20 and pts.max() <= 60
    tiny = sample_region([[5.2, 5.2], [5.2, 5.8], [5.8, 5.8]], (100, 100), step=4.0)
    assert len(tiny) == 1
    ell = ellipse_polygon([[0, 0], [0, 20], [10, 20], [10, 0]])
    np.testing.assert_allclose(ell.mean(axis=0), (5, 10), atol=1e-6)
    assert ell[:, 0].min() >= -1e-6 and ell[:, 1].max() <= 20 + 1e-6


def test_stroke_hints_are_bounded_and_keep_every_stroke():
    strokes = [Stroke(np.array([[0, 0], [0, 1000], [900, 1000]]), GREEN),
               Stroke(np.array([[100, 100], [100, 800], [800, 800], [800, 100]]), MAGENTA, region=True),
               Stroke(np.array([[950.0, 5.0], [950.0, 6.0]]), np.array([0.0, 0.0, 1.0]))]
    pts, cols = stroke_hints(strokes, (1000, 1001), max_points=200)
    assert 0 < len(pts) <= 200 and pts.dtype == np.float32 and cols.shape == (len(pts), 3)
    for color in (GREEN, MAGENTA, (0, 0, 1)):
        assert np.isclose(cols, color, atol=1e-6).all(axis=1).any()
    assert ((pts >= -0.5) & (pts < np.array([999.5, 1000.5]))).all()
    # few strokes: the finest step
    pts, _ = stroke_hints([Stroke(np.array([[10, 10], [10, 30]]), GREEN)], (64, 64))
    assert len(pts) == int(np.ceil(20 / MIN_STEP)) + 1


def test_label_hints_give_each_label_its_color_and_skip_transparent_ones():
    lab = np.zeros((200, 200), np.int32)
    lab[10:100, 10:100] = 1
    lab[150:190, 0:50] = 3
    lab[199, 199] = 7  # one pixel: still one hint
    pts, cols = label_hints(lab, {1: (*GREEN, 1.0), 3: (0, 0, 1, 0.0), 7: MAGENTA}, max_points=120)
    assert len(pts) <= 120
    r, c = pts[:, 0].astype(int), pts[:, 1].astype(int)
    assert set(np.unique(lab[r, c])) == {1, 7}
    np.testing.assert_allclose(cols[lab[r, c] == 1], np.tile(GREEN, ((lab[r, c] == 1).sum(), 1)), atol=1e-6)
    assert (lab[r, c] == 7).sum() == 1
    with pytest.raises(InputError, match="2D"):
        label_hints(np.zeros((2, 4, 4), int), {1: GREEN})
    with pytest.raises(InputError, match="RGB"):
        label_hints(lab, {1: (2.0, 0, 0)})


def _disk_image(size=128):
    """Dark background, bright disk: a strong edge all round, and mild noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    disk = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size * 0.3) ** 2
    l_chan = np.where(disk, 80.0, 30.0) + rng.normal(0, 0.3, disk.shape)
    return l_chan.astype(np.float32), disk


@pytest.mark.parametrize("kind", ["path", "region"])
def test_a_scribble_or_region_hint_stays_inside_its_edge(kind):
    """The hints of a scribble or a segment correct chroma inside the disk, not beyond its edge."""
    l_chan, disk = _disk_image()
    ab = torch.zeros((1, 2) + l_chan.shape)
    l_t = torch.from_numpy(l_chan)[None, None]
    outs = []
    for color in (GREEN, MAGENTA):
        if kind == "path":
            pts, cols = stroke_hints([Stroke(np.array([[55, 45], [70, 80]]), color)], disk.shape)
        else:
            pts, cols = label_hints(disk.astype(int), {1: color})
        hint_ab = rgb_to_lab(cols.reshape(-1, 1, 3))[:, 0, 1:]
        outs.append(refine_with_hints(l_t, ab, pts, hint_ab)[0].numpy())
    diff = np.hypot(*(outs[0] - outs[1]))
    from scipy import ndimage as ndi

    beyond = ndi.distance_transform_edt(~disk) > 2
    assert diff[disk].mean() > 20  # the two colors differ where they were drawn
    assert diff[beyond].mean() < 1.0 and np.percentile(diff[beyond], 99) < 3.0


def test_palette_is_a_small_image_of_the_colors_and_the_reference():
    cols = np.array([GREEN] * 30 + [MAGENTA] * 10)
    pal = palette(cols)
    assert pal.ndim == 3 and pal.shape[-1] == 3 and max(pal.shape[:2]) <= 16
    flat = pal.reshape(-1, 3)
    assert np.isclose(flat, GREEN).all(axis=1).mean() > 0.6  # weights follow the counts
    ref = np.zeros((300, 500, 3), np.uint8)
    mixed = palette(cols, ref, share=0.25).reshape(-1, 3)
    assert 0.2 < (mixed.sum(axis=1) > 0).mean() < 0.3
    with pytest.raises(InputError):
        palette(np.zeros((0, 3)))
    with pytest.raises(InputError, match="RGB"):
        palette(cols, np.zeros((10, 10)))


def _ab_distance(rgb, reference) -> float:
    """Half the L1 distance between normalised ab histograms (0: same, 1: disjoint)."""
    h1, _ = ab_histogram(rgb, step=10.0)
    h2, _ = ab_histogram(reference, step=10.0)
    return 0.5 * float(np.abs(h1 / h1.sum() - h2 / h2.sum()).sum())


def test_a_reference_moves_the_ab_histogram_toward_its_own(small_gray):
    reference = skdata.coffee()[::4, ::4]  # another photo: browns and reds
    auto = colorize(small_gray)
    steered = colorize(small_gray, reference=reference, reference_strength=1.0)
    before, after = _ab_distance(auto, reference), _ab_distance(steered, reference)
    assert after < 0.8 * before, (before, after)


def test_global_hints_as_a_palette_pull_the_whole_image_toward_their_colors(small_gray):
    blue = np.array([0.2, 0.5, 0.9])
    pal = palette(np.array([GREEN] * 20 + [blue] * 20))
    hint_ab = rgb_to_lab(np.array([[GREEN, blue]], np.float32))[0, :, 1:]

    def near(rgb):  # share of pixels within 30 ab units of a hint color
        ab = rgb_to_lab(rgb)[..., 1:].reshape(-1, 1, 2)
        return float((np.linalg.norm(ab - hint_ab[None], axis=2).min(axis=1) < 30).mean())

    auto = colorize(small_gray)
    steered = colorize(small_gray, reference=pal, reference_strength=2.0)
    assert near(steered) > near(auto) + 0.3, (near(auto), near(steered))
