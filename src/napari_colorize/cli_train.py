"""``napari-colorize train``: options checked before any data is read, then a resumable run."""

from __future__ import annotations

import json
import os
import sys
import tarfile
import time
from pathlib import Path

from .core.arrays import check_number
from .core.errors import ColorizeError, InputError
from .core.modelcheck import CONFIG_RANGES
from .core.modelfile import model_paths
from .core.runtime import default_threads


def check_train_args(args) -> None:
    """Raise :class:`InputError` for an option that could only fail later (or train nonsense)."""
    n = CONFIG_RANGES["width"]
    for name, lo, hi, integer in (("steps", 1, 10**8, True), ("batch_size", 1, 65536, True),
                                  ("lr", 0, 1, False), ("width", n[1], n[2], True), ("size", 16, 1024, True),
                                  ("crop", 16, 1024, True), ("rebalance_lambda", 0, 1, False),
                                  ("seed", 0, 2**32 - 1, True), ("val_every", 1, 10**8, True),
                                  ("val_count", 0, 10**6, True), ("warmup", 0, 10**8, True)):
        check_number("--" + name.replace("_", "-"), getattr(args, name), lo, hi, integer=integer,
                     open_low=name == "lr")
    if args.threads is not None:
        check_number("--threads", args.threads, 1, 1024, integer=True)
    for src in args.data:
        if not Path(src).exists():
            raise InputError(f"No such file or folder: {src}")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda: this torch build or machine has no CUDA GPU; use --device cpu.")
    if args.base:  # a misspelt base fails now, not after the data is read
        from .core.errors import ModelLoadError
        from .core.modelfile import resolve

        try:
            base = resolve(args.base).resolve()
        except ModelLoadError as exc:
            raise InputError(f"--base: {exc}") from None
    if os.environ.get("RANK", "0") != "0":
        return  # only rank 0 writes the model and checkpoints: other nodes may not see those paths
    if args.val and not Path(args.val).exists():  # only rank 0 validates
        raise InputError(f"No such file or folder: {args.val}")
    weights = model_paths(args.out)[0]  # as the save names it
    if args.base and base == weights.resolve():
        raise InputError(f"--out '{args.out}' would replace the --base model; name another output.")
    if weights.exists() and not args.overwrite:
        raise InputError(f"'{weights}' already exists; pass --overwrite to replace it.")
    try:
        weights.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot create the output folder '{weights.parent}': {exc.strerror or exc}.") from None
    for flag in ("checkpoint_dir", "cache_dir"):
        folder = getattr(args, flag)
        if folder is not None and Path(folder).exists() and not Path(folder).is_dir():
            raise InputError(f"--{flag.replace('_', '-')} '{folder}' is a file, not a folder.")
    if args.resume and args.checkpoint_dir is None:
        raise InputError("--resume continues from --checkpoint-dir; name that folder.")


def _resume(trainer, folder) -> bool:
    from safetensors import SafetensorError

    try:
        return trainer.load_checkpoint()
    except (SafetensorError, RuntimeError, KeyError, ValueError, OSError) as exc:
        why = str(exc).splitlines()[0][:200]
        raise ColorizeError(f"Cannot resume from '{folder}': its checkpoint is damaged or belongs to another "
                            f"model ({why}); start a new run in an empty --checkpoint-dir.") from None


# -- train ----------------------------------------------------------------------------------
def cmd_train(args) -> int:
    """Train; under torchrun (``WORLD_SIZE`` > 1) as one of several data-parallel processes."""
    from .core.distributed import init_from_env, shutdown

    check_train_args(args)
    ctx = init_from_env(args.device)
    try:
        return _train(args, ctx)
    finally:
        shutdown(ctx)


def _train(args, ctx) -> int:
    import copy
    import itertools

    import torch

    from .cli import progress_bar
    from .core.data import iter_images, load_array
    from .core.evaluate import evaluate
    from .core.modelfile import load
    from .core.training import TrainConfig, Trainer, new_model

    main_rank = ctx.is_main
    if args.batch_size % ctx.world_size:
        raise ColorizeError(f"--batch-size {args.batch_size} must be a multiple of the {ctx.world_size} processes.")
    # processes on one machine share its cores
    torch.set_num_threads(args.threads or max(1, default_threads() // ctx.local_world_size))
    cache = Path(args.cache_dir) if args.cache_dir else None
    t0 = time.time()
    if not main_rank:
        ctx.barrier()  # rank 0 reads first and fills the cache; the others then read the cache
    try:
        images = load_array([Path(p) for p in args.data], size=args.size, cache_dir=cache)
    except (tarfile.TarError, EOFError) as exc:
        raise ColorizeError(f"Cannot read the training data: a tar is truncated or not a tar file ({exc}).") from None
    if main_rank:
        ctx.barrier()
        print(f"training images: {len(images)} (gray and sepia ones dropped), read in {time.time() - t0:.0f}s",
              file=sys.stderr)
    val = None
    if args.val and main_rank:  # only rank 0 validates
        # photos of any shapes (portrait and landscape); none (--val-count 0): no validation
        try:
            val = [rgb for _, rgb in itertools.islice(iter_images(args.val), args.val_count)] or None
        except (tarfile.TarError, EOFError) as exc:
            raise ColorizeError(f"Cannot read '{args.val}': it is truncated or not a tar file ({exc}).") from None
    if args.base:
        model = copy.deepcopy(load(args.base))
        if args.regression:
            torch.manual_seed(args.seed)
            model.add_regression_head()
    else:
        model = new_model(images, width=args.width, lam=args.rebalance_lambda, seed=args.seed,
                          regression=args.regression)
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      width=model.config["width"], crop=min(args.size, args.crop),
                      val_every=args.val_every, decoder_only=args.decoder_only, device=ctx.device,
                      warmup=args.warmup)

    def validate(m):
        if ctx.device != "cpu":  # inference runs on the CPU: validate a CPU copy
            m = copy.deepcopy(m)
            m.net.to("cpu")
        out = {}
        for n in (0, 10):
            r = evaluate(m, val, n_hints=n, full=False, seed=args.seed)
            out[f"val_psnr_h{n}"] = r["psnr"]
            out["val_psnr_gray"] = r["psnr_gray"]
            out[f"val_colorfulness_ratio_h{n}"] = r["colorfulness_ratio"]
        return out

    trainer = Trainer(model, images, cfg, checkpoint_dir=args.checkpoint_dir,
                      validate=validate if val is not None else None, dist=ctx)
    if main_rank and args.checkpoint_dir is None:
        print("no --checkpoint-dir: an interrupted run cannot be resumed", file=sys.stderr)
    if args.resume and main_rank:
        resumed = _resume(trainer, args.checkpoint_dir)
        print(f"resumed at step {trainer.step}" if resumed else
              f"no checkpoint in '{args.checkpoint_dir}': starting at step 0", file=sys.stderr)
    elif args.resume:
        _resume(trainer, args.checkpoint_dir)
    if ctx.enabled and main_rank:
        print(f"data parallel: {ctx.world_size} processes ({'nccl' if ctx.device != 'cpu' else 'gloo'}), "
              f"{cfg.batch_size // ctx.world_size} crops each per step", file=sys.stderr)
    bar = None
    if main_rank:
        bar = progress_bar(cfg.steps, "train")
        bar.unit = "step"
        bar.update(trainer.step)

    def cb(info):
        bar.update(1)
        bar.set_postfix(loss=f"{info.loss:.3f}", lr=f"{info.lr:.1e}")
        if info.val:
            bar.write(json.dumps({"step": info.step, **info.val}))

    t_start = time.time()
    trainer.run(callback=cb if bar is not None else None)
    if bar is not None:
        bar.close()
    ctx.check_in_sync(model.net)
    if main_rank:
        model.net.to("cpu")
        model.card.update({
            "architecture": f"ColorNet U-Net, width {model.config['width']}, {model.n_parameters()} parameters, "
                            f"{model.bins.shape[0]} ab bins, input (L, hint a, hint b, hint mask)",
            "training": {
                "command": "napari-colorize " + " ".join(sys.argv[1:]) if sys.argv else "",
                "data": [str(p) for p in args.data], "n_images": int(len(images)),
                "steps": trainer.step, "seed": args.seed, "batch_size": cfg.batch_size, "lr": cfg.lr,
                "base": args.base, "rebalance_lambda": args.rebalance_lambda,
                "seconds_this_run": round(time.time() - t_start), "torch": torch.__version__,
                "processes": ctx.world_size,
            },
            "history": trainer.history,
        })
        path = model.save(args.out)
        print(f"saved {path}", file=sys.stderr)
    ctx.barrier()  # no process leaves before the model is saved
    return 0
