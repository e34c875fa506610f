"""Time and peak memory of colorizing big images, each size in a fresh process.

    python benchmarks/bench_tiled.py [--sizes 256 1024 4096] [--big 16000] [--big-downsample N]
    python benchmarks/bench_tiled.py --mode tiled --sizes 1024 2048 4096 8192 --big 0   # s/MP in tiled mode

The small sizes are numpy arrays colorized in memory (``mode="auto"``: whole up to the model's
``tile_above``, 16384 px for the bundled model, tiled above). The big case is generated lazily (a
dask array of photo tiles, never held whole) and
written tile by tile to a uint8 ``.zarr`` store, so its peak RSS should not depend on its size.
Peak RSS is ``ru_maxrss`` of the child process; "base" is that after imports and model load.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from child import peak_mb, run_child, sample_photo


def child(size: int, big: bool, downsample: int, out_dir: str, mode: str = "auto") -> dict:
    import numpy as np

    from napari_colorize import colorize, load_model

    model = load_model()
    photo = sample_photo()
    if big:
        import dask.array as da

        def block(_, block_info=None):
            (r0, r1), (c0, c1) = block_info[None]["array-location"]
            ys, xs = np.arange(r0, r1) % 1024, np.arange(c0, c1) % 1024
            return photo[np.ix_(ys, xs)]

        image = da.zeros((size, size), dtype=np.uint8, chunks=1024).map_blocks(block, dtype=np.uint8)
    else:
        reps = -(-size // 1024)
        image = np.ascontiguousarray(np.tile(photo, (reps, reps))[:size, :size])
    base = peak_mb()
    t0 = time.perf_counter()
    last = [t0]

    def progress(done, total):
        now = time.perf_counter()
        if big and now - last[0] > 30:
            print(f"  ... {done}/{total} tile rows, {now - t0:.0f} s", file=sys.stderr, flush=True)
            last[0] = now

    kw = {"model": model, "progress": progress, "downsample": downsample or None}
    if mode == "tiled":
        kw.update(mode="tiled")
    if big:
        kw.update(out=str(Path(out_dir) / "big.zarr"), dtype="uint8")
    res = colorize(image, **kw)
    seconds = time.perf_counter() - t0
    assert res.shape == (size, size, 3)
    return {"size": size, "seconds": seconds, "peak_mb": peak_mb(), "base_mb": base,
            "mode": "tiled" if big or mode == "tiled" or size > model.tile_above else "whole",
            "output": "zarr uint8" if big else "numpy float32"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[256, 1024, 4096])
    ap.add_argument("--big", type=int, default=16000, help="side of the lazily generated case; 0 skips it")
    ap.add_argument("--big-downsample", type=int, default=0,
                    help="tiled mode's scale; 0: colorize's default (2, coarser above 8192 px)")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--mode", choices=("auto", "tiled"), default="auto",
                    help="tiled: force tiled mode (at --big-downsample) for the in-memory sizes too")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-big", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.child_big, args.big_downsample, args.out_dir, args.mode)))
        return 0

    runs = [(s, False) for s in args.sizes] + ([(args.big, True)] if args.big else [])
    print(f"{'size':>7} {'mode':>6} {'output':>14} {'time s':>8} {'s/MP':>7} {'peak MB':>8} {'base MB':>8}")
    for size, big in runs:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, __file__, "--child", str(size), "--out-dir", tmp,
                   "--big-downsample", str(args.big_downsample), "--mode", args.mode] + (
                       ["--child-big"] if big else [])
            r = run_child(cmd, size, args.timeout)
        if r is None:
            continue
        mp = size * size / 1e6
        print(f"{size:>7} {r['mode']:>6} {r['output']:>14} {r['seconds']:8.2f} {r['seconds'] / mp:7.2f} "
              f"{r['peak_mb']:8.0f} {r['base_mb']:8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
