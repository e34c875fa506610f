"""Settings of a fine-tuning run, and its step budget: how many steps a time budget buys.

A progress bar whose total jumps reads as a broken promise, so :class:`StepBudget` settles the
total early and then moves it only a little; it is pure arithmetic on the step and the clock,
testable with a recorded sequence of timings.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from .arrays import check_number
from .errors import InputError
from .finetune_plan import DEFAULTS


# -- settings ----------------------------------------------------------------------------------
@dataclass
class FinetuneSettings:
    """Settings of a fine-tuning run (None: the defaults in :data:`DEFAULTS`).

    ``batchnorm`` is ``"frozen"`` (BatchNorm keeps the base model's statistics; measured, this
    is what keeps the held-out error from rising over the first steps on small batches) or
    ``"batch"`` (statistics of each batch, as in training from scratch).
    """

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
    batchnorm: str = "frozen"

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
        s.lr = check_number("lr", s.lr, 0, 1)  # 0 is allowed: a run that measures without learning
        s.batch_size = check_number("batch_size", s.batch_size, 1, 4096, integer=True)
        s.crop = check_number("crop", s.crop, 16, 2048, integer=True)
        s.seed = check_number("seed", s.seed, 0, 2**32 - 1, integer=True)
        s.val_fraction = check_number("val_fraction", s.val_fraction, 0, 0.95)
        s.max_val_tiles = check_number("max_val_tiles", s.max_val_tiles, 1, 10**5, integer=True)
        s.validations = check_number("validations", s.validations, 1, 1000, integer=True)
        if s.batchnorm not in ("frozen", "batch"):
            raise InputError(f"Unknown batchnorm mode '{s.batchnorm}'; use 'frozen' or 'batch'.")
        s.augment = tuple(s.augment)
        return s


class StepBudget:
    """The step total of a run with a budget of steps or of seconds, and its time left.

    A time budget is turned into steps at the pace of the run: an estimate until a tenth of
    the time (``SETTLE``) has passed, then settled. From there the total follows the pace only
    within ``SWAY`` (10%) of the settled value, so the progress bar never jumps, and the run
    ends at the total or, on a machine that slowed down by more than that, when the time is up
    (the time asked for is kept as a promise too).
    The first step is left out of the pace: it pays for warming up.

    Parameters
    ----------
    steps : int, optional
        Step budget (counting from 0, including resumed steps); with ``seconds`` a cap.
    seconds : float, optional
        Time budget of this session.
    start : int
        Step the session starts at (a resumed run's).
    """

    SETTLE = 0.1
    SWAY = 0.1
    MIN_STEPS = 3  # steps before the total can settle, however short the budget

    def __init__(self, steps: int | None = None, seconds: float | None = None, start: int = 0):
        self.cap = int(steps) if steps is not None else None
        self.seconds = seconds
        self.start = int(start)
        self.total = self.cap if seconds is None else None
        self.settled = seconds is None
        self.settled_total: int | None = self.total
        self._first: float | None = None  # elapsed time at the first step
        self.pace = math.nan
        self.reserve = 0.0

    @property
    def time_limit(self) -> float | None:
        """Seconds after which the session ends whatever the step count (None: no limit)."""
        return self.seconds

    def update(self, step: int, elapsed: float, spent: float = 0.0, reserve: float = 0.0) -> int:
        """The total after ``step`` was reached ``elapsed`` seconds into the session.

        ``spent`` seconds of that went to other work than steps (validations), and ``reserve``
        seconds of the time left are kept for more of it.
        """
        done = step - self.start
        if done <= 1:
            self._first = elapsed - spent
            self.pace = elapsed - spent
        else:
            self.pace = (elapsed - spent - self._first) / (done - 1)
        self.reserve = reserve
        if self.seconds is None:
            return self.total
        raw = step + int(max(0.0, self.seconds - elapsed - reserve) / max(self.pace, 1e-9))
        if self.cap is not None:
            raw = min(raw, self.cap)
        if not self.settled:
            self.total = max(step, raw)
            if elapsed >= self.SETTLE * self.seconds and done >= self.MIN_STEPS:
                self.settled, self.settled_total = True, self.total
            return self.total
        lo = math.ceil(self.settled_total * (1 - self.SWAY))
        hi = int(self.settled_total * (1 + self.SWAY))
        # follow the pace in steps of a few percent: a total that flickers reads as noise
        if abs(raw - self.total) > 0.03 * self.settled_total:
            self.total = max(step, min(hi, max(lo, raw)))
        return self.total

    def eta(self, step: int, elapsed: float) -> float:
        """Seconds left at the current pace."""
        if not math.isfinite(self.pace) or self.total is None:
            return math.nan
        if step >= self.total:
            return 0.0
        left = max(0, self.total - step) * self.pace + self.reserve
        limit = self.time_limit
        return left if limit is None else max(0.0, min(left, limit - elapsed))
