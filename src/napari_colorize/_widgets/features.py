"""Feature layers in napari: preprocessing and color functions (magicgui), Edges and Superpixels docks.

The functions take an Image layer and return layer data tuples named ``<input> <step>``; napari
adds them, or updates the same-named layer when run again. Errors meant for users show as a
notification and add nothing; the input layer is never modified.
"""

import functools
import logging
from typing import Annotated

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSlider,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.layers import Image
from napari.types import LayerDataTuple

from .._layers import image_data, layer_choices, publish
from .._threading import make_worker
from ..core import edges as E
from ..core import preprocess as P
from ..core import segments as S
from ..core._planes import check_image
from ..core.arrays import is_dask
from ..core.errors import ColorizeError, InputError

log = logging.getLogger(__name__)


def _error(msg: str):
    from napari.utils.notifications import show_error

    show_error(msg)


def _friendly(func):
    """Show a ColorizeError as a notification (no traceback) and return nothing instead."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ColorizeError as exc:
            _error(str(exc))
            return None

    return wrapper


def _source(image, need_rgb: bool = False):
    if image is None:
        raise InputError("Choose an image layer first.")
    data, rgb = image_data(image)
    check_image(data, rgb, need_rgb=need_rgb, what=f"layer '{image.name}'")
    return data, rgb


def _limits(data, fallback=None):
    """Contrast limits of computed data (None for dask, where computing them would load everything)."""
    if is_dask(data):
        return fallback
    lo, hi = float(np.min(data)), float(np.max(data))
    return (lo, hi if hi > lo else lo + 1.0)


def _meta(image, what: str, data, **extra) -> dict:
    meta = {"name": f"{image.name} {what}", "scale": tuple(image.scale), "translate": tuple(image.translate)}
    if not (data.ndim >= 3 and data.shape[-1] == 3 and image.rgb):
        limits = _limits(data)
        if limits is not None:
            meta["contrast_limits"] = limits
    meta.update(extra)
    return meta


# -- preprocessing ---------------------------------------------------------------------------------
@_friendly
def resize_image(image: Image, factor: Annotated[float, {"min": 0.01, "max": 16.0, "step": 0.05}] = 0.5,
                 target_rows: Annotated[int, {"min": 0, "max": 100000}] = 0,
                 target_columns: Annotated[int, {"min": 0, "max": 100000}] = 0,
                 anti_aliasing: bool = True) -> LayerDataTuple:
    """Resize every plane by a factor, or to a target size when rows and columns are both set."""
    data, rgb = _source(image)
    size = (target_rows, target_columns) if target_rows > 0 and target_columns > 0 else None
    out = P.resize(data, None if size else factor, size, rgb=rgb, anti_aliasing=anti_aliasing)
    n_tail = 3 if rgb else 2
    in_hw, out_hw = data.shape[data.ndim - n_tail:][:2], out.shape[out.ndim - n_tail:][:2]
    scale, translate = np.array(image.scale, float), np.array(image.translate, float)  # copies
    scale[-2:], translate[-2:] = P.resize_transform(in_hw, out_hw, scale[-2:], translate[-2:])
    meta = _meta(image, "resized", out, scale=tuple(scale), translate=tuple(translate))
    return out, meta, "image"


@_friendly
def rotate_image(image: Image, angle: Annotated[float, {"min": -360.0, "max": 360.0, "step": 5.0}] = 30.0,
                 expand: bool = False) -> LayerDataTuple:
    """Rotate every plane counter-clockwise about its center; *expand* keeps the corners."""
    data, rgb = _source(image)
    out = P.rotate(data, angle, expand=expand, rgb=rgb)
    n_tail = 3 if rgb else 2
    grow = np.subtract(out.shape[out.ndim - n_tail:][:2], data.shape[data.ndim - n_tail:][:2])
    translate = np.array(image.translate, float)  # a copy
    translate[-2:] -= grow / 2 * np.asarray(image.scale)[-2:]  # same center as the input
    return out, _meta(image, "rotated", out, translate=tuple(translate)), "image"


@_friendly
def flip_image(image: Image,
               direction: Annotated[str, {"choices": ["horizontal", "vertical"]}] = "horizontal") -> LayerDataTuple:
    """Mirror every plane left-right (horizontal) or top-bottom (vertical)."""
    data, rgb = _source(image)
    out = P.flip(data, direction, rgb=rgb)
    meta = _meta(image, "flipped", out)
    meta.pop("contrast_limits", None)
    if not image.rgb:
        meta["contrast_limits"] = tuple(image.contrast_limits)
    return out, meta, "image"


@_friendly
def grayscale(image: Image, method: Annotated[str, {"choices": [
        ("CIE L* (perceptual lightness)", "lab"), ("Rec. 709 luma", "luma709"), ("channel mean", "mean")]}] = "lab",
              ) -> LayerDataTuple:
    """Grayscale of an RGB layer in [0, 1]."""
    data, rgb = _source(image, need_rgb=True)
    out = P.to_gray(data, method, rgb=rgb)
    return out, _meta(image, "gray", out, contrast_limits=(0.0, 1.0), colormap="gray"), "image"


@_friendly
def gaussian_smoothing(image: Image, sigma: Annotated[float, {"min": 0.0, "max": 50.0, "step": 0.5}] = 2.0,
                       ) -> LayerDataTuple:
    """Gaussian smoothing of every plane (channel by channel for RGB); sigma in pixels."""
    data, rgb = _source(image)
    out = P.smooth(data, sigma, rgb=rgb)
    if rgb:
        out = np.clip(out, 0, 255 if np.dtype(data.dtype) == np.uint8 else 1.0)
        if np.dtype(data.dtype) == np.uint8:
            out = out.astype(np.uint8) if is_dask(out) else np.rint(out).astype(np.uint8)
    meta = _meta(image, "smoothed", out)
    if not rgb:
        meta["colormap"] = image.colormap.name
    return out, meta, "image"


@_friendly
def normalize_intensity(image: Image, low_percentile: Annotated[float, {"min": 0.0, "max": 50.0}] = 1.0,
                        high_percentile: Annotated[float, {"min": 50.0, "max": 100.0}] = 99.0,
                        per_plane: bool = True) -> LayerDataTuple:
    """Clip to the low/high percentiles and map them to 0 and 1 (any dtype, uint16 included)."""
    data, rgb = _source(image)
    out = P.normalize(data, low_percentile, high_percentile, rgb=rgb, per_plane=per_plane)
    return out, _meta(image, "normalized", out, contrast_limits=(0.0, 1.0)), "image"


# -- color -----------------------------------------------------------------------------------------
_SPACE_LIMITS = {"lab": [(0, 100), (-100, 100), (-100, 100)], "hsv": [(0, 1)] * 3,
                 "ycbcr": [(16, 235), (16, 240), (16, 240)]}


@_friendly
def color_channels(image: Image, space: Annotated[str, {"choices": [
        ("CIE Lab", "lab"), ("HSV", "hsv"), ("YCbCr (BT.601)", "ycbcr")]}] = "lab",
                   stacked: bool = False) -> list[LayerDataTuple]:
    """RGB to Lab, HSV or YCbCr: one layer per channel, or one stacked layer (channel first)."""
    data, _ = _source(image, need_rgb=True)
    out = S.convert_colorspace(data, space)
    names = S.SPACES[space]
    if stacked:
        lib = __import__("dask.array", fromlist=["moveaxis"]) if is_dask(out) else np
        arr = lib.moveaxis(out, -1, 0)
        meta = {"name": f"{image.name} {space}", "scale": (1.0, *image.scale),
                "translate": (0.0, *image.translate), "colormap": "gray",
                "contrast_limits": _SPACE_LIMITS[space][0], "metadata": {"channels": list(names)}}
        return [(arr, meta, "image")]
    # opponent channels: green-magenta for a* and Cr, blue-yellow for b* and Cb, centered on neutral
    cmaps = {"lab": ["gray", "PiYG_r", "PuOr_r"], "hsv": ["hsv", "gray", "gray"],
             "ycbcr": ["gray", "PuOr", "PiYG_r"]}[space]
    layers = []
    for c, (n, cm, lim) in enumerate(zip(names, cmaps, _SPACE_LIMITS[space])):
        chan = out[..., c]
        if cm != "gray" and cm != "hsv" and not is_dask(chan):
            mid = (lim[0] + lim[1]) / 2
            half = max(float(np.abs(chan - mid).max()), 1e-3)
            lim = (mid - half, mid + half)
        layers.append((chan, {"name": f"{image.name} {n}", "scale": tuple(image.scale),
                              "translate": tuple(image.translate), "colormap": cm,
                              "contrast_limits": lim}, "image"))
    return layers


@_friendly
def color_gradient(image: Image, operator: Annotated[str, {"choices": list(E.OPERATORS)}] = "sobel",
                   ) -> list[LayerDataTuple]:
    """Di Zenzo color gradient of an RGB layer: magnitude and direction (radians, modulo pi)."""
    data, _ = _source(image, need_rgb=True)
    mag, direction = E.color_gradient(data, operator)
    base = {"scale": tuple(image.scale), "translate": tuple(image.translate)}
    return [(mag, {**base, "name": f"{image.name} color gradient magnitude", "colormap": "magma",
                   **({"contrast_limits": _limits(mag)} if not is_dask(mag) else {})}, "image"),
            (direction, {**base, "name": f"{image.name} color gradient direction", "colormap": "twilight",
                         "contrast_limits": (-np.pi / 2, np.pi / 2), "visible": False}, "image")]


# -- dock widgets ----------------------------------------------------------------------------------
class _WorkerDock(Container):
    """Image chooser, Run/Stop, progress and status around a generator job run in a thread worker."""

    run_text = "Run"

    def __init__(self, viewer, params: list):
        from superqt.utils import qdebounced

        super().__init__(labels=True)
        self._viewer = viewer
        self.image = ComboBox(label="Image", choices=layer_choices(viewer, Image), nullable=True)
        self.live = CheckBox(text="Update when a parameter changes", value=False)
        self.run_btn = PushButton(text=self.run_text)
        self.stop_btn = PushButton(text="Stop", enabled=False)
        self.progress = ProgressBar(label="Progress", min=0, max=1, value=0)
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.status.native.setMinimumHeight(3 * self.status.native.fontMetrics().lineSpacing())
        self.extend([self.image, *params, self.live,
                     Container(widgets=[self.run_btn, self.stop_btn], layout="horizontal", labels=False),
                     self.progress])
        self.append(Container(widgets=[self.status], labels=False))
        self._outputs: dict = {}
        self._worker = None
        self._pending = False
        self.run_btn.changed.connect(self.run)
        self.stop_btn.changed.connect(self.stop)
        self._debounced = qdebounced(self._on_param, timeout=300)
        for p in params:
            p.changed.connect(self._debounced)
        for ev in (viewer.layers.events.inserted, viewer.layers.events.removed, viewer.layers.events.moved):
            ev.connect(self.reset_choices)
        self.reset_choices()

    def _on_param(self, *_):
        try:
            if not self.live.value or self.image.value is None:
                return
        except RuntimeError:  # a debounced call that fires after the dock was closed
            return
        if self._worker is not None:
            self._pending = True
            return
        self.run()

    def _job(self, source, data, rgb):  # pragma: no cover - overridden
        raise NotImplementedError

    def run(self, *_):
        """Start the job on the chosen image layer in a thread worker."""
        if self._worker is not None:
            return
        source = self.image.value
        try:
            data, rgb = _source(source)
            job = self._job(source, data, rgb)
            first = next(job)  # the job checks its input before its first yield: fail here, not in the thread
        except ColorizeError as exc:
            self._error(str(exc))
            return

        def work():
            yield first
            return (yield from job)

        worker = make_worker(work, errored=self._on_error)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda result, src=source: self._show(src, result))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.run_btn.enabled, self.stop_btn.enabled = False, True
        self.status.value = f"working on '{source.name}'..."
        worker.start()

    def stop(self, *_):
        if self._worker is not None:
            self._worker.quit()
            self._pending = False
            self.status.value = "stopping..."

    def _on_progress(self, p: dict):
        self.progress.max = max(1, p["total"])
        self.progress.value = p["done"]

    def _on_error(self, exc):
        if isinstance(exc, ColorizeError):
            self._error(str(exc))
        else:
            log.exception("feature job failed", exc_info=exc)
            self._error(f"Failed: {type(exc).__name__}: {exc}")

    def _on_finished(self):
        if self.status.value == "stopping...":
            self.status.value = "stopped"
        self._worker = None
        self.run_btn.enabled, self.stop_btn.enabled = True, False
        if self._pending:
            self._pending = False
            self.run()

    def _error(self, msg: str):
        self.status.value = msg
        _error(msg)


class EdgesWidget(_WorkerDock):
    """The Canny pipeline step by step, each step a layer ``<input> <step>`` updated on re-runs."""

    run_text = "Find edges"

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        self.sigma = FloatSpinBox(label="Gaussian sigma", min=0.0, max=20.0, step=0.5, value=1.5)
        self.operator = ComboBox(label="Gradient", choices=list(E.OPERATORS), value="sobel")
        self.low = FloatSlider(label="Low threshold", min=0.0, max=1.0, step=0.01, value=0.1,
                               tooltip="fraction of the plane's strongest NMS edge")
        self.high = FloatSlider(label="High threshold", min=0.0, max=1.0, step=0.01, value=0.2,
                                tooltip="fraction of the plane's strongest NMS edge")
        super().__init__(napari_viewer, [self.sigma, self.operator, self.low, self.high])

    def _job(self, source, data, rgb):
        sigma, op = self.sigma.value, self.operator.value
        low, high = sorted((self.low.value, self.high.value))
        check_image(data, rgb)

        def job():
            yield {"done": 0, "total": 4}  # canny_steps checks the input again, cheaply
            steps = E.canny_steps(data, sigma, op, low, high, rgb=rgb)
            yield {"done": 4, "total": 4}
            return steps

        return job()

    def _show(self, source, steps):
        style = {"gaussian": {"colormap": "gray"}, "gradient magnitude": {"colormap": "magma"},
                 "gradient direction": {"colormap": "twilight", "contrast_limits": (-np.pi, np.pi)},
                 "nms": {"colormap": "magma"},
                 "canny": {"colormap": "gray", "contrast_limits": (0, 1), "blending": "additive"}}
        if steps["gaussian"].ndim == steps["canny"].ndim + 1:
            style["gaussian"] = {"rgb": True, "contrast_limits": (0, 1)}
        for what in reversed(E.STEPS):  # the last step ends up on top
            data = steps[what]
            if what == "canny":
                data = data.astype(np.uint8)
            new = f"{source.name} {what}" not in self._viewer.layers
            kw = dict(style[what])
            if what != "canny":
                kw["visible"] = False
            layer = publish(self._viewer, source, data, what, self._outputs, **kw)
            if not new and what in ("gradient magnitude", "nms") and not is_dask(data):
                layer.contrast_limits = _limits(data)
        n = int(np.count_nonzero(steps["canny"])) if not is_dask(steps["canny"]) else None
        self.status.value = (f"{len(E.STEPS)} steps of '{source.name}'"
                             + (f": {n} edge pixels" if n is not None else " (lazy)"))


class SegmentsWidget(_WorkerDock):
    """Superpixels (SLIC, Felzenszwalb, watershed) and color k-means as Labels ``<input> <method>``."""

    run_text = "Segment"

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        self.method = ComboBox(label="Method", value="slic", choices=[
            ("SLIC superpixels", "slic"), ("Felzenszwalb graph", "felzenszwalb"),
            ("Watershed on gradient", "watershed"), ("Color k-means", "kmeans")])
        self.n_segments = SpinBox(label="Segments", min=1, max=100000, value=100)
        self.compactness = FloatSpinBox(label="Compactness (0: auto)", min=0.0, max=1000.0, step=0.5, value=0.0,
                                        tooltip="0: a default for the method and image type")
        self.sigma = FloatSpinBox(label="Pre-smoothing sigma", min=0.0, max=20.0, step=0.5, value=0.5)
        self.scale = FloatSpinBox(label="Scale", min=1.0, max=10000.0, step=10.0, value=100.0,
                                  tooltip="Felzenszwalb: higher means larger segments")
        self.min_size = SpinBox(label="Min size (px)", min=1, max=100000, value=20)
        self.k = SpinBox(label="Clusters (k)", min=2, max=64, value=4)
        super().__init__(napari_viewer, [self.method, self.n_segments, self.compactness, self.sigma,
                                         self.scale, self.min_size, self.k])
        self.method.changed.connect(self._show_params)
        self._show_params()

    def _show_params(self, *_):
        m = self.method.value
        shown = {"slic": {"n_segments", "compactness", "sigma"}, "felzenszwalb": {"scale", "sigma", "min_size"},
                 "watershed": {"n_segments", "compactness", "sigma"}, "kmeans": {"k"}}[m]
        for name in ("n_segments", "compactness", "sigma", "scale", "min_size", "k"):
            getattr(self, name).visible = name in shown

    def _job(self, source, data, rgb):
        comp = self.compactness.value or None
        self._method = self.method.value
        return S.segment_job(data, self.method.value, rgb=rgb, n_segments=self.n_segments.value,
                             compactness=comp, sigma=self.sigma.value, scale=self.scale.value,
                             min_size=self.min_size.value, k=self.k.value)

    def _show(self, source, labels):
        if labels is None:
            return
        method = self._method
        new = f"{source.name} {method}" not in self._viewer.layers
        layer = publish(self._viewer, source, labels, method, self._outputs, kind="labels",
                        opacity=0.5 if method == "kmeans" else 0.8)
        if new and method != "kmeans":
            layer.contour = 1  # superpixels as outlines over the image
        self.status.value = f"{int(labels.max())} {'clusters' if method == 'kmeans' else 'segments'} in " \
                            f"'{source.name} {method}'"
