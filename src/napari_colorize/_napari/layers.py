"""Between napari layers and the core: layer lists, planes, hints from Points, result layers."""

from __future__ import annotations

import numpy as np

from ..core.errors import InputError


def layer_choices(viewer, kind, optional: str | None = None, suitable=None):
    """Choices callback for a ComboBox: the viewer's layers of type ``kind`` for which
    ``suitable(layer)`` holds (all by default), after an ``optional`` entry."""
    def choices(_widget=None):
        found = [(layer.name, layer) for layer in viewer.layers
                 if isinstance(layer, kind) and (suitable is None or suitable(layer))]
        return ([(optional, None)] if optional else []) + found

    return choices


def is_rgb(layer) -> bool:
    """Whether an image layer holds RGB(A) colors."""
    return bool(getattr(layer, "rgb", False))


def preferred_layer(viewer, kind, suitable=None):
    """The layer a picker should start with: the selected layer if it fits, else the last that fits.

    A layer fits when it is a ``kind`` and ``suitable(layer)`` holds; visible layers come before
    hidden ones (a sample's hidden reference photo is not what a user means to work on).
    """
    def fits(layer):
        return isinstance(layer, kind) and (suitable is None or suitable(layer))

    active = viewer.layers.selection.active
    if active is not None and fits(active) and active.visible:
        return active
    found = [layer for layer in viewer.layers if fits(layer)]
    visible = [layer for layer in found if layer.visible]
    return (visible or found or [None])[-1]


def current_plane(viewer, layer, data=None, rgb: bool | None = None):
    """The 2D (or RGB) plane of ``data`` shown at the viewer's current position, and its index.

    ``data`` defaults to the layer's full-resolution data and ``rgb`` to ``layer.rgb``; the index
    runs over the leading (stack) axes and is empty for a single plane.
    """
    if data is None:
        data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    if rgb is None:
        rgb = bool(getattr(layer, "rgb", False))
    n_lead = data.ndim - (3 if rgb else 2)
    if n_lead <= 0:
        return np.asarray(data), ()
    idx = current_index(viewer, layer, data.shape[:n_lead])
    return np.asarray(data[idx]), idx


def current_index(viewer, layer, lead_shape) -> tuple:
    """Index over the leading axes (of sizes ``lead_shape``) of ``layer`` at the viewer's position."""
    n_lead = len(lead_shape)
    if n_lead == 0:
        return ()
    pos = np.asarray(layer.world_to_data(np.asarray(viewer.dims.point)[-layer.ndim:]), dtype=float)
    return tuple(int(np.clip(round(p), 0, s - 1)) for p, s in zip(pos[:n_lead], lead_shape))


def image_data(layer, level: int = 0):
    """The layer's data at pyramid ``level`` (0: full resolution) and whether it is RGB."""
    from napari.layers import Image

    if not isinstance(layer, Image):
        kind = type(layer).__name__
        raise InputError(f"'{layer.name}' is a {kind} layer; choose an Image layer to colorize.")
    if not layer.multiscale:
        if level:
            raise InputError(f"'{layer.name}' has a single resolution; level {level} does not exist.")
        return layer.data, bool(layer.rgb)
    if not 0 <= level < len(layer.data):
        raise InputError(f"'{layer.name}' has levels 0 to {len(layer.data) - 1}; got {level}.")
    return layer.data[level], bool(layer.rgb)


def level_factor(layer, level: int) -> np.ndarray:
    """Level-0 pixels per pixel of ``level`` along the two plane axes."""
    if not layer.multiscale or level == 0:
        return np.ones(2)
    return np.asarray(layer.downsample_factors[level], dtype=float)[-2:]


def level_placement(layer, level: int):
    """Scale and translate that put data of ``level`` where napari draws that level."""
    scale = np.array(layer.scale, dtype=float)
    scale[-2:] *= level_factor(layer, level)
    return scale, np.array(layer.translate, dtype=float)


def fov_crop(viewer, layer, max_pixels: int | None = None):
    """The visible part of the current plane of ``layer``, at about screen resolution.

    Picks the coarsest pyramid level (then an integer stride) whose pixels are no smaller than
    screen pixels, reads only the visible window, and returns ``(crop, rgb, scale, translate,
    origin, step)``: the 2D crop (with a leading singleton per leading axis), scale and translate
    that place it exactly over the layer, and the crop's origin and pixel step in level-0 pixels.
    """
    if viewer.dims.ndisplay != 2:
        raise InputError("Preview works in the 2D view; switch the viewer to 2D.")
    nd = layer.ndim
    h_can, w_can = (float(v) for v in viewer.canvas.size)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari >= 0.9: scene
    zoom = float(camera.zoom)
    center = np.asarray(camera.center, dtype=float)[-2:]
    point = np.asarray(viewer.dims.point, dtype=float)
    half = np.array([h_can, w_can]) / (2.0 * zoom)
    corners = []
    for dy, dx in ((-1, -1), (1, 1)):
        world = point.copy()
        world[-2:] = center + half * np.array([dy, dx])
        corners.append(np.asarray(layer.world_to_data(world[-nd:]), dtype=float))
    lo, hi = np.minimum(*corners)[-2:], np.maximum(*corners)[-2:]
    full = layer.data[0].shape if layer.multiscale else layer.data.shape
    plane_shape = np.asarray(full[nd - 2 : nd], dtype=float)
    lo = np.clip(np.floor(lo), 0, plane_shape).astype(int)
    hi = np.clip(np.ceil(hi), 0, plane_shape).astype(int)
    if (hi - lo).min() < 2:
        raise InputError(f"'{layer.name}' is not in view; pan to it first.")
    # level-0 pixels per screen pixel
    per_screen = 1.0 / (zoom * np.asarray(layer.scale, dtype=float)[-2:])
    level = 0
    if layer.multiscale:
        for lv in range(len(layer.data)):
            if (level_factor(layer, lv) <= per_screen * 1.001).all():
                level = lv
    f = level_factor(layer, level)
    stride = max(1, int(np.floor((per_screen / f).min())))
    if max_pixels:
        while ((hi - lo) / (f * stride)).prod() > max_pixels:
            stride += 1
    data = layer.data[level] if layer.multiscale else layer.data
    lead = np.asarray(current_index(viewer, layer, data.shape[: nd - 2]), dtype=int)
    l0 = (lo // f).astype(int)
    l1 = np.maximum(l0 + 2 * stride, np.ceil(hi / f)).astype(int)
    key = tuple(lead) + (slice(l0[0], l1[0], stride), slice(l0[1], l1[1], stride))
    crop = np.asarray(data[key])
    crop = crop.reshape((1,) * (nd - 2) + crop.shape)
    step = f * stride
    scale = np.array(layer.scale, dtype=float)
    scale[-2:] *= step
    origin = l0 * f
    translate = np.array(layer.translate, dtype=float)
    translate[: nd - 2] += lead * np.asarray(layer.scale, dtype=float)[: nd - 2]
    translate[-2:] += origin * np.asarray(layer.scale, dtype=float)[-2:]
    return crop, bool(layer.rgb), scale, translate, origin, step


def to_image_coords(layer, coords, image_layer) -> np.ndarray:
    """``coords`` (N, layer.ndim) of ``layer`` in the image layer's data coordinates.

    As many dimensions as the image when ``layer`` has as many; fewer-dimensional layers (e.g. 2D
    points over a 3D stack) give the two plane axes only, so their hints apply to every plane.
    """
    coords = np.asarray(coords, dtype=float).reshape(-1, layer.ndim)
    nd = image_layer.ndim
    world = np.array([layer.data_to_world(p) for p in coords], dtype=float).reshape(len(coords), -1)
    k = min(world.shape[1], nd)
    full = np.zeros((len(coords), nd))
    full[:, -k:] = world[:, -k:]
    data = np.array([image_layer.world_to_data(w) for w in full], dtype=float).reshape(len(coords), nd)
    return data if layer.ndim >= nd else data[:, -2:]


def hints_from_points(points_layer, image_layer):
    """Hint coordinates in the image layer's data space and RGB colors from face colors.

    Points with as many dimensions as the image keep their plane coordinates; fewer-dimensional
    points (e.g. 2D points over a 3D stack) apply to every plane.
    """
    if points_layer is None or len(points_layer.data) == 0:
        return None, None
    colors = np.asarray(points_layer.face_color, dtype=float)[:, :3]
    return to_image_coords(points_layer, points_layer.data, image_layer), colors


def _above_results(viewer, source, layer) -> int:
    """Index just above ``source`` and the image layers published from it (renamed ones too)."""
    from napari.layers import Image

    top, own = viewer.layers.index(source), viewer.layers.index(layer)  # by index: layers may be proxies
    for i, other in enumerate(viewer.layers):
        ours = other.metadata.get(SOURCE_KEY) == _source_id(source)  # renamed results count too
        if i != own and isinstance(other, Image) and ours:
            top = max(top, i)
    return top + 1


SOURCE_KEY = "napari_colorize_source"  # metadata of a result: the layer it was made from


def is_result(layer) -> bool:
    """Whether ``layer`` was published by one of the plugin's docks (renamed ones too)."""
    return SOURCE_KEY in getattr(layer, "metadata", {})


def _source_id(source) -> str:
    return str(getattr(source, "unique_id", id(source)))


def publish(viewer, source, data, what: str, cache: dict, *, kind: str = "image", new: bool = False,
            **kwargs):
    """Add ``<source name> <what>`` or update it in place when its shape still fits.

    The new layer takes the source's scale and translate unless ``scale``/``translate`` are given,
    and sits right above the source and its other image results, so the newest shows while hint
    points and other overlays stay on top; a layer being drawn on (points, shapes, labels) stays
    the selected one. ``kind`` is
    ``"image"`` or ``"labels"``; a same-named layer of another type is replaced. A layer the user
    renamed is kept as it is (a result to compare with) and a new one is added; so is one with
    ``new``, which keeps every earlier result.
    """
    from napari.layers import Image, Labels, Points, Shapes

    cls, add = {"image": (Image, viewer.add_image), "labels": (Labels, viewer.add_labels)}[kind]
    name = f"{source.name} {what}"
    kwargs.setdefault("scale", source.scale)
    kwargs.setdefault("translate", source.translate)
    if kwargs.get("rgb"):
        # the plugin's RGB results are floats in [0, 1]; napari guesses the limits of a big layer
        # from a patch at its centre, which can leave a photo nearly black, beyond the slider's reach
        kwargs.setdefault("contrast_limits", (0.0, 1.0))
    layer, published = cache.get((id(source), what), (None, None))
    if layer is None or layer not in viewer.layers or layer.name != published:
        layer = viewer.layers[name] if name in viewer.layers else None
    if new:
        layer = None
    # a multiscale result (a list of levels) always replaces: napari cannot swap a pyramid in place
    in_place = (layer is not None and isinstance(layer, cls) and not isinstance(data, list)
                and not getattr(layer, "multiscale", False) and layer.data.shape == data.shape)
    if in_place and layer.ndim == len(kwargs["scale"]):
        layer.data = data
        layer.scale, layer.translate = kwargs["scale"], kwargs["translate"]
        if "contrast_limits" in kwargs:
            layer.contrast_limits = kwargs["contrast_limits"]
    else:
        if layer is not None:
            viewer.layers.remove(layer)
        drawing = viewer.layers.selection.active
        layer = add(data, name=name, **kwargs)  # napari numbers a taken name: "<name> [1]"
        layer.metadata[SOURCE_KEY] = _source_id(source)
        if source in viewer.layers:
            viewer.layers.move(viewer.layers.index(layer), _above_results(viewer, source, layer))
        if isinstance(drawing, (Points, Shapes, Labels)) and drawing in viewer.layers:
            # a result added while the user places hints must not take the clicks meant for them
            viewer.layers.selection.active = drawing
    cache[(id(source), what)] = (layer, layer.name)
    return layer
