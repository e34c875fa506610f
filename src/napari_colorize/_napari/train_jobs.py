"""Fine-tuning job for a thread worker, and the evented status the Fine-tune widget observes.

The job is a plain generator without Qt: it yields event dicts (``kind`` = ``state``, ``start``,
``step``, ``end``, ``preview``) and returns what it saved. The widget feeds the events into a
:class:`FinetuneStatus` in the main thread and redraws from its signals.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from psygnal import evented

from ..core.finetune import FinetuneRun, FinetuneSettings

PREVIEW_SIDE = 1024  # longest side of the preview: the preview must stay cheap beside training
MAX_FOLDER_IMAGES = 200


@evented
@dataclass
class FinetuneStatus:
    """Where a fine-tuning run stands; every field change emits ``status.events.<field>``.

    ``state`` is one of idle, preparing, training, saving, done, stopped, failed. The error is
    the held-out ab RMSE, the one figure a run shows and keeps its best weights by.
    """

    state: str = "idle"
    step: int = 0
    total: int = 0
    settled: bool = False  # whether ``total`` is final (a time budget estimates it at first)
    loss: float = math.nan
    error: float = math.nan
    error_step: int = 0  # step ``error`` was measured at: validations are a few steps apart
    before: float = math.nan
    best: float = math.nan
    best_step: int = 0
    eta: float = math.nan
    elapsed: float = 0.0
    message: str = ""
    stopping: bool = False  # Stop was pressed: step reports keep ``message`` (the stopping notice)

    def update(self, event: dict) -> None:
        """Apply one event of :func:`finetune_job`."""
        kind = event.get("kind")
        if kind == "state":
            self.message = event.get("message", self.message)
            self.state = event["state"]
        elif kind == "start":
            self.total, self.settled = event["total"], event["settled"]
            self.step = event["step"]
            self.before = event["before"]["val_ab_rmse"]
            self.error_step, last = event["val_curve"][-1]
            self.error = last["val_ab_rmse"]
            self.best, self.best_step = event["best"]["val_ab_rmse"], event["best"]["step"]
            self.state = "training"
        elif kind == "step":
            if event.get("val"):
                self.error, self.error_step = event["val"]["val_ab_rmse"], event["step"]
            self.best, self.best_step = event["best"]["val_ab_rmse"], event["best"]["step"]
            self.loss, self.eta, self.elapsed = event["loss"], event["eta"], event["elapsed"]
            self.total, self.settled = event["total"], event["settled"]
            self.step = event["step"]  # last: observers of ``step`` see the other fields current
        elif kind == "end" and event["ended"] == "budget":
            # the budget is spent: a time budget's estimated total becomes the steps it allowed
            self.total, self.settled = event["step"], True

    def describe(self) -> str:
        """One line for a status label."""
        if self.state != "training" or self.stopping:
            return self.message or self.state
        # a time budget's total is an estimate until it settles, early in the run
        total = "" if not self.total else f" / {self.total}" if self.settled else f" / ~{self.total}"
        eta = "" if not math.isfinite(self.eta) else f"; about {duration(self.eta)} left"
        err = ""
        if math.isfinite(self.error):
            # between validations the figure is an older one: say which step it is from
            at = "" if self.error_step == self.step else f" at step {self.error_step}"
            err = f": held-out ab error {self.error:.1f}{at}"
            if self.best_step > 0 and self.best < self.before:
                err += f", best {self.best:.1f} at step {self.best_step} (base {self.before:.1f})"
            elif self.error_step == 0:
                err += " (base model)"
            else:
                err += f" (base {self.before:.1f}, not beaten yet)"
        return f"step {self.step}{total}{err}{eta}"


def duration(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def preview_plane(plane) -> tuple[np.ndarray, int]:
    """A 2D (or RGB) plane read into memory, subsampled to at most :data:`PREVIEW_SIDE` pixels."""
    h, w = plane.shape[:2]
    f = max(1, math.ceil(max(h, w) / PREVIEW_SIDE))
    return np.asarray(plane[::f, ::f]), f


def folder_images(folder) -> dict:
    """Color photos of a folder (or tar), at most :data:`MAX_FOLDER_IMAGES`, by file name."""
    import warnings

    from ..core.data import iter_images
    from ..core.errors import InputError

    out = {}
    for name, rgb in iter_images(folder):
        if len(out) >= MAX_FOLDER_IMAGES:
            warnings.warn(f"Only the first {MAX_FOLDER_IMAGES} images of {folder} are used.", stacklevel=2)
            break
        out[f"{Path(str(folder)).name}/{name}"] = rgb
    if not out:
        raise InputError(f"No readable images in {folder}.")
    return out


def finetune_job(images, *, name: str, target, settings: FinetuneSettings, model=None, val_images=None,
                 folder=None, checkpoint_dir=None, resume: bool = False, preview=None,
                 preview_every: float = 10.0, stop=None):
    """Fine-tune, yielding progress events; saves the model at ``target`` if it beat the base.

    Parameters
    ----------
    images, val_images, model, settings, checkpoint_dir, resume
        As for :class:`~.core.finetune.FinetuneRun`.
    folder : path, optional
        A folder or tar of color photos to train on as well (read here, in the worker).
    name : str
        Model name; ``target`` the path (without suffix) to save it at.
    preview : array, optional
        A gray or RGB plane colorized with the current weights every ``preview_every`` seconds
        and once more with the kept ones (``preview`` events carry it and its subsampling).
    stop : callable, optional
        Training ends cleanly, and the best weights are saved, once it returns True.

    Returns
    -------
    dict or None
        ``name``, ``saved``, ``verdict``, ``steps``, ``stopped``, ``ended`` (``budget``, ``stopped``
        or ``failed``), and ``path`` and ``card`` of
        the saved model; when no step beat the base model nothing is saved and ``unsaved`` holds
        the last weights, for the user to keep anyway. None when stopped before a single step.
    """
    yield {"kind": "state", "state": "preparing",
           "message": "reading the data and measuring the base model..."}
    if folder is not None:
        images = {**images, **folder_images(folder)}
    run = FinetuneRun(images, model=model, val_images=val_images, settings=settings,
                      checkpoint_dir=checkpoint_dir, resume=resume, name=name)
    budget = run.budget
    yield {"kind": "start", "step": run.trainer.step, "total": budget.total or 0, "settled": budget.settled,
           "val_curve": run.val_curve, "summary": run.plan.summary, "before": run.before, "best": run.best}
    plane, factor = preview_plane(preview) if preview is not None else (None, 1)
    last = time.perf_counter()
    asked: list[bool] = []  # whether the run saw the stop request (one after the last step is moot)

    def stopping() -> bool:
        if stop is not None and stop():
            asked.append(True)
        return bool(asked)

    # closing: if the worker is aborted here, the run still restores weights and frees the GPU
    with contextlib.closing(run.events(stopping)) as events:
        for info in events:
            yield {"kind": "step", "step": info.step, "total": info.total, "settled": budget.settled,
                   "loss": info.loss, "lr": info.lr, "eta": info.eta, "elapsed": info.elapsed,
                   "val": info.val, "best": dict(run.best)}
            if plane is not None and time.perf_counter() - last >= preview_every:
                yield {"kind": "preview", "image": run.preview(plane), "factor": factor, "step": info.step}
                last = time.perf_counter()
    # the run's ``stopped`` is empty when its steps are done and names a time budget used up;
    # any other text is a loss that went non-finite
    budget = not run.stopped or run.stopped.startswith("time budget")
    ended = "stopped" if asked else "budget" if budget else "failed"
    yield {"kind": "end", "ended": ended, "step": run.trainer.step}
    if run.trainer.step == run.resumed_from:
        yield {"kind": "state", "state": "stopped", "message": "stopped before the first step: nothing saved"}
        return None
    out = {"name": name, "saved": run.improved, "verdict": run.verdict(), "steps": run.trainer.step,
           "seconds": run.elapsed, "stopped": run.stopped, "ended": ended, "checkpoint_dir": checkpoint_dir}
    if not run.improved:  # a copy of the base under a new name would only mislead
        out["unsaved"] = run.result("last")
        return out
    yield {"kind": "state", "state": "saving", "message": f"saving '{name}'..."}
    result = run.result()
    out["path"] = result.save(Path(target))  # atomic: a crash leaves the old file or none, never half
    out["card"] = result.card
    if plane is not None:
        yield {"kind": "preview", "image": run.preview(plane), "factor": factor, "step": run.trainer.step}
    return out
