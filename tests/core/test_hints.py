"""Color hints: simulated ones for training, user points rasterised and validated."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from napari_colorize import InputError
from napari_colorize.core.hints import check_hints, rasterize_hints, simulate_hints


def test_simulated_hints_reveal_patch_means():
    ab = torch.randn(24, 2, 48, 64, dtype=torch.float64) * 20
    # one hint an image: each revealed region is one patch, whose mean can be checked exactly
    hint_ab, mask = simulate_hints(ab, np.random.default_rng(1), p_none=0.0, max_hints=1, max_patch=7)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    sizes = set()
    for i in range(ab.shape[0]):
        rows, cols = torch.nonzero(mask[i, 0], as_tuple=True)
        assert len(rows), f"image {i} has no hint although p_none is 0"
        r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
        assert len(rows) == (r1 - r0) * (c1 - c0), f"image {i}: the revealed pixels are not one rectangle"
        assert r1 - r0 <= 7 and c1 - c0 <= 7
        if 0 < r0 and r1 < 48 and 0 < c0 and c1 < 64:  # away from the border a patch is square
            assert r1 - r0 == c1 - c0
            sizes.add(r1 - r0)
        patch_mean = ab[i, :, r0:r1, c0:c1].mean(dim=(1, 2))
        torch.testing.assert_close(hint_ab[i, :, r0:r1, c0:c1],
                                   patch_mean[:, None, None].expand(2, r1 - r0, c1 - c0))
        assert torch.all(hint_ab[i][:, mask[i, 0] == 0] == 0)
    assert len(sizes) > 1  # patch sizes are drawn, not fixed


def test_overlapping_simulated_hints_each_hold_the_mean_of_a_patch_around_them():
    h, w, max_patch = 24, 32, 3
    ab = torch.randn(6, 2, h, w, dtype=torch.float64) * 20
    hint_ab, mask = simulate_hints(ab, np.random.default_rng(2), p_geometric=0.05, p_none=0.0,
                                   max_hints=40, max_patch=max_patch)
    for i, r, c in torch.nonzero(mask[:, 0]).tolist():
        # every window of side <= max_patch (clipped at the border) that covers the pixel
        means = [ab[i, :, r0:min(h, r0 + s), c0:min(w, c0 + s)].mean(dim=(1, 2))
                 for s in range(1, max_patch + 1)
                 for r0 in range(max(0, r - s + 1), r + 1) for c0 in range(max(0, c - s + 1), c + 1)]
        dist = torch.stack(means).sub(hint_ab[i, :, r, c]).abs().amax(dim=1)
        assert float(dist.min()) < 1e-9, (i, r, c)


def test_p_none_one_gives_no_hints():
    ab = torch.randn(8, 2, 32, 32) * 20
    hint_ab, mask = simulate_hints(ab, np.random.default_rng(1), p_none=1.0)
    assert mask.sum() == 0 and hint_ab.abs().sum() == 0


def test_rasterized_hint_lands_at_the_scaled_position_with_the_color_ab():
    pts = np.array([[100.0, 300.0]], np.float32)
    col = np.array([[0.9, 0.1, 0.1]], np.float32)
    hint_ab, mask = rasterize_hints(pts, col, (400, 400), (100, 100))
    r, c = 25, 75
    assert mask[0, 0, r, c] == 1 and mask.sum() == 9
    np.testing.assert_allclose(hint_ab[0, :, r, c].numpy(), rgb2lab(col[None])[0, 0, 1:], atol=0.1)


def test_check_hints_drops_outside_points_and_rejects_bad_colors():
    pts, cols, dropped = check_hints([[5, 5], [50, 5], [-3, 2]], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], (10, 10))
    assert dropped == 2 and len(pts) == 1
    with pytest.raises(InputError, match="in \\[0, 1\\]"):
        check_hints([[1, 1]], [[255, 0, 0]], (10, 10))
    with pytest.raises(InputError, match="NaN"):
        check_hints([[np.nan, 1]], [[1, 0, 0]], (10, 10))
    with pytest.raises(InputError, match="without colors"):
        check_hints([[1, 1]], None, (10, 10))
