"""The Metrics widget in a real napari viewer (run under Xvfb)."""

from __future__ import annotations

import csv

import numpy as np
import pytest


@pytest.fixture()
def widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-colorize", "Metrics")
    return viewer, w


@pytest.fixture(scope="module")
def images():
    """A 48 x 64 color crop, a washed-out copy of it, and an 8-bit gray version."""
    from skimage import data
    from skimage.color import rgb2gray

    ref = data.astronaut()[100:148, 180:244].copy()
    gray = (rgb2gray(ref) * 255).round().astype(np.uint8)
    washed = (0.5 * ref + 0.5 * gray[..., None]).round().astype(np.uint8)
    return ref, washed, gray


def _settle(qtbot, w, timeout=20000):
    qtbot.wait(400)  # past the debounce
    qtbot.waitUntil(lambda: w._worker is None and w.results is not None, timeout=timeout)


def test_docked_from_the_manifest_it_fills_a_row_per_layer(qtbot, widget, images):
    from skimage.metrics import peak_signal_noise_ratio

    from napari_colorize import metrics as M

    viewer, w = widget
    ref, washed, _ = images
    lr = viewer.add_image(ref, name="truth")
    lw = viewer.add_image(washed, name="washed")
    before = lw.data.copy()
    w.layers.value = [lw]
    w.reference.value = lr
    _settle(qtbot, w)

    assert w.table.rowCount() == 3
    assert [w.cell(i, "Layer") for i in range(3)] == ["washed", "truth (reference)", "gray baseline"]
    assert w.cell(0, "PSNR") == f"{peak_signal_noise_ratio(ref, washed):.2f}"
    assert w.cell(0, "Colorfulness") == f"{M.colorfulness(washed):.1f}"
    assert w.cell(1, "Colorfulness") == f"{M.colorfulness(ref):.1f}"
    assert w.cell(1, "PSNR") == "–"  # the reference against itself is not a figure
    gray = M.gray_baseline(ref)
    assert w.cell(2, "SSIM") == f"{M.ssim(gray, ref / 255.0):.4f}"
    # the washed-out layer keeps more of the color than none at all
    assert float(w.cell(0, "ab RMSE")) < float(w.cell(2, "ab RMSE"))
    np.testing.assert_array_equal(lw.data, before)

    # the ab plot shows the layer beside its reference
    titles = [ax.get_title() for ax in w.ab_plot.axes]
    assert titles == ["washed", "truth (reference)"]
    assert all(len(ax.get_images()) == 2 for ax in w.ab_plot.axes)  # gamut and histogram


def test_table_follows_a_change_of_layer_data(qtbot, widget, images):
    viewer, w = widget
    ref, washed, _ = images
    lw = viewer.add_image(washed, name="washed")
    w.layers.value = [lw]
    w.reference.value = viewer.add_image(ref, name="truth")
    _settle(qtbot, w)
    first = w.cell(0, "PSNR")
    lw.data = ref.copy()  # now a perfect colorization
    qtbot.waitUntil(lambda: w.cell(0, "PSNR") == "∞", timeout=20000)
    assert first != "∞"
    w.reference.value = None
    w.layers.value = []
    qtbot.waitUntil(lambda: w.table.rowCount() == 0, timeout=20000)  # no stale figures left


def test_stack_current_plane_then_all_planes_copy_and_csv(qtbot, widget, images, tmp_path):
    import dask.array as da

    from napari_colorize import metrics as M

    viewer, w = widget
    ref, washed, _ = images
    stack = np.stack([washed, ref, washed[:, ::-1]])
    refs = np.stack([ref, ref, ref])
    lazy = da.from_array(stack, chunks=(1, *washed.shape))
    ls = viewer.add_image(lazy, name="stack", rgb=True)
    w.layers.value = [ls]
    w.reference.value = viewer.add_image(refs, name="truth", rgb=True)
    viewer.dims.set_current_step(0, 2)
    _settle(qtbot, w)
    assert w.cell(0, "PSNR") == f"{M.psnr(washed[:, ::-1], ref):.2f}"
    viewer.dims.set_current_step(0, 0)  # the table follows the plane shown
    qtbot.waitUntil(lambda: w.cell(0, "PSNR") == f"{M.psnr(washed, ref):.2f}", timeout=20000)
    _settle(qtbot, w)
    assert w.table_text(",").splitlines()[1].startswith("stack,layer,0,")

    w.planes.value = "all planes"
    per = M.psnr(stack, refs, per_plane=True)
    qtbot.waitUntil(lambda: w.cell(0, "PSNR") == "∞", timeout=20000)  # the mean, with plane 1 exact
    _settle(qtbot, w)

    text = w.copy_to_clipboard()
    from qtpy.QtWidgets import QApplication

    assert QApplication.clipboard().text() == text
    w.export_csv(tmp_path / "m.csv")
    with open(tmp_path / "m.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    stack_rows = [r for r in rows if r["layer"] == "stack"]
    assert [r["plane"] for r in stack_rows] == ["mean", "0", "1", "2"]
    assert float(stack_rows[0]["colorfulness"]) == pytest.approx(M.colorfulness(stack), rel=1e-5)
    assert float(stack_rows[1]["psnr"]) == pytest.approx(per[0], rel=1e-5)
    assert float(stack_rows[3]["ssim"]) == pytest.approx(M.ssim(washed[:, ::-1], ref), rel=1e-5)
    gray_rows = [r for r in rows if r["role"] == "gray baseline"]
    assert len(gray_rows) == 4 and gray_rows[0]["colorfulness"] == ""
    assert float(gray_rows[1]["psnr"]) == pytest.approx(M.psnr(M.gray_baseline(ref), ref), rel=1e-5)


def test_bad_layers_get_a_notification_and_the_rest_still_shows(qtbot, widget, images, errors):
    viewer, w = widget
    ref, washed, gray = images
    lg = viewer.add_image(gray, name="gray")
    lw = viewer.add_image(washed, name="washed")
    nan = viewer.add_image(np.full((48, 64, 3), np.nan, dtype=np.float32), name="nan", rgb=True)
    small = viewer.add_image(washed[:40], name="cropped")
    assert lg not in w.layers.choices  # metrics are defined for RGB layers only
    w.layers.value = [lw, nan, small]
    w.reference.value = viewer.add_image(ref, name="truth")
    _settle(qtbot, w)
    msgs = "\n".join(errors)
    assert "'cropped' ((40, 64, 3)) and the reference 'truth' ((48, 64, 3)) differ" in msgs
    assert "'nan': The image contains NaN" in msgs
    assert [w.cell(i, "Layer") for i in range(w.table.rowCount())] == [
        "washed", "truth (reference)", "gray baseline"]


def test_update_without_layers_says_what_to_do(widget, errors):
    _, w = widget
    w.update_metrics()
    assert errors == ["Choose one or more RGB layers to measure."]


def test_only_rgb_layers_are_offered_and_results_are_preselected(qtbot, make_napari_viewer, images, errors):
    viewer = make_napari_viewer()
    ref, washed, gray = images
    viewer.add_image(gray, name="photo")
    viewer.add_image(gray.astype(np.float32) / 255, name="photo uncertainty")
    truth = viewer.add_image(ref, name="truth", visible=False)
    result = viewer.add_image(washed, name="photo colorized")
    viewer.layers.selection.active = truth  # a selected reference is still not what is measured first
    _, w = viewer.window.add_plugin_dock_widget("napari-colorize", "Metrics")
    assert [lay.name for lay in w.layers.choices] == ["truth", "photo colorized"]
    assert w.layers.value == [result]
    _settle(qtbot, w)  # measured at once, with no "Choose one or more RGB layers" error
    assert not errors and w.cell(0, "Layer") == "photo colorized"

    again = viewer.add_image(washed[:, ::-1], name="photo recolored")  # a new result joins
    assert w.layers.value == [result, again]
    w.layers.value = [result]  # the user's pick stays
    viewer.add_image(washed, name="photo colorized [1]")
    assert w.layers.value == [result]


def test_without_results_the_last_visible_rgb_layer_is_preselected_never_the_reference(widget, images):
    viewer, w = widget
    ref, washed, gray = images
    assert w.layers.value == []
    lw = viewer.add_image(washed, name="washed")
    assert w.layers.value == [lw]  # an empty list takes the first RGB layer added
    truth = viewer.add_image(ref, name="truth")
    assert w.layers.value == [lw]  # a later plain layer does not replace it
    viewer.add_image(gray, name="gray")
    w.reference.value = lw  # the reference is not measured as a layer: the next RGB layer is
    assert w.layers.value == [truth]
    w.layers.value = []  # a cleared list is the user's choice and stays empty
    viewer.add_image(washed, name="photo colorized")
    assert w.layers.value == []
