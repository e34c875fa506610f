"""Fine-tuning a colorizer on the user's own color images.

The data (tiles, held-out share, batches) is planned by :mod:`.finetune_plan`.

A run keeps the weights with the lowest validation loss (the base model's included), stops
cleanly on ``stop()``, on its step or time budget, or on a non-finite loss, and can resume from
its checkpoint folder.
"""

from __future__ import annotations

import copy
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .arrays import check_number
from .atomic import atomic_write
from .errors import InputError
from .finetune_plan import DEFAULTS, RegionSampler, plan_data, resolve_device, validation_metrics
from .modelfile import Colorizer, load
from .training import StepInfo, TrainConfig, Trainer


# -- the run ----------------------------------------------------------------------------------
@dataclass
class FinetuneSettings:
    """Settings of a fine-tuning run (None: the defaults in :data:`DEFAULTS`)."""

    steps: int | None = None
    seconds: float | None = None
    lr: float | None = None
    batch_size: int | None = None
    crop: int | None = None
    seed: int = 0
    augment: tuple = DEFAULTS["augment"]
    decoder_only: bool = False
    device: str = "auto"
    val_fraction: float = DEFAULTS["val_fraction"]
    max_val_tiles: int = DEFAULTS["max_val_tiles"]
    validations: int = 10  # validations per run, besides the first and the last

    def resolved(self) -> FinetuneSettings:
        s = copy.copy(self)
        if s.steps is None and s.seconds is None:
            s.seconds = DEFAULTS["seconds"]
        for k in ("lr", "batch_size", "crop"):
            if getattr(s, k) is None:
                setattr(s, k, DEFAULTS[k])
        if s.steps is not None:
            s.steps = check_number("steps", s.steps, 1, 10**7, integer=True)
        if s.seconds is not None:
            s.seconds = check_number("seconds", s.seconds, 0, 7 * 24 * 3600, open_low=True)
        s.lr = check_number("lr", s.lr, 0, 1, open_low=True)
        s.batch_size = check_number("batch_size", s.batch_size, 1, 4096, integer=True)
        s.crop = check_number("crop", s.crop, 16, 2048, integer=True)
        s.seed = check_number("seed", s.seed, 0, 2**32 - 1, integer=True)
        s.val_fraction = check_number("val_fraction", s.val_fraction, 0, 0.95)
        s.max_val_tiles = check_number("max_val_tiles", s.max_val_tiles, 1, 10**5, integer=True)
        s.augment = tuple(s.augment)
        return s


class FinetuneRun:
    """A fine-tuning run; iterate :meth:`events` to train, then take :meth:`result`.

    Parameters
    ----------
    images, val_images
        As in :func:`plan_data`.
    model : Colorizer, str or None
        Base model or its name; it is copied, never changed.
    settings : FinetuneSettings
    checkpoint_dir : path, optional
        Checkpoint folder; with ``resume`` the run continues from what is there. ``steps`` then
        counts the steps of the earlier sessions too, ``seconds`` only this session's.
    name : str
        Name of the resulting model.
    """

    def __init__(self, images, *, model=None, val_images=None, settings: FinetuneSettings | None = None,
                 checkpoint_dir=None, resume: bool = False, name: str = "finetuned"):
        self.settings = s = (settings or FinetuneSettings()).resolved()
        base = model if isinstance(model, Colorizer) else load(model)
        if not all(torch.isfinite(v).all() for v in base.net.state_dict().values() if v.is_floating_point()):
            raise InputError(f"The base model '{base.name}' holds NaN or infinite weights; pick another.")
        self.base_name = base.name
        self.name = name
        self.device = resolve_device(s.device)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        state = self._read_state() if resume else {}
        if state.get("decoder_only", s.decoder_only) != s.decoder_only:
            s.decoder_only = bool(state["decoder_only"])  # the optimizer state must match the parameters
            warnings.warn("Resuming keeps the earlier run's choice of what to train.", stacklevel=2)
        self.plan = plan_data(images, val_images=val_images, crop=s.crop, val_fraction=s.val_fraction,
                              max_val_tiles=s.max_val_tiles, seed=s.seed)
        for note in self.plan.warnings:
            warnings.warn(note, stacklevel=2)
        # deepcopy: ``load`` caches the model it returns, which must stay as it is
        self.model = copy.deepcopy(base)
        self.model.name = name
        self.model.net.eval()
        self.before = state.get("before") or validation_metrics(self.model, self.plan.val_tiles, s.seed)
        max_steps = int(s.steps) if s.steps is not None else 10**7
        cfg = TrainConfig(steps=max_steps if s.steps is not None else 10**4, batch_size=int(s.batch_size),
                          lr=float(s.lr), warmup=10 if s.steps is None else max(1, min(10, max_steps // 10)),
                          seed=int(s.seed), width=int(self.model.config.get("width", 24)), crop=self.plan.crop,
                          val_every=10**9, checkpoint_every=10**9, decoder_only=s.decoder_only,
                          seconds=None if s.seconds is None else float(s.seconds), device=self.device)
        self.max_steps = max_steps
        sampler = RegionSampler(self.plan, s.augment, self.model.working_size)
        self.trainer = Trainer(self.model, self.plan.planes, cfg, checkpoint_dir=self.checkpoint_dir,
                               sampler=sampler)
        self.resumed_from = 0
        if resume and self._load_checkpoint():
            self.resumed_from = self.trainer.step
        self.best = {"step": 0, **self.before}
        self._best_state = {k: v.detach().cpu().clone() for k, v in self.model.net.state_dict().items()}
        if state.get("best") and self.checkpoint_dir and (self.checkpoint_dir / "best.safetensors").exists():
            self.best = state["best"]
            self._best_state = load(self.checkpoint_dir / "best.safetensors").net.state_dict()
        start_val = self.before
        if self.resumed_from:
            # the resumed weights compete for best too
            self.model.net.eval()
            start_val = validation_metrics(self.model, self.plan.val_tiles, s.seed)
            self._consider(self.resumed_from, start_val)
        self.curve: list[tuple[int, float]] = []
        self.val_curve: list[tuple[int, dict]] = [(self.resumed_from, start_val)]
        self.stopped = ""
        self.elapsed = 0.0
        self.after: dict = {}

    # -- bookkeeping ----------------------------------------------------------------------------
    def _load_checkpoint(self) -> bool:
        try:
            return self.trainer.load_checkpoint()
        except Exception as exc:  # noqa: BLE001 - any damage to the file means the same to the user
            raise InputError(f"Cannot resume from '{self.checkpoint_dir}': the checkpoint is damaged "
                             f"({type(exc).__name__}); start a new run instead.") from None

    def _read_state(self) -> dict:
        f = self.checkpoint_dir / "finetune.json" if self.checkpoint_dir else None
        if f is None or not f.exists():
            return {}
        try:
            state = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"Cannot resume: '{f}' is damaged ({exc}); start a new run instead.") from None
        if not isinstance(state, dict):
            raise InputError(f"Cannot resume: '{f}' is damaged (not a JSON object); start a new run instead.")
        return state

    def _write_state(self) -> None:
        if self.checkpoint_dir is None:
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        doc = {"base_model": self.base_name, "before": self.before, "best": self.best,
               "decoder_only": self.settings.decoder_only, "step": self.trainer.step}
        atomic_write(self.checkpoint_dir / "finetune.json", lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=2)))

    def _consider(self, step: int, val: dict) -> None:
        if math.isfinite(val["val_loss"]) and val["val_loss"] < self.best["val_loss"]:
            self.best = {"step": int(step), **val}
            self._best_state = {k: v.detach().cpu().clone() for k, v in self.model.net.state_dict().items()}

    def _validate(self) -> dict:
        self.model.net.eval()
        val = validation_metrics(self.model, self.plan.val_tiles, self.settings.seed)
        self.trainer.train_mode()
        step = self.trainer.step
        self._consider(step, val)
        self.val_curve.append((step, val))
        self.trainer.history.append({"step": step, **val})
        return val

    # -- training -------------------------------------------------------------------------------
    def events(self, stop: Callable[[], bool] | None = None) -> Iterator[StepInfo]:
        """Train, yielding a :class:`~.training.StepInfo` per step (``val`` filled when validated).

        Ends on the budget, when ``stop()`` is true or on a non-finite loss; then the best
        weights are put back into the model and the network returns to the CPU.
        """
        tr, cfg, s = self.trainer, self.trainer.cfg, self.settings
        asked = []

        def stopping() -> bool:
            if not asked and stop is not None and stop():
                asked.append(tr.step)
            return bool(asked)

        every = None if s.seconds is not None else max(5, (self.max_steps - tr.step) // max(1, s.validations))
        next_val = tr.step + every if every else None
        last_val = tr.step
        info = None
        start = time.perf_counter()
        try:
            try:
                for info in tr.steps(stopping):
                    if s.seconds is not None:
                        # fit the cosine schedule to the time left, at the pace so far (validations included)
                        pace = info.elapsed / info.done
                        left = s.seconds - info.elapsed
                        cfg.steps = max(tr.step, min(self.max_steps, tr.step + int(left / pace)))
                        if every is None and info.done >= 3:
                            every = max(5, (cfg.steps - self.resumed_from) // max(1, s.validations))
                            next_val = tr.step + every
                        info.total = cfg.steps
                    self.curve.append((info.step, info.loss))
                    if (next_val is not None and tr.step >= next_val and tr.step < cfg.steps) or tr.step == cfg.steps:
                        info.val = self._validate()
                        last_val = tr.step
                        next_val = tr.step + every if every else None
                    yield info
            except FloatingPointError as exc:
                self.stopped = f"stopped: {exc}; the best weights (step {self.best['step']}) were kept"
                warnings.warn(self.stopped, stacklevel=2)
            else:
                if asked:
                    self.stopped = f"stopped at step {tr.step}"
                if last_val != tr.step:  # stopped between validations: the final weights count too
                    val = self._validate()
                    if info is not None:
                        yield StepInfo(tr.step, cfg.steps, info.loss, info.lr, time.perf_counter() - start,
                                       val=val, done=info.done)
                tr.save_checkpoint()  # latest weights and optimizer state, for a resume
        finally:
            self.elapsed += time.perf_counter() - start
            self._finish()

    def _finish(self) -> None:
        """Best weights back into the model, the network back on the CPU, GPU memory freed."""
        self.model.net.load_state_dict(self._best_state)
        self.model.net.to("cpu").eval()
        self.trainer.opt.state.clear()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
        elif self.device == "mps" and hasattr(torch, "mps"):
            torch.mps.empty_cache()
        self.after = {k: self.best[k] for k in ("val_loss", "val_ab_rmse")}
        if self.checkpoint_dir is not None and self.trainer.step > self.resumed_from:
            self.model.save(self.checkpoint_dir / "best")
            self._write_state()

    def preview(self, plane) -> np.ndarray:
        """Colorize a gray (or RGB) plane with the current weights; float32 RGB (H, W, 3)."""
        from .inference import colorize_plane

        net = self.model.net
        was_training = net.training
        net.eval()
        try:
            m = self.model
            if self.device != "cpu":  # inference runs on the CPU: colorize a CPU copy
                m = copy.copy(self.model)
                m.net = copy.deepcopy(net).cpu()
            return colorize_plane(m, np.asarray(plane))
        finally:
            if was_training:
                self.trainer.train_mode()

    def result(self) -> Colorizer:
        """The fine-tuned model (best weights) with its model card filled in."""
        s = self.settings
        m = self.model
        card = {k: v for k, v in m.card.items() if k in ("architecture",)}
        card.update({
            "name": self.name,
            "base_model": self.base_name,
            "finetune": {
                "data": self.plan.summary,
                "settings": {**asdict(s), "crop": self.plan.crop, "device": self.device},
                "steps": self.trainer.step,
                "resumed_from_step": self.resumed_from,
                "best_step": self.best["step"],
                "seconds": round(self.elapsed, 1),
                "stopped": self.stopped or "budget used",
                "notes": self.plan.warnings,
                "torch": torch.__version__,
            },
            "validation": {"before": self.before, "after": self.after},
            "history": self.trainer.history,
        })
        m.card = card
        return m


def finetune(images, *, model=None, steps: int | None = None, seconds: float | None = None,
             lr: float | None = None, batch_size: int | None = None, crop: int | None = None,
             val_images=None, seed: int = 0, callback: Callable[[StepInfo], None] | None = None,
             stop: Callable[[], bool] | None = None, augment=DEFAULTS["augment"], decoder_only: bool = False,
             device: str = "auto", val_fraction: float = DEFAULTS["val_fraction"], name: str = "finetuned",
             checkpoint_dir=None, resume: bool = False) -> Colorizer:
    """Fine-tune a colorizer on color images of the domain it should learn.

    Parameters
    ----------
    images : array, list of arrays or dict name -> array
        RGB images (numpy or dask) of any sizes; each plane of a (..., H, W, 3) stack counts as
        an image. They are read crop by crop and never modified.
    model : Colorizer or str, optional
        Base model or its name (default: the bundled one); it is copied, never changed.
    steps, seconds : optional
        Budget: at most this many steps and/or seconds (default: 120 seconds).
    lr, batch_size, crop : optional
        Learning rate (5e-4), crops per step (16) and crop side in pixels (64).
    val_images : optional
        Validation images; by default ``val_fraction`` of the tiles is held out.
    seed : int
        Seed of the split, the crops and the simulated hints.
    callback : callable, optional
        ``callback(StepInfo)`` after each step; ``info.val`` holds validation figures when
        there are new ones, ``info.eta`` the seconds left.
    stop : callable, optional
        Polled before each step; training ends cleanly once it returns True.
    augment : tuple of str
        Any of ``"flip"``, ``"rotate"``, ``"scale"``.
    decoder_only : bool
        Train only the decoder and head (faster, less prone to forget).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    checkpoint_dir, resume
        Where to keep a checkpoint, and whether to continue from it.

    Returns
    -------
    Colorizer
        The weights with the lowest validation loss; ``card["validation"]`` holds the
        validation loss and ab RMSE before and after. Use ``model.save(path)`` to keep it.
    """
    settings = FinetuneSettings(steps=steps, seconds=seconds, lr=lr, batch_size=batch_size, crop=crop,
                                seed=seed, augment=tuple(augment), decoder_only=decoder_only, device=device,
                                val_fraction=val_fraction)
    run = FinetuneRun(images, model=model, val_images=val_images, settings=settings,
                      checkpoint_dir=checkpoint_dir, resume=resume, name=name)
    for info in run.events(stop):
        if callback is not None:
            callback(info)
    return run.result()
