"""The Metrics dock's ab plot: a layer's ab distribution above its reference's, on the sRGB gamut."""

from __future__ import annotations

import numpy as np

from ...core.color import AB_GRID, AB_RANGE, ab_bins

TITLE_CHARS = 32  # longer layer names are shortened in the middle so titles never run into each other


def short(title: str, n: int = TITLE_CHARS) -> str:
    """``title`` shortened in the middle to at most ``n`` characters."""
    return title if len(title) <= n else f"{title[: n // 2 - 1]}…{title[-(n - n // 2):]}"


def _gamut() -> np.ndarray:
    n = int(round(2 * AB_RANGE / AB_GRID)) + 1
    gamut = np.zeros((n, n))
    idx = np.rint((ab_bins() + AB_RANGE) / AB_GRID).astype(int)
    gamut[idx[:, 0], idx[:, 1]] = 1
    return gamut


class AbPlot:
    """ab histograms in a matplotlib canvas, one square panel a row so each stays readable in a
    narrow dock (side by side, two panels of a 300 px dock would be 100 px wide)."""

    def __init__(self):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(3.0, 5.6), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(480)
        self.canvas.setToolTip("ab histogram (log counts) on the sRGB gamut (gray); + marks the mean color")
        self._gamut = _gamut()

    def draw(self, panels: list, bg: str, fg: str) -> None:
        """Draw ``panels``, a list of (title, histogram or None), one under the other."""
        fig = self.figure
        fig.clear()
        fig.set_facecolor(bg)
        half = AB_RANGE + AB_GRID / 2
        for k, (title, hist) in enumerate(panels):
            ax = fig.add_subplot(len(panels), 1, k + 1)
            ax.set_facecolor(bg)
            ax.imshow(np.ma.masked_equal(self._gamut.T, 0), origin="lower", extent=(-half, half, -half, half),
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
            ax.set_title(short(title or "(no layer)"), color=fg, fontsize=8)
            ax.set_xlabel("a*", color=fg, fontsize=8, labelpad=1)
            ax.set_ylabel("b*", color=fg, fontsize=8, labelpad=1)
            ax.tick_params(colors=fg, labelsize=7)
            for spine in ax.spines.values():
                spine.set_color(fg)
        self.canvas.draw_idle()

    @property
    def axes(self) -> list:
        """The panels drawn last."""
        return list(self.figure.axes)
