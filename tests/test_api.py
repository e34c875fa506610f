"""``colorize``: luminance kept, shapes and dtypes, stacks, hints, dask, clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab

from napari_colorize import InputError, colorize
from napari_colorize.core.color import gray_to_l, to_unit_range


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_colorize_keeps_luminance_and_returns_float_rgb(model, gray_photo, dtype):
    img = gray_photo[::2, ::2]
    if dtype is np.uint16:
        img = img.astype(np.uint16) * 257
    elif dtype is np.float32:
        img = img.astype(np.float32) / 255.0
    before = img.copy()
    out = colorize(img, model=model)
    assert out.shape == img.shape + (3,) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    l_in = gray_to_l(to_unit_range(img))
    l_out = rgb2lab(out)[..., 0]
    assert np.abs(l_out - l_in).max() < 0.6
    np.testing.assert_array_equal(img, before)  # input untouched


def test_colorize_rgb_input_uses_its_lightness(model, photo):
    img = photo[::4, ::4]
    out = colorize(img, model=model)
    np.testing.assert_allclose(rgb2lab(out)[..., 0], rgb2lab(img)[..., 0], atol=0.6)


def test_colorize_output_has_color(model, gray_photo):
    out = colorize(gray_photo, model=model)
    chroma = np.hypot(*np.moveaxis(rgb2lab(out)[..., 1:], -1, 0))
    assert chroma.mean() > 3.0


def test_stacks_are_colorized_plane_by_plane(model, gray_photo):
    a, b = gray_photo[:64, :64], gray_photo[200:264, 200:264]
    stack = np.stack([a, b])
    out = colorize(stack, model=model)
    assert out.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(out[1], colorize(b, model=model), atol=1e-5)


def test_hints_in_stacks_apply_to_their_plane(model, gray_photo):
    stack = np.stack([gray_photo[:128, :128]] * 2)
    pts = np.array([[1, 64, 64]])
    out = colorize(stack, points=pts, colors=[[0.0, 0.8, 0.0]], model=model)
    assert not np.allclose(out[0], out[1], atol=1e-3)
    np.testing.assert_allclose(out[0], colorize(stack[0], model=model), atol=1e-5)


def test_a_hint_pulls_the_color_toward_it(model, gray_photo):
    # a mid-gray, flat spot: near black or white almost no chroma is in gamut, whatever the hint
    lum = gray_photo.astype(float)
    flat = np.abs(lum - 140) + 4 * np.abs(lum - np.roll(lum, 3, axis=0)) + 4 * np.abs(lum - np.roll(lum, 3, axis=1))
    r, c = np.unravel_index(np.argmin(flat[100:-100, 100:-100]), (312, 312))
    r, c = r + 100, c + 100
    green = np.array([[0.1, 0.8, 0.1]])
    target_ab = rgb2lab(green[None])[0, 0, 1:]
    free = rgb2lab(colorize(gray_photo, model=model))[r, c, 1:]
    hinted = rgb2lab(colorize(gray_photo, points=[[r, c]], colors=green, model=model))[r, c, 1:]
    assert np.linalg.norm(hinted - target_ab) < 0.5 * np.linalg.norm(free - target_ab)


def test_dask_in_dask_out_and_lazy(model, gray_photo):
    import dask.array as da

    calls = []

    def source(block):
        if block.size:  # dask probes with empty arrays to infer the output type
            calls.append(1)
        return block

    stack = da.from_array(np.stack([gray_photo[:96, :96], gray_photo[100:196, 100:196]]), chunks=(1, 48, 48))
    lazy = colorize(stack.map_blocks(source, dtype=stack.dtype), model=model)
    assert isinstance(lazy, da.Array) and lazy.shape == (2, 96, 96, 3) and lazy.dtype == np.float32
    assert calls == []  # nothing computed yet
    plane = lazy[1].compute()
    np.testing.assert_allclose(plane, colorize(gray_photo[100:196, 100:196], model=model), atol=1e-5)


@pytest.mark.parametrize(
    "img, match",
    [
        (np.zeros((0, 10)), "empty"),
        (np.zeros((1, 1)), "too small"),
        (np.zeros((5, 5, 4)), "RGBA"),
        (np.array([[0.0, np.nan], [1.0, 0.5]]), "NaN"),
        (np.array([[0.0, np.inf], [1.0, 0.5]]), "NaN or infinite"),
        (np.zeros(7), "at least 2 dimensions"),
    ],
)
def test_bad_images_give_clear_errors(model, img, match):
    with pytest.raises(InputError, match=match):
        colorize(img, model=model)


def test_constant_image_is_colorized_without_error(model):
    out = colorize(np.full((40, 40), 128, np.uint8), model=model)
    assert np.isfinite(out).all()
    assert np.ptp(rgb2lab(out)[..., 0]) < 0.5  # still one lightness


def test_points_outside_the_image_are_ignored_with_a_warning(model, gray_photo):
    img = gray_photo[:64, :64]
    with pytest.warns(UserWarning, match="outside"):
        out = colorize(img, points=[[500, 500]], colors=[[1, 0, 0]], model=model)
    np.testing.assert_allclose(out, colorize(img, model=model), atol=1e-6)


def test_temperature_out_of_range(model, gray_photo):
    with pytest.raises(InputError, match="(?i)temperature"):
        colorize(gray_photo[:16, :16], model=model, temperature=0)
