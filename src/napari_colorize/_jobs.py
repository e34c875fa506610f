"""Qt-free job generators run by the widgets' thread workers.

Each yields progress dicts ``{"done", "total"}`` and returns its result, so a worker can report
progress and be stopped between planes (or rows of tiles) without any Qt here.
"""

from __future__ import annotations

from .api import iter_colorize
from .core._gen import drain
from .core.arrays import is_dask


def colorize_job(data, *, rgb: bool, points=None, colors=None, model=None, temperature=None, mode="auto",
                 temporal=False):
    """Colorize ``data`` step by step; dask data returns a lazy result at once."""
    yield {"done": 0, "total": 1}
    steps = iter_colorize(data, points=points, colors=colors, model=model, temperature=temperature, rgb=rgb,
                          mode=mode, temporal=temporal)
    while True:
        try:
            done, total = next(steps)
        except StopIteration as stop:
            out = stop.value
            break
        yield {"done": done, "total": total}
    if is_dask(out):
        return out
    yield {"done": 1, "total": 1}
    return out


def preview_job(data, *, rgb: bool, model=None, temperature=None, points=None, colors=None):
    """Colorize a small field-of-view crop in one quick whole-image pass."""
    yield {"done": 0, "total": 1}
    out = drain(iter_colorize(data, points=points, colors=colors, model=model, temperature=temperature,
                              rgb=rgb, mode="whole"))
    yield {"done": 1, "total": 1}
    return out

