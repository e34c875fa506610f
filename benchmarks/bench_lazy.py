"""Lazy colorization of big dask inputs: global pass, one chunk, and a whole store, with peak memory.

    python benchmarks/bench_lazy.py [--sizes 1024 16000] [--chunk 1024]

Each size runs in a fresh process. The input is a dask array generated chunk by chunk from a
photo (never held whole). Reported: the global pass (``colorize(x)`` returning), one
``chunk x chunk`` piece computed afterwards, ``da.to_zarr(colorize(x), ...)`` of the whole result
(uint8, a fresh ``colorize`` call, so it includes its own global pass), its s/MP and the
process's peak RSS (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from child import run_child


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _source(size: int, chunk: int):
    import dask.array as da
    import numpy as np
    from skimage import data
    from skimage.color import rgb2gray

    g = (rgb2gray(data.astronaut()) * 255).astype(np.uint8)
    g = np.concatenate([g, g[:, ::-1]], axis=1)
    photo = np.concatenate([g, g[::-1]], axis=0)  # 1024 x 1024, mirrored so that copies join

    def block(_, block_info=None):
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        return photo[np.ix_(np.arange(r0, r1) % 1024, np.arange(c0, c1) % 1024)]

    return da.zeros((size, size), dtype=np.uint8, chunks=chunk).map_blocks(block, dtype=np.uint8)


def child(size: int, chunk: int, out_dir: str) -> dict:
    import dask.array as da
    import numpy as np

    from napari_colorize import colorize, load_model

    model = load_model()
    x = _source(size, chunk)
    base = _peak_mb()
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
            "peak_mb": _peak_mb(), "base_mb": base, "tiled": max(x.shape) > model.tile_above}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1024, 16000])
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
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
