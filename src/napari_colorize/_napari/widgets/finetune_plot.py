"""The Fine-tune dock's plot: held-out ab error (the figure the best weights are kept by) and loss."""

from __future__ import annotations

import math
import time

TEXT, EDGE, FACE = "#c5c9ce", "#8f9399", "#262930"


class LossPlot:
    """Held-out ab error (dots, left axis) with the base model's level and the best step marked,
    and the smoothed training loss (faint line, right axis), against steps, in a matplotlib canvas.
    """

    def __init__(self):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(3.2, 2.0), dpi=90, facecolor=FACE, layout="constrained")
        self.ax = ax = fig.add_subplot()
        self.ax_loss = ax2 = ax.twinx()
        for a in (ax, ax2):
            a.set_facecolor("none")
            for side in a.spines.values():
                side.set_color(EDGE)
            a.tick_params(colors=TEXT, labelsize=7)
        ax.set_zorder(ax2.get_zorder() + 1)  # the error, the figure that counts, is drawn on top
        ax.set_xlabel("step", color=TEXT, fontsize=8)
        ax.set_ylabel("held-out ab error", color="#f6b26b", fontsize=8)
        ax2.set_ylabel("training loss", color="#6fa8dc", fontsize=8)
        (self.train_line,) = ax2.plot([], [], color="#6fa8dc", lw=1, alpha=0.6, label="training loss")
        (self.val_line,) = ax.plot([], [], "o-", color="#f6b26b", ms=3, lw=1, label="held-out error")
        self.base_line = ax.axhline(math.nan, color=EDGE, lw=0.8, ls="--", label="base model")
        (self.best_dot,) = ax.plot([], [], "*", color="#7bea5e", mec="white", mew=0.5, ms=12, zorder=5,
                                 label="lowest error")
        ax.legend(fontsize=6, facecolor=FACE, labelcolor=TEXT, edgecolor=EDGE, loc="upper right")
        self.canvas = FigureCanvasQTAgg(fig)
        self.canvas.setMinimumHeight(170)
        self.canvas.setToolTip("Held-out ab error (CIELAB units, lower is better; the weights of its lowest "
                               "point are kept) and the smoothed training loss, against steps")
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        self.base = math.nan
        self.best: tuple[int, float] | None = None
        self._drawn = 0.0

    def start(self, base: float, val: list[tuple[int, float]]) -> None:
        """A new run: the base model's error and the held-out figures so far."""
        self.base = base
        self.val = list(val)
        self.best = min(((s, v) for s, v in self.val), key=lambda p: p[1], default=None)
        self.redraw(force=True)

    def clear(self) -> None:
        """Forget the curves and draw an empty plot."""
        self.train.clear()
        self.val.clear()
        self.base, self.best = math.nan, None
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
        self.base_line.set_ydata([self.base, self.base])
        self.best_dot.set_data(*(([self.best[0]], [self.best[1]]) if self.best else ([], [])))
        for a in (self.ax, self.ax_loss):
            a.relim()
            a.autoscale_view()
        self.canvas.draw_idle()
