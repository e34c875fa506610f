"""Fine-tuning a colorizer on the user's own color images.

The data (tiles, held-out share, batches) and the step budget are planned by :mod:`.finetune_plan`.

One figure runs through a run: the ab RMSE of the network's hint-free colors on held-out
tiles. It is what the progress shows and plots, and the weights kept are those of the step
where it was lowest (the base model's included). A run that never beats the base says so
(:attr:`FinetuneRun.improved`) rather than passing off the base weights as a new model. A run
stops cleanly on ``stop()``, on its step or time budget, or on a non-finite loss, and can
resume from its checkpoint folder.
"""

from __future__ import annotations

import copy
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write
from .errors import InputError
from .finetune_plan import DEFAULTS, RegionSampler, plan_data, resolve_device, validation_metrics
from .finetune_settings import FinetuneSettings, StepBudget
from .modelfile import Colorizer, load
from .training import StepInfo, TrainConfig, Trainer


def _state(model: Colorizer) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.net.state_dict().items()}


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
        if resume and self.checkpoint_dir is None:
            raise InputError("resume continues from checkpoint_dir; name that folder.")
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
        self.val_seconds: list[float] = []
        before = state.get("before") or {}
        self.before = before if "val_ab_rmse" in before else self._measure()
        warmup = 10 if s.steps is None else max(1, min(10, int(s.steps) // 10))
        cfg = TrainConfig(steps=int(s.steps or 10**7), batch_size=int(s.batch_size), lr=float(s.lr),
                          warmup=warmup, seed=int(s.seed), width=int(self.model.config.get("width", 24)),
                          crop=self.plan.crop, val_every=10**9, checkpoint_every=10**9,
                          decoder_only=s.decoder_only, device=self.device, batchnorm=s.batchnorm)
        sampler = RegionSampler(self.plan, s.augment, self.model.working_size)
        self.trainer = Trainer(self.model, self.plan.planes, cfg, checkpoint_dir=self.checkpoint_dir,
                               sampler=sampler)
        self.resumed_from = 0
        if resume and self._load_checkpoint():
            self.resumed_from = self.trainer.step
        self.budget = StepBudget(s.steps, s.seconds, start=self.resumed_from)
        self.best = {"step": 0, **self.before}
        self._best_state = _state(self.model)
        self._last_state: dict | None = None
        if state.get("best") and self.checkpoint_dir and (self.checkpoint_dir / "best.safetensors").exists():
            self.best = state["best"]
            self._best_state = load(self.checkpoint_dir / "best.safetensors").net.state_dict()
        start_val = self.before
        if self.resumed_from:
            start_val = self._measure()  # the resumed weights compete for best too
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

    def _measure(self) -> dict:
        """Held-out figures of the current weights (network left in eval mode)."""
        t0 = time.perf_counter()
        self.model.net.eval()
        val = validation_metrics(self.model, self.plan.val_tiles, self.settings.seed)
        self.val_seconds.append(time.perf_counter() - t0)
        return val

    def _consider(self, step: int, val: dict) -> None:
        err = val["val_ab_rmse"]
        if math.isfinite(err) and err < self.best["val_ab_rmse"]:
            self.best = {"step": int(step), **val}
            self._best_state = _state(self.model)

    def _validate(self) -> dict:
        val = self._measure()
        self.trainer.train_mode()
        step = self.trainer.step
        self._consider(step, val)
        self.val_curve.append((step, val))
        self.trainer.history.append({"step": step, **val})
        return val

    @property
    def improved(self) -> bool:
        """Whether some step beat the base model's held-out error."""
        return self.best["val_ab_rmse"] < self.before["val_ab_rmse"]

    def verdict(self) -> str:
        """One line: held-out error before -> after, or why nothing was gained."""
        b, a = self.before["val_ab_rmse"], self.best["val_ab_rmse"]
        if self.improved:
            return (f"held-out ab error {b:.1f} -> {a:.1f} ({100 * (a - b) / b:+.0f}%), best at step "
                    f"{self.best['step']} of {self.trainer.step}")
        if self.settings.lr == 0:
            why = "the learning rate is 0, so the weights could not change"
        elif self.trainer.step == self.resumed_from:
            why = "it stopped before the first step"
        else:
            tried = [v["val_ab_rmse"] for st, v in self.val_curve if st > self.resumed_from]
            why = (f"the best step reached {min(tried):.1f}; train longer, lower the learning rate or "
                   "add images" if tried else "it stopped before the first validation")
        return f"no step beat the base model's held-out ab error of {b:.1f}: {why}"

    # -- training -------------------------------------------------------------------------------
    def events(self, stop: Callable[[], bool] | None = None) -> Iterator[StepInfo]:
        """Train, yielding a :class:`~.training.StepInfo` per step (``val`` filled when validated).

        Ends on the budget, when ``stop()`` is true (before the next step) or on a non-finite
        loss. The last weights are validated too (and that figure yielded), then those of the
        lowest error shown are put back into the model and the network returns to the CPU.
        """
        tr, cfg, s, budget = self.trainer, self.trainer.cfg, self.settings, self.budget
        asked = []

        def stopping() -> bool:
            if not asked and stop is not None and stop():
                asked.append(tr.step)
            return bool(asked)

        cfg.seconds = budget.time_limit
        if budget.total is not None:
            cfg.steps = budget.total
        done_vals = len(self.val_seconds)
        every = next_val = None
        info = None
        start = time.perf_counter()
        try:
            try:
                for info in tr.steps(stopping):
                    spent = sum(self.val_seconds[done_vals:])
                    left = max(1, s.validations + 1 - (len(self.val_seconds) - done_vals))
                    cost = float(np.mean(self.val_seconds)) if self.val_seconds else 0.0
                    cfg.steps = info.total = budget.update(tr.step, info.elapsed, spent, left * cost)
                    if every is None and budget.settled:
                        every = max(1, (budget.total - self.resumed_from) // (s.validations + 1))
                        next_val = self.resumed_from + every
                    self.curve.append((info.step, info.loss))
                    if tr.step >= cfg.steps or (next_val is not None and tr.step >= next_val):
                        info.val = self._validate()
                        next_val = tr.step + every if every else None
                    info.eta = budget.eta(tr.step, info.elapsed)
                    yield info
            except FloatingPointError as exc:
                self.stopped = f"stopped: {exc}; the best weights (step {self.best['step']}) were kept"
                warnings.warn(self.stopped, stacklevel=2)
            else:
                if asked:
                    self.stopped = f"stopped at step {tr.step}"
                elif tr.step < cfg.steps:
                    self.stopped = f"time budget used after {tr.step} steps"
                if self.val_curve[-1][0] != tr.step:
                    val = self._validate()  # ended between validations: the last weights count too
                    if info is not None:
                        yield StepInfo(tr.step, cfg.steps, info.loss, info.lr, time.perf_counter() - start,
                                       val=val, done=info.done, _eta=0.0)
                tr.save_checkpoint()  # latest weights and optimizer state, for a resume
        finally:
            self.elapsed += time.perf_counter() - start
            self._finish()

    def _finish(self) -> None:
        """Best weights back into the model, the network back on the CPU, GPU memory freed."""
        self._last_state = _state(self.model)
        self.model.net.load_state_dict(self._best_state)
        self.model.net.to("cpu").eval()
        self.trainer.opt.state.clear()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
        elif self.device == "mps" and hasattr(torch, "mps"):
            torch.mps.empty_cache()
        self.after = {"val_ab_rmse": self.best["val_ab_rmse"]}
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

    def result(self, weights: str = "best") -> Colorizer:
        """The fine-tuned model with its model card filled in.

        ``weights`` is ``"best"`` (those of the lowest held-out error) or ``"last"`` (those of
        the last step, e.g. to keep a run that did not beat the base model anyway).
        """
        s = self.settings
        m = self.model
        if weights == "last":
            m = copy.deepcopy(self.model)
            if self._last_state is not None:
                m.net.load_state_dict(self._last_state)
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
                "weights": "best" if weights == "best" else f"last (step {self.trainer.step})",
                "improved": self.improved,
                "verdict": self.verdict(),
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
        Learning rate, crops per step and crop side in pixels (see :data:`DEFAULTS`).
    val_images : optional
        Validation images; by default ``val_fraction`` of each image's tiles is held out.
    seed : int
        Seed of the split, the crops and the simulated hints.
    callback, stop : callable, optional
        ``callback(StepInfo)`` after each step (``info.val`` holds the held-out figures when
        there are new ones, ``info.eta`` the seconds left); ``stop()`` is polled before each
        step and ends training cleanly once it returns True.
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
        The weights with the lowest held-out ab RMSE; ``card["validation"]`` holds it before
        and after, ``card["finetune"]["improved"]`` whether any step beat the base model (if
        none did, a warning says so and the weights are the base model's).
    """
    settings = FinetuneSettings(steps=steps, seconds=seconds, lr=lr, batch_size=batch_size, crop=crop,
                                seed=seed, augment=tuple(augment), decoder_only=decoder_only, device=device,
                                val_fraction=val_fraction)
    run = FinetuneRun(images, model=model, val_images=val_images, settings=settings,
                      checkpoint_dir=checkpoint_dir, resume=resume, name=name)
    for info in run.events(stop):
        if callback is not None:
            callback(info)
    if not run.improved:
        warnings.warn(run.verdict(), stacklevel=2)
    return run.result()
