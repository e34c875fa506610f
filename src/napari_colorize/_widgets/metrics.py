"""The Metrics dock widget: colorization quality of RGB layers, live, with ab histograms.

Figures come from ``napari_colorize.core.metrics``; they are computed in a thread worker, one
plane at a time, and recomputed (debounced) when a chosen layer's data or the current plane changes.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton, RadioButtons, Select

from .._threading import make_worker
from ..core.errors import ColorizeError, InputError
from ..core.metrics import FULL_REFERENCE_KEYS, NO_REFERENCE_KEYS, ab_histogram, report_planes, summarize

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

# key, header, display format, tooltip
COLUMNS = [
    ("colorfulness", "Colorfulness", ".1f", "Hasler and Suesstrunk colorfulness M (0 for gray)"),
    ("chroma", "Chroma", ".1f", "Mean chroma C*ab"),
    ("hsv_saturation", "HSV sat.", ".3f", "Mean HSV saturation (0 to 1)"),
    ("contrast_rms", "L* RMS", ".1f", "RMS contrast: standard deviation of L*"),
    ("contrast_michelson", "Michelson", ".3f", "Michelson contrast of L*"),
    ("ab_share", "Gamut use", ".1%", "Share of the in-gamut ab bins (10-unit grid) that hold a pixel"),
    ("hue_entropy", "Hue entropy", ".3f", "Entropy of the hue histogram, 0 (one hue) to 1 (all hues)"),
    ("psnr", "PSNR", ".2f", "PSNR against the reference, dB, RGB in [0, 1]"),
    ("ssim", "SSIM", ".4f", "SSIM against the reference, per RGB channel, averaged"),
    ("delta_e_mean", "ΔE00", ".2f", "Mean CIEDE2000 difference from the reference"),
    ("delta_e_p95", "ΔE00 p95", ".2f", "95th percentile of the CIEDE2000 difference"),
    ("ab_rmse", "ab RMSE", ".2f", "RMS of the ab distance to the reference"),
    ("colorfulness_diff", "Δ colorfulness", "+.1f", "Colorfulness minus the reference's: below 0 washed out"),
]
GRAY_ROW = "gray baseline"
CURRENT, ALL = "current plane", "all planes"


def _image_layers(viewer, optional=False):
    def choices(_widget=None):
        from napari.layers import Image

        found = [(layer.name, layer) for layer in viewer.layers if isinstance(layer, Image)]
        return ([("(none)", None)] if optional else []) + found

    return choices


def _layer_rgb(layer) -> np.ndarray:
    """The layer's full-resolution RGB data (a view, never a copy), or a clear InputError."""
    from napari.layers import Image

    if not isinstance(layer, Image):
        raise InputError(f"'{layer.name}' is a {type(layer).__name__} layer; metrics need an RGB Image layer.")
    data = layer.data[0] if layer.multiscale else layer.data
    if not layer.rgb:
        raise InputError(f"'{layer.name}' is not an RGB layer (shape {tuple(data.shape)}); metrics need RGB "
                         "images with a trailing channel axis of 3.")
    return data


def _plane_index(layer, viewer) -> tuple:
    """Index of the plane of ``layer`` at the viewer's current position, over its leading axes."""
    lead = layer.ndim - 2
    if lead <= 0:
        return ()
    coords = np.asarray(layer.world_to_data(viewer.dims.point), dtype=float)[:lead]
    shape = _layer_rgb(layer).shape[:lead]
    return tuple(int(min(max(round(c), 0), n - 1)) for c, n in zip(coords, shape))


def _holder(qwidget) -> Container:
    """A magicgui Container holding a plain Qt widget, so it takes its place in the layout."""
    holder = Container(labels=False)
    holder.native.layout().addWidget(qwidget)
    holder.native.layout().setContentsMargins(0, 0, 0, 0)
    return holder


def _fmt(value, spec: str) -> str:
    if value is None:
        return "–"  # not defined for this row (no reference, or a baseline's own figures)
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return format(value, spec)


def metrics_job(items: list, reference):
    """Generator for a thread worker: yields (done, total) planes; returns the results.

    ``items`` are (name, RGB array) pairs, ``reference`` one such pair or None. Each layer's
    figures are computed against the reference; a layer whose data cannot be measured gets its
    InputError message instead, so the others still show.
    """
    ref_name, ref = reference if reference is not None else (None, None)
    todo = [(name, data, ref) for name, data in items]
    if ref is not None:
        todo.append((ref_name, ref, None))
    total = sum(int(np.prod(data.shape[:-3], dtype=int)) for _, data, _ in todo)
    done = 0
    results: dict = {"layers": {}, "reference": None, "reference_name": ref_name, "hist": {}, "errors": []}
    for i, (name, data, against) in enumerate(todo):
        is_ref = ref is not None and i == len(todo) - 1
        try:
            lead, planes = report_planes(data, against)
            rows = []
            for _, row in planes:
                rows.append(row)
                done += 1
                yield done, total
            figures = summarize(lead, rows)
            results["hist"][name] = ab_histogram(data)
        except InputError as exc:
            msg = f"'{name}': {exc}"
            if msg not in results["errors"]:
                results["errors"].append(msg)
            figures = None
        if is_ref:
            results["reference"] = figures
        else:
            results["layers"][name] = figures
    return results


class MetricsWidget(Container):
    """Colorization quality of RGB layers, one table row per layer, with ab histograms.

    Pick layers and optionally a reference (ground truth) layer. With a reference, the table adds
    full-reference figures and a "gray baseline" row: the reference's L* with no color at all, the
    score any colorization should beat. Layers are never modified.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QSizePolicy, QTableWidget
        from superqt.utils import qdebounced

        super().__init__(labels=True)
        self.results: dict | None = None  # before any widget whose choices read it
        viewer = napari_viewer
        self._viewer = viewer
        self.layers = Select(label="Layers", choices=_image_layers(viewer), allow_multiple=True,
                             tooltip="RGB layers to measure (ctrl/shift-click for several)")
        self.layers.native.setMaximumHeight(90)
        self.reference = ComboBox(label="Reference", choices=_image_layers(viewer, optional=True),
                                  nullable=True, tooltip="Ground truth for PSNR, SSIM, ΔE00 and ab RMSE")
        self.planes = RadioButtons(label="Planes", choices=[CURRENT, ALL], value=CURRENT,
                                   orientation="horizontal",
                                   tooltip="Measure the plane shown, or every plane of a stack (their mean)")
        self.update_btn = PushButton(text="Update")
        self.copy_btn = PushButton(text="Copy")
        self.export_btn = PushButton(text="Export CSV...")
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.status.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.plot_layer = ComboBox(label="ab plot", choices=self._plot_choices,
                                   tooltip="Layer whose ab distribution is drawn beside the reference's")
        self.extend([self.layers, self.reference, self.planes,
                     Container(widgets=[self.update_btn, self.copy_btn, self.export_btn],
                               layout="horizontal", labels=False)])

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([c[1] for c in COLUMNS])
        for j, col in enumerate(COLUMNS):
            self.table.horizontalHeaderItem(j).setToolTip(col[3])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # layer names as row headers, so they stay in view while the figures scroll sideways
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(130)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._figure, self._canvas = self._make_canvas()
        self.extend([_holder(self.table), Container(widgets=[self.status], labels=False), self.plot_layer,
                     _holder(self._canvas)])

        self._mode = CURRENT
        self._request_planes: dict = {}
        self._shown_planes: dict = {}
        self._worker = None
        self._pending = False
        self._watched: list = []
        self._told_rgba: set = set()
        self._debounced = qdebounced(self._auto_update, timeout=300)
        self.update_btn.changed.connect(self.update_metrics)
        self.copy_btn.changed.connect(self.copy_to_clipboard)
        self.export_btn.changed.connect(self._export_clicked)
        self.plot_layer.changed.connect(self.draw_ab)
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        for w in (self.layers, self.reference, self.planes):
            w.changed.connect(self._on_choice)
        for ev in (viewer.layers.events.inserted, viewer.layers.events.removed,
                   viewer.layers.events.moved):
            ev.connect(self.reset_choices)
        viewer.layers.events.removed.connect(self._on_choice)
        viewer.dims.events.current_step.connect(self._on_step)
        self._closed = False
        self.native.destroyed.connect(self._on_destroyed)
        self.reset_choices()
        self.draw_ab()

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
        if self._closed:
            return
        if self.planes.value == CURRENT and any(layer.ndim > 2 for layer in self._watched):
            self._debounced()

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
            self._fill_table()
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
                self._error(f"Reference: {exc}")
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
            self._error("\n".join(problems))
        return items, reference

    def _rgb_of(self, layer, mode):
        data = _layer_rgb(layer)
        if data.shape[-1] == 4:
            if layer.name not in self._told_rgba:  # once, not on every live update
                self._told_rgba.add(layer.name)
                self._info(f"'{layer.name}' is RGBA: its alpha channel is ignored.")
            data = data[..., :3]
        if mode == CURRENT:
            idx = _plane_index(layer, self._viewer)
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
                self._error("Choose one or more RGB layers to measure.")
            return
        worker = make_worker(metrics_job, items, reference, errored=self._on_error)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda res, m=self.planes.value, p=self._request_planes: self._on_result(res, m, p))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.status.value = "measuring..."
        worker.start()

    def _on_progress(self, p):
        done, total = p
        self.status.value = f"measuring... {done}/{total} planes"

    def _on_result(self, results, mode=CURRENT, planes=None):
        if self._closed:
            return
        self.results = results
        self._mode, self._shown_planes = mode, planes or {}
        self._fill_table()
        self.plot_layer.reset_choices()
        self.draw_ab()
        n = len(results["layers"])
        self.status.value = f"{n} layer{'s' * (n != 1)}, {self._mode}"
        if results["errors"]:
            self._error("\n".join(results["errors"]))

    def _on_error(self, exc: Exception):
        if isinstance(exc, ColorizeError):
            self._error(str(exc))
        else:
            log.exception("metrics failed", exc_info=exc)
            self._error(f"Measuring failed: {type(exc).__name__}: {exc}")

    def _on_finished(self):
        self._worker = None
        if self._pending:
            self._pending = False
            self._auto_update()

    # -- table -----------------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """The table's rows as dicts: ``layer``, ``role`` and the figures (None where not defined)."""
        if self.results is None:
            return []
        out = []
        for name, figs in self.results["layers"].items():
            if figs is not None:
                out.append({"layer": name, "role": "layer", **figs})
        ref_name = self.results["reference_name"]
        if self.results["reference"] is not None:
            out.append({"layer": ref_name, "role": "reference", **self.results["reference"]})
            first = next((f for f in self.results["layers"].values() if f is not None and "psnr_gray" in f),
                         None)
            if first is not None:
                gray = {k: first[f"{k}_gray"] for k in FULL_REFERENCE_KEYS}
                per = first.get("per_plane")
                if per is not None:
                    gray["per_plane"] = {k: per[f"{k}_gray"] for k in FULL_REFERENCE_KEYS}
                out.append({"layer": GRAY_ROW, "role": "gray baseline", "n_planes": first["n_planes"], **gray})
        return out

    def _fill_table(self):
        from qtpy.QtCore import Qt
        from qtpy.QtGui import QFont
        from qtpy.QtWidgets import QTableWidgetItem

        rows = self.rows()
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            label = row["layer"] if row["role"] == "layer" else f"{row['layer']} ({row['role']})"
            if row["role"] == "gray baseline":
                label = GRAY_ROW
            head = QTableWidgetItem(label)
            head.setToolTip(label)
            items = []
            for key, _, spec, _ in COLUMNS:
                item = QTableWidgetItem(_fmt(row.get(key), spec))
                item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
                items.append(item)
            for item in [head, *items]:
                if row["role"] != "layer":  # baselines read differently from the measured layers
                    font = QFont(item.font())
                    font.setItalic(True)
                    item.setFont(font)
            self.table.setVerticalHeaderItem(i, head)
            for j, item in enumerate(items):
                self.table.setItem(i, j, item)

    def cell(self, row: int, header: str) -> str:
        """Text shown in the table at ``row`` under column ``header`` (e.g. "PSNR")."""
        if header == "Layer":
            item = self.table.verticalHeaderItem(row)
        else:
            item = self.table.item(row, [c[1] for c in COLUMNS].index(header))
        return "" if item is None else item.text()

    def _records(self) -> tuple[list[str], list[list]]:
        keys = list(NO_REFERENCE_KEYS) + list(FULL_REFERENCE_KEYS)
        header = ["layer", "role", "plane", *keys]
        records = []
        ref_name = self.results["reference_name"] if self.results else None
        for row in self.rows():
            if row.get("per_plane"):
                plane = "mean"
            else:  # the current plane's index over the stack axes; empty for a 2D layer
                name = ref_name if row["role"] == "gray baseline" else row["layer"]
                plane = " ".join(map(str, self._shown_planes.get(name, ())))
            records.append([row["layer"], row["role"], plane,
                            *[row.get(k, "") for k in keys]])
            per = row.get("per_plane")
            if per:
                for idx in np.ndindex(*next(iter(per.values())).shape):
                    records.append([row["layer"], row["role"], " ".join(map(str, idx)),
                                    *[float(per[k][idx]) if k in per else "" for k in keys]])
        return header, records

    def table_text(self, sep: str = "\t") -> str:
        """The figures as delimited text: a header, one line per row, then per-plane lines."""
        header, records = self._records()
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=sep, lineterminator="\n")
        writer.writerow(header)
        for rec in records:
            writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in rec])
        return buf.getvalue()

    def copy_to_clipboard(self, *_) -> str:
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
            self._error("Nothing to export yet: choose layers and press Update.")
            return
        path, _ = QFileDialog.getSaveFileName(self.native, "Export metrics", "metrics.csv", "CSV (*.csv)")
        if path:
            try:
                self.export_csv(path)
            except OSError as exc:
                self._error(f"Could not write {path}: {exc}")

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

    def _make_canvas(self):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4, 2.2), layout="constrained")
        canvas = FigureCanvasQTAgg(fig)
        canvas.setMinimumHeight(230)
        return fig, canvas

    def _theme(self):
        try:
            from napari.utils.theme import get_theme

            t = get_theme(self._viewer.theme)
            return t.background.as_hex(), t.text.as_hex()
        except Exception:  # an unknown or custom theme must not break the plot
            return "#262930", "#f0f1f2"

    def draw_ab(self, *_):
        """Draw the ab histogram of the plot layer beside the reference's."""
        from ..core.color import AB_GRID, AB_RANGE, ab_bins

        bg, fg = self._theme()
        fig = self._figure
        fig.clear()
        fig.set_facecolor(bg)
        hists = (self.results or {}).get("hist", {})
        ref_name = (self.results or {}).get("reference_name")
        panels = [(self.plot_layer.value, hists.get(self.plot_layer.value))]
        if ref_name is not None:
            panels.append((f"{ref_name} (reference)", hists.get(ref_name)))
        half = AB_RANGE + AB_GRID / 2
        n = int(round(2 * AB_RANGE / AB_GRID)) + 1
        gamut = np.zeros((n, n))
        idx = np.rint((ab_bins() + AB_RANGE) / AB_GRID).astype(int)
        gamut[idx[:, 0], idx[:, 1]] = 1
        for k, (title, hist) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), k + 1)
            ax.set_facecolor(bg)
            ax.imshow(np.ma.masked_equal(gamut.T, 0), origin="lower", extent=(-half, half, -half, half),
                      cmap="gray", vmin=0, vmax=4, alpha=0.6)
            if hist is not None:
                counts, edges = hist
                ax.imshow(np.ma.masked_equal(np.log1p(counts.T), 0), origin="lower", cmap="viridis",
                          extent=(edges[0], edges[-1], edges[0], edges[-1]), interpolation="nearest")
                centers = (edges[:-1] + edges[1:]) / 2
                total = counts.sum()
                if total > 0:
                    ma = float((counts.sum(axis=1) * centers).sum() / total)
                    mb = float((counts.sum(axis=0) * centers).sum() / total)
                    ax.plot([ma], [mb], marker="+", color="#ff5050", markersize=10, mew=2)
            else:
                ax.text(0, 0, "not measured yet" if title else "choose a layer", color=fg, ha="center",
                        va="center", fontsize=8)
            ax.axhline(0, color=fg, lw=0.4, alpha=0.5)
            ax.axvline(0, color=fg, lw=0.4, alpha=0.5)
            ax.set_xlim(-half, half)
            ax.set_ylim(-half, half)
            ax.set_aspect("equal")
            ax.set_title(title or "(no layer)", color=fg, fontsize=8)
            ax.set_xlabel("a*", color=fg, fontsize=8)
            if k == 0:
                ax.set_ylabel("b*", color=fg, fontsize=8)
            ax.tick_params(colors=fg, labelsize=7)
            for spine in ax.spines.values():
                spine.set_color(fg)
        self._canvas.draw_idle()

    # -- messages --------------------------------------------------------------------------------
    def _error(self, msg: str):
        from napari.utils.notifications import show_error

        self.status.value = msg
        show_error(msg)

    def _info(self, msg: str):
        from napari.utils.notifications import show_info

        show_info(msg)
