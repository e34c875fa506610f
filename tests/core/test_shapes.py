"""Shape descriptors, Hu moments, shape matching and the CSV table."""

from __future__ import annotations

import numpy as np
from skimage import transform

from napari_colorize.core import features as F


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


def test_hu_moments_are_invariant_to_rotation_and_scale(l_shape):
    lab = l_shape()
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


def test_matching_ranks_a_rotated_copy_first(l_shape):
    canvas = np.zeros((128, 128), np.int32)
    shape = l_shape()[28:82, 28:92] > 0  # 54 x 64
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


def test_write_csv_round_trips(tmp_path, l_shape):
    t = F.shape_descriptors(l_shape(64))
    path = F.write_csv(t, tmp_path / "shapes.csv")
    rows = path.read_text().splitlines()
    assert rows[0].split(",")[:3] == ["index", "area", "perimeter"] and len(rows) == 2
    assert float(rows[1].split(",")[1]) == t["area"][0]
