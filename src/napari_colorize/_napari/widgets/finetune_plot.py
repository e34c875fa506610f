"""The Fine-tune dock's loss plot: training loss (smoothed line) and validation loss (dots)."""

from __future__ import annotations

import time


class LossPlot:
    """Training loss (line) and validation loss (dots) against steps, in a matplotlib canvas."""

    def __init__(self):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(3.2, 2.0), dpi=90, facecolor="#262930", layout="constrained")
        self.ax = ax = fig.add_subplot()
        ax.set_facecolor("#262930")
        for side in ax.spines.values():
            side.set_color("#8f9399")
        ax.tick_params(colors="#c5c9ce", labelsize=7)
        ax.set_xlabel("step", color="#c5c9ce", fontsize=8)
        ax.set_ylabel("loss", color="#c5c9ce", fontsize=8)
        (self.train_line,) = ax.plot([], [], color="#6fa8dc", lw=1, label="train")
        (self.val_line,) = ax.plot([], [], "o-", color="#f6b26b", ms=3, lw=1, label="validation")
        ax.legend(fontsize=7, facecolor="#262930", labelcolor="#c5c9ce", edgecolor="#8f9399", loc="upper right")
        self.canvas = FigureCanvasQTAgg(fig)
        self.canvas.setMinimumHeight(170)
        self.canvas.setToolTip("Training loss (smoothed) and validation loss against steps")
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        self._drawn = 0.0

    def clear(self) -> None:
        """Forget the curves and draw an empty plot."""
        self.train.clear()
        self.val.clear()
        self.redraw(force=True)

    def redraw(self, force: bool = False) -> None:
        """Redraw, at most a few times a second unless ``force``: drawing costs the UI time."""
        now = time.perf_counter()
        if not force and now - self._drawn < 0.5:
            return
        self._drawn = now
        # a running mean keeps the noisy per-batch loss readable
        steps = [s for s, _ in self.train]
        smooth, acc = [], None
        for _, v in self.train:
            acc = v if acc is None else 0.9 * acc + 0.1 * v
            smooth.append(acc)
        self.train_line.set_data(steps, smooth)
        self.val_line.set_data([s for s, _ in self.val], [v for _, v in self.val])
        self.ax.relim()
        self.ax.autoscale_view()
        self.canvas.draw_idle()
