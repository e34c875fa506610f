"""Lazy colorization of big dask inputs: global pass, one chunk, and a whole store, with peak memory.

    python benchmarks/bench_lazy.py [--sizes 1024 16000] [--chunk 1024]
    xvfb-run -a python benchmarks/bench_lazy.py --viewer --sizes 16000 [--shot out.png]

Each size runs in a fresh process. The input is a dask array generated chunk by chunk from a
photo (never held whole). Reported: the global pass (``colorize(x)`` returning), one
``chunk x chunk`` piece computed afterwards, ``da.to_zarr(colorize(x), ...)`` of the whole result
(uint8, a fresh ``colorize`` call, so it includes its own global pass), its s/MP and the
process's peak RSS (``ru_maxrss``).

With ``--viewer``: a real napari viewer (1280 x 800) shows a multiscale pyramid of that size
(levels generated chunk by chunk), Colorize is pressed in the dock, and the times until the lazy
result layer exists and until its first tiles are drawn (a canvas screenshot renders what is in
view) are printed; then a zoom to full resolution at a corner and its draw.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from child import peak_mb, run_child, sample_photo


def _source(size: int, chunk: int, step: int = 1):
    """Lazy (size / step)^2 uint8 plane: every step-th pixel of a size^2 tiling of a photo."""
    import dask.array as da
    import numpy as np

    photo = sample_photo()

    def block(_, block_info=None):
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        return photo[np.ix_(np.arange(r0, r1) * step % 1024, np.arange(c0, c1) * step % 1024)]

    n = -(-size // step)
    return da.zeros((n, n), dtype=np.uint8, chunks=chunk).map_blocks(block, dtype=np.uint8)


def viewer_first_tiles(size: int, chunk: int, shot: str | None) -> dict:
    """Press Colorize on a multiscale ``size`` px layer in a real viewer; seconds to the result
    layer and to its first drawn tiles, then to a full-resolution corner drawn."""
    import napari
    from qtpy.QtWidgets import QApplication

    levels, step = [], 1
    while not levels or size // step > 512:
        levels.append(_source(size, chunk, step))
        step *= 2
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1280, 800)
    try:
        layer = viewer.add_image(levels, multiscale=True, name="big")
        _, dock = viewer.window.add_plugin_dock_widget("napari-colorize", "Colorize")
        dock.image.value = layer
        viewer.screenshot(canvas_only=True)  # the input drawn first: what follows is the result's cost
        t0 = time.perf_counter()
        dock.run()
        end = t0 + 600
        while dock.running or "big colorized" not in viewer.layers:
            if time.perf_counter() > end:
                raise TimeoutError("no result layer")
            if not dock.running and time.perf_counter() - t0 > 1.0 and "big colorized" not in viewer.layers:
                raise RuntimeError(f"no result layer; the dock says: {dock.status.value}")
            QApplication.processEvents()
            time.sleep(0.002)
        t_layer = time.perf_counter() - t0
        layer.visible = False
        for _ in range(3):  # the dock's status and the new layer laid out, as a user would see them
            QApplication.processEvents()
        viewer.screenshot(path=shot, canvas_only=False) if shot else viewer.screenshot(canvas_only=True)
        t_drawn = time.perf_counter() - t0
        viewer.scene.camera.zoom = viewer.scene.camera.zoom * size / 1024  # about 1 screen pixel per image pixel
        viewer.scene.camera.center = (size * 0.8, size * 0.3)
        t1 = time.perf_counter()
        viewer.screenshot(canvas_only=True)
        t_zoom = time.perf_counter() - t1
        status = dock.status.value
    finally:
        viewer.close()
    return {"size": size, "layer_s": t_layer, "drawn_s": t_drawn, "zoom_s": t_zoom, "status": status}


def child(size: int, chunk: int, out_dir: str) -> dict:
    import dask.array as da
    import numpy as np

    from napari_colorize import colorize, load_model

    model = load_model()
    x = _source(size, chunk)
    base = peak_mb()
    t0 = time.perf_counter()
    lazy = colorize(x, model=model)
    t_global = time.perf_counter() - t0
    i = min(2, lazy.numblocks[0] - 1)
    t0 = time.perf_counter()
    piece = lazy.blocks[i, i].compute()
    t_chunk = time.perf_counter() - t0
    assert piece.shape[-1] == 3
    del lazy, piece  # the store below makes its own global pass
    t0 = time.perf_counter()
    res = colorize(x, model=model)
    as_u8 = (da.clip(res, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    da.to_zarr(as_u8, str(Path(out_dir) / "big.zarr"))
    t_store = time.perf_counter() - t0
    return {"size": size, "global_s": t_global, "chunk_s": t_chunk, "store_s": t_store,
            "peak_mb": peak_mb(), "base_mb": base, "tiled": max(x.shape) > model.tile_above}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1024, 16000])
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--viewer", action="store_true", help="time press-to-first-tiles in napari")
    ap.add_argument("--shot", help="with --viewer: save the viewer's screenshot here")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.viewer:
        for size in args.sizes:
            r = viewer_first_tiles(size, args.chunk, args.shot)
            print(f"{size} px pyramid: result layer {r['layer_s']:.2f} s, first tiles drawn {r['drawn_s']:.2f} s "
                  f"after pressing Colorize; a full-resolution corner drawn in {r['zoom_s']:.2f} s\n"
                  f"  dock: {r['status']}", flush=True)
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.chunk, args.out_dir)))
        return 0
    print(f"{'size':>7} {'mode':>6} {'global s':>9} {'chunk s':>8} {'store s':>8} {'s/MP':>6} {'peak MB':>8} "
          f"{'base MB':>8}")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, __file__, "--child", str(size), "--chunk", str(args.chunk), "--out-dir", tmp]
            r = run_child(cmd, size, args.timeout)
        if r is None:
            continue
        mp = size * size / 1e6
        print(f"{size:>7} {'tiled' if r['tiled'] else 'whole':>6} {r['global_s']:9.2f} {r['chunk_s']:8.2f} "
              f"{r['store_s']:8.1f} {r['store_s'] / mp:6.3f} {r['peak_mb']:8.0f} {r['base_mb']:8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
