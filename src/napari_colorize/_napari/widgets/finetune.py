"""The Fine-tune dock: teach a colorizer the colors of RGB layers, and manage models.

The training runs in a thread worker (:func:`~napari_colorize._napari.train_jobs.finetune_job`);
its events update a :class:`~napari_colorize._napari.train_jobs.FinetuneStatus`, whose signals
drive the status line, the progress bar and the error plot. Layers are only read.
"""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    Select,
    SpinBox,
)

from ...core.errors import ColorizeError, InputError
from ...core.finetune import DEFAULTS, FinetuneSettings
from ...core.library import (
    checkpoint_dir,
    notify_models_changed,
    on_models_changed,
    save_user_model,
    unique_name,
)
from ...core.modelfile import user_dir
from ..dock import Dock
from ..layers import image_data, is_result, is_rgb, layer_choices, preferred_layer, publish
from ..train_jobs import FinetuneStatus, duration, finetune_job
from .colorize import model_choices
from .finetune_plot import LossPlot
from .models import ModelsBox


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.")[:40] or "model"


def _collapsible(title: str, form: Container):
    """``form`` in a section that opens on a click; closed at first, so the dock stays short."""
    from superqt import QCollapsible

    box = QCollapsible(title)
    box.setToolTip("Settings most runs leave as they are")
    form.margins = (0, 0, 0, 0)
    box.addWidget(form.native)
    box.content().layout().setContentsMargins(0, 0, 0, 0)
    box.layout().setContentsMargins(0, 0, 0, 0)  # closed, it is as tall as its button
    box.layout().setSpacing(0)
    box.collapse(animate=False)
    return box


class FinetuneWidget(Dock):
    """Fine-tune a colorization model on RGB image layers; rename, delete, export, import models.

    The weights kept are those of the lowest held-out ab error, the figure the status line
    and the plot show. A model that beat its base is saved in the user's model folder and
    appears in the Colorize dock's model list at once; one that did not is not saved, and the
    dock offers to keep training (Resume) or to save the final weights under a typed name.
    Stop ends training cleanly; Resume continues the last run from its checkpoint for another
    budget.
    """

    def __init__(self, napari_viewer):
        from napari.layers import Image

        super().__init__(napari_viewer, failure="Fine-tuning failed")
        viewer = self._viewer
        self.layers = Select(label="Training layers", choices=layer_choices(viewer, Image, suitable=is_rgb),
                             tooltip="RGB image layers to learn colors from; every plane of an RGB stack "
                                     "is an image")
        self.layers.native.setMaximumHeight(90)
        # preselected until the user picks (an empty choice too: training on a folder alone)
        self._auto_layers = True
        self.layers.changed.connect(lambda *_: setattr(self, "_auto_layers", False))
        self.folder = FileEdit(label="Images folder", mode="d", nullable=True,
                               tooltip="Optional folder of color photos to train on as well")
        self.folder.choose_btn.text = "Browse..."  # "Choose directory" would widen the dock
        self.folder.choose_btn.tooltip = "Choose a folder of color photos"
        self.validation = self.layer_picker("Validation", Image, optional="held-out tiles",
                                            tooltip="Held-out tiles of the training data, or a layer of its own")
        self.val_share = FloatSpinBox(label="Held-out share", min=0.05, max=0.5, step=0.05,
                                      value=DEFAULTS["val_fraction"],
                                      tooltip="Share of each image's tiles kept back to measure the error "
                                              "on (never trained on)")
        self.base = ComboBox(label="Base model", choices=model_choices, tooltip="Model to start from")
        self.budget = FloatSpinBox(min=0.1, max=100000, step=1, value=2.0, tooltip="How long to train")
        self.unit = ComboBox(choices=["minutes", "steps"], value="minutes", tooltip="Unit of the budget")
        self.preview = self.layer_picker("Preview layer", Image, optional="(none)",
                                         tooltip="Colorized with the current weights while training")
        self.name = LineEdit(label="Model name", value="",
                             tooltip="Name of the new model (default: base model and first layer)")
        self.lr = FloatSpinBox(label="Learning rate", min=1e-5, max=0.05, step=1e-5, value=DEFAULTS["lr"],
                               tooltip="Step size of the optimizer; lower is slower and safer")
        self.batch = SpinBox(label="Batch size", min=1, max=256, value=DEFAULTS["batch_size"],
                             tooltip="Crops per training step")
        self.crop = SpinBox(label="Crop size", min=16, max=512, step=8, value=DEFAULTS["crop"],
                            tooltip="Side of the square crops trained on, in pixels")
        self.aug_flip = CheckBox(text="flip", value=True, tooltip="left-right flips")
        self.aug_rotate = CheckBox(text="rotate", value=False,
                                   tooltip="quarter turns and up-down flips: for slides, not photos")
        self.aug_scale = CheckBox(text="scale", value=True,
                                  tooltip="zoom out up to the scale the model sees whole images at")
        self.what = ComboBox(label="Train", choices=["all layers", "decoder only"], value="all layers",
                             tooltip="decoder only: faster, and keeps what the encoder learned from photos")
        self.seed = SpinBox(label="Seed", min=0, max=2**31 - 1, value=0, tooltip="Seed of crops and weights")
        self.device = ComboBox(label="Device", choices=["auto", "cpu", "cuda", "mps"], value="auto",
                               tooltip="auto: a GPU when there is one")
        self.preview_every = SpinBox(label="Preview every (s)", min=2, max=600, value=10,
                                     tooltip="Seconds between previews")
        self.start_btn = PushButton(text="Start", tooltip="Start a new fine-tuning run")
        self.stop_btn.tooltip = "Stop after the current step and save the weights of the lowest error so far"
        self.resume_btn = PushButton(text="Resume", enabled=False,
                                     tooltip="Keep training: continue the last run from its checkpoint for "
                                             "another budget")
        # shown only after a run that did not beat its base model, which is then not saved
        self.keep_name = LineEdit(value="", tooltip="Name to save the last run's final weights under")
        self.keep_btn = PushButton(text="Save anyway",
                                   tooltip="Save the last run's final weights under the typed name, although "
                                           "they did not beat the base model on the held-out tiles")
        self.keep_row = self.row(self.keep_name, self.keep_btn, label="Not saved")
        self.keep_row.visible = False
        budget_row, run_row = self.row(self.budget, self.unit, label="Budget"), self.row(
            self.start_btn, self.stop_btn, self.resume_btn)
        for r in (budget_row, run_row, self.keep_row):
            r.margins = (0, 0, 0, 0)  # default margins push the plot below the fold of an 800-pixel window
        advanced = Container(labels=True, widgets=[
            self.lr, self.batch, self.crop,
            self.row(self.aug_flip, self.aug_rotate, self.aug_scale, label="Augment"),
            self.what, self.seed, self.device, self.preview_every])
        self.models = ModelsBox(report=self._report, error=self.error, renamed=self._on_renamed,
                                deleted=self._on_deleted)
        self.plot = LossPlot()
        self.add(Label(value="<b>Data</b>"), self.layers, self.folder, self.validation, self.val_share,
                 Label(value="<b>Run</b>"), self.base, budget_row, self.preview, self.name,
                 _collapsible("Advanced settings", advanced), run_row, self.progress, self.keep_row)
        self.add_status()
        self.add(self.plot.canvas, Label(value="<b>Models</b>"))
        self.add_wide(self.models)
        self.busy_while_running(self.start_btn, self.resume_btn, self.keep_btn)

        self.run_state = FinetuneStatus()
        self.run_state.events.step.connect(self._show_progress)
        self.run_state.events.state.connect(self._show_state)
        self.run_state.events.error.connect(lambda *_: self._show_progress())
        self._stop = threading.Event()
        self._outputs: dict = {}
        self._last: dict | None = None
        self._run_info: dict = {}
        self._preview_source = None
        self.last_result: dict | None = None
        self.start_btn.changed.connect(lambda *_: self.start())
        self.resume_btn.changed.connect(lambda *_: self.resume())
        self.keep_btn.changed.connect(lambda *_: self.save_anyway())
        self._unsaved = None
        on_models_changed(self._refresh_models)
        self.reset_choices()

    # -- inputs ----------------------------------------------------------------------------------
    def reset_choices(self, *_):
        """Refresh the choices; until the user picks training layers, preselect an RGB layer."""
        from napari.layers import Image

        with self.layers.changed.blocked():  # the dock's own changes, not the user's pick
            super().reset_choices()
            if self._auto_layers and not self.layers.value:
                # a layer the docks made (a result, the preview) is no sensible default to learn from
                layer = preferred_layer(self._viewer, Image, lambda lay: lay.rgb and not is_result(lay))
                self.layers.value = [] if layer is None else [layer]

    def _refresh_models(self):
        current = self.base.value
        self.base.reset_choices()
        if current in self.base.choices:
            self.base.value = current
        self.models.refresh()

    def settings(self, extra_steps: int = 0) -> FinetuneSettings:
        """The run's settings from the controls (``extra_steps``: steps done before a resume)."""
        minutes = self.unit.value == "minutes"
        return FinetuneSettings(
            steps=None if minutes else extra_steps + max(1, int(self.budget.value)),
            seconds=60.0 * self.budget.value if minutes else None,
            lr=float(self.lr.value), batch_size=int(self.batch.value), crop=int(self.crop.value),
            seed=int(self.seed.value),
            augment=tuple(a for a, box in (("flip", self.aug_flip), ("rotate", self.aug_rotate),
                                           ("scale", self.aug_scale)) if box.value),
            decoder_only=self.what.value == "decoder only", device=self.device.value,
            val_fraction=float(self.val_share.value),
        )

    def _collect(self) -> tuple[dict, dict | None]:
        """Training and validation data of the chosen layers (lazy, unmodified)."""
        images = {}
        for layer in list(self.layers.value or []):
            data, rgb = image_data(layer)
            if not rgb:
                raise InputError(
                    f"'{layer.name}' is not an RGB layer (shape {tuple(data.shape)}): fine-tuning learns "
                    "colors from color images, and a grayscale or single-channel layer has none. "
                    "Choose RGB layers (e.g. H&E slides or color photos).")
            images[layer.name] = data
        val_layer = self.validation.value
        val = None
        if val_layer is not None:
            data, rgb = image_data(val_layer)
            if not rgb:
                raise InputError(f"The validation layer '{val_layer.name}' is not RGB: it has no colors to "
                                 "compare with. Choose an RGB layer or held-out tiles.")
            if val_layer.name in images:
                if len(images) == 1:
                    raise InputError(f"'{val_layer.name}' is both the only training layer and the validation "
                                     "layer; choose held-out tiles instead.")
                del images[val_layer.name]  # figures on training data would flatter the model
                self.info(f"'{val_layer.name}' is the validation layer, so it was left out of training.")
            val = {val_layer.name: data}
        if not images and str(self.folder.value or "") in ("", "."):
            raise InputError("Choose one or more RGB image layers (or a folder of color photos) to train on.")
        return images, val

    def _preview_plane(self):
        layer = self.preview.value
        if layer is None:
            return None
        data, rgb = image_data(layer)
        self._preview_source = layer
        return self.current_plane(layer, data, rgb)[0]

    # -- running ---------------------------------------------------------------------------------
    def start(self, name: str | None = None):
        """Start a new fine-tuning run from the controls' settings."""
        if self.running:
            return
        try:
            images, val = self._collect()
            first = next(iter(images), None) or Path(str(self.folder.value)).name
            name = unique_name(name or self.name.value.strip() or f"{self.base.value}-{_slug(first)}")
            settings = self.settings()
        except ColorizeError as exc:
            self.error(str(exc))
            return
        ckpt = checkpoint_dir(name)
        if ckpt.exists():  # a stale checkpoint of a deleted model of the same name
            shutil.rmtree(ckpt, ignore_errors=True)
        self._launch(images, val, name=name, base=self.base.value, settings=settings, resume=False)

    def resume(self):
        """Continue the last run from its checkpoint for another budget (same data choice)."""
        if self.running or self._last is None:
            return
        try:
            images, val = self._collect()
            settings = self.settings(extra_steps=self._last["steps"])
        except ColorizeError as exc:
            self.error(str(exc))
            return
        self._launch(images, val, name=self._last["name"], base=self._last["base"], settings=settings, resume=True)

    def _launch(self, images, val, *, name, base, settings, resume):
        folder = self.folder.value
        folder = None if folder is None or str(folder) in ("", ".") else folder
        try:
            preview = self._preview_plane()
        except ColorizeError as exc:
            self.error(str(exc))
            return
        self._stop.clear()
        self.run_state.stopping = False
        self.plot.clear()
        self._unsaved = None
        self.keep_row.visible = False
        self._run_info = {"name": name, "base": base}
        self.start_job(finetune_job, images, name=name, target=user_dir() / name, settings=settings, model=base,
                       val_images=val, folder=folder, checkpoint_dir=checkpoint_dir(name), resume=resume,
                       preview=preview, preview_every=float(self.preview_every.value), stop=self._stop.is_set,
                       message="starting...", on_result=self._on_returned)

    def stop(self):
        """Ask the run to stop after the current step; it then saves the best weights."""
        if self.running:
            self._stop.set()
            self.run_state.stopping = True  # later step reports keep this notice
            self.run_state.message = "stopping after this step; the best weights will be saved..."
            self.status.value = self.run_state.message

    # -- events from the worker (main thread) ----------------------------------------------------
    def on_progress(self, ev: dict):
        kind = ev["kind"]
        if kind == "start":
            self.plot.start(ev["before"]["val_ab_rmse"], [(st, v["val_ab_rmse"]) for st, v in ev["val_curve"]])
        elif kind == "step":
            if not self.plot.train or self.plot.train[-1][0] != ev["step"]:  # a final validation repeats it
                self.plot.train.append((ev["step"], ev["loss"]))
            if ev.get("val"):
                self.plot.val.append((ev["step"], ev["val"]["val_ab_rmse"]))
            self.plot.best = (ev["best"]["step"], ev["best"]["val_ab_rmse"])
            self.plot.redraw(force=bool(ev.get("val")))
        elif kind == "preview" and self._preview_source is not None:
            self._show_preview(ev["image"], ev["factor"])
        self.run_state.update(ev)
        if kind == "end":  # a spent budget fills the bar; a stopped run's bar stays where it ended
            self._show_progress()

    def _show_preview(self, rgb, factor: int):
        src = self._preview_source
        if src not in self._viewer.layers:
            return
        scale = tuple(float(s) * factor for s in src.scale[-2:])
        translate = tuple(float(t) for t in src.translate[-2:])
        publish(self._viewer, src, rgb, "fine-tune preview", self._outputs, rgb=True, scale=scale,
                translate=translate)

    def _show_progress(self, *_):
        st = self.run_state
        self.progress.max = max(1, st.total)
        self.progress.value = min(st.step, st.total)
        self.status.value = st.describe()

    def _show_state(self, state: str):
        if state != "training":
            self.status.value = self.run_state.describe()

    def _on_returned(self, result):
        self.last_result = result
        if result is None:
            return
        self._last = {"name": result["name"], "base": self._run_info["base"], "steps": int(result["steps"])}
        self.plot.redraw(force=True)
        stopped = result["ended"] == "stopped"  # not a Stop pressed after the last step
        # a stopped run says so first; a budget's or a failure's note follows the verdict
        why = result["stopped"]
        lead, note = (f"{why}: ", "") if stopped else ("", f" ({why})" if why else "")
        took = duration(result["seconds"])
        if result["saved"]:
            notify_models_changed()  # here, in the main thread: listeners update widgets
            msg = f"{lead}saved '{result['name']}' ({took}): {result['verdict']}.{note}"
        else:
            self._unsaved = result["unsaved"]
            self.keep_name.value = f"{result['name']}-unimproved"
            self.keep_row.visible = True
            msg = (f"{lead}nothing saved ({took}): {result['verdict']}.{note} Resume keeps training; "
                   "Save anyway, in the Not saved row, keeps the final weights under the name given there.")
        self.run_state.message = msg
        self.run_state.state = "stopped" if stopped else "done"
        self.status.value = msg

    def save_anyway(self, name: str | None = None):
        """Save the final weights of a run that did not beat its base model, under ``name``."""
        if self._unsaved is None or self.running:
            return
        try:
            name = (name or self.keep_name.value).strip()
            self._unsaved.card["name"] = name
            save_user_model(self._unsaved, name)  # refuses an existing name
        except ColorizeError as exc:
            self.error(str(exc))
            return
        self._unsaved = None
        self.keep_row.visible = False
        self.status.value = f"saved '{name}' anyway (final weights, not better than the base model)"

    def _on_error(self, exc: Exception):
        super()._on_error(exc)  # the message, in the status line and a notification
        if not isinstance(exc, ColorizeError):
            self.status.value += ". No model was saved."
        self.run_state.message = self.status.value
        self.run_state.state = "failed"

    def _on_finished(self):
        super()._on_finished()
        self.resume_btn.enabled = self._last is not None and checkpoint_dir(self._last["name"]).is_dir()

    # -- models ----------------------------------------------------------------------------------
    def _report(self, msg: str):
        self.status.value = msg

    def _on_renamed(self, old: str, new: str):
        if self._last and self._last["name"] == old:
            self._last["name"] = new

    def _on_deleted(self, name: str):
        if self._last and self._last["name"] == name:
            self._last = None
            self.resume_btn.enabled = False
