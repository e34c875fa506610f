"""Fixtures shared by the core tests: small photos and a label image of known shape."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color as skcolor
from skimage import data as skdata


@pytest.fixture(scope="module")
def small_rgb():
    return skdata.astronaut()[::4, ::4].copy()  # 128 x 128 uint8


@pytest.fixture(scope="module")
def small_gray(small_rgb):
    return (skcolor.rgb2gray(small_rgb) * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def l_shape():
    """``l_shape(size)``: a label image (size x size, int32) with one L-shaped segment, label 1."""

    def draw(size=128):
        lab = np.zeros((size, size), np.int32)
        lab[30:80, 30:48] = 1
        lab[62:80, 48:90] = 1
        return lab

    return draw
