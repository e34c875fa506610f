"""Qt-free job generators run by the widgets' thread workers.

Each yields progress dicts ``{"done", "total"}`` and returns its result, so a worker can report
progress and be stopped between planes without any Qt here.
"""

from __future__ import annotations

import numpy as np

from .api import _is_dask, colorize


def colorize_job(data, *, rgb: bool, points=None, colors=None, model=None, temperature=None):
    """Colorize ``data`` plane by plane; dask data returns a lazy result at once."""
    if _is_dask(data):
        yield {"done": 0, "total": 1}
        return colorize(data, points=points, colors=colors, model=model, temperature=temperature, rgb=rgb)
    lead = data.shape[:-3] if rgb else data.shape[:-2]
    if not lead:
        yield {"done": 0, "total": 1}
        out = colorize(data, points=points, colors=colors, model=model, temperature=temperature, rgb=rgb)
        yield {"done": 1, "total": 1}
        return out
    # plane by plane so that Stop takes effect between planes
    pts = None if points is None or len(points) == 0 else np.asarray(points, dtype=float)
    total = int(np.prod(lead))
    out = None
    for k, idx in enumerate(np.ndindex(*lead)):
        p = c = None
        if pts is not None:
            if pts.shape[1] == 2:
                p, c = pts, colors
            else:
                sel = (np.rint(pts[:, :-2]).astype(int) == np.asarray(idx)).all(axis=1)
                p, c = pts[sel, -2:], np.asarray(colors)[sel]
        plane = colorize(np.asarray(data[idx]), points=p, colors=c, model=model,
                         temperature=temperature, rgb=rgb)
        if out is None:
            out = np.empty(lead + plane.shape, np.float32)
        out[idx] = plane
        yield {"done": k + 1, "total": total}
    return out
