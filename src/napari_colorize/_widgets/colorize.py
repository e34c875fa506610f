"""The Colorize dock widget: image, hint points, model, temperature; runs in a thread worker."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSlider, Label, ProgressBar, PushButton

from .._jobs import colorize_job, preview_job
from .._layers import (
    fov_crop,
    hints_from_points,
    image_data,
    layer_choices,
    level_factor,
    level_placement,
    publish,
)
from .._threading import make_worker
from ..api import MODES
from ..core.errors import ColorizeError
from ..core.inference import validate_image
from ..core.library import on_models_changed
from ..core.modelfile import available_models, load

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)


class ColorizeWidget(Container):
    """Colorize an image layer, steered by a Points layer whose face colors are hints.

    The result goes to a new RGB layer ``<input> colorized`` with the input's scale and
    translate; running again updates it. The input layer is never modified. For a multiscale
    layer, "Level" picks the pyramid level colorized; "Preview field of view" quickly colorizes
    just the visible part of the current plane at screen resolution into ``<input> preview``.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        viewer = napari_viewer
        from napari.layers import Image, Points
        from superqt.utils import qdebounced

        super().__init__(labels=True)
        self._viewer = viewer
        self.image = ComboBox(label="Image", choices=layer_choices(viewer, Image), nullable=True)
        self.hints = ComboBox(label="Hint points", choices=layer_choices(viewer, Points, optional=True),
                              nullable=True, tooltip="Points layer; each point's face color is a hint")
        self.model = ComboBox(label="Model", choices=lambda _w=None: list(available_models()) or ["default"])
        self.temperature = FloatSlider(label="Temperature", min=0.05, max=1.0, step=0.01, value=0.4,
                                       tooltip="Lower: more vivid colors; 1: the safe average")
        self.level = ComboBox(label="Level", choices=self._level_choices,
                              tooltip="Pyramid level of a multiscale layer; 0 is full resolution")
        self.mode = ComboBox(label="Mode", choices=list(MODES), value="auto",
                             tooltip="whole: the plane resized to the model's working size; tiled: a fixed "
                                     "scale in seamless windows; auto: tiled above the model's tile_above")
        self.temporal = FloatSlider(label="Temporal", min=0.0, max=0.9, step=0.05, value=0.0,
                                    tooltip="Smooth colors along the first axis of a stack (0: off)")
        self.auto = CheckBox(text="Auto-update when hints change", value=False)
        self.run_btn = PushButton(text="Colorize")
        self.stop_btn = PushButton(text="Stop", enabled=False)
        self.preview_btn = PushButton(text="Preview field of view")
        self.progress = ProgressBar(label="Progress", min=0, max=1, value=0)
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.status.native.setMinimumHeight(40)  # two wrapped lines; a one-line box clips the message
        self.extend([self.image, self.level, self.hints, self.model, self.temperature, self.mode,
                     self.temporal, self.auto,
                     Container(widgets=[self.run_btn, self.stop_btn], layout="horizontal", labels=False),
                     self.preview_btn, self.progress])
        self.append(Container(widgets=[self.status], labels=False))

        self._worker = None
        self._pending = False
        self._outputs: dict = {}
        self._watched = None
        self.run_btn.changed.connect(self.run)
        self.stop_btn.changed.connect(self.stop)
        self.preview_btn.changed.connect(self.preview)
        self.image.changed.connect(self._on_image)
        self.model.changed.connect(self._on_model)
        self.hints.changed.connect(self._watch_hints)
        self.auto.changed.connect(self._watch_hints)
        self._debounced = qdebounced(self._on_hints_changed, timeout=400)
        for ev in (viewer.layers.events.inserted, viewer.layers.events.removed,
                   viewer.layers.events.moved):
            ev.connect(self.reset_choices)
        on_models_changed(self._refresh_models)
        self.reset_choices()
        self._on_model()
        self._on_image()

    # -- pyramid levels --------------------------------------------------------------------------
    def _level_choices(self, _widget=None):
        layer = self.image.value
        if layer is None or not getattr(layer, "multiscale", False):
            return [("0", 0)]
        return [(f"{i}: {' x '.join(map(str, d.shape[-3:-1] if layer.rgb else d.shape[-2:]))}", i)
                for i, d in enumerate(layer.data)]

    def _on_image(self, *_):
        self.level.reset_choices()
        self.level.enabled = len(self.level.choices) > 1

    # -- model list ------------------------------------------------------------------------------
    def _refresh_models(self):
        current = self.model.value
        self.model.reset_choices()
        if current in self.model.choices:
            self.model.value = current

    def _on_model(self, *_):
        try:
            self.temperature.value = load(self.model.value).temperature
        except ColorizeError as exc:
            self._error(str(exc))

    # -- auto-update -----------------------------------------------------------------------------
    def _watch_hints(self, *_):
        if self._watched is not None:
            for name in ("data", "face_color"):
                getattr(self._watched.events, name).disconnect(self._debounced)
            self._watched = None
        layer = self.hints.value
        if self.auto.value and layer is not None:
            for name in ("data", "face_color"):
                getattr(layer.events, name).connect(self._debounced)
            self._watched = layer

    def _on_hints_changed(self, *_):
        if not self.auto.value or self.image.value is None:
            return
        if self._worker is not None:
            self._pending = True  # re-run once the current job ends
            return
        self.run()

    # -- running ---------------------------------------------------------------------------------
    def run(self, *_):
        """Start colorizing the chosen image layer in a thread worker."""
        if self._worker is not None:
            return
        source = self.image.value
        if source is None:
            self._error("Choose an image layer to colorize.")
            return
        level = int(self.level.value or 0)
        try:
            data, rgb = image_data(source, level)
            if rgb and data.shape[-1] == 4:
                data = data[..., :3]
                self._info(f"'{source.name}' is RGBA: its alpha channel is ignored.")
            validate_image(data, rgb)
            points, colors = hints_from_points(self.hints.value, source)
            if points is not None and level:
                points = points.copy()
                points[:, -2:] = (points[:, -2:] + 0.5) / level_factor(source, level) - 0.5
            model = load(self.model.value)
        except ColorizeError as exc:
            self._error(str(exc))
            return
        self._started = time.perf_counter()
        worker = make_worker(colorize_job, data, rgb=rgb, points=points, colors=colors, model=model,
                               temperature=self.temperature.value, mode=self.mode.value,
                               temporal=float(self.temporal.value), errored=self._on_error)
        scale, translate = level_placement(source, level)
        self._start(worker, f"colorizing '{source.name}'...",
                    lambda result, src=source: self._on_result(src, result, scale=scale, translate=translate))

    def preview(self, *_):
        """Colorize just the visible part of the current plane, quickly, into ``<input> preview``."""
        if self._worker is not None:
            return
        source = self.image.value
        if source is None:
            self._error("Choose an image layer to preview.")
            return
        try:
            crop, rgb, scale, translate, origin, step = fov_crop(self._viewer, source, max_pixels=4_000_000)
            if rgb and crop.shape[-1] == 4:
                crop = crop[..., :3]
            validate_image(crop, rgb)
            points, colors = self._crop_hints(source, origin, step)
            model = load(self.model.value)
        except ColorizeError as exc:
            self._error(str(exc))
            return
        self._started = time.perf_counter()
        worker = make_worker(preview_job, crop, rgb=rgb, points=points, colors=colors, model=model,
                               temperature=self.temperature.value, errored=self._on_error)
        self._start(worker, f"previewing '{source.name}'...",
                    lambda result, src=source: self._on_result(src, result, "preview", scale, translate))

    def _crop_hints(self, source, origin, step):
        """Hints of the current plane in the coordinates of a field-of-view crop."""
        points, colors = hints_from_points(self.hints.value, source)
        if points is None:
            return None, None
        if points.shape[1] > 2:
            point = np.asarray(self._viewer.dims.point, dtype=float)[-source.ndim:]
            here = np.rint(np.asarray(source.world_to_data(point), dtype=float)[: source.ndim - 2])
            keep = (np.rint(points[:, :-2]) == here).all(axis=1)
            points, colors = points[keep][:, -2:], colors[keep]
        return (points + 0.5 - origin) / step - 0.5, colors

    def _start(self, worker, message: str, on_result):
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(on_result)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.run_btn.enabled = self.preview_btn.enabled = False
        self.stop_btn.enabled = True
        self.status.value = message
        worker.start()

    def stop(self, *_):
        """Ask the running job to stop after the current plane."""
        if self._worker is not None:
            self._worker.quit()
            self._pending = False
            self.status.value = "stopping..."

    def _on_progress(self, p: dict):
        self.progress.max = max(1, p["total"])
        self.progress.value = p["done"]

    def _on_result(self, source, result, what="colorized", scale=None, translate=None):
        if result is None:
            return
        kwargs = {} if scale is None else {"scale": scale, "translate": translate}
        publish(self._viewer, source, result, what, self._outputs, rgb=True, **kwargs)
        verb = "previewed" if what == "preview" else "colorized"
        self.status.value = f"{verb} '{source.name}' in {time.perf_counter() - self._started:.2f} s"

    def _on_error(self, exc: Exception):
        if isinstance(exc, ColorizeError):
            self._error(str(exc))
        else:
            log.exception("colorize failed", exc_info=exc)
            self._error(f"Colorizing failed: {type(exc).__name__}: {exc}")

    def _on_finished(self):
        if self.status.value == "stopping...":
            self.status.value = "stopped"
        self._worker = None
        self.run_btn.enabled = self.preview_btn.enabled = True
        self.stop_btn.enabled = False
        if self._pending:
            self._pending = False
            self.run()

    def _error(self, msg: str):
        from napari.utils.notifications import show_error

        self.status.value = msg
        show_error(msg)

    def _info(self, msg: str):
        from napari.utils.notifications import show_info

        show_info(msg)
