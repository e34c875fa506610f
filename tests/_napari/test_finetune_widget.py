"""The Fine-tune widget in a real viewer (run under Xvfb): train, stop, resume, a run that gains
nothing, manage models."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def slide():
    from skimage import data

    return data.immunohistochemistry()


@pytest.fixture()
def widgets(make_napari_viewer):
    viewer = make_napari_viewer()
    _, ft = viewer.window.add_plugin_dock_widget("napari-colorize", "Fine-tune")
    _, cz = viewer.window.add_plugin_dock_widget("napari-colorize", "Colorize")
    return viewer, ft, cz


def _small(ft, steps: int):
    ft.unit.value = "steps"
    ft.budget.value = steps
    ft.batch.value = 4
    ft.crop.value = 32


def _wait(qtbot, ft, timeout=60000):
    qtbot.waitUntil(lambda: ft._worker is None, timeout=timeout)


def test_train_from_the_widget_and_use_the_model_in_colorize(qtbot, widgets, slide):
    from skimage.color import rgb2gray

    viewer, ft, cz = widgets
    src = viewer.add_image(slide[:256], name="slide", rgb=True)
    gray = viewer.add_image((rgb2gray(slide[256:]) * 255).astype(np.uint8), name="gray slide")
    before = src.data.copy()
    ft.reset_choices()
    ft.layers.value = [src]
    ft.preview.value = gray
    ft.preview_every.value = 2
    ft.name.value = "slides"
    _small(ft, 6)
    states = []
    ft.run_state.events.state.connect(states.append)
    ft.start()
    assert ft.stop_btn.enabled and not ft.start_btn.enabled
    _wait(qtbot, ft)

    assert ft.run_state.state == "done", ft.status.value
    assert states[:2] == ["preparing", "training"] and "saving" in states
    assert ft.run_state.step == 6 and ft.progress.value == ft.progress.max == 6
    assert "saved 'slides'" in ft.status.value and "held-out ab error" in ft.status.value
    assert [s for s, _ in ft.plot.train] == list(range(1, 7)) and len(ft.plot.val) >= 2
    # the plot shows the figure the kept weights were chosen by
    card = ft.last_result["card"]
    assert min(v for _, v in ft.plot.val) == card["validation"]["after"]["val_ab_rmse"] == ft.plot.best[1]
    assert ft.plot.best[0] == card["finetune"]["best_step"] > 0 and ft.keep_row.native.isHidden()
    assert "slides" in cz.model.choices and "slides" in ft.models.manage.choices  # listed at once
    preview = viewer.layers["gray slide fine-tune preview"]
    assert preview.rgb and preview.data.shape == (256, 512, 3)
    np.testing.assert_array_equal(src.data, before)

    cz.model.value = "slides"
    cz.image.value = gray
    cz.run()
    qtbot.waitUntil(lambda: cz._worker is None, timeout=30000)
    assert viewer.layers["gray slide colorized"].data.shape == (256, 512, 3)
    assert ft.resume_btn.enabled


def test_stop_saves_the_best_weights_and_resume_continues(qtbot, widgets, slide):
    from napari_colorize import load_model

    viewer, ft, cz = widgets
    src = viewer.add_image(slide, name="slide", rgb=True)
    ft.reset_choices()
    ft.layers.value = [src]
    ft.name.value = "run"
    _small(ft, 2000)
    ft.lr.value = 3e-3  # a few steps beat the base model on the stain, so the stopped run is saved
    ft.start()
    qtbot.waitUntil(lambda: ft.run_state.step >= 6, timeout=60000)
    asked_at = ft.run_state.step
    shown = []  # the status line after each step report
    ft.run_state.events.step.connect(lambda *_: shown.append(ft.status.value))
    ft.stop()
    _wait(qtbot, ft)
    assert ft.run_state.state == "stopped", ft.status.value
    stopped_at = ft.last_result["steps"]
    # the steps after Stop (the last one at least, validated) keep the notice; the end says the run
    # was stopped, and its bar stays where it stopped
    assert shown and all(m.startswith("stopping after this step") for m in shown), shown
    assert ft.status.value.startswith(f"stopped at step {stopped_at}: saved 'run'"), ft.status.value
    assert ft.last_result["ended"] == "stopped" and ft.progress.value == stopped_at < ft.progress.max
    # the worker may be a step or two ahead of the status line; it stops before its next step
    assert asked_at <= stopped_at <= asked_at + 3
    assert load_model("run").card["finetune"]["steps"] == stopped_at

    assert ft.resume_btn.enabled
    ft.budget.value = 3
    ft.resume()
    _wait(qtbot, ft)
    card = load_model("run").card["finetune"]
    assert ft.run_state.state == "done" and card["resumed_from_step"] == stopped_at
    assert card["steps"] == stopped_at + 3
    assert [m for m in cz.model.choices if m.startswith("run")] == ["run"]  # resumed in place


def test_only_rgb_layers_are_offered_to_learn_colors_from(qtbot, widgets, slide):
    viewer, ft, _ = widgets
    nuclei = viewer.add_image(slide[..., 2], name="nuclei")
    colors = viewer.add_image(slide, name="colors", rgb=True)
    ft.reset_choices()
    offered = [layer for layer in ft.layers.choices]
    assert colors in offered and nuclei not in offered  # a gray layer has no colors to learn


def test_model_management_updates_the_colorize_list(qtbot, widgets, tmp_path):
    from napari_colorize import load_model
    from napari_colorize.core.library import save_user_model

    viewer, ft, cz = widgets
    save_user_model(load_model(), "first")
    assert "first" in ft.models.manage.choices and "first" in cz.model.choices
    ft.models.manage.value = "first"
    ft.models.rename_selected("second")
    assert "second" in cz.model.choices and "first" not in cz.model.choices
    ft.models.export_selected(str(tmp_path / "shared.safetensors"))
    assert (tmp_path / "shared.safetensors").exists()
    ft.models.delete_selected(confirm=False)
    assert "second" not in cz.model.choices
    ft.models.import_file(str(tmp_path / "shared.safetensors"))
    assert ft.models.manage.value == "shared" and "shared" in cz.model.choices


def test_a_run_that_cannot_learn_saves_nothing_and_says_why(qtbot, widgets, slide):
    from napari_colorize.core.library import user_models

    viewer, ft, cz = widgets
    src = viewer.add_image(slide[:256], name="slide", rgb=True)
    ft.reset_choices()
    ft.layers.value = [src]
    ft.name.value = "frozen"
    _small(ft, 3)
    ft.lr.min = 0.0
    ft.lr.value = 0.0
    ft.start()
    _wait(qtbot, ft)
    assert ft.run_state.state == "done"
    assert "nothing saved" in ft.status.value and "learning rate is 0" in ft.status.value
    assert "frozen" not in user_models() and "frozen" not in cz.model.choices
    assert not ft.keep_row.native.isHidden() and ft.resume_btn.enabled  # keep training, or save anyway

    ft.keep_name.value = "kept anyway"
    ft.save_anyway()
    assert "kept anyway" in user_models() and "kept anyway" in cz.model.choices
    assert ft.keep_row.native.isHidden()


def test_training_layers_preselect_the_selected_else_the_last_visible_rgb_layer(make_napari_viewer, slide):
    from napari_colorize._napari.layers import SOURCE_KEY

    viewer = make_napari_viewer()
    viewer.add_image(slide[..., 2], name="nuclei")
    first = viewer.add_image(slide[:128], name="first", rgb=True)
    second = viewer.add_image(slide[128:256], name="second", rgb=True)
    viewer.add_image(slide[256:384], name="hidden", rgb=True, visible=False)
    # a result the Colorize dock published (so marked): selected, yet not data
    viewer.add_image(slide[:128], name="nuclei colorized", rgb=True, metadata={SOURCE_KEY: "nuclei"})
    _, ft = viewer.window.add_plugin_dock_widget("napari-colorize", "Fine-tune")
    assert ft.layers.value == [second]
    images, _ = ft._collect()  # so Start has data to train on
    assert list(images) == ["second"]
    viewer.add_image(slide[:64], name="third", rgb=True)
    assert ft.layers.value == [second]  # a choice once made stays
    ft.layers.value = []  # training on a folder alone: the user's empty choice stays
    viewer.add_image(slide[:64], name="fourth", rgb=True)
    assert ft.layers.value == []

    viewer = make_napari_viewer()
    first = viewer.add_image(slide[:128], name="first", rgb=True)
    viewer.add_image(slide[128:256], name="second", rgb=True)
    viewer.layers.selection.active = first
    _, ft = viewer.window.add_plugin_dock_widget("napari-colorize", "Fine-tune")
    assert ft.layers.value == [first]


def test_a_dock_opened_first_takes_the_first_rgb_layer_added(widgets, slide):
    viewer, ft, _ = widgets
    assert ft.layers.value == []
    viewer.add_image(slide[..., 0], name="gray")
    assert ft.layers.value == []
    rgb = viewer.add_image(slide[:128], name="slide", rgb=True)
    assert ft.layers.value == [rgb]


def _events(ft, steps, total, ended):
    """Feed the dock the events of a run of ``steps`` steps on an estimated ``total``."""
    best = {"step": 0, "val_ab_rmse": 49.2}
    ft.on_progress({"kind": "start", "step": 0, "total": total, "settled": False, "before": best,
                    "val_curve": [(0, best)], "best": best})
    for i in range(1, steps + 1):
        ft.on_progress({"kind": "step", "step": i, "total": total, "settled": True, "loss": 5.0, "lr": 1e-3,
                        "eta": 2.0 * (total - i), "elapsed": 2.0 * i, "val": None, "best": best})
    ft.on_progress({"kind": "end", "ended": ended, "step": steps})


def test_the_bar_is_full_when_the_budget_ends_and_stays_when_stopped(widgets):
    _, ft, _ = widgets
    _events(ft, 8, 9, "budget")  # a time budget spent a step before its estimate
    assert ft.progress.value == ft.progress.max == 8 and ft.status.value.startswith("step 8 / 8:")
    _events(ft, 3, 5, "stopped")
    assert (ft.progress.value, ft.progress.max) == (3, 5)


def test_the_plot_and_its_axis_labels_show_in_a_1280_by_800_window(qtbot, make_napari_viewer):
    from qtpy.QtCore import QPoint

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1280, 800)
    _, ft = viewer.window.add_plugin_dock_widget("napari-colorize", "Fine-tune")
    # the longest status of a run: three lines in a dock of this width
    ft.status.value = ("saved 'default-coffee' (1 min 05 s): held-out ab error 50.4 -> 21.9 (-57%), best at "
                       "step 2 of 4. (time budget used after 4 steps)")
    qtbot.wait(200)
    canvas, view = ft.plot.canvas, ft._scroll.viewport()
    assert ft._scroll.verticalScrollBar().value() == 0
    assert canvas.mapTo(view, QPoint(0, canvas.height())).y() <= view.height()  # no scrolling needed
    canvas.draw()
    label = ft.plot.ax.xaxis.label.get_window_extent()
    assert label.y0 >= 0 and label.y1 <= canvas.figure.bbox.height  # "step" inside the figure


def test_status_line_shows_best_error_its_step_and_time_left():
    from napari_colorize._napari.train_jobs import FinetuneStatus

    st = FinetuneStatus()
    st.update({"kind": "start", "step": 0, "total": 0, "settled": False, "before": {"val_ab_rmse": 22.8},
               "val_curve": [(0, {"val_ab_rmse": 22.8})], "best": {"step": 0, "val_ab_rmse": 22.8}})
    assert st.describe() == "step 0: held-out ab error 22.8 (base model)"
    st.update({"kind": "step", "step": 40, "total": 120, "settled": True, "loss": 3.1, "eta": 75.0,
               "elapsed": 30.0, "val": {"val_ab_rmse": 18.4}, "best": {"step": 30, "val_ab_rmse": 17.9}})
    assert st.describe() == ("step 40 / 120: held-out ab error 18.4, best 17.9 at step 30 (base 22.8); "
                             "about 1 min 15 s left")

    # between validations the figure shown is the last one measured, and says so
    st.update({"kind": "step", "step": 41, "total": 120, "settled": True, "loss": 3.0, "eta": 74.0,
               "elapsed": 31.0, "val": None, "best": {"step": 30, "val_ab_rmse": 17.9}})
    assert st.describe().startswith("step 41 / 120: held-out ab error 18.4 at step 40, best 17.9 at step 30")
    st.stopping, st.message = True, "stopping after this step"
    st.update({"kind": "step", "step": 42, "total": 120, "settled": True, "loss": 3.0, "eta": 73.0,
               "elapsed": 32.0, "val": None, "best": {"step": 30, "val_ab_rmse": 17.9}})
    assert st.describe() == "stopping after this step" and st.step == 42


def test_before_a_validation_the_base_figure_is_labelled_as_such():
    from napari_colorize._napari.train_jobs import FinetuneStatus

    st = FinetuneStatus()
    base = {"step": 0, "val_ab_rmse": 49.2}
    st.update({"kind": "start", "step": 0, "total": 9, "settled": False, "before": base,
               "val_curve": [(0, base)], "best": base})
    st.update({"kind": "step", "step": 3, "total": 9, "settled": True, "loss": 5.0, "eta": 7.0,
               "elapsed": 3.0, "val": None, "best": base})
    assert st.describe() == "step 3 / 9: held-out ab error 49.2 at step 0 (base model); about 7 s left"
    st.update({"kind": "step", "step": 4, "total": 9, "settled": True, "loss": 5.0, "eta": 6.0,
               "elapsed": 4.0, "val": {"val_ab_rmse": 50.1}, "best": base})
    assert st.describe() == "step 4 / 9: held-out ab error 50.1 (base 49.2, not beaten yet); about 6 s left"
