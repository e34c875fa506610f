"""The Colorize dock in a real napari viewer (run under Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture()
def widget(colorize_dock):
    return colorize_dock


def _run(qtbot, w):
    w.run()
    qtbot.waitUntil(lambda: w._worker is None, timeout=60000)


def test_widget_colorizes_into_a_new_layer_and_updates_it(qtbot, widget, gray_photo):
    viewer, w = widget
    src = viewer.add_image(gray_photo[:200, :240], name="photo", scale=(0.5, 2.0), translate=(10, -4))
    before = src.data.copy()
    w.reset_choices()
    w.image.value = src
    _run(qtbot, w)
    out = viewer.layers["photo colorized"]
    assert out.rgb and out.data.shape == (200, 240, 3) and out.data.dtype == np.float32
    np.testing.assert_allclose(out.scale, src.scale)
    np.testing.assert_allclose(out.translate, src.translate)
    assert viewer.layers.index(out) == viewer.layers.index(src) + 1
    np.testing.assert_array_equal(src.data, before)
    first = out.data.copy()

    pts = viewer.add_points([[100, 120]], face_color=[[0.0, 0.9, 0.0, 1.0]], size=10, name="hints",
                            scale=src.scale, translate=src.translate)
    w.reset_choices()
    w.hints.value = pts
    _run(qtbot, w)
    assert [layer.name for layer in viewer.layers].count("photo colorized") == 1
    assert viewer.layers["photo colorized"] is out
    assert not np.allclose(out.data, first, atol=1e-3)  # the hint changed the result


def test_auto_update_recolorizes_when_a_point_is_added(qtbot, widget, gray_photo):
    viewer, w = widget
    src = viewer.add_image(gray_photo[:128, :128], name="img")
    pts = viewer.add_points(np.zeros((0, 2)), name="hints")
    w.reset_choices()
    w.image.value, w.hints.value = src, pts
    _run(qtbot, w)
    out = viewer.layers["img colorized"]
    first = out.data.copy()
    w.auto.value = True
    pts.current_face_color = "magenta"
    pts.add([[64, 64]])
    qtbot.waitUntil(lambda: not np.allclose(out.data, first, atol=1e-3), timeout=30000)
    qtbot.waitUntil(lambda: w._worker is None, timeout=30000)


def test_wrong_layer_and_rgba_give_messages_not_tracebacks(qtbot, widget, monkeypatch):
    viewer, w = widget
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    labels = viewer.add_labels(np.zeros((20, 20), np.uint8), name="labels")
    w.image.value = None
    w._worker = None
    # a Labels layer never appears in the image list; running on it directly gives a message
    assert labels not in w.image.choices
    from napari_colorize._napari.layers import image_data
    from napari_colorize.core.errors import InputError

    with pytest.raises(InputError, match="Labels layer"):
        image_data(labels)
    w.run()
    assert shown and "Choose an image layer" in shown[-1]
    rgba = viewer.add_image(np.random.default_rng(0).random((32, 32, 4)).astype(np.float32), rgb=True, name="rgba")
    before = rgba.data.copy()
    w.reset_choices()
    w.image.value = rgba
    _run(qtbot, w)
    assert viewer.layers["rgba colorized"].data.shape == (32, 32, 3)
    np.testing.assert_array_equal(rgba.data, before)
    tiny = viewer.add_image(np.zeros((1, 1)), name="tiny")
    w.reset_choices()
    w.image.value = tiny
    w.run()
    assert "too small" in shown[-1] and w._worker is None


def test_mode_tooltip_gives_the_chosen_models_sizes(widget, model):
    _, w = widget
    tip = w.mode.tooltip
    assert f"{model.working_size} px" in tip and f"{model.tile_above} px" in tip
