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
    ft.stop()
    _wait(qtbot, ft)
    assert ft.run_state.state == "stopped", ft.status.value
    stopped_at = ft.last_result["steps"]
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


def test_non_rgb_layers_are_refused_with_a_reason(qtbot, widgets, slide):
    viewer, ft, _ = widgets
    nuclei = viewer.add_image(slide[..., 2], name="nuclei")
    ft.reset_choices()
    ft.layers.value = [nuclei]
    ft.start()
    assert ft._worker is None
    assert "'nuclei' is not an RGB layer" in ft.status.value
    assert "no" in ft.status.value and "colors" in ft.status.value


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
