"""The Metrics dock's table: columns, rows from a job's results, delimited text for export."""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from ...core.metrics import FULL_REFERENCE_KEYS, NO_REFERENCE_KEYS

# key, header, display format, tooltip; the reference metrics first: they answer "how close?"
COLUMNS = [
    ("psnr", "PSNR", ".2f", "PSNR against the reference, dB, RGB in [0, 1]"),
    ("ssim", "SSIM", ".4f", "SSIM against the reference, per RGB channel, averaged"),
    ("delta_e_mean", "ΔE00", ".2f", "Mean CIEDE2000 difference from the reference"),
    ("delta_e_p95", "ΔE00 p95", ".2f", "95th percentile of the CIEDE2000 difference"),
    ("ab_rmse", "ab RMSE", ".2f", "RMS of the ab distance to the reference"),
    ("colorfulness_diff", "Δ colorfulness", "+.1f", "Colorfulness minus the reference's: below 0 washed out"),
    ("colorfulness", "Colorfulness", ".1f", "Hasler and Suesstrunk colorfulness M (0 for gray)"),
    ("chroma", "Chroma", ".1f", "Mean chroma C*ab"),
    ("hsv_saturation", "HSV sat.", ".3f", "Mean HSV saturation (0 to 1)"),
    ("contrast_rms", "L* RMS", ".1f", "RMS contrast: standard deviation of L*"),
    ("contrast_michelson", "Michelson", ".3f", "Michelson contrast of L*"),
    ("ab_share", "Gamut use", ".1%", "Share of the in-gamut ab bins (10-unit grid) that hold a pixel"),
    ("hue_entropy", "Hue entropy", ".3f", "Entropy of the hue histogram, 0 (one hue) to 1 (all hues)"),
]
GRAY_ROW = "gray baseline"
NAME_WIDTH = 96  # pixels of the layer-name column: longer names are elided, the figures stay in view


def fmt(value, spec: str) -> str:
    """A figure as shown in the table: "–" where not defined, ∞ for identical images."""
    if value is None:
        return "–"  # not defined for this row (no reference, or a baseline's own figures)
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return format(value, spec)


def table_rows(results: dict | None) -> list[dict]:
    """Rows of a metrics job's results: ``layer``, ``role`` and the figures (None where not defined)."""
    if results is None:
        return []
    out = [{"layer": name, "role": "layer", **figs} for name, figs in results["layers"].items()
           if figs is not None]
    if results["reference"] is not None:
        out.append({"layer": results["reference_name"], "role": "reference", **results["reference"]})
        first = next((f for f in results["layers"].values() if f is not None and "psnr_gray" in f), None)
        if first is not None:
            gray = {k: first[f"{k}_gray"] for k in FULL_REFERENCE_KEYS}
            per = first.get("per_plane")
            if per is not None:
                gray["per_plane"] = {k: per[f"{k}_gray"] for k in FULL_REFERENCE_KEYS}
            out.append({"layer": GRAY_ROW, "role": "gray baseline", "n_planes": first["n_planes"], **gray})
    return out


def records(rows: list[dict], reference_name, planes: dict) -> tuple[list[str], list[list]]:
    """Header and records for export: one line per row, then one per plane of a stack.

    ``planes`` maps a layer name to the index of the plane measured (empty for all planes or 2D).
    """
    keys = list(NO_REFERENCE_KEYS) + list(FULL_REFERENCE_KEYS)
    header = ["layer", "role", "plane", *keys]
    out = []
    for row in rows:
        if row.get("per_plane"):
            plane = "mean"
        else:  # the current plane's index over the stack axes; empty for a 2D layer
            name = reference_name if row["role"] == "gray baseline" else row["layer"]
            plane = " ".join(map(str, planes.get(name, ())))
        out.append([row["layer"], row["role"], plane, *[row.get(k, "") for k in keys]])
        per = row.get("per_plane")
        if per:
            for idx in np.ndindex(*next(iter(per.values())).shape):
                out.append([row["layer"], row["role"], " ".join(map(str, idx)),
                            *[float(per[k][idx]) if k in per else "" for k in keys]])
    return header, out


def delimited(header: list[str], recs: list[list], sep: str) -> str:
    """Records as delimited text (floats to six significant digits)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator="\n")
    writer.writerow(header)
    for rec in recs:
        writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in rec])
    return buf.getvalue()


def make_table():
    """An empty read-only table with a header per column; layer names go in the row headers."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QSizePolicy, QTableWidget

    table = QTableWidget(0, len(COLUMNS))
    table.setHorizontalHeaderLabels([c[1] for c in COLUMNS])
    for j, col in enumerate(COLUMNS):
        table.horizontalHeaderItem(j).setToolTip(col[3])
    table.setToolTip("One row per layer; hover a column header for its meaning")
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    # layer names as row headers, so they stay in view while the figures scroll sideways; a fixed
    # width, so a long name cannot push the figures out of a narrow dock
    rows = table.verticalHeader()
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setFixedWidth(NAME_WIDTH)
    rows.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    rows.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.setMinimumHeight(130)
    table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
    return table


def fill_table(table, rows: list[dict]) -> None:
    """Show ``rows`` (of :func:`table_rows`) in a table made by :func:`make_table`."""
    from qtpy.QtCore import Qt
    from qtpy.QtGui import QFont
    from qtpy.QtWidgets import QTableWidgetItem

    table.setRowCount(len(rows))
    for i, row in enumerate(rows):
        label = row["layer"] if row["role"] == "layer" else f"{row['layer']} ({row['role']})"
        if row["role"] == "gray baseline":
            label = GRAY_ROW
        head = QTableWidgetItem(label)
        head.setToolTip(label)
        items = []
        for key, _, spec, _ in COLUMNS:
            item = QTableWidgetItem(fmt(row.get(key), spec))
            item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
            items.append(item)
        for item in [head, *items]:
            if row["role"] != "layer":  # baselines read differently from the measured layers
                font = QFont(item.font())
                font.setItalic(True)
                item.setFont(font)
        table.setVerticalHeaderItem(i, head)
        for j, item in enumerate(items):
            table.setItem(i, j, item)


def cell(table, row: int, header: str) -> str:
    """Text shown in ``table`` at ``row`` under column ``header`` ("Layer" for the row header)."""
    if header == "Layer":
        item = table.verticalHeaderItem(row)
    else:
        item = table.item(row, [c[1] for c in COLUMNS].index(header))
    return "" if item is None else item.text()
