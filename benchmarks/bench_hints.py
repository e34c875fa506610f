"""Hint latency: a repeated ``colorize`` call with one hint moved, and a hint edit in a real viewer.

1. API: ``colorize(same_image, points=..., colors=...)`` with one of three hints moved each call
   (after a first call), median over the repeats, at each size.
2. Viewer (needs a display; run under ``xvfb-run -a``): a napari viewer with the Colorize dock,
   auto-update on and a hints layer; one point is moved from code and the time until the result
   layer's data changes is measured (the dock's debounce included), median over the repeats.

    xvfb-run -a python benchmarks/bench_hints.py [--sizes 512 2048] [--repeat 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def photo(size: int) -> np.ndarray:
    from skimage import data
    from skimage.transform import resize

    return resize(data.camera() / 255.0, (size, size), anti_aliasing=True).astype(np.float32)


def api_latency(size: int, repeat: int) -> float:
    from napari_colorize import colorize

    gray = photo(size)
    pts = np.array([[0.2, 0.2], [0.6, 0.4], [0.8, 0.8]]) * size
    cols = np.array([[0.8, 0.2, 0.2], [0.2, 0.7, 0.2], [0.2, 0.3, 0.8]])
    colorize(gray, points=pts, colors=cols)
    times = []
    for i in range(repeat):
        pts[0] += 1 + i % 3
        t = time.perf_counter()
        colorize(gray, points=pts, colors=cols)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def viewer_latency(size: int, repeat: int) -> float:
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1280, 800)
    try:
        image = viewer.add_image(photo(size), name="photo")
        _, dock = viewer.window.add_plugin_dock_widget("napari-colorize", "Colorize")
        hints = viewer.add_points(np.array([[0.3, 0.3], [0.7, 0.6]]) * size, name="photo hints",
                                  face_color=["red", "blue"], ndim=2)
        dock.image.value, dock.hints.value = image, hints
        dock.run()
        _wait(lambda: not dock.running and "photo colorized" in viewer.layers)
        dock.auto.value = True
        out = viewer.layers["photo colorized"]
        times, seen = [], []
        out.events.data.connect(lambda *_: seen.append(time.perf_counter()))
        for i in range(repeat):
            seen.clear()
            t = time.perf_counter()
            data = hints.data.copy()
            data[0] += 2 + i
            hints.data = data
            _wait(lambda: bool(seen) and not dock.running)
            times.append(seen[0] - t)
        QApplication.processEvents()
        return statistics.median(times)
    finally:
        viewer.close()


def _wait(cond, timeout: float = 120.0) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > end:
            raise TimeoutError("no update")
        QApplication.processEvents()
        time.sleep(0.002)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-viewer", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeat}\n")
    print("| size | colorize, one hint moved (s) | viewer, edit to updated layer (s) |")
    print("|---|---|---|")
    for size in args.sizes:
        api = api_latency(size, args.repeat)
        view = float("nan") if args.no_viewer else viewer_latency(size, args.repeat)
        print(f"| {size} x {size} | {api:.3f} | {view:.3f} |")


if __name__ == "__main__":
    main()
