"""Generic filters as small magicgui docks: resize, rotate, flip, grayscale, smoothing, color channels.

Each function takes an Image layer and returns layer data tuples named ``<input> <step>``; napari
adds them, or updates the same-named layer when run again. Errors meant for users show as a
notification and add nothing; the input layer is never modified. The docstrings' parameter
sections are the controls' tooltips. The filters live in napari's Layers menus (not in the
Plugins menu): each menu command opens its dock through :func:`open_filter`.
"""

import functools
from typing import Annotated

import numpy as np
from napari.layers import Image
from napari.types import LayerDataTuple
from napari.viewer import Viewer

from ...core import edges as E
from ...core import preprocess as P
from ...core import segments as S
from ...core.arrays import is_dask
from ...core.errors import ColorizeError, InputError
from ...core.planes import check_image
from ..dock import one_line
from ..layers import image_data, preferred_layer

IMAGE = {"label": "Image"}


def _friendly(func):
    """Show a ColorizeError as a notification (no traceback) and return nothing instead."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ColorizeError as exc:
            from napari.utils.notifications import show_error

            show_error(one_line(str(exc)))
            return None

    return wrapper


def source_data(image, need_rgb: bool = False):
    """Data of an Image layer and whether it is RGB, checked for the filters."""
    if image is None:
        raise InputError("Choose an image layer first.")
    data, rgb = image_data(image)
    check_image(data, rgb, need_rgb=need_rgb, what=f"layer '{image.name}'")
    return data, rgb


def limits(data, fallback=None):
    """Contrast limits of computed data (None for dask, where computing them would load everything)."""
    if is_dask(data):
        return fallback
    lo, hi = float(np.min(data)), float(np.max(data))
    return (lo, hi if hi > lo else lo + 1.0)


def _meta(image, what: str, data, **extra) -> dict:
    meta = {"name": f"{image.name} {what}", "scale": tuple(image.scale), "translate": tuple(image.translate)}
    if not (data.ndim >= 3 and data.shape[-1] == 3 and image.rgb):
        lim = limits(data)
        if lim is not None:
            meta["contrast_limits"] = lim
    meta.update(extra)
    return meta


# -- geometry --------------------------------------------------------------------------------------
@_friendly
def resize_image(image: Annotated[Image, IMAGE],
                 factor: Annotated[float, {"min": 0.01, "max": 16.0, "step": 0.05, "label": "Factor"}] = 0.5,
                 target_rows: Annotated[int, {"min": 0, "max": 100000, "label": "Target rows"}] = 0,
                 target_columns: Annotated[int, {"min": 0, "max": 100000, "label": "Target columns"}] = 0,
                 anti_aliasing: Annotated[bool, {"label": "Anti-aliasing"}] = True) -> LayerDataTuple:
    """Resize every plane by a factor, or to a target size when rows and columns are both set.

    Parameters
    ----------
    image : Image
        Layer to resize; the result keeps its place in the world.
    factor : float
        Scale factor of both plane axes (used while a target size is 0).
    target_rows : int
        Rows of the result; with target columns, overrides the factor (0: use the factor).
    target_columns : int
        Columns of the result; with target rows, overrides the factor (0: use the factor).
    anti_aliasing : bool
        Smooth before shrinking so fine patterns do not alias.
    """
    data, rgb = source_data(image)
    size = (target_rows, target_columns) if target_rows > 0 and target_columns > 0 else None
    out = P.resize(data, None if size else factor, size, rgb=rgb, anti_aliasing=anti_aliasing)
    n_tail = 3 if rgb else 2
    in_hw, out_hw = data.shape[data.ndim - n_tail:][:2], out.shape[out.ndim - n_tail:][:2]
    scale, translate = np.array(image.scale, float), np.array(image.translate, float)  # copies
    scale[-2:], translate[-2:] = P.resize_transform(in_hw, out_hw, scale[-2:], translate[-2:])
    meta = _meta(image, "resized", out, scale=tuple(scale), translate=tuple(translate))
    return out, meta, "image"


@_friendly
def rotate_image(image: Annotated[Image, IMAGE],
                 angle: Annotated[float, {"min": -360.0, "max": 360.0, "step": 5.0, "label": "Angle (°)"}] = 30.0,
                 expand: Annotated[bool, {"label": "Expand"}] = False) -> LayerDataTuple:
    """Rotate every plane counter-clockwise about its center.

    Parameters
    ----------
    image : Image
        Layer to rotate.
    angle : float
        Counter-clockwise angle in degrees.
    expand : bool
        Grow the plane so the rotated corners stay in view (otherwise the size is kept).
    """
    data, rgb = source_data(image)
    out = P.rotate(data, angle, expand=expand, rgb=rgb)
    n_tail = 3 if rgb else 2
    grow = np.subtract(out.shape[out.ndim - n_tail:][:2], data.shape[data.ndim - n_tail:][:2])
    translate = np.array(image.translate, float)  # a copy
    translate[-2:] -= grow / 2 * np.asarray(image.scale)[-2:]  # same center as the input
    return out, _meta(image, "rotated", out, translate=tuple(translate)), "image"


@_friendly
def flip_image(image: Annotated[Image, IMAGE],
               direction: Annotated[str, {"choices": ["horizontal", "vertical"], "label": "Direction"}]
               = "horizontal") -> LayerDataTuple:
    """Mirror every plane.

    Parameters
    ----------
    image : Image
        Layer to mirror.
    direction : str
        horizontal: left-right; vertical: top-bottom.
    """
    data, rgb = source_data(image)
    out = P.flip(data, direction, rgb=rgb)
    meta = _meta(image, "flipped", out)
    meta.pop("contrast_limits", None)
    if not image.rgb:
        meta["contrast_limits"] = tuple(image.contrast_limits)
    return out, meta, "image"


# -- intensity -------------------------------------------------------------------------------------
@_friendly
def grayscale(image: Annotated[Image, IMAGE], method: Annotated[str, {"label": "Method", "choices": [
        ("CIE L* (perceptual lightness)", "lab"), ("Rec. 709 luma", "luma709"), ("channel mean", "mean")]}] = "lab",
              ) -> LayerDataTuple:
    """Grayscale of an RGB layer in [0, 1].

    Parameters
    ----------
    image : Image
        RGB layer to convert.
    method : str
        CIE L*: perceived lightness (what the colorizer keeps); luma: video weights; mean: plain average.
    """
    data, rgb = source_data(image, need_rgb=True)
    out = P.to_gray(data, method, rgb=rgb)
    return out, _meta(image, "gray", out, contrast_limits=(0.0, 1.0), colormap="gray"), "image"


@_friendly
def gaussian_smoothing(image: Annotated[Image, IMAGE],
                       sigma: Annotated[float, {"min": 0.0, "max": 50.0, "step": 0.5, "label": "Sigma (px)"}] = 2.0,
                       ) -> LayerDataTuple:
    """Gaussian smoothing of every plane (channel by channel for RGB).

    Parameters
    ----------
    image : Image
        Layer to smooth.
    sigma : float
        Standard deviation of the Gaussian in pixels (0: no smoothing).
    """
    data, rgb = source_data(image)
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
def normalize_intensity(image: Annotated[Image, IMAGE],
                        low_percentile: Annotated[float, {"min": 0.0, "max": 50.0, "label": "Low percentile"}] = 1.0,
                        high_percentile: Annotated[float, {"min": 50.0, "max": 100.0,
                                                           "label": "High percentile"}] = 99.0,
                        per_plane: Annotated[bool, {"label": "Each plane on its own"}] = True) -> LayerDataTuple:
    """Clip to the low/high percentiles and map them to 0 and 1 (any dtype, uint16 included).

    Parameters
    ----------
    image : Image
        Layer to normalize.
    low_percentile : float
        Percentile mapped to 0; darker values are clipped.
    high_percentile : float
        Percentile mapped to 1; brighter values are clipped.
    per_plane : bool
        Percentiles of each plane of a stack (on) or of the whole stack (off).
    """
    data, rgb = source_data(image)
    out = P.normalize(data, low_percentile, high_percentile, rgb=rgb, per_plane=per_plane)
    return out, _meta(image, "normalized", out, contrast_limits=(0.0, 1.0)), "image"


# -- color -----------------------------------------------------------------------------------------
_SPACE_LIMITS = {"lab": [(0, 100), (-100, 100), (-100, 100)], "hsv": [(0, 1)] * 3,
                 "ycbcr": [(16, 235), (16, 240), (16, 240)]}


@_friendly
def color_channels(image: Annotated[Image, IMAGE], space: Annotated[str, {"label": "Color space", "choices": [
        ("CIE Lab", "lab"), ("HSV", "hsv"), ("YCbCr (BT.601)", "ycbcr")]}] = "lab",
                   stacked: Annotated[bool, {"label": "One stacked layer"}] = False) -> list[LayerDataTuple]:
    """RGB to Lab, HSV or YCbCr channels.

    Parameters
    ----------
    image : Image
        RGB layer to convert.
    space : str
        Color space of the channels.
    stacked : bool
        One layer with the channels along a new first axis, instead of one layer per channel.
    """
    data, _ = source_data(image, need_rgb=True)
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
                              "contrast_limits": lim, "visible": c == 0}, "image"))
    return layers


@_friendly
def color_gradient(image: Annotated[Image, IMAGE],
                   operator: Annotated[str, {"choices": list(E.OPERATORS), "label": "Operator"}] = "sobel",
                   ) -> list[LayerDataTuple]:
    """Di Zenzo color gradient of an RGB layer: magnitude and direction (radians, modulo pi).

    Parameters
    ----------
    image : Image
        RGB layer.
    operator : str
        Derivative kernel: Sobel, or Scharr (more rotation-invariant).
    """
    data, _ = source_data(image, need_rgb=True)
    mag, direction = E.color_gradient(data, operator)
    base = {"scale": tuple(image.scale), "translate": tuple(image.translate)}
    return [(mag, {**base, "name": f"{image.name} color gradient magnitude", "colormap": "magma",
                   **({"contrast_limits": limits(mag)} if not is_dask(mag) else {})}, "image"),
            (direction, {**base, "name": f"{image.name} color gradient direction", "colormap": "twilight",
                         "contrast_limits": (-np.pi / 2, np.pi / 2), "visible": False}, "image")]


# -- docks from the Layers menus -------------------------------------------------------------------
FILTERS = {"Resize": resize_image, "Rotate": rotate_image, "Flip": flip_image, "Grayscale": grayscale,
           "Gaussian smoothing": gaussian_smoothing, "Normalize intensity": normalize_intensity,
           "Color space channels": color_channels, "Color gradient": color_gradient}


def open_filter(viewer: Viewer, title: str):
    """Dock the filter ``title`` of :data:`FILTERS` (or show it if docked), its image preselected.

    Returns
    -------
    magicgui.widgets.FunctionGui
        The filter's widget; calling it runs the filter.
    """
    from magicgui import magicgui

    name = f"{title} (napari-colorize)"  # the name napari gives the plugin's own docks
    if name in viewer.window.dock_widgets:
        widget = viewer.window.dock_widgets[name]
        widget.native.parent().show()
        widget.native.parent().raise_()
        return widget
    widget = magicgui(FILTERS[title], call_button="Run")
    widget.call_button.tooltip = "Add the result as new layers named '<image> <step>'"
    viewer.window.add_dock_widget(widget, name=name, area="right")
    widget.reset_choices()
    layer = preferred_layer(viewer, Image)
    if layer is not None:
        widget.image.value = layer
    return widget


def _opener(title: str):
    def open_dock(viewer: Viewer):
        return open_filter(viewer, title)

    open_dock.__doc__ = f"Open the {title} dock."
    return open_dock


open_resize = _opener("Resize")
open_rotate = _opener("Rotate")
open_flip = _opener("Flip")
open_grayscale = _opener("Grayscale")
open_gaussian = _opener("Gaussian smoothing")
open_normalize = _opener("Normalize intensity")
open_color_channels = _opener("Color space channels")
open_color_gradient = _opener("Color gradient")
