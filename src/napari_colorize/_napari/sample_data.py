"""Sample grayscale photos (from scikit-image's bundled data, no download), with color originals
kept as hidden reference layers where they exist so metrics have something to compare with."""

from __future__ import annotations

import numpy as np


def _gray(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2gray

    return (rgb2gray(rgb) * 255 + 0.5).astype(np.uint8)


def _pair(name: str, rgb: np.ndarray):
    return [
        (_gray(rgb), {"name": name}, "image"),
        (rgb, {"name": f"{name} reference", "visible": False}, "image"),
    ]


def astronaut_gray():
    """Astronaut Eileen Collins (NASA, public domain), grayscale, with its color original."""
    from skimage import data

    return _pair("astronaut", data.astronaut())


def coffee_gray():
    """A cup of coffee (Rachel Michetti, CC0), grayscale, with its color original."""
    from skimage import data

    return _pair("coffee", data.coffee())


def camera():
    """The cameraman, a grayscale photo with no color original."""
    from skimage import data

    return [(data.camera(), {"name": "camera"}, "image")]
