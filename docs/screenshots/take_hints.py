"""Screenshots of steering colors in a 1280 x 800 napari window: hint points, scribbles, a reference.

Run from the repository root with a display (``xvfb-run -a python docs/screenshots/take_hints.py``);
writes ``docs/screenshots/hints.png``, ``scribbles.png`` and ``reference.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from take import PLUGIN, save, settle, wait  # noqa: E402


def shoot(viewer, w, hints, name: str):
    """Colorize, save the window with ``hints`` selected, then remove the hints and the result."""
    w.run()
    wait(viewer, w)
    viewer.layers.selection.active = hints
    save(viewer, name)
    viewer.layers.remove(hints)
    viewer.layers.remove("astronaut colorized")


def main():
    from skimage import data

    viewer = napari.Viewer(title="napari-colorize")
    viewer.window._qt_window.resize(1280, 800)
    viewer.open_sample(PLUGIN, "astronaut_gray")
    gray = viewer.layers["astronaut"]
    settle(viewer, 500)
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Colorize")
    w.image.value = gray

    # hint points, placed with the dock's color, one color after another
    pts = viewer.layers[w.tool.make_layer().name]
    for (r, c), rgb in [((400, 90), (0.15, 0.45, 0.85)), ((430, 170), (0.15, 0.45, 0.85)),
                        ((60, 300), (0.85, 0.75, 0.55)), ((120, 225), (0.9, 0.65, 0.5)),
                        ((250, 40), (0.8, 0.1, 0.15)), ((40, 20), (0.1, 0.2, 0.6))]:
        w.tool.set_color(rgb)
        pts.add([[r, c]])
    w.tool.set_color((0.15, 0.45, 0.85))
    shoot(viewer, w, pts, "hints")

    # scribbles: a path in its edge color, a filled polygon in its face color
    shapes = viewer.add_shapes(name="scribbles")
    shapes.add_paths([np.array([[330, 60], [380, 110], [450, 80], [490, 140]])], edge_color=[[0.1, 0.7, 0.2, 1]],
                     edge_width=6)
    t = np.linspace(0, 2 * np.pi, 40)
    shapes.add_polygons([np.stack([390 + 55 * np.sin(t), 390 + 55 * np.cos(t)], axis=1)],
                        face_color=[[0.6, 0.2, 0.8, 1]], edge_color=[[1, 1, 1, 1]], edge_width=2)
    shapes.opacity = 0.45  # the result shows through
    w.reset_choices()
    w.hints.value = shapes
    shoot(viewer, w, shapes, "scribbles")

    # another photo's palette, shown beside the result
    coffee = viewer.add_image(data.coffee(), name="coffee", rgb=True, translate=(0, 530))
    w.reset_choices()
    w.hints.value = None
    w.reference.value = coffee
    w.strength.value = 1.0
    w.run()
    wait(viewer, w)
    viewer.reset_view()
    viewer.scene.camera.zoom *= 1.15
    save(viewer, "reference")
    viewer.close()


if __name__ == "__main__":
    main()
