"""Command line: ``napari-colorize colorize | evaluate | train``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tarfile
import threading
import time
import warnings
from pathlib import Path

from .core.arrays import check_number
from .core.data import MAX_PIXELS
from .core.errors import ColorizeError
from .core.runtime import default_threads

SIGTERM_STATUS = 143  # 128 + SIGTERM, as a shell reports a process the signal ended; Ctrl-C gives 130


def progress_bar(total: int | None, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True)


# -- colorize -------------------------------------------------------------------------------
def _cmd_colorize(args) -> int:
    from .batch.files import check_temperature, colorize_files

    if args.scheduler and args.workers:
        raise ColorizeError("--workers sets local threads; with --scheduler the cluster has its workers.")
    if args.workers is not None and args.workers < 1:
        raise ColorizeError(f"--workers must be at least 1, got {args.workers}.")
    check_temperature(args.temperature)  # before torch and the inputs: one error, not one per file
    model = _with_reference(args) if args.reference else args.model
    if args.mode != "auto":
        model = _with_mode(model, args.mode)
    import torch

    threads = torch.get_num_threads()
    if not args.scheduler:
        # files run in parallel threads: split the cores between them rather than oversubscribe
        torch.set_num_threads(max(1, default_threads() // (args.workers or default_threads())))
    try:
        counts = colorize_files(
            args.inputs, args.output, model=model, temperature=args.temperature,
            overwrite=args.overwrite, progress=progress_bar, scheduler=args.scheduler, workers=args.workers,
            max_pixels=args.max_pixels, fmt=args.format,
        )
    finally:
        torch.set_num_threads(threads)  # main() may be called in-process (tests, scripts)
    return 1 if counts["failed"] else 0


def _with_mode(model, mode: str):
    """A copy of ``model`` whose auto mode always takes ``mode``: the model's ``tile_above`` is
    what auto mode decides by, so the batch's tasks need no argument of their own."""
    import copy

    from .core.modelfile import Colorizer, load

    m = copy.deepcopy(model if isinstance(model, Colorizer) else load(model))
    m.config["tile_above"] = 10**6 if mode == "whole" else 16  # the extremes the model card allows
    return m


def _with_reference(args):
    """The model whose decoding follows the palette of the ``--reference`` photo."""
    from .batch.files import read_image
    from .core.modelfile import load
    from .core.reference import with_reference

    ref = read_image(args.reference, args.max_pixels)
    if ref.ndim != 3 or ref.shape[-1] not in (3, 4):
        raise ColorizeError(f"--reference must be a color (RGB) image; '{args.reference}' has shape {ref.shape}.")
    return with_reference(load(args.model), ref, args.reference_strength)


# -- demo -----------------------------------------------------------------------------------
def _cmd_demo(args) -> int:
    import numpy as np
    from skimage import data
    from skimage.color import rgb2gray

    from .api import colorize, load_model
    from .batch.files import write_image
    from .core.metrics import colorfulness, psnr

    out = Path(args.output)
    ref = data.astronaut().astype(np.float32) / 255.0
    gray = rgb2gray(ref).astype(np.float32)
    gray3 = np.repeat(gray[..., None], 3, axis=2)
    model = load_model(args.model)
    t0 = time.perf_counter()
    rgb = colorize(gray, model=model)
    dt = time.perf_counter() - t0
    write_image(out / "astronaut_gray.png", gray3)
    write_image(out / "astronaut_colorized.png", rgb)
    write_image(out / "astronaut_side_by_side.png", np.concatenate([gray3, rgb, ref], 1))
    print(f"model '{model.name}' ({model.n_parameters():,} parameters) colorized a {gray.shape[1]}x{gray.shape[0]} "
          f"photo in {dt:.2f} s")
    print(f"PSNR {psnr(rgb, ref):.2f} dB (gray {psnr(gray3, ref):.2f} dB), "
          f"colorfulness {colorfulness(rgb):.1f} (original {colorfulness(ref):.1f})")
    print(f"wrote {out / 'astronaut_colorized.png'} and {out / 'astronaut_side_by_side.png'}")
    return 0


# -- evaluate -------------------------------------------------------------------------------
def _cmd_evaluate(args) -> int:
    import itertools

    from .batch.files import check_temperature
    from .core.data import iter_images
    from .core.evaluate import evaluate
    from .core.modelfile import load

    check_temperature(args.temperature)
    check_number("--hints", args.hints, 0, 10000, integer=True)
    check_number("--seed", args.seed, 0, 2**32 - 1, integer=True)
    if args.limit is not None:
        check_number("--limit", args.limit, 1, 10**9, integer=True)
    if args.levin and not args.hints:
        raise ColorizeError("--levin scores Levin et al. 2004 given the same hints: add --hints N.")
    model = load(args.model)
    images = (rgb for _, rgb in iter_images(args.data, max_pixels=args.max_pixels))
    if args.limit:
        images = itertools.islice(images, args.limit)
    try:
        with progress_bar(args.limit, "evaluate") as bar:
            res = evaluate(model, images, n_hints=args.hints, temperature=args.temperature,
                           seed=args.seed, progress=bar.update, skip_gray=not args.include_gray,
                           levin=args.levin)
    except (tarfile.TarError, EOFError) as exc:
        raise ColorizeError(f"Cannot read '{args.data}': it is truncated or not a tar file ({exc}).") from None
    res["model"] = model.name
    if not res["n_images"]:
        raise ColorizeError(f"No color photos to evaluate in {args.data} "
                            f"({res['n_skipped_gray']} gray or sepia ones skipped).")
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"model {model.name}: {res['n_images']} images ({res['n_skipped_gray']} gray or sepia skipped), "
          f"{args.hints} hints, T={res['temperature']}")
    cols = ("", "_gray") + (("_levin",) if "psnr_levin" in res else ())
    print(f"{'metric':<16}{'model':>10}{'gray':>10}" + (f"{'Levin 2004':>12}" if len(cols) > 2 else ""))
    for key in ("psnr", "psnr_pooled", "ssim", "ciede2000", "neutral_chroma"):
        print(f"{key:<16}" + "".join(f"{res[key + c]:>{12 if c == '_levin' else 10}.3f}" for c in cols))
    print(f"{'colorfulness':<16}{res['colorfulness']:>10.2f}{0.0:>10.2f}   (ground truth {res['colorfulness_gt']:.2f}, "
          f"ratio {res['colorfulness_ratio']:.2f})")
    print(f"{'beats gray':<16}{res['beats_gray']:>10.0%}   (share of photos whose PSNR is above gray's)")
    return 0


# -- train ----------------------------------------------------------------------------------
def _cmd_train(args) -> int:
    from .cli_train import cmd_train

    return cmd_train(args)


def _pixels(text: str) -> int:
    n = int(text) if text.strip().isascii() and text.strip().isdigit() else -1  # int() takes more digits
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0 (0: no limit), got '{text}'")
    return n


def _max_pixels_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-pixels", type=_pixels, default=MAX_PIXELS, metavar="N",
                        help="refuse images of more than N pixels (height x width) from their header, before "
                             f"decoding them (default {MAX_PIXELS}, Pillow's limit; 0: no limit)")


MODEL_HELP = ("a model name (bundled or yours), or a path with a folder or ending in .safetensors "
              "(default: the bundled model)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="napari-colorize", description="Colorize grayscale images with a CNN.")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("colorize", help="colorize image files, folders or zarr arrays",
                       epilog="Outputs are written whole or not at all, never over an input; a rerun skips "
                              "finished ones. Exit status: 0 all done, 1 some inputs failed (listed), 2 error, "
                              f"130 interrupted (Ctrl-C), {SIGTERM_STATUS} terminated (SIGTERM); interrupted "
                              "or terminated, it prints the summary of what was done.")
    c.add_argument("inputs", nargs="+", help="image files (PNG, TIFF, JPEG), folders or zarr arrays")
    c.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    c.add_argument("--model", default=None, help=MODEL_HELP)
    c.add_argument("--temperature", type=float, default=None, help="annealed-mean temperature, in (0, 5]")
    c.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them; "
                   "an output file named by -o that exists is an error)")
    c.add_argument("--reference", default=None, metavar="FILE",
                   help="a color photo whose palette the results take (an RGB input is recolored)")
    c.add_argument("--reference-strength", type=float, default=0.5, metavar="W",
                   help="weight of the reference's colors, 0 to 4 (0: only its saturation; default 0.5)")
    c.add_argument("--mode", choices=("auto", "whole", "tiled"), default="auto",
                   help="whole: the network sees each image at the model's working size, colors brought "
                        "back to full resolution along its edges (best for photos); tiled: at half "
                        "resolution in seamless windows, for fine detail; auto: whole up to the model's "
                        "tile_above (16384 px for the bundled model), tiled above")
    c.add_argument("--format", choices=("auto", "ome-zarr"), default="auto",
                   help="auto: as the input (PNG, TIFF, zarr, OME-Zarr) or -o's name; ome-zarr: always OME-Zarr")
    c.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on this dask.distributed scheduler (tcp://host:port); inputs and outputs "
                        "must be on a file system its workers share. Default: local threads")
    c.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local threads colorizing files in parallel (default: one per core)")
    _max_pixels_option(c)
    c.set_defaults(func=_cmd_colorize)

    d = sub.add_parser("demo", help="colorize a grayscale sample photo with the bundled model")
    d.add_argument("-o", "--output", default="demo-output", help="output folder")
    d.add_argument("--model", default=None, help=MODEL_HELP)
    d.set_defaults(func=_cmd_demo)

    e = sub.add_parser("evaluate", help="metrics of a model on a folder or tar of color photos")
    e.add_argument("--data", required=True, help="folder or tar of color photos")
    e.add_argument("--hints", type=int, default=0, help="ground-truth point hints per image")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--model", default=None, help=MODEL_HELP)
    e.add_argument("--temperature", type=float, default=None)
    e.add_argument("--limit", type=int, default=None, help="use only the first N images")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--include-gray", action="store_true",
                   help="also score gray and sepia photos (skipped by default: the gray baseline is exact on them)")
    e.add_argument("--levin", action="store_true",
                   help="with --hints, also score Levin et al. 2004's optimization given the same hints")
    _max_pixels_option(e)
    e.set_defaults(func=_cmd_evaluate)

    t = sub.add_parser("train", help="train a model from scratch or from --base",
                       epilog="Data parallel: torchrun --nproc_per_node N -m napari_colorize.cli train ... "
                              "(--batch-size is the total over the N processes).")
    t.add_argument("--data", nargs="+", required=True, help="folders or tars of color photos")
    t.add_argument("--val", default=None, help="folder or tar for validation")
    t.add_argument("--val-count", type=int, default=300)
    t.add_argument("--out", required=True, help="output model path (without suffix)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --out model")
    t.add_argument("--base", default=None, help="start from this model")
    t.add_argument("--steps", type=int, default=6000)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--width", type=int, default=24)
    t.add_argument("--rebalance-lambda", type=float, default=0.75,
                   help="class rebalancing: 1 is none, 0.5 as in Zhang et al. 2016")
    t.add_argument("--size", type=int, default=64, help="images are center-cropped and resized to this")
    t.add_argument("--crop", type=int, default=64)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--val-every", type=int, default=1000)
    t.add_argument("--decoder-only", action="store_true")
    t.add_argument("--regression", action="store_true",
                   help="add a head that regresses ab (smooth L1) beside the ab-bin head; with --base, "
                        "it is added to the base model")
    t.add_argument("--warmup", type=int, default=200, help="steps of linear learning-rate warm-up")
    t.add_argument("--checkpoint-dir", default=None)
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir")
    t.add_argument("--cache-dir", default=None, help="cache decoded images here")
    t.add_argument("--threads", type=int, default=None,
                   help="torch threads per process (default: the cores, shared among local processes)")
    t.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda: train on GPU LOCAL_RANK (NCCL under torchrun); cpu uses gloo")
    t.set_defaults(func=_cmd_train)
    return p


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that the same clean-up and summary run."""


def _on_sigterm(signum, frame) -> None:
    # once: a second SIGTERM during the clean-up ends the process at once, as a second Ctrl-C would
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one line and exit with status 2.

    SIGINT (Ctrl-C) and SIGTERM stop a command the same way, the batch printing its summary; the
    exit status is then 130 and 143.
    """
    args = build_parser().parse_args(argv)
    # only the main thread may set handlers; main() run on another thread keeps the default
    on_main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _on_sigterm) if on_main else None
    try:
        with warnings.catch_warnings():
            # a warning is one line of the command's, not Python's file:line report
            warnings.showwarning = lambda message, *_, **__: print("napari-colorize: " + str(message).replace("\n", " "), file=sys.stderr)
            return args.func(args)
    except ColorizeError as exc:
        print(f"napari-colorize: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, _Terminated)
        print(f"napari-colorize: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return SIGTERM_STATUS if terminated else 130
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
