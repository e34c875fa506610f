"""Fine-tuning job for a thread worker, and the evented status the Fine-tune widget observes.

The job is a plain generator without Qt: it yields event dicts (``kind`` = ``state``, ``start``,
``step``, ``preview``) and returns what it saved. The widget feeds the events into a
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

    ``state`` is one of idle, preparing, training, saving, done, stopped, failed.
    """

    state: str = "idle"
    step: int = 0
    total: int = 0
    loss: float = math.nan
    val_loss: float = math.nan
    val_ab_rmse: float = math.nan
    eta: float = math.nan
    elapsed: float = 0.0
    message: str = ""

    def update(self, event: dict) -> None:
        """Apply one event of :func:`finetune_job`."""
        kind = event.get("kind")
        if kind == "state":
            self.message = event.get("message", self.message)
            self.state = event["state"]
        elif kind == "start":
            self.total = event["total"]
            self.step = event["step"]
            first = event["val_curve"][-1][1]
            self.val_loss, self.val_ab_rmse = first["val_loss"], first["val_ab_rmse"]
            self.state = "training"
        elif kind == "step":
            if event.get("val"):
                self.val_loss = event["val"]["val_loss"]
                self.val_ab_rmse = event["val"]["val_ab_rmse"]
            self.loss, self.eta, self.elapsed = event["loss"], event["eta"], event["elapsed"]
            self.total = event["total"]
            self.step = event["step"]  # last: observers of ``step`` see the other fields current

    def describe(self) -> str:
        """One line for a status label."""
        if self.state != "training":
            return self.message or self.state
        eta = "" if not math.isfinite(self.eta) else f", about {_duration(self.eta)} left"
        val = "" if not math.isfinite(self.val_loss) else (
            f", validation loss {self.val_loss:.3f} (ab error {self.val_ab_rmse:.1f})")
        return f"step {self.step} / {self.total}: loss {self.loss:.3f}{val}{eta}"


def _duration(s: float) -> str:
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
    """Fine-tune, yielding progress events; saves the model at ``target`` and returns a summary.

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
        and once more with the final ones (``preview`` events carry it and its subsampling).
    stop : callable, optional
        Training ends cleanly, and the best weights are saved, once it returns True.

    Returns
    -------
    dict or None
        ``name``, ``path``, ``card`` and ``stopped`` of the saved model; None when stopped
        before a single step (nothing to save).
    """
    yield {"kind": "state", "state": "preparing",
           "message": "reading the data and measuring the base model..."}
    if folder is not None:
        images = {**images, **folder_images(folder)}
    run = FinetuneRun(images, model=model, val_images=val_images, settings=settings,
                      checkpoint_dir=checkpoint_dir, resume=resume, name=name)
    yield {"kind": "start", "step": run.trainer.step, "total": run.trainer.cfg.steps,
           "val_curve": run.val_curve, "summary": run.plan.summary, "before": run.before}
    plane, factor = preview_plane(preview) if preview is not None else (None, 1)
    last = time.perf_counter()
    # closing: if the worker is aborted here, the run still restores weights and frees the GPU
    with contextlib.closing(run.events(stop)) as events:
        for info in events:
            yield {"kind": "step", "step": info.step, "total": info.total, "loss": info.loss, "lr": info.lr,
                   "eta": info.eta, "elapsed": info.elapsed, "val": info.val}
            if plane is not None and time.perf_counter() - last >= preview_every:
                yield {"kind": "preview", "image": run.preview(plane), "factor": factor, "step": info.step}
                last = time.perf_counter()
    if run.trainer.step == run.resumed_from:
        yield {"kind": "state", "state": "stopped", "message": "stopped before the first step: nothing saved"}
        return None
    yield {"kind": "state", "state": "saving", "message": f"saving '{name}'..."}
    result = run.result()
    path = result.save(Path(target))  # atomic: a crash leaves the old file or none, never half of one
    if plane is not None:
        yield {"kind": "preview", "image": run.preview(plane), "factor": factor, "step": run.trainer.step}
    return {"name": name, "path": path, "card": result.card, "stopped": run.stopped,
            "checkpoint_dir": checkpoint_dir}
