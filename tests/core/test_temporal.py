"""Temporal consistency: chroma smoothed along the first axis of a stack, without ghosts after a cut."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab

from napari_colorize import InputError, colorize


def _chroma(rgb):
    return np.hypot(*np.moveaxis(rgb2lab(rgb)[..., 1:], -1, 0))


def _flicker(rgb_stack):
    ab = rgb2lab(rgb_stack)[..., 1:]
    return float(np.abs(np.diff(ab, axis=0)).mean())


def test_temporal_smoothing_reduces_flicker_and_keeps_color(model, gray_photo):
    rng = np.random.default_rng(0)
    scene = gray_photo[150:278, 180:308].astype(float)
    frames = np.clip(scene + rng.normal(0, 10, (6,) + scene.shape), 0, 255).astype(np.uint8)
    plain = colorize(frames, model=model)
    smooth = colorize(frames, model=model, temporal=0.7)
    assert _flicker(smooth) < 0.8 * _flicker(plain)
    assert _chroma(smooth).mean() > 0.7 * _chroma(plain).mean() > 1.0  # still colored
    with pytest.raises(InputError, match="temporal"):
        colorize(frames, model=model, temporal=1.5)


def test_temporal_smoothing_does_not_ghost_after_a_cut(model, gray_photo):
    a, b = gray_photo[:128, :128], gray_photo[300:428, 300:428]
    plain = colorize(b, model=model)
    smooth = colorize(np.stack([a, b]), model=model, temporal=0.8)[1]
    moved = np.abs(a.astype(int) - b.astype(int)) > 60
    diff = np.abs(rgb2lab(smooth)[..., 1:] - rgb2lab(plain)[..., 1:]).mean(axis=-1)
    assert diff[moved].mean() < 3.0  # where the content changed, the old colors do not linger
