"""The "Shape descriptors and matching" dock: per-segment features, CSV export, Hu-moment matching."""

from __future__ import annotations

import logging

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton, SpinBox, Table

from .._layers import layer_choices, publish
from ..core import shapes as SH
from ..core.errors import ColorizeError, InputError

log = logging.getLogger(__name__)
SHOWN = ("index", "area", "perimeter", "eccentricity", "solidity", "circularity")


class ShapesWidget(Container):
    """Measure the segments of a Labels layer into its ``features`` table, export it, match shapes.

    Matching ranks the segments of the current plane by Hu-moment distance to a reference: a
    label id (typed, or clicked with *Pick*) or the selected (else last) polygon of a Shapes layer.
    The best matches go to a Labels layer ``<labels> matches``.
    """

    def __init__(self, napari_viewer):
        from napari.layers import Labels, Shapes

        super().__init__(labels=True)
        viewer = self._viewer = napari_viewer
        self.labels = ComboBox(label="Labels", choices=layer_choices(viewer, Labels), nullable=True)
        self.measure_btn = PushButton(text="Measure")
        self.export_btn = PushButton(text="Export CSV...")
        self.table = Table(value={c: [] for c in SHOWN})
        self.table.native.setMinimumHeight(160)
        self.table.native.verticalHeader().setVisible(False)
        self.reference = ComboBox(label="Reference", choices=[("label id", "label"), ("polygon", "polygon")],
                                  value="label")
        self.label_id = SpinBox(label="Label id", min=0, max=2**31 - 1, value=1)
        self.pick = CheckBox(text="Pick the label by clicking", value=False)
        self.shapes = ComboBox(label="Shapes layer", choices=layer_choices(viewer, Shapes), nullable=True)
        self.method = ComboBox(label="Distance", choices=list(SH.MATCH_METHODS), value="I1",
                               tooltip="OpenCV matchShapes distances on log-scaled Hu moments")
        self.top = SpinBox(label="Best matches", min=1, max=1000, value=5)
        self.match_btn = PushButton(text="Match shapes")
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.status.native.setMinimumHeight(3 * self.status.native.fontMetrics().lineSpacing())
        self.extend([self.labels,
                     Container(widgets=[self.measure_btn, self.export_btn], layout="horizontal", labels=False),
                     self.table, self.reference, self.label_id, self.pick, self.shapes, self.method, self.top,
                     self.match_btn])
        self.append(Container(widgets=[self.status], labels=False))
        self._outputs: dict = {}
        self.measure_btn.changed.connect(lambda *_: self.measure())
        self.export_btn.changed.connect(lambda *_: self.export_csv())
        self.match_btn.changed.connect(lambda *_: self.match())
        self.reference.changed.connect(self._show_reference)
        self.pick.changed.connect(self._toggle_pick)
        for ev in (viewer.layers.events.inserted, viewer.layers.events.removed, viewer.layers.events.moved):
            ev.connect(self.reset_choices)
        self.reset_choices()
        self._show_reference()

    def _show_reference(self, *_):
        poly = self.reference.value == "polygon"
        self.label_id.visible, self.pick.visible, self.shapes.visible = not poly, not poly, poly

    def _layer(self):
        layer = self.labels.value
        if layer is None:
            raise InputError("Choose a Labels layer first.")
        return layer

    # -- descriptors ---------------------------------------------------------------------------------
    def measure(self):
        """Compute shape descriptors of every segment into the Labels layer's ``features``."""
        try:
            layer = self._layer()
            data = layer.data[0] if layer.multiscale else layer.data
            table = SH.shape_descriptors(np.asarray(data))
        except ColorizeError as exc:
            self._error(str(exc))
            return None
        if len(table["index"]) == 0:
            self._error(f"'{layer.name}' has no segments (every pixel is 0).")
            return None
        layer.features = table
        self.table.value = {c: [_fmt(v) for v in table[c]] for c in SHOWN}
        self.table.native.resizeColumnsToContents()
        self.status.value = f"{len(table['index'])} segments measured into '{layer.name}'.features"
        return table

    def export_csv(self, path=None):
        """Write the Labels layer's features table to ``path`` (asks for one when None)."""
        try:
            layer = self._layer()
        except ColorizeError as exc:
            self._error(str(exc))
            return None
        if layer.features.shape[1] == 0 and self.measure() is None:
            return None
        if path is None:
            from qtpy.QtWidgets import QFileDialog

            path, _ = QFileDialog.getSaveFileName(self.native, "Export shape descriptors",
                                                  f"{layer.name} shapes.csv", "CSV (*.csv)")
            if not path:
                return None
        feats = layer.features
        out = SH.write_csv({c: feats[c].to_numpy() for c in feats.columns}, path)
        self.status.value = f"wrote {len(feats)} rows to {out}"
        return out

    # -- matching ------------------------------------------------------------------------------------
    def _plane(self, layer):
        data = layer.data[0] if layer.multiscale else layer.data
        lead = data.ndim - 2
        if lead == 0:
            return np.asarray(data), ()
        pos = layer.world_to_data(self._viewer.dims.point)
        idx = tuple(int(np.clip(round(p), 0, s - 1)) for p, s in zip(pos[:lead], data.shape[:lead]))
        return np.asarray(data[idx]), idx

    def _polygon(self, layer, shape):
        shapes = self.shapes.value
        if shapes is None or len(shapes.data) == 0:
            raise InputError("Draw a polygon in a Shapes layer and choose that layer as the reference.")
        sel = sorted(shapes.selected_data)
        verts = np.asarray(shapes.data[sel[0] if sel else -1], float)
        world = np.array([shapes.data_to_world(v) for v in verts])
        k = min(world.shape[1], layer.ndim)
        full = np.zeros((len(world), layer.ndim))
        full[:, -k:] = world[:, -k:]
        data = np.array([layer.world_to_data(w) for w in full])
        return SH.polygon_mask(data[:, -2:], shape)

    def match(self):
        """Rank the current plane's segments by shape distance; publish the best as ``<labels> matches``."""
        try:
            layer = self._layer()
            plane, idx = self._plane(layer)
            if self.reference.value == "polygon":
                ref, what = self._polygon(layer, plane.shape), "the polygon"
            else:
                ref, what = int(self.label_id.value), f"label {self.label_id.value}"
            ids, dist = SH.match_shapes(plane, ref, method=self.method.value)
        except ColorizeError as exc:
            self._error(str(exc))
            return None
        if len(ids) == 0:
            self._error("No other segment is large enough to compare with.")
            return None
        n = self.top.value
        data = layer.data[0] if layer.multiscale else layer.data
        out = np.zeros(data.shape, np.int32)
        out[idx] = SH.highlight(plane, ids, n)
        out_layer = publish(self._viewer, layer, out, "matches", self._outputs, kind="labels",
                            opacity=0.8)
        out_layer.features = {"index": ids[:n], "rank": np.arange(1, len(ids[:n]) + 1), "distance": dist[:n]}
        ranked = ", ".join(f"{i} ({d:.3g})" for i, d in zip(ids[:n], dist[:n]))
        self.status.value = f"closest to {what}: {ranked}"
        return ids, dist

    def _toggle_pick(self, on: bool):
        cbs = self._viewer.mouse_drag_callbacks
        if on and self._on_click not in cbs:
            cbs.append(self._on_click)
        elif not on and self._on_click in cbs:
            cbs.remove(self._on_click)

    def _on_click(self, viewer, event):
        layer = self.labels.value
        if layer is None or event.type != "mouse_press":
            return
        value = layer.get_value(event.position, world=True)
        if value:
            self.label_id.value = int(value)
            self.status.value = f"picked label {int(value)}"

    def _error(self, msg: str):
        from napari.utils.notifications import show_error

        self.status.value = msg
        show_error(msg)


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return int(v) if float(v).is_integer() else round(float(v), 3)
    return int(v)
