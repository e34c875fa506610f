"""The Colorize widget on multiscale layers: a chosen pyramid level, the field-of-view preview."""

from __future__ import annotations

import numpy as np
import pytest

from napari_colorize import colorize


@pytest.fixture()
def widget(colorize_dock):
    return colorize_dock


def _wait(qtbot, w):
    qtbot.waitUntil(lambda: w._worker is None, timeout=60000)


def test_widget_colorizes_a_chosen_pyramid_level(qtbot, widget, gray_photo):
    viewer, w = widget
    pyramid = [gray_photo, gray_photo[::2, ::2]]
    src = viewer.add_image(pyramid, multiscale=True, name="pyr", scale=(0.5, 0.5), translate=(3, 4))
    w.reset_choices()
    w.image.value = src
    assert w.level.enabled and list(w.level.choices) == [0, 1] and w.level.value == 0
    w.level.value = 1
    w.run()
    _wait(qtbot, w)
    out = viewer.layers["pyr colorized"]
    assert out.data.shape == (256, 256, 3)
    np.testing.assert_allclose(out.scale, (1.0, 1.0))
    np.testing.assert_allclose(out.translate, (3, 4))


def test_widget_previews_the_field_of_view_in_place(qtbot, widget, gray_photo):
    viewer, w = widget
    pyramid = [gray_photo, gray_photo[::2, ::2], gray_photo[::4, ::4]]
    src = viewer.add_image(pyramid, multiscale=True, name="pyr", scale=(2.0, 2.0), translate=(10, -6))
    w.reset_choices()
    w.image.value = src
    viewer.camera.center = (10 + 2 * 300, -6 + 2 * 200)
    viewer.camera.zoom = 2.0  # four screen pixels per image pixel: full resolution is used
    w.preview()
    _wait(qtbot, w)
    prev = viewer.layers["pyr preview"]
    assert prev.rgb and prev.data.dtype == np.float32
    np.testing.assert_allclose(prev.scale, (2.0, 2.0))
    # the preview covers exactly what is on screen (clipped to the image), at the right place
    h_can, w_can = viewer.canvas.size
    lo = np.array([10 + 600 - h_can / 4, -6 + 400 - w_can / 4])
    hi = np.array([10 + 600 + h_can / 4, -6 + 400 + w_can / 4])
    lo_img = np.maximum(lo, np.array([10, -6]))
    hi_img = np.minimum(hi, np.array([10, -6]) + 2 * 512)
    p_lo = np.asarray(prev.translate)
    p_hi = p_lo + np.asarray(prev.data.shape[:2]) * 2
    assert (p_lo <= lo_img + 1e-6).all() and (p_lo > lo_img - 2.01).all()
    assert (p_hi >= hi_img - 1e-6).all() and (p_hi < hi_img + 2.01).all()
    origin = np.rint((p_lo - np.array([10, -6])) / 2).astype(int)
    crop = gray_photo[origin[0] : origin[0] + prev.data.shape[0], origin[1] : origin[1] + prev.data.shape[1]]
    np.testing.assert_allclose(prev.data, colorize(crop, mode="whole", temperature=w.temperature.value),
                               atol=1e-5)
    # zoomed out, a coarser level is used and placed with its bigger pixels
    viewer.camera.zoom = 0.1
    w.preview()
    _wait(qtbot, w)
    prev = viewer.layers["pyr preview"]
    assert prev.scale[0] >= 4.0
