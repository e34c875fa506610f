"""Edge-aware propagation of hints (Levin et al. 2004) and the evaluation figures built on it."""

from __future__ import annotations

import numpy as np
import torch

from napari_colorize import colorize
from napari_colorize.core.color import rgb_to_lab
from napari_colorize.core.evaluate import levin_baseline
from napari_colorize.core.propagate import propagate, refine_with_hints


def _two_regions(h=24, w=32):
    """Lightness with a strong vertical edge: dark left half, bright right half, mild noise."""
    rng = np.random.default_rng(0)
    l_chan = np.where(np.arange(w)[None, :] < w // 2, 30.0, 80.0) + rng.normal(0, 0.3, (h, w))
    return np.repeat(l_chan, 1, axis=0).reshape(h, w) * np.ones((h, 1))


def test_levin_keeps_each_hint_inside_its_region():
    l_chan = _two_regions()
    mask = np.zeros(l_chan.shape, bool)
    values = np.zeros(l_chan.shape + (2,), np.float32)
    mask[5, 3], values[5, 3] = True, (40.0, 10.0)   # left region: reddish
    mask[18, 28], values[18, 28] = True, (-30.0, 20.0)  # right region: green
    ab = propagate(l_chan, mask, values)
    left, right = ab[:, :14], ab[:, 18:]
    np.testing.assert_allclose(left.reshape(-1, 2).mean(0), (40, 10), atol=2.0)
    np.testing.assert_allclose(right.reshape(-1, 2).mean(0), (-30, 20), atol=2.0)
    assert np.abs(left - (40, 10)).max() < 5 and np.abs(right - (-30, 20)).max() < 5


def test_levin_baseline_colors_the_hinted_photo():
    rgb = np.zeros((24, 32, 3), np.float32)
    rgb[:, :16] = (0.8, 0.2, 0.2)
    rgb[:, 16:] = (0.2, 0.7, 0.3)
    pts = np.array([[4, 4], [20, 28]], np.float32)
    out = levin_baseline(rgb, pts, rgb[pts[:, 0].astype(int), pts[:, 1].astype(int)])
    lab, lab_ref = rgb_to_lab(out), rgb_to_lab(rgb)
    assert np.abs(lab[..., 1:] - lab_ref[..., 1:]).mean() < 3.0  # the two colors, each in its half
    np.testing.assert_allclose(lab[..., 0], lab_ref[..., 0], atol=0.5)  # lightness kept


def test_a_hint_correction_stops_at_a_strong_edge():
    l_chan = torch.from_numpy(_two_regions(48, 64)).float()[None, None]
    ab = torch.zeros(1, 2, 48, 64)
    out = refine_with_hints(l_chan, ab, np.array([[24.0, 8.0]]), np.array([[50.0, -20.0]]), 1e-3, 64)
    moved = out[0].norm(dim=0)
    assert moved[24, 8] > 45  # the hint pixel takes the hint's color
    assert moved[:, :28].mean() > 5 * max(moved[:, 36:].mean(), 0.1)  # its side, not across the edge
    assert moved[:, 36:].max() < 10


def test_colorize_with_a_hint_changes_the_hinted_side_more(model):
    gray = np.where(np.arange(96)[None, :] < 48, 60, 200).astype(np.uint8) * np.ones((64, 1), np.uint8)
    auto = colorize(gray, model=model)
    hinted = colorize(gray, model=model, points=[[32, 10]], colors=[[0.1, 0.2, 0.9]])
    diff = np.abs(hinted - auto).sum(-1)
    assert diff[:, :40].mean() > 3 * diff[:, 56:].mean()


def test_edits_reuse_one_factorisation_and_match_the_direct_solve(monkeypatch):
    from napari_colorize.core import propagate as prop

    rng = np.random.default_rng(3)
    l_chan = _two_regions(30, 40) + rng.normal(0, 2, (30, 40))
    prior = rng.normal(0, 5, (30, 40, 2)).astype(np.float32)
    values = rng.normal(0, 30, (30, 40, 2)).astype(np.float32)
    prop._SYSTEMS.clear()
    for step in range(4):  # one pin moves each edit, as when a user drags a hint
        mask = np.zeros(l_chan.shape, bool)
        mask[5, 3 + step] = mask[20, 30] = mask[12, 18] = True
        fast = propagate(l_chan, mask, values, prior, 1e-2)
        with monkeypatch.context() as m:
            m.setattr(prop, "_solve_pinned", lambda *a: None)
            direct = propagate(l_chan, mask, values, prior, 1e-2)
        np.testing.assert_allclose(fast, direct, atol=1e-3)
        np.testing.assert_array_equal(fast[mask], values[mask])
    assert len(prop._SYSTEMS) == 1 and len(next(iter(prop._SYSTEMS.values()))["cols"]) == 6


def test_a_full_column_cache_keeps_the_columns_still_pinned(monkeypatch):
    from napari_colorize.core import propagate as prop

    monkeypatch.setattr(prop, "COLUMN_BYTES", 0)  # the smallest cache: 2 * MAX_NEW_PINS columns
    rng = np.random.default_rng(5)
    l_chan = _two_regions(40, 40) + rng.normal(0, 2, (40, 40))
    values = rng.normal(0, 30, (40, 40, 2)).astype(np.float32)
    prior = np.zeros_like(values)
    prop._SYSTEMS.clear()
    order = rng.permutation(np.arange(1, 1600))
    for step in range(6):  # a long edit: pixel 0 stays pinned while 40 new ones come each time
        mask = np.zeros(1600, bool)
        mask[0] = True
        mask[order[40 * step : 40 * (step + 1)]] = True
        mask = mask.reshape(40, 40)
        fast = propagate(l_chan, mask, values, prior, 1e-2)
        with monkeypatch.context() as m:
            m.setattr(prop, "_solve_pinned", lambda *a: None)
            np.testing.assert_allclose(fast, propagate(l_chan, mask, values, prior, 1e-2), atol=1e-3)
    cols = next(iter(prop._SYSTEMS.values()))["cols"]
    assert 0 in cols and len(cols) <= 2 * prop.MAX_NEW_PINS
