"""The Fine-tune dock widget: teach a colorizer the colors of RGB layers, and manage models.

The training runs in a thread worker (:func:`~napari_colorize._train_jobs.finetune_job`); its
events update a :class:`~napari_colorize._train_jobs.FinetuneStatus`, whose signals drive the
labels, the progress bar and the loss plot. Layers are only read.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    Select,
    SpinBox,
)

from .._layers import image_data, publish
from .._threading import make_worker
from .._train_jobs import FinetuneStatus, finetune_job
from ..core.errors import ColorizeError, InputError
from ..core.finetune import DEFAULTS, FinetuneSettings
from ..core.library import (
    checkpoint_dir,
    delete_model,
    export_model,
    import_model,
    notify_models_changed,
    on_models_changed,
    rename_model,
    unique_name,
    user_models,
)
from ..core.modelfile import available_models, user_dir

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)


class LossPlot:
    """Training loss (line) and validation loss (dots) against steps, in a matplotlib canvas."""

    def __init__(self):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(3.2, 2.0), dpi=90, facecolor="#262930", layout="constrained")
        self.ax = ax = fig.add_subplot()
        ax.set_facecolor("#262930")
        for side in ax.spines.values():
            side.set_color("#8f9399")
        ax.tick_params(colors="#c5c9ce", labelsize=7)
        ax.set_xlabel("step", color="#c5c9ce", fontsize=8)
        ax.set_ylabel("loss", color="#c5c9ce", fontsize=8)
        (self.train_line,) = ax.plot([], [], color="#6fa8dc", lw=1, label="train")
        (self.val_line,) = ax.plot([], [], "o-", color="#f6b26b", ms=3, lw=1, label="validation")
        ax.legend(fontsize=7, facecolor="#262930", labelcolor="#c5c9ce", edgecolor="#8f9399", loc="upper right")
        self.canvas = FigureCanvasQTAgg(fig)
        self.canvas.setMinimumHeight(170)
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        self._drawn = 0.0

    def clear(self) -> None:
        self.train.clear()
        self.val.clear()
        self.redraw(force=True)

    def redraw(self, force: bool = False) -> None:
        """Redraw, at most a few times a second unless ``force``: drawing costs the UI time."""
        now = time.perf_counter()
        if not force and now - self._drawn < 0.5:
            return
        self._drawn = now
        # a running mean keeps the noisy per-batch loss readable
        steps = [s for s, _ in self.train]
        smooth, acc = [], None
        for _, v in self.train:
            acc = v if acc is None else 0.9 * acc + 0.1 * v
            smooth.append(acc)
        self.train_line.set_data(steps, smooth)
        self.val_line.set_data([s for s, _ in self.val], [v for _, v in self.val])
        self.ax.relim()
        self.ax.autoscale_view()
        self.canvas.draw_idle()


def _image_layers(viewer, optional: str | None = None):
    from napari.layers import Image

    def choices(_widget=None):
        found = [(layer.name, layer) for layer in viewer.layers if isinstance(layer, Image)]
        return ([(optional, None)] if optional else []) + found

    return choices


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.")[:40] or "model"


class FinetuneWidget(Container):
    """Fine-tune a colorization model on RGB image layers; rename, delete, export, import models.

    The new model is saved in the user's model folder and appears in the Colorize widget's
    model list at once. Stop ends training cleanly and keeps the best weights; Resume
    continues the last run from its checkpoint for another budget.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        viewer = self._viewer = napari_viewer
        tip = "RGB image layers to learn colors from; every plane of an RGB stack is an image"
        self.layers = Select(label="Training layers", choices=_image_layers(viewer), tooltip=tip)
        self.layers.native.setMaximumHeight(90)
        self.folder = FileEdit(label="Images folder", mode="d", nullable=True,
                               tooltip="Optional folder of color photos to train on as well")
        self.validation = ComboBox(label="Validation", choices=_image_layers(viewer, "held-out tiles"),
                                   tooltip="Held-out tiles of the training data, or a layer of its own")
        self.val_share = FloatSpinBox(label="Held-out share", min=0.05, max=0.5, step=0.05,
                                      value=DEFAULTS["val_fraction"])
        self.base = ComboBox(label="Base model", choices=lambda _w=None: list(available_models()) or ["default"])
        self.budget = FloatSpinBox(label="Budget", min=0.1, max=100000, step=1, value=2.0)
        self.unit = ComboBox(choices=["minutes", "steps"], value="minutes")
        self.lr = FloatSpinBox(label="Learning rate", min=1e-5, max=0.05, step=1e-5, value=DEFAULTS["lr"])
        self.batch = SpinBox(label="Batch size", min=1, max=256, value=DEFAULTS["batch_size"])
        self.crop = SpinBox(label="Crop size", min=16, max=512, step=8, value=DEFAULTS["crop"])
        self.aug_flip = CheckBox(text="flip", value=True, tooltip="left-right flips")
        self.aug_rotate = CheckBox(text="rotate", value=False,
                                   tooltip="quarter turns and up-down flips: for slides, not photos")
        self.aug_scale = CheckBox(text="scale", value=True,
                                  tooltip="zoom out up to the scale the model sees whole images at")
        self.what = ComboBox(label="Train", choices=["all layers", "decoder only"], value="all layers")
        self.seed = SpinBox(label="Seed", min=0, max=2**31 - 1, value=0)
        self.device = ComboBox(label="Device", choices=["auto", "cpu", "cuda", "mps"], value="auto")
        self.preview = ComboBox(label="Preview layer", choices=_image_layers(viewer, "(none)"),
                                tooltip="Colorized with the current weights while training")
        self.preview_every = SpinBox(label="Preview every (s)", min=2, max=600, value=10)
        self.name = LineEdit(label="Model name", value="",
                             tooltip="Name of the new model (default: base model and first layer)")
        self.start_btn = PushButton(text="Start")
        self.stop_btn = PushButton(text="Stop", enabled=False)
        self.resume_btn = PushButton(text="Resume", enabled=False,
                                     tooltip="Continue the last run from its checkpoint for another budget")
        self.progress = ProgressBar(label="Progress", min=0, max=1, value=0)
        self.status_label = Label(value="")
        self.status_label.native.setWordWrap(True)

        self.manage = ComboBox(label="Your models", choices=lambda _w=None: list(user_models()))
        self.new_name = LineEdit(label="New name", value="")
        self.rename_btn = PushButton(text="Rename")
        self.delete_btn = PushButton(text="Delete")
        self.export_btn = PushButton(text="Export...")
        self.import_btn = PushButton(text="Import...")

        row = {"layout": "horizontal", "labels": False}
        self.extend([
            Label(value="<b>Data</b>"), self.layers, self.folder, self.validation, self.val_share,
            Label(value="<b>Settings</b>"), self.base,
            Container(widgets=[self.budget, self.unit], label="Budget", **row),
            self.lr, self.batch, self.crop,
            Container(widgets=[self.aug_flip, self.aug_rotate, self.aug_scale], label="Augment", **row),
            self.what, self.seed, self.device, self.preview, self.preview_every, self.name,
            Container(widgets=[self.start_btn, self.stop_btn, self.resume_btn], **row),
            self.progress,
        ])
        status_box = Container(widgets=[self.status_label], labels=False)
        self.append(status_box)
        self.extend([
            Label(value="<b>Models</b>"), self.manage, self.new_name,
            Container(widgets=[self.rename_btn, self.delete_btn, self.export_btn, self.import_btn], **row),
        ])
        # the plot is a plain Qt widget: put it under the status line, outside magicgui's list
        self.plot = LossPlot()
        layout = self.native.layout()
        at = next(i for i in range(layout.count()) if layout.itemAt(i).widget() is not None
                  and (layout.itemAt(i).widget() is status_box.native
                       or layout.itemAt(i).widget().isAncestorOf(status_box.native)))
        layout.insertWidget(at + 1, self.plot.canvas)

        self.status = FinetuneStatus()
        self.status.events.step.connect(self._show_progress)
        self.status.events.state.connect(self._show_state)
        self.status.events.val_loss.connect(lambda *_: self._show_progress())
        self._worker = None
        self._stop = threading.Event()
        self._outputs: dict = {}
        self._last: dict | None = None
        self._preview_source = None
        self.last_result: dict | None = None

        self.start_btn.changed.connect(lambda *_: self.start())
        self.stop_btn.changed.connect(lambda *_: self.stop())
        self.resume_btn.changed.connect(lambda *_: self.resume())
        self.rename_btn.changed.connect(lambda *_: self.rename_selected())
        self.delete_btn.changed.connect(lambda *_: self.delete_selected())
        self.export_btn.changed.connect(lambda *_: self.export_selected())
        self.import_btn.changed.connect(lambda *_: self.import_file())
        for ev in (viewer.layers.events.inserted, viewer.layers.events.removed, viewer.layers.events.moved):
            ev.connect(self.reset_choices)
        on_models_changed(self._refresh_models)
        self.reset_choices()

    # -- inputs ----------------------------------------------------------------------------------
    def _refresh_models(self):
        for box in (self.base, self.manage):
            current = box.value
            box.reset_choices()
            if current in box.choices:
                box.value = current

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
        chosen = list(self.layers.value or [])
        images = {}
        for layer in chosen:
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
                self._info(f"'{val_layer.name}' is the validation layer, so it was left out of training.")
            val = {val_layer.name: data}
        if not images and str(self.folder.value or "") in ("", "."):
            raise InputError("Choose one or more RGB image layers (or a folder of color photos) to train on.")
        return images, val

    def _preview_plane(self):
        layer = self.preview.value
        if layer is None:
            return None
        data, rgb = image_data(layer)
        lead = data.ndim - (3 if rgb else 2)
        if lead:
            pos = layer.world_to_data(self._viewer.dims.point)
            idx = tuple(int(min(max(round(float(c)), 0), n - 1)) for c, n in zip(pos[:lead], data.shape[:lead]))
            data = data[idx]
        self._preview_source = layer
        return data

    # -- running ---------------------------------------------------------------------------------
    def start(self, name: str | None = None):
        """Start a new fine-tuning run from the controls' settings."""
        if self._worker is not None:
            return
        try:
            images, val = self._collect()
            first = next(iter(images), None) or Path(str(self.folder.value)).name
            name = unique_name(name or self.name.value.strip() or f"{self.base.value}-{_slug(first)}")
            settings = self.settings()
        except ColorizeError as exc:
            self._error(str(exc))
            return
        ckpt = checkpoint_dir(name)
        if ckpt.exists():  # a stale checkpoint of a deleted model of the same name
            import shutil

            shutil.rmtree(ckpt, ignore_errors=True)
        self._launch(images, val, name=name, base=self.base.value, settings=settings, resume=False)

    def resume(self):
        """Continue the last run from its checkpoint for another budget (same data choice)."""
        if self._worker is not None or self._last is None:
            return
        try:
            images, val = self._collect()
            settings = self.settings(extra_steps=self._last["steps"])
        except ColorizeError as exc:
            self._error(str(exc))
            return
        self._launch(images, val, name=self._last["name"], base=self._last["base"], settings=settings, resume=True)

    def _launch(self, images, val, *, name, base, settings, resume):
        folder = self.folder.value
        folder = None if folder is None or str(folder) in ("", ".") else folder
        try:
            preview = self._preview_plane()
        except ColorizeError as exc:
            self._error(str(exc))
            return
        self._stop.clear()
        self.plot.clear()
        self.progress.value = 0
        self._run_info = {"name": name, "base": base}
        worker = make_worker(
            finetune_job, images, name=name, target=user_dir() / name, settings=settings, model=base,
            val_images=val, folder=folder, checkpoint_dir=checkpoint_dir(name), resume=resume, preview=preview,
            preview_every=float(self.preview_every.value), stop=self._stop.is_set, errored=self._on_error)
        worker.yielded.connect(self._on_event)
        worker.returned.connect(self._on_returned)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.start_btn.enabled = self.resume_btn.enabled = False
        self.stop_btn.enabled = True
        worker.start()

    def stop(self):
        """Ask the run to stop after the current step; it then saves the best weights."""
        if self._worker is not None:
            self._stop.set()
            self.status.message = "stopping after this step; the best weights will be saved..."
            self.status_label.value = self.status.message

    # -- events from the worker (main thread) ----------------------------------------------------
    def _on_event(self, ev: dict):
        kind = ev["kind"]
        if kind == "start":
            self.plot.val = [(s, v["val_loss"]) for s, v in ev["val_curve"]]
        elif kind == "step":
            self.plot.train.append((ev["step"], ev["loss"]))
            if ev.get("val"):
                self.plot.val.append((ev["step"], ev["val"]["val_loss"]))
            self.plot.redraw(force=bool(ev.get("val")))
        elif kind == "preview" and self._preview_source is not None:
            self._show_preview(ev["image"], ev["factor"])
        self.status.update(ev)

    def _show_preview(self, rgb, factor: int):
        src = self._preview_source
        if src not in self._viewer.layers:
            return
        scale = tuple(float(s) * factor for s in src.scale[-2:])
        translate = tuple(float(t) for t in src.translate[-2:])
        publish(self._viewer, src, rgb, "fine-tune preview", self._outputs, rgb=True, scale=scale,
                translate=translate)

    def _show_progress(self, *_):
        st = self.status
        self.progress.max = max(1, st.total)
        self.progress.value = min(st.step, st.total)
        self.status_label.value = st.describe()

    def _show_state(self, state: str):
        if state != "training":
            self.status_label.value = self.status.describe()

    def _on_returned(self, result):
        self.last_result = result
        if result is None:
            return
        notify_models_changed()  # here, in the main thread: listeners update widgets
        card = result["card"]
        before, after = card["validation"]["before"], card["validation"]["after"]
        ft = card["finetune"]
        self._last = {"name": result["name"], "base": self._run_info["base"], "steps": int(ft["steps"])}
        self.plot.redraw(force=True)
        self.status.message = (
            f"saved '{result['name']}' after {ft['steps']} steps ({ft['seconds']:.0f} s; best at step "
            f"{ft['best_step']}). Validation loss {before['val_loss']:.3f} -> {after['val_loss']:.3f}, "
            f"ab error {before['val_ab_rmse']:.1f} -> {after['val_ab_rmse']:.1f}."
            + (f" ({result['stopped']})" if result["stopped"] else ""))
        self.status.state = "stopped" if self._stop.is_set() else "done"
        self.status_label.value = self.status.message

    def _on_error(self, exc: Exception):
        self.status.message = str(exc)
        self.status.state = "failed"
        if isinstance(exc, ColorizeError):
            self._error(str(exc))
        else:
            log.exception("fine-tuning failed", exc_info=exc)
            self._error(f"Fine-tuning failed: {type(exc).__name__}: {exc}. No model was saved.")

    def _on_finished(self):
        self._worker = None
        self.start_btn.enabled = True
        self.stop_btn.enabled = False
        self.resume_btn.enabled = self._last is not None and checkpoint_dir(self._last["name"]).is_dir()

    # -- models ----------------------------------------------------------------------------------
    def rename_selected(self, new: str | None = None):
        old = self.manage.value
        try:
            if old is None:
                raise InputError("Choose one of your models to rename.")
            new = (new or self.new_name.value).strip()
            rename_model(old, new)
        except ColorizeError as exc:
            self._error(str(exc))
            return
        if self._last and self._last["name"] == old:
            self._last["name"] = new
        self.manage.value = new
        self.status_label.value = f"renamed '{old}' to '{new}'"

    def delete_selected(self, confirm: bool = True):
        name = self.manage.value
        if name is None:
            return
        if confirm:
            from qtpy.QtWidgets import QMessageBox

            answer = QMessageBox.question(self.native, "Delete model",
                                          f"Delete the model '{name}' and its checkpoint for good?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        try:
            delete_model(name)
        except ColorizeError as exc:
            self._error(str(exc))
            return
        if self._last and self._last["name"] == name:
            self._last = None
            self.resume_btn.enabled = False
        self.status_label.value = f"deleted '{name}'"

    def export_selected(self, dest: str | None = None):
        name = self.manage.value
        if name is None:
            self._error("Choose one of your models to export.")
            return
        if dest is None:
            from qtpy.QtWidgets import QFileDialog

            dest, _ = QFileDialog.getSaveFileName(self.native, "Export model", f"{name}.safetensors",
                                                  "Models (*.safetensors)")
            if not dest:
                return
        try:
            path = export_model(name, dest)
        except (ColorizeError, OSError) as exc:
            self._error(f"Export failed: {exc}")
            return
        self.status_label.value = f"exported '{name}' to {path}"

    def import_file(self, path: str | None = None, name: str | None = None):
        if path is None:
            from qtpy.QtWidgets import QFileDialog

            path, _ = QFileDialog.getOpenFileName(self.native, "Import model", "", "Models (*.safetensors)")
            if not path:
                return
        try:
            name = import_model(path, name)
        except (ColorizeError, OSError) as exc:
            self._error(str(exc))
            return
        self.manage.value = name
        self.status_label.value = f"imported '{name}'"

    # -- messages --------------------------------------------------------------------------------
    def _error(self, msg: str):
        from napari.utils.notifications import show_error

        self.status_label.value = msg
        show_error(msg)

    def _info(self, msg: str):
        from napari.utils.notifications import show_info

        show_info(msg)

