"""The Inspect model dock in a real viewer (run under Xvfb): every stage, uncertainty, the palette."""

from __future__ import annotations

import numpy as np
import pytest

from napari_colorize.core.inspect import STAGES

DOWN = {"enc1": 1, "enc2": 2, "enc3": 4, "enc4": 8, "dec3": 4, "dec2": 2}  # the U-Net's stage strides

@pytest.fixture()
def dock(make_napari_viewer, gray_photo):
    viewer = make_napari_viewer()
    src = viewer.add_image(gray_photo[:96, :120], name="photo", scale=(2.0, 2.0))
    _, w = viewer.window.add_plugin_dock_widget("napari-colorize", "Inspect model")
    return viewer, w, src


def _wait(qtbot, w):
    qtbot.waitUntil(lambda: not w.running, timeout=30000)


def test_every_stage_adds_its_feature_maps_over_the_image(qtbot, dock, model):
    viewer, w, src = dock
    assert w.image.value is src  # preselected
    for stage in STAGES:
        w.stage.value = stage
        w._start("maps")
        _wait(qtbot, w)
        layer = viewer.layers[f"photo features {stage}"]
        down = DOWN[stage]
        assert layer.data.shape == (model.net.stages[stage][-1][0].out_channels, 96 // down, 120 // down)
        # a coarse map covers the same world extent as the image
        np.testing.assert_allclose(layer.scale[-2:], (2.0 * down, 2.0 * down))
        assert f"of {stage}" in w.status.value
    assert {lay.name for lay in viewer.layers} == {"photo", *(f"photo features {s}" for s in STAGES)}


def test_uncertainty_and_palette_add_layers_and_hints(qtbot, dock, model):
    viewer, w, src = dock
    w._start("uncertainty")
    _wait(qtbot, w)
    assert viewer.layers["photo uncertainty"].data.shape == (96, 120)

    w.pick_at(60.0, 80.0)
    _wait(qtbot, w)
    shown = [b for b in w._swatches if not b.isHidden()]
    assert shown
    shown[0].click()
    hints = viewer.layers["photo hints"]
    assert len(hints.data) == 1
    np.testing.assert_allclose(hints.data[0], (60.0, 80.0), atol=1e-6)
    np.testing.assert_allclose(hints.face_color[0, :3], shown[0].property("rgb"), atol=1e-6)
    assert w.hints.value is hints


def test_the_gray_input_is_preselected_not_a_colorized_result(make_napari_viewer, gray_photo, photo):
    viewer = make_napari_viewer()
    gray = viewer.add_image(gray_photo[:96, :120], name="photo")
    viewer.add_image(gray_photo[:48, :60] / 255.0, name="photo uncertainty")  # this dock's own output
    viewer.add_image(photo[:96, :120], name="photo colorized")  # selected, as napari selects what is added
    _, w = viewer.window.add_plugin_dock_widget("napari-colorize", "Inspect model")
    assert w.image.value is gray


def test_with_only_rgb_layers_an_rgb_layer_is_still_preselected(make_napari_viewer, photo):
    viewer = make_napari_viewer()
    rgb = viewer.add_image(photo[:96, :120], name="photo")
    _, w = viewer.window.add_plugin_dock_widget("napari-colorize", "Inspect model")
    assert w.image.value is rgb
    gray = viewer.add_image(photo[:96, :120, 0], name="red")
    assert w.image.value is rgb  # a choice once made stays
    viewer.layers.remove(rgb)
    assert w.image.value is gray
