"""Thread workers whose errors reach only the widget's handler, as one clear message."""

from __future__ import annotations

import contextlib


def make_worker(func, *args, errored, **kwargs):
    """An unstarted napari thread worker for ``func`` whose errors go to ``errored`` alone.

    Without an ``errored`` connection at creation superqt re-raises a worker's exception in the
    main thread, and napari's worker also relays it as a traceback notification; a user error
    (:class:`~napari_colorize.core.errors.InputError`) should be one plain message instead.
    """
    from napari.qt.threading import create_worker

    worker = create_worker(func, *args, _start_thread=False, _connect={"errored": errored}, **kwargs)
    relay = getattr(worker, "_relay_error", None)
    if relay is not None:
        with contextlib.suppress(TypeError, RuntimeError):
            worker.errored.disconnect(relay)
    return worker
