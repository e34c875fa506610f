"""Hints in the Colorize dock in a real napari viewer (run under Xvfb): the hint tool, auto-update,
Shapes and Labels hints, reference layers and results kept to compare."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from napari_colorize.core.color import rgb_to_lab

GREEN = np.array([0.1, 0.8, 0.1])


def _run(qtbot, w):
    w.run()
    qtbot.waitUntil(lambda: w._worker is None, timeout=60000)


@pytest.fixture()
def scene(colorize_dock, gray_photo):
    viewer, w = colorize_dock
    src = viewer.add_image(gray_photo[::4, ::4], name="img")
    w.reset_choices()
    w.image.value = src
    return viewer, w, src


def _count_runs(w, monkeypatch):
    runs = []
    cls = type(w)
    real = cls.run

    def counting(self, *args):
        runs.append(1)
        return real(self, *args)

    monkeypatch.setattr(cls, "run", counting)  # a magicgui container takes no instance attributes
    return runs


def _settle(qtbot, w, ms=400):
    qtbot.wait(ms)  # longer than the debounce
    qtbot.waitUntil(lambda: w._worker is None and not w._pending, timeout=60000)


def test_recoloring_a_point_in_the_layer_controls_updates_once(qtbot, scene, monkeypatch):
    viewer, w, src = scene
    pts = viewer.add_points([[60, 60]], face_color=[GREEN.tolist() + [1.0]], size=6, name="hints")
    w.reset_choices()
    w.hints.value = pts
    _run(qtbot, w)
    out = viewer.layers["img colorized"]
    first = out.data.copy()
    w.auto.value = True
    runs = _count_runs(w, monkeypatch)
    pts.selected_data = {0}  # selecting announces a color change that is none: no run
    _settle(qtbot, w)
    assert runs == []
    controls = viewer.window._qt_viewer.controls.widgets[pts]
    controls._face_color_control.face_color_edit.setColor("magenta")  # what the swatch does
    _settle(qtbot, w)
    np.testing.assert_allclose(pts.face_color[0], (1, 0, 1, 1))
    assert runs == [1]
    assert not np.allclose(out.data, first, atol=1e-3)
    pts.data = pts.data + 5  # a move: one more
    _settle(qtbot, w)
    pts.remove([0])  # a delete: one more
    _settle(qtbot, w)
    assert runs == [1, 1, 1]


def test_the_docks_color_goes_to_the_next_points_only(qtbot, scene):
    viewer, w, src = scene
    pts = viewer.layers[w.tool.make_layer().name]  # the dock sees the viewer through a proxy
    assert w.hints.value is pts
    assert pts.mode == "add", pts.mode
    assert viewer.layers.selection.active is pts, viewer.layers.selection.active
    np.testing.assert_allclose(pts._border.current_color, [0.502, 0.502, 0.502, 1], atol=0.01)
    assert pts.current_size >= 4
    w.tool.set_color([1.0, 0.0, 0.0])
    pts.add([[10, 10]])  # napari selects the new point
    assert pts.selected_data == {0}
    w.tool.set_color([0.0, 0.0, 1.0])
    np.testing.assert_allclose(pts.face_color[0], (1, 0, 0, 1))  # the placed point keeps its color
    pts.add([[20, 20]])
    np.testing.assert_allclose(pts.face_color[1], (0, 0, 1, 1))
    w.tool.set_color(GREEN)
    pts.selected_data = {0}  # napari makes the selected point's red the current color
    pts.add([[30, 30]])
    np.testing.assert_allclose(pts.face_color[2][:3], GREEN)  # the dock's color, not the selected one's
    np.testing.assert_allclose(pts.face_color[0], (1, 0, 0, 1))


def test_the_eyedropper_takes_the_color_of_an_rgb_layer_without_adding_a_point(qtbot, scene):
    viewer, w, src = scene
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, :16] = (200, 40, 20)
    viewer.add_image(rgb, name="palette photo", rgb=True)
    pts = viewer.layers[w.tool.make_layer().name]  # the dock sees the viewer through a proxy
    w.tool.eyedropper.setChecked(True)
    assert pts.mode == "pan_zoom"  # the click is the eyedropper's
    w.tool.pick(viewer, SimpleNamespace(position=(5.0, 5.0)))
    qtbot.waitUntil(lambda: not w.tool.eyedropper.isChecked(), timeout=2000)
    np.testing.assert_allclose(w.tool.color, np.array([200, 40, 20]) / 255, atol=1e-6)
    assert pts.mode == "add" and len(pts.data) == 0
    np.testing.assert_allclose(pts._face.current_color, [200 / 255, 40 / 255, 20 / 255, 1], atol=1e-6)


def test_the_eyedropper_takes_no_color_hidden_under_a_gray_layer(qtbot, scene):
    viewer, w, src = scene
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:] = (200, 40, 20)
    viewer.add_image(rgb, name="palette photo", rgb=True)
    cover = viewer.add_image(np.full((32, 32), 90, np.uint8), name="gray on top")
    w.tool.make_layer()
    before = np.array(w.tool.color)
    w.tool.eyedropper.setChecked(True)
    w.tool.pick(viewer, SimpleNamespace(position=(5.0, 5.0)))
    np.testing.assert_allclose(w.tool.color, before)  # the screen shows gray there
    assert "No RGB color on screen" in w.status.value
    cover.opacity = 0.5  # now the photo shows through
    w.tool.eyedropper.setChecked(True)
    w.tool.pick(viewer, SimpleNamespace(position=(5.0, 5.0)))
    np.testing.assert_allclose(w.tool.color, np.array([200, 40, 20]) / 255, atol=1e-6)


def _mean_ab(rgb, mask):
    return rgb_to_lab(np.asarray(rgb, np.float32))[..., 1:][mask].mean(axis=0)


def test_a_shapes_path_and_a_labels_region_act_as_hints(qtbot, scene):
    viewer, w, src = scene
    _run(qtbot, w)
    auto = viewer.layers["img colorized"].data.copy()
    green_ab = rgb_to_lab(GREEN.reshape(1, 1, 3).astype(np.float32))[0, 0, 1:]
    shapes = viewer.add_shapes([np.array([[30, 20], [30, 100]])], shape_type="path", edge_color=[GREEN],
                               edge_width=3, name="scribbles")
    w.reset_choices()
    w.hints.value = shapes
    _run(qtbot, w)
    near = np.zeros(auto.shape[:2], bool)
    near[26:35, 20:101] = True
    hinted = viewer.layers["img colorized"].data
    assert np.linalg.norm(_mean_ab(hinted, near) - green_ab) < np.linalg.norm(_mean_ab(auto, near) - green_ab) - 10
    w.tool.set_color([0.1, 0.2, 0.9])
    shapes.selected_data = {0}  # napari makes the selected path's green the current color
    shapes.add_paths([np.array([[60, 20], [60, 100]])])
    np.testing.assert_allclose(shapes.edge_color[1][:3], [0.1, 0.2, 0.9])  # the dock's color
    np.testing.assert_allclose(shapes.edge_color[0][:3], GREEN)
    from napari.layers.base._base_constants import ActionType

    # napari announces a drawn shape too short to keep as added after removing it: nothing changes
    before = np.array(shapes.edge_color)
    shapes.events.data(value=shapes.data, action=ActionType.ADDED, data_indices=(-1,), vertex_indices=((),))
    np.testing.assert_array_equal(shapes.edge_color, before)

    labels = viewer.add_labels(np.zeros(src.data.shape, np.int32), name="regions")
    w.reset_choices()
    w.hints.value = labels
    w.tool.set_color([0.9, 0.1, 0.1])  # a new label of that color, selected for painting
    assert labels.selected_label == 1
    labels.data[80:110, 40:90] = 1
    labels.refresh()
    _run(qtbot, w)
    region = labels.data > 0
    red_ab = rgb_to_lab(np.array([[[0.9, 0.1, 0.1]]], np.float32))[0, 0, 1:]
    hinted = viewer.layers["img colorized"].data
    assert np.linalg.norm(_mean_ab(hinted, region) - red_ab) < np.linalg.norm(_mean_ab(auto, region) - red_ab) - 10


def test_painting_a_label_re_colorizes_once(qtbot, scene, monkeypatch):
    viewer, w, src = scene
    labels = viewer.add_labels(np.zeros(src.data.shape, np.int32), name="regions")
    w.reset_choices()
    w.hints.value = labels
    w.tool.set_color(GREEN)
    w.auto.value = True
    runs = _count_runs(w, monkeypatch)
    labels.paint((60, 60), labels.selected_label)
    _settle(qtbot, w)
    assert runs == [1]
    assert "img colorized" in viewer.layers


def test_global_hints_and_a_reference_layer_steer_the_palette(qtbot, scene, photo, monkeypatch):
    viewer, w, src = scene
    calls = []
    import napari_colorize._napari.widgets.colorize as mod

    real = mod.colorize_job

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return (yield from real(*args, **kwargs))

    monkeypatch.setattr(mod, "colorize_job", spy)
    pts = viewer.add_points([[60, 60], [20, 20]], face_color=[[0.1, 0.8, 0.1, 1]] * 2, name="hints")
    w.reset_choices()
    w.hints.value = pts
    w.scope.value = "global"
    _run(qtbot, w)
    assert calls[-1]["points"] is None and calls[-1]["reference"].shape[-1] == 3
    ref = viewer.add_image(photo[::8, ::8], name="ref", rgb=True)
    color = viewer.add_image(photo[::4, ::4], name="color", rgb=True)
    w.reset_choices()
    assert ref in w.reference.choices and src not in w.reference.choices
    w.scope.value = "local"
    w.hints.value = None
    w.image.value, w.reference.value = color, ref
    assert w.run_btn.text == "Recolor"
    _run(qtbot, w)
    assert calls[-1]["reference"] is ref.data and calls[-1]["reference_strength"] == pytest.approx(0.5)
    assert viewer.layers["color recolored"].data.shape == color.data.shape


def test_a_renamed_result_survives_a_rerun_and_new_layers_keep_each_run(qtbot, scene):
    viewer, w, src = scene
    _run(qtbot, w)
    first = viewer.layers["img colorized"]
    first.name = "automatic"
    kept = first.data.copy()
    pts = viewer.add_points([[60, 60]], face_color=[[0.9, 0.1, 0.9, 1]], name="hints")
    w.reset_choices()
    w.hints.value = pts
    _run(qtbot, w)
    assert viewer.layers["automatic"] is first
    np.testing.assert_array_equal(first.data, kept)
    second = viewer.layers["img colorized"]
    assert second is not first
    _run(qtbot, w)
    assert viewer.layers["img colorized"] is second  # not renamed: updated in place
    w.new_each.value = True
    _run(qtbot, w)
    _run(qtbot, w)
    names = [layer.name for layer in viewer.layers if layer.name.startswith("img colorized")]
    assert len(names) == 3 and viewer.layers["img colorized"] is second
    order = [layer.name for layer in viewer.layers]
    newest = max((n for n in names if "[" in n), key=lambda n: int(n.split("[")[1].rstrip("]")))
    # the newest result is drawn over every earlier one and the input; the hints stay on top
    assert order.index(newest) == max(order.index(n) for n in names + ["automatic", "img"])
    assert order.index("hints") > order.index(newest), order


def test_a_result_added_while_placing_hints_leaves_the_hints_layer_selected(qtbot, scene):
    viewer, w, src = scene
    pts = viewer.layers[w.tool.make_layer().name]
    w.new_each.value = True
    pts.add([[30, 30]])
    _run(qtbot, w)
    assert "img colorized" in viewer.layers
    assert viewer.layers.selection.active is pts and pts.mode == "add"


def test_choosing_no_reference_again_turns_recolor_back_to_colorize(qtbot, colorize_dock):
    viewer, w = colorize_dock
    photo = viewer.add_image(np.random.default_rng(0).random((24, 24, 3)), rgb=True, name="photo")
    viewer.add_image(np.random.default_rng(1).random((16, 16, 3)), rgb=True, name="palette")
    w.reset_choices()
    w.image.value = photo
    combo = w.reference.native
    combo.setCurrentIndex(combo.findText("palette"))
    assert w.run_btn.text == "Recolor" and w.strength.enabled
    combo.setCurrentIndex(combo.findText("(none)"))
    assert w.reference.value is None
    assert w.run_btn.text == "Colorize" and not w.strength.enabled


def test_an_empty_hints_layer_starts_no_run_until_its_first_hint(qtbot, scene, monkeypatch):
    viewer, w, src = scene
    runs = _count_runs(w, monkeypatch)
    w.auto.value = True
    pts = viewer.layers[w.tool.make_layer().name]
    w.tool.set_color(GREEN)  # choosing the first hint's color: an event of the new, empty layer
    _settle(qtbot, w)
    assert runs == [] and "img colorized" not in viewer.layers
    pts.add([[20, 20]])
    _settle(qtbot, w)
    assert runs == [1] and "img colorized" in viewer.layers
    w.tool.make_layer()  # a second, empty hints layer after a hinted run: no run either
    w.tool.set_color([0.9, 0.1, 0.1])
    _settle(qtbot, w)
    assert runs == [1]


def test_choosing_no_hints_with_auto_update_on_brings_back_the_automatic_colors(qtbot, scene, monkeypatch):
    viewer, w, src = scene
    _run(qtbot, w)
    auto = viewer.layers["img colorized"].data.copy()
    w.auto.value = True
    pts = viewer.layers[w.tool.make_layer().name]
    pts.add([[20, 20]])
    _settle(qtbot, w)
    assert np.abs(viewer.layers["img colorized"].data - auto).max() > 0.05  # the hint shows
    runs = _count_runs(w, monkeypatch)
    combo = w.hints.native
    combo.setCurrentIndex(combo.findText("(none)"))
    assert w.hints.value is None
    _settle(qtbot, w)
    assert runs == [1]
    np.testing.assert_allclose(viewer.layers["img colorized"].data, auto, atol=1e-6)


def test_a_color_set_in_the_layer_controls_with_nothing_selected_is_the_next_hints(qtbot, scene):
    viewer, w, src = scene
    pts = viewer.layers[w.tool.make_layer().name]
    pts.add([[10, 10]])
    pts.selected_data = set()
    controls = viewer.window._qt_viewer.controls.widgets[pts]
    controls._face_color_control.face_color_edit.setColor("yellow")
    np.testing.assert_allclose(w.tool.color, (1, 1, 0))  # the dock's swatch follows
    pts.add([[20, 20]])
    np.testing.assert_allclose(pts.face_color[1], (1, 1, 0, 1))
    from napari_colorize._napari.widgets.hint_tool import DEFAULT_COLOR

    np.testing.assert_allclose(pts.face_color[0][:3], DEFAULT_COLOR)  # the placed hint keeps its color
