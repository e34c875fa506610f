"""The "Shape descriptors and matching" dock: per-segment features, CSV export, Hu-moment matching."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, PushButton, SpinBox, Table

from ...core import shapes as SH
from ...core.errors import ColorizeError, InputError
from ..dock import Dock
from ..layers import publish

SHOWN = ("index", "area", "perimeter", "eccentricity", "solidity", "circularity")


class ShapesWidget(Dock):
    """Measure the segments of a Labels layer into its ``features`` table, export it, match shapes.

    Matching ranks the segments of the current plane by Hu-moment distance to a reference: a
    label id (typed, or clicked with *Pick*) or the selected (else last) polygon of a Shapes layer.
    The best matches go to a Labels layer ``<labels> matches``.
    """

    def __init__(self, napari_viewer):
        from napari.layers import Labels, Shapes

        super().__init__(napari_viewer, failure="Shape matching failed")
        self.segments = self.layer_picker("Labels", Labels, tooltip="Labels layer whose segments are measured")
        self.measure_btn = PushButton(text="Measure",
                                      tooltip="Shape descriptors of every segment into the layer's features")
        self.export_btn = PushButton(text="Export CSV...", tooltip="Save the layer's features table as CSV")
        self.table = Table(value={c: [] for c in SHOWN}, tooltip="Descriptors of each segment (all of them "
                           "are in the layer's features, Hu moments included)")
        self.table.native.setMinimumHeight(160)
        self.table.native.verticalHeader().setVisible(False)
        self.reference = ComboBox(label="Reference", choices=[("label id", "label"), ("polygon", "polygon")],
                                  value="label", tooltip="Compare with a segment of the layer or a drawn polygon")
        self.label_id = SpinBox(label="Label id", min=0, max=2**31 - 1, value=1,
                                tooltip="Segment to compare the others with")
        self.pick = CheckBox(text="Pick the label by clicking", value=False,
                             tooltip="Click a segment in the viewer to use it as the reference")
        self.shapes = self.layer_picker("Shapes layer", Shapes,
                                        tooltip="Its selected (else last) polygon is the reference")
        self.method = ComboBox(label="Distance", choices=list(SH.MATCH_METHODS), value="I1",
                               tooltip="OpenCV matchShapes distances on log-scaled Hu moments")
        self.top = SpinBox(label="Best matches", min=1, max=1000, value=5,
                           tooltip="How many of the closest segments to highlight")
        self.match_btn = PushButton(text="Match shapes",
                                    tooltip="Rank the current plane's segments by distance to the reference")
        self.add(self.segments, self.row(self.measure_btn, self.export_btn))
        self.add_wide(self.table)
        self.add(self.reference, self.label_id, self.pick, self.shapes, self.method, self.top, self.match_btn)
        self.add_status()
        self._outputs: dict = {}
        self.measure_btn.changed.connect(lambda *_: self.measure())
        self.export_btn.changed.connect(lambda *_: self.export_csv())
        self.match_btn.changed.connect(lambda *_: self.match())
        self.reference.changed.connect(self._show_reference)
        self.pick.changed.connect(lambda on: self.listen_to_clicks(self._on_click, on))
        self.reset_choices()
        self._show_reference()

    def _show_reference(self, *_):
        poly = self.reference.value == "polygon"
        self.label_id.visible, self.pick.visible, self.shapes.visible = not poly, not poly, poly

    def _layer(self):
        layer = self.segments.value
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
            self.error(str(exc))
            return None
        if len(table["index"]) == 0:
            self.error(f"'{layer.name}' has no segments (every pixel is 0).")
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
            self.error(str(exc))
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
            plane, idx = self.current_plane(layer)
            if self.reference.value == "polygon":
                ref, what = self._polygon(layer, plane.shape), "the polygon"
            else:
                ref, what = int(self.label_id.value), f"label {self.label_id.value}"
            ids, dist = SH.match_shapes(plane, ref, method=self.method.value)
        except ColorizeError as exc:
            self.error(str(exc))
            return None
        if len(ids) == 0:
            self.error("No other segment is large enough to compare with.")
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

    def _on_click(self, viewer, event):
        layer = self.segments.value
        if layer is None or event.type != "mouse_press":
            return
        value = layer.get_value(event.position, world=True)
        if value:
            self.label_id.value = int(value)
            self.status.value = f"picked label {int(value)}"


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return int(v) if float(v).is_integer() else round(float(v), 3)
    return int(v)
