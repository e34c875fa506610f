"""The "Inspect model" dock: stage feature maps, uncertainty, and a color palette at a click."""

from __future__ import annotations

import re

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, PushButton

from ...core.errors import ColorizeError
from ...core.inspect import STAGES
from ...core.library import on_models_changed
from ...core.modelfile import load
from ..dock import Dock
from ..jobs import inspect_job
from ..layers import hints_from_points, image_data, preferred_layer, publish
from .colorize import model_choices

N_SWATCHES = 8
_OWN = re.compile(r" (uncertainty|features \w+)( \[\d+\])?$")  # this dock's gray results


def _gray_input(layer) -> bool:
    """A gray image a user would inspect: not RGB (results of colorizing are), not this dock's output."""
    return not layer.rgb and not _OWN.search(layer.name)


class InspectWidget(Dock):
    """Show what the colorizer sees: a stage's feature maps, its uncertainty, its color choices.

    With *Pick colors* on, clicking the image lists the model's most likely colors there; a click
    on a swatch adds a hint point of that color to the chosen (or a new) Points layer.
    """

    def __init__(self, napari_viewer):
        from napari.layers import Image, Points
        from qtpy.QtWidgets import QHBoxLayout, QPushButton, QWidget

        super().__init__(napari_viewer, failure="Inspecting failed")
        self.image = self.layer_picker("Image", Image, suitable=_gray_input,
                                       tooltip="Image layer whose current plane is inspected")
        self.hints = self.layer_picker("Hint points", Points, optional="(none)",
                                       tooltip="Points layer of color hints the model sees as well")
        self.model = ComboBox(label="Model", choices=model_choices, tooltip="Model to look inside")
        self.stage = ComboBox(label="Stage", choices=list(STAGES), value="enc4",
                              tooltip="enc1-enc4: encoder, full to 1/8 resolution; dec3, dec2: decoder")
        self.maps_btn = PushButton(text="Feature maps",
                                   tooltip="The stage's feature maps of the current plane, one map a slice")
        self.unc_btn = PushButton(text="Uncertainty",
                                  tooltip="Entropy of the predicted colors: 0 sure, 1 uniform over all colors")
        self.pick = CheckBox(text="Pick colors by clicking the image", value=False,
                             tooltip="Click the image to list the model's most likely colors at that pixel")
        # the palette: plain Qt buttons, because magicgui has no colored swatch widget
        self._palette = QWidget()
        row = QHBoxLayout(self._palette)
        row.setContentsMargins(0, 0, 0, 0)
        self._swatches = []
        for _ in range(N_SWATCHES):
            b = QPushButton()
            b.setFixedSize(28, 28)
            b.setVisible(False)
            b.clicked.connect(lambda _=False, btn=b: self._add_hint(btn))
            row.addWidget(b)
            self._swatches.append(b)
        row.addStretch()
        self.add(self.image, self.hints, self.model, self.stage, self.row(self.maps_btn, self.unc_btn),
                 self.pick, self._palette, self.row(self.stop_btn), self.progress)
        self.add_status()
        self.busy_while_running(self.maps_btn, self.unc_btn)

        self._outputs: dict = {}
        self._picked = None  # (source layer, data coordinates) of the last pick
        self.maps_btn.changed.connect(lambda *_: self._start("maps"))
        self.unc_btn.changed.connect(lambda *_: self._start("uncertainty"))
        self.pick.changed.connect(lambda on: self.listen_to_clicks(self._on_click, on))
        on_models_changed(self.model.reset_choices)
        self.reset_choices()

    def reset_choices(self, *_):
        """Refresh the choices; with no gray image to prefer, any image layer is preselected."""
        from napari.layers import Image

        super().reset_choices()
        layer = preferred_layer(self._viewer, Image) if self.image.value is None else None
        if layer is not None:
            self.image.value = layer

    # -- feature maps and uncertainty ----------------------------------------------------------------
    def _inputs(self):
        source = self.image.value
        if source is None:
            raise ColorizeError("Choose an image layer to inspect.")
        data, rgb = image_data(source)
        if rgb and data.shape[-1] == 4:
            data = data[..., :3]
        plane, idx = self.current_plane(source, data, rgb)
        points, colors = hints_from_points(self.hints.value, source)
        if points is not None and points.shape[1] > 2:
            sel = (np.rint(points[:, :-2]).astype(int) == np.asarray(idx)).all(axis=1)
            points, colors = points[sel, -2:], colors[sel]
        return source, plane, idx, points, colors, load(self.model.value)

    def _start(self, what: str, **extra):
        if self.running:
            return
        try:
            source, plane, idx, points, colors, model = self._inputs()
        except ColorizeError as exc:
            self.error(str(exc))
            return
        self.start_job(inspect_job, what, model, plane, points=points, colors=colors, stage=self.stage.value,
                       row=extra.get("row"), col=extra.get("col"), k=N_SWATCHES,
                       message=f"computing {what} of '{source.name}'...",
                       on_result=lambda res, stage=self.stage.value: self._done(what, source, idx, res, extra,
                                                                                stage))

    def _plane_transform(self, source, factor=(1.0, 1.0)):
        scale = np.asarray(source.scale)[-2:] * np.asarray(factor)
        # a coarse map's pixel centers sit half a coarse pixel in, not on the first fine pixel
        translate = np.asarray(source.translate)[-2:] + (np.asarray(factor) - 1) / 2 * np.asarray(source.scale)[-2:]
        return scale, translate

    def _done(self, what, source, idx, result, extra, stage):
        where = f" (plane {idx})" if idx else ""
        if what == "maps":
            maps, factor = result
            scale, translate = self._plane_transform(source, factor)
            layer = publish(self._viewer, source, maps, f"features {stage}", self._outputs,
                            colormap="viridis", scale=(1.0, *scale), translate=(0.0, *translate))
            layer.contrast_limits = (float(maps.min()), float(maps.max()) or 1.0)
            self.status.value = f"{maps.shape[0]} feature maps of {stage}{where}: one per slice of the new axis"
        elif what == "uncertainty":
            scale, translate = self._plane_transform(source)
            publish(self._viewer, source, result, "uncertainty", self._outputs, colormap="magma",
                    contrast_limits=(0.0, 1.0), scale=scale, translate=translate, opacity=0.7)
            self.status.value = f"uncertainty{where}: mean {result.mean():.2f} (0 sure, 1 uniform)"
        else:
            rgb, prob = result
            self._picked = (source, idx, extra["row"], extra["col"])
            for b in self._swatches:
                b.setVisible(False)
            for b, c, p in zip(self._swatches, rgb, prob):
                hexc = "#" + "".join(f"{int(round(v * 255)):02x}" for v in c)
                b.setStyleSheet(f"background-color: {hexc}; border: 1px solid #888;")
                b.setToolTip(f"{hexc}, p = {p:.2f}: click to add as a hint")
                b.setProperty("rgb", [float(v) for v in c])
                b.setVisible(True)
            self.status.value = (f"{len(rgb)} suggested colors at ({extra['row']:.0f}, {extra['col']:.0f}); "
                                 "click one to add it as a hint")

    # -- palette -------------------------------------------------------------------------------------
    def _on_click(self, viewer, event):
        source = self.image.value
        if source is None or event.type != "mouse_press":
            return
        pos = source.world_to_data(event.position)
        self.pick_at(float(pos[-2]), float(pos[-1]))

    def pick_at(self, row: float, col: float):
        """Suggest colors at a pixel of the chosen image (data coordinates of its plane)."""
        self._start("palette", row=row, col=col)

    def _add_hint(self, button):
        if self._picked is None:
            return
        source, idx, row, col = self._picked
        rgb = button.property("rgb")
        layer = self.hints.value
        if layer is None:
            layer = self._viewer.add_points(ndim=source.ndim, name=f"{source.name} hints", size=max(
                3, 0.02 * max(source.data.shape[-2:])), scale=source.scale, translate=source.translate)
            self.reset_choices()
            self.hints.value = layer
        coords = np.array([*idx, row, col], float)
        world = source.data_to_world(coords if source.ndim == len(coords) else coords[-source.ndim:])
        pt = np.asarray(layer.world_to_data(world))[-layer.ndim:]
        layer.add(pt[None])
        colors = np.asarray(layer.face_color).copy()
        colors[-1] = [*rgb, 1.0]
        layer.face_color = colors
        self.status.value = f"added a hint at ({row:.0f}, {col:.0f})"
