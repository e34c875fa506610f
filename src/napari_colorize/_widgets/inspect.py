"""The "Inspect model" dock widget: stage feature maps, uncertainty, and a color palette at a click."""

from __future__ import annotations

import logging

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton

from .._layers import hints_from_points, image_data, layer_choices, publish
from .._threading import make_worker
from ..core.errors import ColorizeError
from ..core.inspect import STAGES, feature_maps, suggest_colors, uncertainty
from ..core.library import on_models_changed
from ..core.modelfile import available_models, load

log = logging.getLogger(__name__)
N_SWATCHES = 8


def _current_plane(viewer, layer, data, rgb: bool):
    """The 2D plane of ``data`` shown at the viewer's current position, and its leading index."""
    n_lead = data.ndim - (3 if rgb else 2)
    if n_lead == 0:
        return np.asarray(data), ()
    pos = layer.world_to_data(viewer.dims.point)
    idx = tuple(int(np.clip(round(p), 0, s - 1)) for p, s in zip(pos[:n_lead], data.shape[:n_lead]))
    return np.asarray(data[idx]), idx


class InspectWidget(Container):
    """Show what the colorizer sees: a stage's feature maps, its uncertainty, its color choices.

    With *Pick colors* on, clicking the image lists the model's most likely colors there; a click
    on a swatch adds a hint point of that color to the chosen (or a new) Points layer.
    """

    def __init__(self, napari_viewer):
        from napari.layers import Image, Points
        from qtpy.QtWidgets import QHBoxLayout, QPushButton, QWidget

        super().__init__(labels=True)
        viewer = self._viewer = napari_viewer
        self.image = ComboBox(label="Image", choices=layer_choices(viewer, Image), nullable=True)
        self.hints = ComboBox(label="Hint points", choices=layer_choices(viewer, Points, optional=True),
                              nullable=True)
        self.model = ComboBox(label="Model", choices=lambda _w=None: list(available_models()) or ["default"])
        self.stage = ComboBox(label="Stage", choices=list(STAGES), value="enc4",
                              tooltip="enc1-enc4: encoder, full to 1/8 resolution; dec3, dec2: decoder")
        self.maps_btn = PushButton(text="Feature maps")
        self.unc_btn = PushButton(text="Uncertainty")
        self.pick = CheckBox(text="Pick colors: click the image for suggestions", value=False)
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.extend([self.image, self.hints, self.model, self.stage,
                     Container(widgets=[self.maps_btn, self.unc_btn], layout="horizontal", labels=False),
                     self.pick])
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
        self.native.layout().addWidget(self._palette)
        self.append(Container(widgets=[self.status], labels=False))

        self._outputs: dict = {}
        self._worker = None
        self._picked = None  # (source layer, data coordinates) of the last pick
        self.maps_btn.changed.connect(lambda *_: self._start("maps"))
        self.unc_btn.changed.connect(lambda *_: self._start("uncertainty"))
        self.pick.changed.connect(self._toggle_pick)
        for ev in (viewer.layers.events.inserted, viewer.layers.events.removed, viewer.layers.events.moved):
            ev.connect(self.reset_choices)
        on_models_changed(self.model.reset_choices)
        self.reset_choices()

    # -- feature maps and uncertainty ----------------------------------------------------------------
    def _inputs(self):
        source = self.image.value
        if source is None:
            raise ColorizeError("Choose an image layer to inspect.")
        data, rgb = image_data(source)
        if rgb and data.shape[-1] == 4:
            data = data[..., :3]
        plane, idx = _current_plane(self._viewer, source, data, rgb)
        points, colors = hints_from_points(self.hints.value, source)
        if points is not None and points.shape[1] > 2:
            sel = (np.rint(points[:, :-2]).astype(int) == np.asarray(idx)).all(axis=1)
            points, colors = points[sel, -2:], colors[sel]
        return source, plane, idx, points, colors, load(self.model.value)

    def _start(self, what: str, **extra):
        if self._worker is not None:
            return
        try:
            source, plane, idx, points, colors, model = self._inputs()
        except ColorizeError as exc:
            self._error(str(exc))
            return

        def job():
            if what == "maps":
                return feature_maps(model, plane, self.stage.value, points, colors)
            if what == "uncertainty":
                return uncertainty(model, plane, points, colors)
            return suggest_colors(model, plane, extra["row"], extra["col"], N_SWATCHES, points, colors)

        worker = make_worker(job, errored=self._on_error)
        worker.returned.connect(lambda res: self._done(what, source, idx, res, extra))
        worker.finished.connect(self._finished)
        self._worker = worker
        self.status.value = f"computing {what} of '{source.name}'..."
        worker.start()

    def _plane_transform(self, source, factor=(1.0, 1.0)):
        scale = np.asarray(source.scale)[-2:] * np.asarray(factor)
        # a coarse map's pixel centers sit half a coarse pixel in, not on the first fine pixel
        translate = np.asarray(source.translate)[-2:] + (np.asarray(factor) - 1) / 2 * np.asarray(source.scale)[-2:]
        return scale, translate

    def _done(self, what, source, idx, result, extra):
        where = f" (plane {idx})" if idx else ""
        if what == "maps":
            maps, factor = result
            scale, translate = self._plane_transform(source, factor)
            layer = publish(self._viewer, source, maps, f"features {self.stage.value}", self._outputs,
                            colormap="viridis", scale=(1.0, *scale), translate=(0.0, *translate))
            layer.contrast_limits = (float(maps.min()), float(maps.max()) or 1.0)
            self.status.value = f"{maps.shape[0]} feature maps of {self.stage.value}{where}"
        elif what == "uncertainty":
            scale, translate = self._plane_transform(source)
            publish(self._viewer, source, result, "uncertainty", self._outputs, colormap="magma",
                    contrast_limits=(0.0, 1.0), scale=scale, translate=translate)
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
    def _toggle_pick(self, on: bool):
        cbs = self._viewer.mouse_drag_callbacks
        if on and self._on_click not in cbs:
            cbs.append(self._on_click)
        elif not on and self._on_click in cbs:
            cbs.remove(self._on_click)

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

    # -- plumbing ------------------------------------------------------------------------------------
    def _on_error(self, exc):
        if not isinstance(exc, ColorizeError):
            log.exception("inspect failed", exc_info=exc)
        self._error(str(exc) if isinstance(exc, ColorizeError) else f"{type(exc).__name__}: {exc}")

    def _finished(self):
        self._worker = None

    def _error(self, msg: str):
        from napari.utils.notifications import show_error

        self.status.value = msg
        show_error(msg)
