"""The one base class of the plugin's docks: a scrolling form, layer pickers, a worker, a status line.

A dock collects arguments, runs a core generator in a napari thread worker and publishes the
result; everything around that (Run and Stop, progress, a pending re-run, errors as one-line
notifications, the plane at the viewer's position, pickers that preselect a layer) lives here once.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable

from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton
from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QFrame, QScrollArea

from ..core.errors import ColorizeError
from .layers import current_plane, layer_choices, preferred_layer

log = logging.getLogger(__name__)


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


class _Relayed(Exception):
    """Carries a job's RuntimeError through the worker (superqt drops those as a deleted Qt object's)."""


def _relaying(job):
    """``job`` with its RuntimeErrors wrapped in :class:`_Relayed`; a generator stays a generator."""
    if inspect.isgeneratorfunction(job):
        @functools.wraps(job)
        def gen(*args, **kwargs):
            try:
                return (yield from job(*args, **kwargs))
            except RuntimeError as exc:  # torch reports out-of-memory and device errors as these
                raise _Relayed() from exc

        return gen

    @functools.wraps(job)
    def func(*args, **kwargs):
        try:
            return job(*args, **kwargs)
        except RuntimeError as exc:
            raise _Relayed() from exc

    return func


def one_line(msg: str) -> str:
    """A message on one line, for a notification (the status line keeps the full text)."""
    return "; ".join(part.strip() for part in str(msg).splitlines() if part.strip())


def status_label() -> Label:
    """A label that wraps long text onto more lines instead of widening the dock or clipping."""
    from qtpy.QtWidgets import QSizePolicy

    label = Label(value="")
    label.native.setWordWrap(True)
    # Ignored width: the dock's width decides and the text wraps; Minimum height: it grows with it
    label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
    label.native.setMinimumWidth(60)
    return label


class FormScroll(QScrollArea):
    """A vertical scroll area as wide as its form needs and as tall as the window allows.

    Its size hint is the form's, so a dock opens at its natural size; its minimum height is
    small, so napari can shrink a tall dock to the window and the form scrolls instead.
    """

    MIN_HEIGHT = 120

    def __init__(self, form):
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(form)

    def _bar(self) -> int:
        return self.verticalScrollBar().sizeHint().width()

    def sizeHint(self) -> QSize:
        hint = self.widget().sizeHint()
        return QSize(hint.width() + self._bar(), hint.height())

    def minimumSizeHint(self) -> QSize:
        return QSize(self.widget().minimumSizeHint().width() + self._bar(), self.MIN_HEIGHT)


class Dock(Container):
    """Base of every dock of the plugin.

    The controls go into :attr:`body`, a labelled form inside a scroll area, so a dock never asks
    for more height than the window has. Subclasses add their controls with :meth:`add`, make
    layer pickers with :meth:`layer_picker`, and start work with :meth:`start_job`.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer the dock works on.
    failure : str
        First words of the message shown when a job fails with an unexpected error.
    """

    def __init__(self, viewer, *, failure: str = "Failed"):
        super().__init__(labels=False)
        self._viewer = viewer
        self._failure = failure
        self.body = Container(labels=True)
        self._scroll = FormScroll(self.body.native)
        # the form keeps its natural height at the top; spare height goes below it, not between rows
        self.body.native.layout().addStretch(1)
        layout = self.native.layout()
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._scroll)
        self.status = status_label()
        self.progress = ProgressBar(label="Progress", min=0, max=1, value=0,
                                    tooltip="Planes (or rows of tiles) done of the running job")
        self.stop_btn = PushButton(text="Stop", enabled=False,
                                   tooltip="Stop the running job after the current plane")
        self.stop_btn.changed.connect(lambda *_: self.stop())
        self._worker = None
        self._pending = False
        self._busy: list = []  # buttons disabled while a job runs
        self._pickers: list = []

    # -- layout ----------------------------------------------------------------------------------
    def add(self, *widgets) -> None:
        """Append widgets to the scrolling form; plain Qt widgets (plots, tables) span its width."""
        for w in widgets:
            if hasattr(w, "native"):
                self.body.append(w)
            else:
                holder = Container(labels=False)
                holder.native.layout().setContentsMargins(0, 0, 0, 0)
                holder.native.layout().addWidget(w)
                self.add_wide(holder)

    def add_status(self) -> None:
        """Append the status line, spanning the dock's width."""
        self.add_wide(Container(widgets=[self.status], labels=False))

    def add_wide(self, widget) -> None:
        """Append a magicgui widget that spans the dock's width, with no label column."""
        self.body.append(widget)
        # the form gives every row a label column; a row without a label takes the whole width
        labeled = getattr(widget, "_labeled_widget", lambda: None)()
        if labeled is not None:
            labeled._label_widget.native.setVisible(False)

    def row(self, *buttons, label: str | None = None) -> Container:
        """Widgets side by side in one row."""
        kw = {} if label is None else {"label": label}
        return Container(widgets=list(buttons), layout="horizontal", labels=False, **kw)

    def busy_while_running(self, *buttons) -> None:
        """Buttons that are disabled while a job runs (Stop is enabled instead)."""
        self._busy.extend(buttons)

    # -- layer pickers ---------------------------------------------------------------------------
    def layer_picker(self, label: str, kind, *, tooltip: str, optional: str | None = None,
                     suitable: Callable | None = None, offer: Callable | None = None) -> ComboBox:
        """A layer chooser that follows the viewer's layers and preselects a layer.

        Parameters
        ----------
        label, tooltip : str
            Label and tooltip of the combo box.
        kind : type
            napari layer class offered (e.g. ``napari.layers.Image``).
        optional : str, optional
            Text of a "no layer" entry; an optional picker starts with it and preselects nothing.
        suitable : callable, optional
            ``suitable(layer) -> bool``: layers to prefer when preselecting (default: all of ``kind``).
        offer : callable, optional
            ``offer(layer) -> bool``: the only layers listed (default: all of ``kind``).
        """
        # an optional picker's "no layer" entry is its None; a required one is empty until a layer fits
        box = ComboBox(label=label, choices=layer_choices(self._viewer, kind, optional, suitable=offer),
                       nullable=optional is None, tooltip=tooltip)
        if optional is None:
            fits = suitable if offer is None else (offer if suitable is None else
                                                   (lambda lay: offer(lay) and suitable(lay)))
            self._pickers.append((box, kind, fits))
        else:
            # magicgui announces no change to None in a box that is not nullable: choosing the
            # "no layer" entry must reach whoever follows the picker
            box.native.currentIndexChanged.connect(lambda *_: box.value is None and box.changed.emit(None))
        return box

    def reset_choices(self, *_) -> None:
        """Refresh every choice list, then preselect a layer in each empty picker."""
        self.body.reset_choices()
        for box, kind, suitable in self._pickers:
            if box.value is None:
                layer = preferred_layer(self._viewer, kind, suitable)
                if layer is not None:
                    box.value = layer

    def current_plane(self, layer, data=None, rgb: bool | None = None):
        """The plane of ``layer`` (or of ``data`` placed like it) at the viewer's position, and its index."""
        return current_plane(self._viewer, layer, data, rgb)

    def listen_to_clicks(self, callback: Callable, on: bool) -> None:
        """Have ``callback(viewer, event)`` see mouse presses on the canvas (``on``) or no more."""
        callbacks = self._viewer.mouse_drag_callbacks
        if on and callback not in callbacks:
            callbacks.append(callback)
        elif not on and callback in callbacks:
            callbacks.remove(callback)

    # -- the worker ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a job is running."""
        return self._worker is not None

    def start_job(self, job, *args, on_result: Callable, message: str, **kwargs) -> bool:
        """Run ``job(*args, **kwargs)`` in a thread worker; False if one is running already.

        A generator job yields progress (``{"done", "total"}`` or a subclass's own events, see
        :meth:`on_progress`) and can be stopped at each yield; its return value goes to ``on_result``.
        """
        if self._worker is not None:
            return False
        worker = make_worker(_relaying(job), *args, errored=self._on_error, **kwargs)
        worker.returned.connect(on_result)
        worker.finished.connect(self._on_finished)
        if hasattr(worker, "yielded"):
            worker.yielded.connect(self.on_progress)
        self._worker = worker
        self._set_running(True)
        self.progress.value = 0
        self.status.value = message
        worker.start()
        return True

    def request_run(self, *_) -> None:
        """Run now, or once more as soon as the running job ends."""
        if self._worker is not None:
            self._pending = True
        else:
            self.rerun()

    def rerun(self) -> None:
        """What a pending re-run does; subclasses with a Run action override it."""

    def stop(self) -> None:
        """Stop the running job at its next step; a pending re-run is dropped."""
        if self._worker is not None:
            self._pending = False
            self._worker.quit()
            self.status.value = "stopping..."

    def on_progress(self, p) -> None:
        """Show one progress report of the job (a ``{"done", "total"}`` dict)."""
        if isinstance(p, dict) and "total" in p:
            self.progress.max = max(1, int(p["total"]))
            self.progress.value = min(int(p["done"]), self.progress.max)

    def _set_running(self, running: bool) -> None:
        for b in self._busy:
            b.enabled = not running
        self.stop_btn.enabled = running

    def _on_error(self, exc: Exception) -> None:
        self.progress.value = 0  # the failed job's bar must not read as done
        if isinstance(exc, _Relayed):
            exc = exc.__cause__
        if isinstance(exc, ColorizeError):
            self.error(str(exc))
        else:
            log.exception("%s", self._failure, exc_info=exc)
            self.error(f"{self._failure}: {type(exc).__name__}: {exc}")

    def _on_finished(self) -> None:
        if self.status.value == "stopping...":
            self.status.value = "stopped"
        self._worker = None
        self._set_running(False)
        if self._pending:
            self._pending = False
            self.rerun()

    # -- messages --------------------------------------------------------------------------------
    def error(self, msg: str) -> None:
        """Show ``msg`` in the status line and as a one-line error notification (no traceback)."""
        from napari.utils.notifications import show_error

        self.status.value = msg
        if self._worker is None:
            self.progress.value = 0  # a bar left full by an earlier run would read as this one's
        show_error(one_line(msg))

    def info(self, msg: str) -> None:
        """Show ``msg`` as an information notification."""
        from napari.utils.notifications import show_info

        show_info(one_line(msg))

    def guarded(self, func: Callable, *args, **kwargs):
        """Call ``func``; a :class:`ColorizeError` becomes an error message and the result None."""
        try:
            return func(*args, **kwargs)
        except ColorizeError as exc:
            self.error(str(exc))
            return None
