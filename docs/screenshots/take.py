"""Screenshots of every dock in a 1280 x 800 napari window, for the documentation.

Run from the repository root with a display (``xvfb-run -a python docs/screenshots/take.py``);
writes ``docs/screenshots/<dock>.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
import numpy as np
from PIL import Image as PILImage
from qtpy.QtWidgets import QApplication

OUT = Path(__file__).parent
PLUGIN = "napari-colorize"


def settle(viewer, ms: int = 300):
    app = QApplication.instance()
    for _ in range(max(1, ms // 20)):
        app.processEvents()
        viewer.window._qt_window.repaint()
        QApplication.instance().thread().msleep(20)


def wait(viewer, dock, timeout_s: float = 120):
    import time

    end = time.time() + timeout_s
    while dock.running and time.time() < end:
        settle(viewer, 100)
    settle(viewer, 400)


def save(viewer, name: str):
    settle(viewer)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    img = PILImage.fromarray(np.asarray(shot)[..., :3])
    img = img.quantize(colors=128, method=PILImage.Quantize.MEDIANCUT)  # small PNGs
    img.save(OUT / f"{name}.png", optimize=True)
    print(name, shot.shape, (OUT / f"{name}.png").stat().st_size // 1024, "KiB")


def main(only=None):
    viewer = napari.Viewer(title="napari-colorize")
    viewer.window._qt_window.resize(1280, 800)
    viewer.open_sample(PLUGIN, "astronaut_gray")
    settle(viewer, 500)

    def dock(title):
        return viewer.window.add_plugin_dock_widget(PLUGIN, title)

    def close(dw):
        viewer.window.remove_dock_widget(dw)
        settle(viewer)

    gray = viewer.layers["astronaut"]
    viewer.layers.selection.active = gray

    dw, w = dock("Colorize")
    if not only or "colorize" in only:
        save(viewer, "colorize-open")
    w.run()
    wait(viewer, w)
    save(viewer, "colorize")
    close(dw)

    viewer.layers["astronaut colorized"].visible = False  # results sit right above their input
    viewer.layers.selection.active = gray
    dw, w = dock("Inspect model")
    w._start("uncertainty")
    wait(viewer, w)
    w.pick_at(190.0, 230.0)
    wait(viewer, w)
    save(viewer, "inspect")
    viewer.layers.remove("astronaut uncertainty")
    close(dw)

    viewer.layers["astronaut colorized"].visible = True
    dw, w = dock("Metrics")
    w.layers.value = [viewer.layers["astronaut colorized"]]
    w.reference.value = viewer.layers["astronaut reference"]
    w.update_metrics()
    wait(viewer, w)
    save(viewer, "metrics")
    close(dw)

    viewer.layers["astronaut colorized"].visible = False
    dw, w = dock("Fine-tune")
    w.layers.value = [viewer.layers["astronaut reference"]]
    save(viewer, "finetune")
    close(dw)

    viewer.layers.selection.active = gray
    dw, w = dock("Edges (step by step)")
    w.run()
    wait(viewer, w)
    save(viewer, "edges")
    for step in ("gaussian", "gradient magnitude", "gradient direction", "nms", "canny"):
        viewer.layers.remove(f"astronaut {step}")
    close(dw)

    viewer.layers.selection.active = gray
    dw, w = dock("Superpixels and k-means")
    w.run()
    wait(viewer, w)
    save(viewer, "superpixels")
    close(dw)

    dw, w = dock("Shape descriptors and matching")
    w.measure()
    w.match()
    save(viewer, "shapes")
    close(dw)

    viewer.layers.selection.active = gray
    from napari._app_model import get_app_model

    get_app_model().commands.execute_command(f"{PLUGIN}.resize").result()
    save(viewer, "filter-resize")
    viewer.close()


if __name__ == "__main__":
    main(sys.argv[1:])
