"""Qt-free job generators run by the docks' thread workers.

Each yields progress dicts ``{"done", "total"}`` and returns its result, so a worker can report
progress and be stopped between planes (or rows of tiles) without any Qt here.
"""

from __future__ import annotations

import numpy as np

from ..api import iter_colorize
from ..core.errors import InputError
from ..core.gen import drain
from ..core.inspect import feature_maps, suggest_colors, uncertainty
from ..core.metrics import ab_histogram, report_planes, summarize


def lazy_job(data, model, temperature=None):
    """The global pass of a lazy multiscale result: ``(levels, level used)``."""
    from .lazy import lazy_multiscale

    yield {"done": 0, "total": 1}
    out = lazy_multiscale(data, model, temperature=temperature)
    yield {"done": 1, "total": 1}
    return out


def colorize_job(data, *, rgb: bool, points=None, colors=None, model=None, temperature=None, mode="auto",
                 temporal=False, reference=None, reference_strength=0.5):
    """Colorize ``data`` step by step; dask data returns a lazy result at once."""
    yield {"done": 0, "total": 1}
    steps = iter_colorize(data, points=points, colors=colors, model=model, temperature=temperature, rgb=rgb,
                          mode=mode, temporal=temporal, reference=reference,
                          reference_strength=reference_strength)
    while True:
        try:
            done, total = next(steps)
        except StopIteration as stop:
            out = stop.value
            break
        yield {"done": done, "total": total}
    yield {"done": 1, "total": 1}  # a lazy result too: its global pass is done
    return out


def preview_job(data, *, rgb: bool, model=None, temperature=None, points=None, colors=None, reference=None,
                reference_strength=0.5):
    """Colorize a small field-of-view crop in one quick whole-image pass."""
    yield {"done": 0, "total": 1}
    out = drain(iter_colorize(data, points=points, colors=colors, model=model, temperature=temperature,
                              rgb=rgb, mode="whole", reference=reference, reference_strength=reference_strength))
    yield {"done": 1, "total": 1}
    return out



def inspect_job(what: str, model, plane, *, points=None, colors=None, stage: str = "enc4", row=None, col=None,
                k: int = 8):
    """Feature maps (``what="maps"``), uncertainty or suggested colors of one plane."""
    yield {"done": 0, "total": 1}
    if what == "maps":
        out = feature_maps(model, plane, stage, points, colors)
    elif what == "uncertainty":
        out = uncertainty(model, plane, points, colors)
    else:
        out = suggest_colors(model, plane, row, col, k, points, colors)
    yield {"done": 1, "total": 1}
    return out


def metrics_job(items: list, reference):
    """Quality figures of RGB arrays, one plane at a time; yields ``{"done", "total"}`` planes.

    ``items`` are (name, RGB array) pairs, ``reference`` one such pair or None. Each array's
    figures are computed against the reference; one whose data cannot be measured gets its
    InputError message instead, so the others still show.
    """
    ref_name, ref = reference if reference is not None else (None, None)
    todo = [(name, data, ref) for name, data in items]
    if ref is not None:
        todo.append((ref_name, ref, None))
    total = sum(int(np.prod(data.shape[:-3], dtype=int)) for _, data, _ in todo)
    done = 0
    results: dict = {"layers": {}, "reference": None, "reference_name": ref_name, "hist": {}, "errors": []}
    for i, (name, data, against) in enumerate(todo):
        is_ref = ref is not None and i == len(todo) - 1
        try:
            lead, planes = report_planes(data, against)
            rows = []
            for _, row in planes:
                rows.append(row)
                done += 1
                yield {"done": done, "total": total}
            figures = summarize(lead, rows)
            results["hist"][name] = ab_histogram(data)
        except InputError as exc:
            msg = f"'{name}': {exc}"
            if msg not in results["errors"]:
                results["errors"].append(msg)
            figures = None
        if is_ref:
            results["reference"] = figures
        else:
            results["layers"][name] = figures
    return results
