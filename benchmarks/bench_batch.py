"""Throughput of batch colorization (``napari-colorize colorize --scheduler``) on a dask.distributed
LocalCluster of 1 and 2 worker processes (one thread each), on the same files.

Makes ``--files`` grayscale PNGs (random crops of scikit-image's camera photo) in a temporary
folder. Each cluster first colorizes a few files untimed, so that worker start-up, importing torch
and receiving the model are not counted; then the whole set is timed into an empty folder.

    python benchmarks/bench_batch.py [--files 200] [--size 256] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def make_files(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` grayscale PNGs of ``size`` x ``size`` pixels."""
    from PIL import Image
    from skimage import data
    from skimage.transform import resize

    base = (resize(data.camera(), (2 * size, 2 * size), anti_aliasing=True) * 255).astype(np.uint8)
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        y, x = rng.integers(0, size, 2)
        p = folder / f"gray_{i:04d}.png"
        Image.fromarray(base[y : y + size, x : x + size]).save(p)
        paths.append(p)
    return paths


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    from napari_colorize.batch.files import colorize_files

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        files = make_files(tmp / "in", args.files, args.size)
        print(f"{args.files} grayscale PNGs of {args.size} x {args.size}, bundled model\n")
        print("| dask workers | torch threads each | seconds | files / s | s / file |")
        print("|---|---|---|---|---|")
        for n in args.workers:
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, \
                    Client(lc) as client:
                threads = sorted(set(client.run(_torch_threads).values()))
                warm = [str(p) for p in files[: 2 * n]]
                colorize_files(warm, str(tmp / f"warm{n}"), scheduler=client)
                t0 = time.perf_counter()
                counts = colorize_files([str(tmp / "in")], str(tmp / f"out{n}"), scheduler=client)
                dt = time.perf_counter() - t0
            assert counts["done"] == args.files, counts
            print(f"| {n} | {','.join(map(str, threads))} | {dt:.1f} | {args.files / dt:.2f} | "
                  f"{dt / args.files:.3f} |", flush=True)


if __name__ == "__main__":
    main()
