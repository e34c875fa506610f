"""The Edges and Superpixels docks: the Canny pipeline step by step, and segmentations as Labels.

Each dock runs a core generator on the chosen image layer in a thread worker and publishes each
step as a layer ``<input> <step>``, updated on re-runs; the input layer is never modified.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSlider, FloatSpinBox, PushButton, SpinBox

from ...core import edges as E
from ...core import segments as S
from ...core.arrays import is_dask
from ...core.errors import ColorizeError
from ...core.planes import check_image
from ..dock import Dock
from ..layers import publish
from .filters import limits, source_data


class _FeatureDock(Dock):
    """Image chooser, parameters, Run/Stop, progress and status around a generator job."""

    run_text = "Run"
    run_tip = "Run on the chosen image"

    def __init__(self, viewer, params: list):
        from napari.layers import Image
        from superqt.utils import qdebounced

        super().__init__(viewer, failure="Feature job failed")
        self.image = self.layer_picker("Image", Image, tooltip="Image layer to work on (gray or RGB)")
        self.live = CheckBox(text="Update when a parameter changes", value=False,
                             tooltip="Run again, debounced, whenever a parameter changes")
        self.run_btn = PushButton(text=self.run_text, tooltip=self.run_tip)
        self.add(self.image, *params, self.live, self.row(self.run_btn, self.stop_btn), self.progress)
        self.add_status()
        self.busy_while_running(self.run_btn)
        self._outputs: dict = {}
        self.run_btn.changed.connect(lambda *_: self.run())
        self._debounced = qdebounced(self._on_param, timeout=300)
        for p in params:
            p.changed.connect(self._debounced)
        self.reset_choices()

    def _on_param(self, *_):
        try:
            if not self.live.value or self.image.value is None:
                return
        except RuntimeError:  # a debounced call that fires after the dock was closed
            return
        self.request_run()

    def rerun(self):
        self.run()

    def _job(self, source, data, rgb):  # pragma: no cover - overridden
        raise NotImplementedError

    def _show(self, source, result):  # pragma: no cover - overridden
        raise NotImplementedError

    def run(self, *_):
        """Start the job on the chosen image layer in a thread worker."""
        if self.running:
            return
        source = self.image.value
        try:
            data, rgb = source_data(source)
            job = self._job(source, data, rgb)
            first = next(job)  # the job checks its input before its first yield: fail here, not in the thread
        except ColorizeError as exc:
            self.error(str(exc))
            return

        def work():
            yield first
            return (yield from job)

        self.start_job(work, message=f"working on '{source.name}'...",
                       on_result=lambda result, src=source: self._show(src, result))


class EdgesWidget(_FeatureDock):
    """The Canny pipeline step by step, each step a layer ``<input> <step>`` updated on re-runs."""

    run_text = "Find edges"
    run_tip = "Each Canny step of the current image as a layer '<image> <step>' (only the last one shown)"

    def __init__(self, napari_viewer):
        self.sigma = FloatSpinBox(label="Gaussian sigma", min=0.0, max=20.0, step=0.5, value=1.5,
                                  tooltip="Smoothing before the gradient, in pixels: larger finds coarser edges")
        self.operator = ComboBox(label="Gradient", choices=list(E.OPERATORS), value="sobel",
                                 tooltip="Derivative kernel: Sobel, or Scharr (more rotation-invariant)")
        self.low = FloatSlider(label="Low threshold", min=0.0, max=1.0, step=0.01, value=0.1,
                               tooltip="Weak edges: a fraction of the plane's strongest thinned edge")
        self.high = FloatSlider(label="High threshold", min=0.0, max=1.0, step=0.01, value=0.2,
                                tooltip="Strong edges: a fraction of the plane's strongest thinned edge")
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
            style["gaussian"] = {"rgb": True}
        for what in E.STEPS:  # each result goes above the earlier ones: the last step ends up on top
            data = steps[what]
            if what == "canny":
                data = data.astype(np.uint8)
            new = f"{source.name} {what}" not in self._viewer.layers
            kw = dict(style[what])
            if what != "canny":
                kw["visible"] = False
            layer = publish(self._viewer, source, data, what, self._outputs, **kw)
            if not new and what in ("gradient magnitude", "nms") and not is_dask(data):
                layer.contrast_limits = limits(data)
        n = int(np.count_nonzero(steps["canny"])) if not is_dask(steps["canny"]) else None
        self.status.value = (f"{len(E.STEPS)} steps of '{source.name}'"
                             + (f": {n} edge pixels" if n is not None else " (lazy)"))


class SegmentsWidget(_FeatureDock):
    """Superpixels (SLIC, Felzenszwalb, watershed) and color k-means as Labels ``<input> <method>``."""

    run_text = "Segment"
    run_tip = "Segment the image into a Labels layer '<image> <method>'"

    def __init__(self, napari_viewer):
        self.method = ComboBox(label="Method", value="slic", choices=[
            ("SLIC superpixels", "slic"), ("Felzenszwalb graph", "felzenszwalb"),
            ("Watershed on gradient", "watershed"), ("Color k-means", "kmeans")],
                               tooltip="Superpixels follow edges; k-means groups pixels by color alone")
        self.n_segments = SpinBox(label="Segments", min=1, max=100000, value=100,
                                  tooltip="About how many segments to make")
        self.compactness = FloatSpinBox(label="Compactness", min=0.0, max=1000.0, step=0.5, value=0.0,
                                        tooltip="Higher: squarer segments; lower: closer to edges "
                                                "(0: a default for the method)")
        self.sigma = FloatSpinBox(label="Smoothing (px)", min=0.0, max=20.0, step=0.5, value=0.5,
                                  tooltip="Gaussian smoothing before segmenting, in pixels")
        self.scale = FloatSpinBox(label="Scale", min=1.0, max=10000.0, step=10.0, value=100.0,
                                  tooltip="Felzenszwalb: higher means larger segments")
        self.min_size = SpinBox(label="Min size (px)", min=1, max=100000, value=20,
                                tooltip="Smaller segments are merged into a neighbour")
        self.k = SpinBox(label="Clusters (k)", min=2, max=64, value=4,
                         tooltip="Number of colors the k-means groups the pixels into")
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
