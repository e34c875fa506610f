"""Preprocessing layers: resize, rotate, flip, grayscale, smooth, normalize."""

from __future__ import annotations

import numpy as np
import pytest

from napari_colorize import InputError
from napari_colorize.core import features as F


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
