"""The Colorize dock: image, hint points, model, temperature; runs in a thread worker."""

from __future__ import annotations

import time

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSlider, PushButton

from ...api import MODES
from ...core.errors import ColorizeError
from ...core.inference import validate_image
from ...core.library import on_models_changed
from ...core.modelfile import available_models, load
from ..dock import Dock
from ..jobs import colorize_job, preview_job
from ..layers import (
    current_index,
    fov_crop,
    hints_from_points,
    image_data,
    level_factor,
    level_placement,
    publish,
)


def model_choices(_widget=None) -> list:
    """Names of the models a dock can load (bundled first, then the user's)."""
    return list(available_models()) or ["default"]


def mode_tooltip(model) -> str:
    """The Mode tooltip with the sizes of ``model`` (they differ between models)."""
    return (f"whole: each plane resized to {model.working_size} px (the model's working size); "
            f"tiled: full resolution in seamless {model.working_size} px windows; "
            f"auto: whole up to {model.tile_above} px, tiled above")


class ColorizeWidget(Dock):
    """Colorize an image layer, steered by a Points layer whose face colors are hints.

    The result goes to a new RGB layer ``<input> colorized`` with the input's scale and
    translate; running again updates it. The input layer is never modified. For a multiscale
    layer, "Level" picks the pyramid level colorized; "Preview field of view" quickly colorizes
    just the visible part of the current plane at screen resolution into ``<input> preview``.
    """

    def __init__(self, napari_viewer):
        from napari.layers import Image, Points
        from superqt.utils import qdebounced

        super().__init__(napari_viewer, failure="Colorizing failed")
        self.image = self.layer_picker("Image", Image, tooltip="Image layer to colorize (gray or RGB)")
        self.hints = self.layer_picker("Hint points", Points, optional="(none)",
                                       tooltip="Points layer; each point's face color is a color hint")
        self.model = ComboBox(label="Model", choices=model_choices,
                              tooltip="Bundled model or one you fine-tuned")
        self.temperature = FloatSlider(label="Temperature", min=0.05, max=1.0, step=0.01, value=0.4,
                                       tooltip="Lower: more vivid colors; 1: the safe average")
        self.level = ComboBox(label="Level", choices=self._level_choices,
                              tooltip="Pyramid level of a multiscale layer; 0 is full resolution")
        self.mode = ComboBox(label="Mode", choices=list(MODES), value="auto")
        self.temporal = FloatSlider(label="Temporal", min=0.0, max=0.9, step=0.05, value=0.0,
                                    tooltip="Smooth colors along the first axis of a stack (0: off)")
        self.auto = CheckBox(text="Auto-update when hints change", value=False,
                             tooltip="Colorize again whenever a hint point is added, moved or recolored")
        self.run_btn = PushButton(text="Colorize", tooltip="Colorize the whole layer into '<image> colorized'")
        self.preview_btn = PushButton(text="Preview field of view",
                                      tooltip="Quickly colorize just the visible part of the current plane "
                                              "at screen resolution into '<image> preview'")
        self.add(self.image, self.level, self.hints, self.model, self.temperature, self.mode, self.temporal,
                 self.auto, self.row(self.run_btn, self.stop_btn), self.preview_btn, self.progress)
        self.add_status()
        self.busy_while_running(self.run_btn, self.preview_btn)

        self._outputs: dict = {}
        self._watched = None
        self._started = 0.0
        self.run_btn.changed.connect(lambda *_: self.run())
        self.preview_btn.changed.connect(lambda *_: self.preview())
        self.image.changed.connect(self._on_image)
        self.model.changed.connect(self._on_model)
        self.hints.changed.connect(self._watch_hints)
        self.auto.changed.connect(self._watch_hints)
        self._debounced = qdebounced(self._on_hints_changed, timeout=400)
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
            model = load(self.model.value)
        except ColorizeError as exc:
            self.error(str(exc))
            return
        self.temperature.value = model.temperature
        self.mode.tooltip = mode_tooltip(model)

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
        if self.auto.value and self.image.value is not None:
            self.request_run()

    def rerun(self):
        self.run()

    # -- running ---------------------------------------------------------------------------------
    def run(self, *_):
        """Start colorizing the chosen image layer in a thread worker."""
        if self.running:
            return
        source = self.image.value
        if source is None:
            self.error("Choose an image layer to colorize.")
            return
        level = int(self.level.value or 0)
        try:
            data, rgb = image_data(source, level)
            if rgb and data.shape[-1] == 4:
                data = data[..., :3]
                self.info(f"'{source.name}' is RGBA: its alpha channel is ignored.")
            validate_image(data, rgb)
            points, colors = hints_from_points(self.hints.value, source)
            if points is not None and level:
                points = points.copy()
                points[:, -2:] = (points[:, -2:] + 0.5) / level_factor(source, level) - 0.5
            model = load(self.model.value)
        except ColorizeError as exc:
            self.error(str(exc))
            return
        self._started = time.perf_counter()
        scale, translate = level_placement(source, level)
        self.start_job(colorize_job, data, rgb=rgb, points=points, colors=colors, model=model,
                       temperature=self.temperature.value, mode=self.mode.value,
                       temporal=float(self.temporal.value), message=f"colorizing '{source.name}'...",
                       on_result=lambda result, src=source: self._on_result(src, result, "colorized", scale,
                                                                            translate))

    def preview(self, *_):
        """Colorize just the visible part of the current plane, quickly, into ``<input> preview``."""
        if self.running:
            return
        source = self.image.value
        if source is None:
            self.error("Choose an image layer to preview.")
            return
        try:
            crop, rgb, scale, translate, origin, step = fov_crop(self._viewer, source, max_pixels=4_000_000)
            if rgb and crop.shape[-1] == 4:
                crop = crop[..., :3]
            validate_image(crop, rgb)
            points, colors = self._crop_hints(source, origin, step)
            model = load(self.model.value)
        except ColorizeError as exc:
            self.error(str(exc))
            return
        self._started = time.perf_counter()
        self.start_job(preview_job, crop, rgb=rgb, points=points, colors=colors, model=model,
                       temperature=self.temperature.value, message=f"previewing '{source.name}'...",
                       on_result=lambda result, src=source: self._on_result(src, result, "preview", scale,
                                                                            translate))

    def _crop_hints(self, source, origin, step):
        """Hints of the current plane in the coordinates of a field-of-view crop."""
        points, colors = hints_from_points(self.hints.value, source)
        if points is None:
            return None, None
        if points.shape[1] > 2:
            here = current_index(self._viewer, source, source.data.shape[: source.ndim - 2]
                                 if not source.multiscale else source.data[0].shape[: source.ndim - 2])
            keep = (np.rint(points[:, :-2]) == np.asarray(here)).all(axis=1)
            points, colors = points[keep][:, -2:], colors[keep]
        return (points + 0.5 - origin) / step - 0.5, colors

    def _on_result(self, source, result, what, scale, translate):
        if result is None:
            return
        publish(self._viewer, source, result, what, self._outputs, rgb=True, scale=scale, translate=translate)
        verb = "previewed" if what == "preview" else "colorized"
        self.status.value = f"{verb} '{source.name}' in {time.perf_counter() - self._started:.2f} s"
