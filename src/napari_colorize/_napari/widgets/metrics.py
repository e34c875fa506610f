"""The Metrics dock: colorization quality of RGB layers, live, with ab histograms.

Figures come from ``napari_colorize.core.metrics``; they are computed in a thread worker, one
plane at a time, and recomputed (debounced) when a chosen layer's data or the current plane changes.
The table lives in :mod:`.metrics_table`, the ab plot in :mod:`.metrics_plot`.
"""

from __future__ import annotations

import re

from magicgui.widgets import PushButton, RadioButtons, Select

from ...core.errors import InputError
from ..dock import Dock
from ..jobs import metrics_job
from ..layers import current_index, is_rgb, layer_choices, preferred_layer
from . import metrics_table as T
from .metrics_plot import AbPlot

CURRENT, ALL = "current plane", "all planes"
RESULT = re.compile(r" (colorized|recolored)( \[\d+\])?$")  # the Colorize dock's results, as napari numbers them


def layer_rgb(layer):
    """The layer's full-resolution RGB data (a view, never a copy), or a clear InputError."""
    from napari.layers import Image

    if not isinstance(layer, Image):
        raise InputError(f"'{layer.name}' is a {type(layer).__name__} layer; metrics need an RGB Image layer.")
    data = layer.data[0] if layer.multiscale else layer.data
    if not layer.rgb:
        raise InputError(f"'{layer.name}' is not an RGB layer (shape {tuple(data.shape)}); metrics need RGB "
                         "images with a trailing channel axis of 3.")
    return data


class MetricsWidget(Dock):
    """Colorization quality of RGB layers, one table row per layer, with ab histograms.

    Pick layers and optionally a reference (ground truth) layer. With a reference, the table adds
    full-reference figures and a "gray baseline" row: the reference's L* with no color at all, the
    score any colorization should beat. Layers are never modified.
    """

    def __init__(self, napari_viewer):
        from magicgui.widgets import ComboBox
        from napari.layers import Image
        from superqt.utils import qdebounced

        super().__init__(napari_viewer, failure="Measuring failed")
        self.results: dict | None = None  # before any widget whose choices read it
        viewer = self._viewer
        self.layers = Select(label="Layers", choices=layer_choices(viewer, Image, suitable=is_rgb), allow_multiple=True,
                             tooltip="RGB layers to measure (ctrl/shift-click for several)")
        self.layers.native.setMaximumHeight(90)
        # preselected until the user picks (clearing the list is a pick too)
        self._auto_layers, self._preselecting = True, False
        self.reference = self.layer_picker("Reference", Image, optional="(none)", offer=is_rgb,
                                           tooltip="Ground truth for PSNR, SSIM, ΔE00 and ab RMSE")
        self.planes = RadioButtons(label="Planes", choices=[CURRENT, ALL], value=CURRENT,
                                   orientation="horizontal",
                                   tooltip="Measure the plane shown, or every plane of a stack (their mean)")
        self.update_btn = PushButton(text="Update", tooltip="Measure again now")
        self.copy_btn = PushButton(text="Copy", tooltip="Copy the figures as tab-separated text")
        self.export_btn = PushButton(text="Export CSV...", tooltip="Save the figures, plane by plane, as CSV")
        self.plot_layer = ComboBox(label="ab plot", choices=self._plot_choices,
                                   tooltip="Layer whose ab distribution is drawn above the reference's")
        self.table = T.make_table()
        self.ab_plot = AbPlot()
        self.add(self.layers, self.reference, self.planes,
                 self.row(self.update_btn, self.copy_btn, self.export_btn), self.table)
        self.add_status()
        self.add(self.plot_layer, self.ab_plot.canvas)

        self._mode = CURRENT
        self._request_planes: dict = {}
        self._shown_planes: dict = {}
        self._watched: list = []
        self._told_rgba: set = set()
        self._debounced = qdebounced(self._auto_update, timeout=300)
        self.update_btn.changed.connect(lambda *_: self.update_metrics())
        self.copy_btn.changed.connect(lambda *_: self.copy_to_clipboard())
        self.export_btn.changed.connect(self._export_clicked)
        self.plot_layer.changed.connect(self.draw_ab)
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        for w in (self.layers, self.reference, self.planes):
            w.changed.connect(self._on_choice)
        self.layers.changed.connect(self._layers_picked)
        self.reference.changed.connect(lambda *_: self._follow())  # the reference is not measured as a layer
        viewer.layers.events.removed.connect(self._on_choice)
        viewer.dims.events.current_step.connect(self._on_step)
        self._closed = False
        self.native.destroyed.connect(self._on_destroyed)
        self.reset_choices()
        self.draw_ab()

    # -- choosing --------------------------------------------------------------------------------
    def reset_choices(self, *_):
        """Refresh the choices; until the user picks layers, follow the layers worth measuring."""
        self._follow(super().reset_choices)

    def _follow(self, refresh=None):
        self._preselecting = True  # changes made here are not the user's pick
        try:
            if refresh is not None:
                refresh()
            chosen = self._preferred() if self._auto_layers else None
            if chosen is not None and chosen != list(self.layers.value or []):
                self.layers.value = chosen
        finally:
            self._preselecting = False

    def _preferred(self) -> list:
        """The Colorize dock's visible results, else the layers chosen so far, else the RGB layer a
        single picker would take; never the reference."""
        from napari.layers import Image

        ref = self.reference.value
        results = [lay for lay in self._viewer.layers if isinstance(lay, Image) and lay.rgb and lay.visible
                   and lay != ref and RESULT.search(lay.name)]
        # a result colorized after the dock opened replaces the first guess; another layer does not
        kept = [lay for lay in self.layers.value or [] if lay != ref]
        # "!=", not "is not": the viewer's selected layer comes back as a proxy of the layer
        layer = preferred_layer(self._viewer, Image, lambda lay: lay.rgb and lay != ref)
        return results or kept or ([] if layer is None else [layer])

    def _layers_picked(self, *_):
        if not self._preselecting:
            self._auto_layers = False

    # -- watching --------------------------------------------------------------------------------
    def _on_destroyed(self, *_):
        # the viewer removes its layers after its docks are gone: no update may outlive the widget
        self._closed = True
        self._debounced.cancel()
        if self._worker is not None:
            self._worker.quit()
        for layer in self._watched:
            layer.events.data.disconnect(self._debounced)
        self._watched = []

    def _chosen(self) -> list:
        return [layer for layer in (self.layers.value or []) if layer in self._viewer.layers]

    def _on_choice(self, *_):
        if self._closed:
            return
        for layer in self._watched:
            layer.events.data.disconnect(self._debounced)
        ref = self.reference.value
        self._watched = self._chosen() + ([ref] if ref is not None and ref not in self._chosen() else [])
        for layer in self._watched:
            layer.events.data.connect(self._debounced)
        self._debounced()

    def _on_step(self, *_):
        if not self._closed and self.planes.value == CURRENT and any(lay.ndim > 2 for lay in self._watched):
            self._debounced()

    def rerun(self):
        self._auto_update()

    def _auto_update(self, *_):
        if self._closed:
            return
        if self._worker is not None:  # stale: stop it, then start over from what is chosen now
            self._pending = True
            self._worker.quit()
        elif self._chosen() or self.reference.value is not None:
            self.update_metrics(quiet=True)
        elif self.results is not None:  # nothing chosen any more
            self.results = None
            T.fill_table(self.table, [])
            self.plot_layer.reset_choices()
            self.draw_ab()
            self.status.value = ""

    # -- computing -------------------------------------------------------------------------------
    def _inputs(self):
        """(name, array) of each measurable chosen layer and of the reference; reports the others."""
        mode = self.planes.value
        ref_layer = self.reference.value
        reference = None
        self._request_planes = {}
        if ref_layer is not None:
            try:
                reference = (ref_layer.name, self._rgb_of(ref_layer, mode))
            except InputError as exc:
                self.error(f"Reference: {exc}")
        items, problems = [], []
        for layer in self._chosen():
            try:
                data = self._rgb_of(layer, mode)
                if reference is not None and tuple(data.shape) != tuple(reference[1].shape):
                    where = "plane" if mode == CURRENT else "layer"
                    raise InputError(f"'{layer.name}' ({tuple(data.shape)}) and the reference "
                                     f"'{ref_layer.name}' ({tuple(reference[1].shape)}) differ in {where} "
                                     "shape.")
                items.append((layer.name, data))
            except InputError as exc:
                problems.append(str(exc))
        if problems:
            self.error("\n".join(problems))
        return items, reference

    def _rgb_of(self, layer, mode):
        data = layer_rgb(layer)
        if data.shape[-1] == 4:
            if layer.name not in self._told_rgba:  # once, not on every live update
                self._told_rgba.add(layer.name)
                self.info(f"'{layer.name}' is RGBA: its alpha channel is ignored.")
            data = data[..., :3]
        if mode == CURRENT:
            idx = current_index(self._viewer, layer, data.shape[: data.ndim - 3])
            self._request_planes[layer.name] = idx
            data = data[idx]
        return data

    def update_metrics(self, *_, quiet: bool = False):
        """Measure the chosen layers in a thread worker; a running job is stopped and redone."""
        if self._worker is not None:
            self._pending = True
            self._worker.quit()
            return
        items, reference = self._inputs()
        if not items and reference is None:
            if not quiet:
                self.error("Choose one or more RGB layers to measure.")
            return
        mode, planes = self.planes.value, self._request_planes
        self.start_job(metrics_job, items, reference, message="measuring...",
                       on_result=lambda res: self._on_result(res, mode, planes))

    def on_progress(self, p):
        super().on_progress(p)
        self.status.value = f"measuring... {p['done']}/{p['total']} planes"

    def _on_result(self, results, mode=CURRENT, planes=None):
        if self._closed:
            return
        self.results = results
        self._mode, self._shown_planes = mode, planes or {}
        T.fill_table(self.table, self.rows())
        self.plot_layer.reset_choices()
        self.draw_ab()
        n = len(results["layers"])
        self.status.value = f"{n} layer{'s' * (n != 1)}, {self._mode}"
        if results["errors"]:
            self.error("\n".join(results["errors"]))

    # -- table -----------------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """The table's rows as dicts: ``layer``, ``role`` and the figures (None where not defined)."""
        return T.table_rows(self.results)

    def cell(self, row: int, header: str) -> str:
        """Text shown in the table at ``row`` under column ``header`` (e.g. "PSNR")."""
        return T.cell(self.table, row, header)

    def table_text(self, sep: str = "\t") -> str:
        """The figures as delimited text: a header, one line per row, then per-plane lines."""
        ref_name = self.results["reference_name"] if self.results else None
        return T.delimited(*T.records(self.rows(), ref_name, self._shown_planes), sep)

    def copy_to_clipboard(self) -> str:
        """Copy the figures as tab-separated text (pastes into a spreadsheet)."""
        from qtpy.QtWidgets import QApplication

        text = self.table_text("\t")
        QApplication.clipboard().setText(text)
        self.status.value = "copied to the clipboard"
        return text

    def export_csv(self, path) -> None:
        """Write the figures to a CSV file at ``path``."""
        with open(path, "w", newline="", encoding="utf-8") as f:
            f.write(self.table_text(","))
        self.status.value = f"wrote {path}"

    def _export_clicked(self, *_):
        from qtpy.QtWidgets import QFileDialog

        if not self.rows():
            self.error("Nothing to export yet: choose layers and press Update.")
            return
        path, _ = QFileDialog.getSaveFileName(self.native, "Export metrics", "metrics.csv", "CSV (*.csv)")
        if path:
            try:
                self.export_csv(path)
            except OSError as exc:
                self.error(f"Could not write {path}: {exc}")

    # -- ab plot ---------------------------------------------------------------------------------
    def _plot_choices(self, _widget=None):
        if self.results is None:
            return []
        return [name for name, figs in self.results["layers"].items() if figs is not None]

    def _on_row_selected(self):
        rows = self.table.selectionModel().selectedRows()
        if rows:
            name = self.rows()[rows[0].row()]["layer"]
            if name in self.plot_layer.choices:
                self.plot_layer.value = name

    def _theme(self):
        try:
            from napari.utils.theme import get_theme

            t = get_theme(self._viewer.theme)
            return t.background.as_hex(), t.text.as_hex()
        except Exception:  # an unknown or custom theme must not break the plot
            return "#262930", "#f0f1f2"

    def draw_ab(self, *_):
        """Draw the ab histogram of the plot layer above the reference's."""
        hists = (self.results or {}).get("hist", {})
        ref_name = (self.results or {}).get("reference_name")
        panels = [(self.plot_layer.value, hists.get(self.plot_layer.value))]
        if ref_name is not None:
            panels.append((f"{ref_name} (reference)", hists.get(ref_name)))
        self.ab_plot.draw(panels, *self._theme())
