"""The docks' shared base class in a real viewer: preselection, Stop, errors, scrolling, tooltips."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from magicgui.widgets import Container, Label
from magicgui.widgets.bases import ButtonWidget, ValueWidget

from napari_colorize._napari.dock import Dock
from napari_colorize.core.errors import InputError

PLUGIN = "napari-colorize"
DOCKS = ["Colorize", "Inspect model", "Metrics", "Fine-tune", "Edges (step by step)", "Superpixels and k-means",
         "Shape descriptors and matching"]


class Slow(Dock):
    """A dock around a job that yields until told to end, or raises what it is given."""

    def __init__(self, viewer, fail=None):
        from napari.layers import Image

        super().__init__(viewer, failure="Slow job failed")
        self.image = self.layer_picker("Image", Image, tooltip="an image")
        self.add(self.image, self.row(self.stop_btn), self.progress)
        self.add_status()
        self.fail, self.results, self.runs = fail, [], 0
        self.release = threading.Event()

    def job(self):
        self.runs += 1
        for i in range(10_000):
            if self.fail is not None:
                raise self.fail
            if self.release.is_set():
                return i
            yield {"done": i, "total": 10_000}
            self.release.wait(0.01)
        return -1

    def rerun(self):
        self.start_job(self.job, message="working...", on_result=self.results.append)


@pytest.fixture()
def viewer(make_napari_viewer):
    return make_napari_viewer()


def _wait(qtbot, dock):
    qtbot.waitUntil(lambda: not dock.running, timeout=20000)


def test_pickers_preselect_the_selected_else_the_last_visible_layer(viewer):
    gray = viewer.add_image(np.zeros((8, 8)), name="gray")
    viewer.add_image(np.zeros((8, 8, 3)), name="gray reference", rgb=True, visible=False)
    assert viewer.layers.selection.active.name == "gray reference"  # hidden: not what the user means
    _, colorize = viewer.window.add_plugin_dock_widget(PLUGIN, "Colorize")
    assert colorize.image.value is gray
    other = viewer.add_image(np.ones((8, 8)), name="other")
    viewer.layers.selection.active = other
    _, edges = viewer.window.add_plugin_dock_widget(PLUGIN, "Edges (step by step)")
    assert edges.image.value is other
    assert colorize.image.value is gray  # a choice once made stays
    assert colorize.hints.value is None  # optional pickers start with "(none)"


def test_an_empty_picker_takes_the_first_layer_added(viewer):
    _, seg = viewer.window.add_plugin_dock_widget(PLUGIN, "Superpixels and k-means")
    _, shapes = viewer.window.add_plugin_dock_widget(PLUGIN, "Shape descriptors and matching")
    assert seg.image.value is None and shapes.segments.value is None
    img = viewer.add_image(np.zeros((8, 8)), name="img")
    labels = viewer.add_labels(np.zeros((8, 8), np.int32), name="labels")
    assert seg.image.value is img and shapes.segments.value is labels
    viewer.layers.remove(img)
    assert seg.image.value is None


def test_stop_ends_the_job_and_frees_the_dock(qtbot, viewer):
    dock = Slow(viewer)
    dock.rerun()
    assert dock.running and dock.stop_btn.enabled
    qtbot.waitUntil(lambda: dock.progress.value > 2, timeout=10000)
    dock.stop()
    _wait(qtbot, dock)
    assert dock.status.value == "stopped" and not dock.stop_btn.enabled
    assert dock.results == []  # a stopped job publishes nothing
    assert 2 < dock.progress.value < 10_000


def test_a_request_while_running_runs_once_more_after(qtbot, viewer):
    dock = Slow(viewer)
    dock.request_run()
    dock.request_run()
    dock.request_run()  # several requests while running: one re-run
    dock.release.set()
    qtbot.waitUntil(lambda: len(dock.results) == 2, timeout=10000)
    _wait(qtbot, dock)
    assert dock.runs == 2


@pytest.mark.parametrize("exc, shown", [
    (InputError("The image is\ntoo small."), "The image is; too small."),
    (RuntimeError("boom"), "Slow job failed: RuntimeError: boom"),  # what torch raises on out-of-memory
    (ValueError("bad"), "Slow job failed: ValueError: bad"),
])
def test_an_error_becomes_one_notification_line_not_a_traceback(qtbot, viewer, errors, exc, shown):
    dock = Slow(viewer, fail=exc)
    dock.rerun()
    _wait(qtbot, dock)
    assert errors == [shown]
    assert dock.status.value.startswith(shown.split(";")[0])
    assert dock.results == [] and not dock.stop_btn.enabled


def _controls(widget):
    for w in widget:
        if isinstance(w, Container):
            yield from _controls(w)
        elif isinstance(w, (ValueWidget, ButtonWidget)) and not isinstance(w, Label):
            yield w


@pytest.mark.parametrize("name", DOCKS)
def test_every_dock_scrolls_fits_the_window_and_explains_its_controls(viewer, name):
    from qtpy.QtWidgets import QScrollArea

    viewer.window._qt_window.resize(1280, 800)
    dock_widget, dock = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    assert isinstance(dock, Dock)
    assert isinstance(dock._scroll, QScrollArea) and dock._scroll.widget() is dock.body.native
    assert dock_widget.minimumSizeHint().height() < 400  # the scroll area, not the form, sets it
    missing = [w.label or w.text for w in _controls(dock.body) if not w.tooltip]
    assert missing == []
    before = dock_widget.sizeHint().width()
    dock.status.value = "a long message " * 40
    assert dock.status.native.wordWrap() and dock_widget.sizeHint().width() <= before


def test_filter_docks_have_readable_labels_and_tooltips(viewer):
    from napari._app_model import get_app_model

    from napari_colorize._napari.widgets.filters import FILTERS

    viewer.add_image(np.zeros((8, 8)), name="img")
    commands = {"Resize": "resize", "Rotate": "rotate", "Flip": "flip", "Grayscale": "grayscale",
                "Gaussian smoothing": "gaussian", "Normalize intensity": "normalize",
                "Color space channels": "color_channels", "Color gradient": "color_gradient"}
    assert set(commands) == set(FILTERS)
    for cmd in commands.values():
        w = get_app_model().commands.execute_command(f"{PLUGIN}.{cmd}").result()
        assert w.image.value is viewer.layers["img"]
        for control in _controls(w):
            assert control.tooltip, (cmd, control.name)
            assert "_" not in control.label, (cmd, control.label)  # "Target rows", not "target_rows"
    again = get_app_model().commands.execute_command(f"{PLUGIN}.resize").result()
    assert again is viewer.window.dock_widgets["Resize (napari-colorize)"]  # shown again, not docked twice


def test_a_big_rgb_result_shows_its_whole_range(viewer):
    from napari_colorize._napari.layers import publish

    src = viewer.add_image(np.zeros((2000, 3000), np.uint8), name="scan")
    rgb = np.zeros((2000, 3000, 3), np.float32)
    # napari would take the limits of a big layer from its bright centre
    rgb[900:1100, 1400:1600] = np.linspace(0.7, 1.0, 200, dtype=np.float32)[:, None, None]
    outputs = {}
    layer = publish(viewer, src, rgb, "colorized", outputs, rgb=True)
    assert tuple(layer.contrast_limits) == (0.0, 1.0)
    layer.contrast_limits = (0.5, 1.0)
    again = publish(viewer, src, rgb * 0.5, "colorized", outputs, rgb=True)  # updated in place
    assert again is layer and tuple(layer.contrast_limits) == (0.0, 1.0)
