"""The hint tool of the Colorize dock: the color of the next hints, an eyedropper, a new hints layer."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..hints import new_hints_layer, pick_color, set_next_color

#: the first hint color: a saturated orange, visible on gray and unlike the model's usual guesses
DEFAULT_COLOR = (0.95, 0.45, 0.1)
_DRAW_MODES = ("add", "add_path", "add_line", "add_polyline", "add_polygon", "add_polygon_lasso",
               "add_rectangle", "add_ellipse", "paint", "fill")


class HintTool:
    """A row of the Colorize dock: swatch (QColorDialog), eyedropper and "New hints layer".

    The chosen color goes to the hints added next to the dock's hints layer
    (:func:`..hints.set_next_color`): points and shapes already there keep theirs.

    Parameters
    ----------
    dock : Dock
        The dock the row belongs to (its viewer, click listening and messages).
    target : callable
        ``target()`` gives the hints layer (or None).
    image : callable
        ``image()`` gives the image layer a new hints layer goes over (or None).
    adopt : callable
        ``adopt(layer)`` makes a new hints layer the dock's hints layer.
    """

    def __init__(self, dock, target: Callable, image: Callable, adopt: Callable):
        from qtpy.QtWidgets import QHBoxLayout, QPushButton, QWidget

        self._dock, self._target, self._image, self._adopt = dock, target, image, adopt
        self.color = np.array(DEFAULT_COLOR, dtype=float)
        self._mode = None  # the hints layer's mode while the eyedropper is out
        self.widget = QWidget()
        row = QHBoxLayout(self.widget)
        row.setContentsMargins(0, 0, 0, 0)
        self.swatch = QPushButton()
        self.swatch.setToolTip("Color of the hints you add next (points, shapes or a new label); "
                               "click to choose. Hints already placed keep their colors.")
        self.swatch.setFixedWidth(44)
        self.eyedropper = QPushButton("Eyedropper")
        self.eyedropper.setCheckable(True)
        self.eyedropper.setToolTip("Then click on the canvas: the color of the topmost RGB layer there "
                                   "becomes the color of the next hints")
        self.new_layer = QPushButton("New hints layer")
        self.new_layer.setToolTip("A Points layer over the image, in add mode, for hints of the chosen color")
        for w in (self.swatch, self.eyedropper, self.new_layer):
            row.addWidget(w)
        self.swatch.clicked.connect(self.choose)
        self.eyedropper.toggled.connect(self._arm)
        self.new_layer.clicked.connect(self.make_layer)
        self._show()

    def _show(self) -> None:
        r, g, b = (int(round(255 * v)) for v in self.color)
        edge = "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#fff"
        self.swatch.setStyleSheet(f"background-color: rgb({r}, {g}, {b}); border: 1px solid {edge};")

    def set_color(self, rgb) -> None:
        """Make ``rgb`` (in [0, 1]) the color of the next hints of the dock's hints layer."""
        self.color = np.clip(np.asarray(rgb, dtype=float)[:3], 0.0, 1.0)
        self._show()
        layer = self._target()
        if layer is not None:
            set_next_color(layer, self.color)

    def choose(self, *_) -> None:
        """Choose the next hints' color in a color dialog."""
        from qtpy.QtGui import QColor
        from qtpy.QtWidgets import QColorDialog

        picked = QColorDialog.getColor(QColor.fromRgbF(*map(float, self.color)), self.widget,
                                       "Color of the next hints")
        if picked.isValid():
            self.set_color([picked.redF(), picked.greenF(), picked.blueF()])

    def make_layer(self, *_):
        """A new Points layer for hints over the dock's image, made the dock's hints layer."""
        image = self._image()
        if image is None:
            self._dock.error("Choose an image layer first; the hints layer goes over it.")
            return None
        layer = new_hints_layer(self._dock._viewer, image, self.color)
        self._adopt(layer)
        return layer

    # -- eyedropper ------------------------------------------------------------------------------
    def _arm(self, on: bool) -> None:
        layer = self._dock._viewer.layers.selection.active
        if on and layer is not None and str(getattr(layer, "mode", "")) in _DRAW_MODES:
            # a click meant for the eyedropper must not also add a hint
            self._mode = (layer, str(layer.mode))
            layer.mode = "pan_zoom"
        elif not on and self._mode is not None:
            layer, mode = self._mode
            self._mode = None
            if layer in self._dock._viewer.layers:
                layer.mode = mode
        self._dock.listen_to_clicks(self.pick, on)

    def pick(self, viewer, event) -> None:
        """Take the color under a click (a mouse callback while the eyedropper is out)."""
        rgb = pick_color(viewer, event.position)
        if rgb is None:
            self._dock.status.value = "No RGB color on screen under the cursor; the eyedropper reads the RGB layer shown there."
            return
        self.set_color(rgb)
        self._dock.status.value = "next hints: RGB " + ", ".join(f"{v:.2f}" for v in rgb)
        from qtpy.QtCore import QTimer

        # after napari has gone through its click callbacks: this one leaves the list
        QTimer.singleShot(0, lambda: self.eyedropper.setChecked(False))
