"""The Colorize dock: image, hints, reference, model, temperature; runs in a thread worker."""

from __future__ import annotations

import hashlib
import time

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSlider, PushButton

from ...api import MODES
from ...core.errors import ColorizeError
from ...core.library import on_models_changed
from ...core.modelfile import available_models, load
from ...core.planes import check_image
from ...core.scribbles import palette
from ...core.tiling import DEFAULT_DOWNSAMPLE, DEFAULT_TILE, MAX_VIEW
from ..dock import Dock
from ..hints import hint_layer_types, hints_from_layer, keep_next_color, watch
from ..jobs import colorize_job, lazy_job, preview_job
from ..layers import current_index, fov_crop, image_data, is_rgb, level_factor, level_placement, publish
from .hint_tool import HintTool

#: quiet time after a hint edit before colorizing again: short, so the result follows the hand
DEBOUNCE_MS = 50


def model_choices(_widget=None) -> list:
    """Names of the models a dock can load (bundled first, then the user's)."""
    return list(available_models()) or ["default"]


def mode_tooltip(model) -> str:
    """The Mode tooltip with the sizes of ``model`` (they differ between models)."""
    return (f"whole: the network sees each plane at {model.working_size} px (the model's working size), "
            f"the colors are brought back to full resolution along its edges; "
            f"tiled: the network sees the plane at 1/{DEFAULT_DOWNSAMPLE} of its size (coarser above {MAX_VIEW * DEFAULT_DOWNSAMPLE} px) "
            f"in seamless {DEFAULT_TILE} px windows, for fine detail; photos are colored best whole; "
            f"auto: whole up to {model.tile_above} px, tiled above")


class ColorizeWidget(Dock):
    """Colorize an image layer, steered by hints and a reference palette.

    Hints are a Points layer (each point's face color), a Shapes layer (paths and outlines in
    their edge color, filled shapes in their face color) or a Labels layer (each segment in its
    label's color). Local hints recolor their object and stop at its edges; global hints make
    their colors the palette of the whole image. A reference RGB layer lends its palette; with
    an RGB input that is recoloring. The result goes to a new RGB layer ``<input> colorized``
    (``recolored``) with the input's scale and translate; running again updates it unless the user
    renamed it or "New layer each run" is ticked. The input layer is never modified. For a
    multiscale layer, "Level" picks the pyramid level colorized; "Preview field of view" quickly
    colorizes just the visible part of the current plane at screen resolution into ``<input> preview``.
    """

    def __init__(self, napari_viewer):
        from napari.layers import Image
        from superqt.utils import qdebounced

        super().__init__(napari_viewer, failure="Colorizing failed")
        self.image = self.layer_picker("Image", Image, tooltip="Image layer to colorize (gray or RGB)")
        self.hints = self.layer_picker("Hints", hint_layer_types(), optional="(none)",
                                       tooltip="Points (face colors), Shapes (paths: edge color; filled "
                                               "shapes: face color) or Labels (each label's color)")
        self.tool = HintTool(self, lambda: self.hints.value, lambda: self.image.value, self._adopt)
        self.scope = ComboBox(label="Hints act", choices=["local", "global"], value="local",
                              tooltip="local: each hint recolors its object and stops at edges; "
                                      "global: the hint colors become the palette of the whole image")
        self.reference = self.layer_picker("Reference", Image, optional="(none)", offer=is_rgb,
                                           tooltip="An RGB layer whose palette the result takes (on an RGB "
                                                   "image: recoloring)")
        self.strength = FloatSlider(label="Strength", min=0.0, max=4.0, step=0.1, value=0.5,
                                    tooltip="Weight of the reference's colors (0: only its saturation)")
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
                             tooltip="Colorize again whenever a hint is added, moved, recolored or deleted")
        self.new_each = CheckBox(text="New layer each run", value=False,
                                 tooltip="Keep every result to compare (a renamed result is always kept)")
        self.run_btn = PushButton(text="Colorize", tooltip="Colorize the whole layer into '<image> colorized'")
        self.preview_btn = PushButton(text="Preview field of view",
                                      tooltip="Quickly colorize just the visible part of the current plane "
                                              "at screen resolution into '<image> preview'. The network sees "
                                              "only that part, so its colors can differ from the whole "
                                              "layer's")
        self.add(self.image, self.level, self.hints, self.tool.widget, self.scope, self.reference,
                 self.strength, self.model, self.temperature, self.mode, self.temporal, self.auto, self.new_each,
                 self.row(self.run_btn, self.stop_btn), self.preview_btn, self.progress)
        self.add_status()
        self.busy_while_running(self.run_btn, self.preview_btn)

        self._outputs: dict = {}
        self._unwatch = None
        self._last_hints = None  # what the last run was given, so an edit that changes nothing is no run
        self._started = 0.0
        self.run_btn.changed.connect(lambda *_: self.run())
        self.preview_btn.changed.connect(lambda *_: self.preview())
        self.image.changed.connect(self._on_image)
        self.reference.changed.connect(self._on_image)
        self.model.changed.connect(self._on_model)
        self.hints.changed.connect(self._watch_hints)
        self.hints.changed.connect(self._follow_hints)
        self._unfollow = None
        self.auto.changed.connect(self._watch_hints)
        self._debounced = qdebounced(self._on_hints_changed, timeout=DEBOUNCE_MS)
        on_models_changed(self._refresh_models)
        self.reset_choices()
        self._follow_hints()
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
        self.run_btn.text = "Recolor" if self._recoloring() else "Colorize"
        self.strength.enabled = self.reference.value is not None

    def _recoloring(self) -> bool:
        layer = self.image.value
        return bool(layer is not None and layer.rgb and self.reference.value is not None)

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

    # -- hints ---------------------------------------------------------------------------------
    def _adopt(self, layer):
        self.reset_choices()
        self.hints.value = layer

    def _follow_hints(self, *_):
        shown = self._last_hints
        self._last_hints = None  # another hints layer: its first hint is a change, its emptiness not
        if self._unfollow is not None:
            self._unfollow()
        layer = self.hints.value
        self._unfollow = (None if layer is None else
                          keep_next_color(layer, lambda: self.tool.color, follow=self.tool.set_color))
        if layer is None and self.auto.value and shown not in (None, self._key(None, None)):
            self.request_run()  # hints off: the shown result goes back to the automatic colors

    def _watch_hints(self, *_):
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        layer = self.hints.value
        if self.auto.value and layer is not None:
            self._unwatch = watch(layer, self._debounced)

    def _steer(self, points, colors):
        """Hint points, colors and reference palette from the hints and the dock's settings."""
        ref = self.reference.value
        ref_data = None if ref is None else (ref.data[-1] if ref.multiscale else ref.data)
        if ref_data is not None and ref_data.ndim > 3:
            ref_data = np.asarray(self.current_plane(ref, ref_data, True)[0])
        if self.scope.value == "global" and colors is not None:
            return None, None, palette(colors, ref_data)
        return points, colors, ref_data

    def _key(self, points, colors) -> tuple:
        digest = hashlib.blake2b(digest_size=16)
        for arr in (points, colors):
            if arr is not None:
                digest.update(np.ascontiguousarray(arr, np.float64).tobytes())
        return digest.hexdigest(), self.scope.value

    def _on_hints_changed(self, *_):
        source = self.image.value
        if not self.auto.value or source is None:
            return
        try:
            points, colors = hints_from_layer(self.hints.value, source)
        except ColorizeError as exc:
            self.error(str(exc))
            return
        if self._last_hints is None and (points is None or not len(points)):
            return  # an empty hints layer just made: nothing to show until its first hint
        if self._key(points, colors) != self._last_hints:  # selecting a point, say, changes nothing
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
        if self._lazy_run(source):
            return
        level = int(self.level.value or 0)
        try:
            data, rgb = image_data(source, level)
            if rgb and data.shape[-1] == 4:
                data = data[..., :3]
                self.info(f"'{source.name}' is RGBA: its alpha channel is ignored.")
            check_image(data, rgb, values=False)
            points, colors = hints_from_layer(self.hints.value, source)
            self._last_hints = self._key(points, colors)
            points, colors, ref = self._steer(points, colors)
            if points is not None and level:
                points = points.copy()
                points[:, -2:] = (points[:, -2:] + 0.5) / level_factor(source, level) - 0.5
            model = load(self.model.value)
        except ColorizeError as exc:
            self.error(str(exc))
            return
        self._started = time.perf_counter()
        scale, translate = level_placement(source, level)
        what = "recolored" if rgb and ref is not None else "colorized"
        self.start_job(colorize_job, data, rgb=rgb, points=points, colors=colors, model=model,
                       temperature=self.temperature.value, mode=self.mode.value,
                       temporal=float(self.temporal.value), reference=ref,
                       reference_strength=float(self.strength.value), message=f"colorizing '{source.name}'...",
                       on_result=lambda result, src=source: self._on_result(src, result, what, scale, translate))

    def _lazy_run(self, source) -> bool:
        """A dask or multiscale 2D layer at level 0 without hints gets a lazily computed multiscale result:
        one global pass now, then napari computes only the tiles it shows. False otherwise."""
        from ...core.arrays import is_dask

        big = getattr(source, "multiscale", False) or is_dask(source.data)
        # a level chosen by hand, hints or a reference: that level is colorized as an array
        if (not big or source.ndim != 2 or int(self.level.value or 0) != 0 or self.hints.value is not None
                or self.reference.value is not None):
            return False
        try:
            model = load(self.model.value)
        except ColorizeError as exc:
            self.error(str(exc))
            return True
        self._started = time.perf_counter()
        self.start_job(lazy_job, source.data, model, temperature=self.temperature.value,
                       message=f"global pass of '{source.name}'...",
                       on_result=lambda result, src=source: self._on_lazy(src, result))
        return True

    def _on_lazy(self, source, result):
        levels, used = result
        new = publish(self._viewer, source, list(levels), "colorized", self._outputs, rgb=True, multiscale=True,
                      scale=tuple(source.scale)[-2:],
                      translate=tuple(source.translate)[-2:], new=bool(self.new_each.value))
        new.metadata["colorize_global_level"] = used
        h, w = levels[used].shape[:2]
        self.status.value = (f"'{source.name}': lazy result, global pass at level {used} ({w} x {h}) in "
                             f"{time.perf_counter() - self._started:.2f} s; tiles are computed as shown")

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
            check_image(crop, rgb, values=False)
            points, colors, ref = self._steer(*hints_from_layer(self.hints.value, source))
            points, colors = self._crop_hints(source, points, colors, origin, step)
            model = load(self.model.value)
        except ColorizeError as exc:
            self.error(str(exc))
            return
        self._started = time.perf_counter()
        self.start_job(preview_job, crop, rgb=rgb, points=points, colors=colors, model=model,
                       temperature=self.temperature.value, reference=ref,
                       reference_strength=float(self.strength.value), message=f"previewing '{source.name}'...",
                       on_result=lambda result, src=source: self._on_result(src, result, "preview", scale,
                                                                            translate))

    def _crop_hints(self, source, points, colors, origin, step):
        """Hints of the current plane in the coordinates of a field-of-view crop."""
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
        publish(self._viewer, source, result, what, self._outputs, rgb=True, scale=scale, translate=translate,
                new=bool(self.new_each.value) and what != "preview")
        verb = "previewed" if what == "preview" else what
        self.status.value = f"{verb} '{source.name}' in {time.perf_counter() - self._started:.2f} s"
