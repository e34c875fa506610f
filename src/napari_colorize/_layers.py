"""Helpers between napari layers and the core: hints from Points, result layers."""

from __future__ import annotations

import numpy as np

from .core.errors import InputError


def image_data(layer):
    """The layer's full-resolution data and whether it is RGB; checks the layer type."""
    from napari.layers import Image

    if not isinstance(layer, Image):
        kind = type(layer).__name__
        raise InputError(f"'{layer.name}' is a {kind} layer; choose an Image layer to colorize.")
    data = layer.data[0] if layer.multiscale else layer.data
    return data, bool(layer.rgb)


def hints_from_points(points_layer, image_layer):
    """Hint coordinates in the image layer's data space and RGB colors from face colors.

    Points with as many dimensions as the image keep their plane coordinates; fewer-dimensional
    points (e.g. 2D points over a 3D stack) apply to every plane.
    """
    if points_layer is None or len(points_layer.data) == 0:
        return None, None
    pts = np.asarray(points_layer.data, dtype=float)
    world = np.array([points_layer.data_to_world(p) for p in pts], dtype=float)
    nd = image_layer.ndim
    k = min(world.shape[1], nd)
    full = np.zeros((len(pts), nd))
    full[:, -k:] = world[:, -k:]
    data = np.array([image_layer.world_to_data(w) for w in full], dtype=float)
    if points_layer.ndim < nd:
        data = data[:, -2:]
    colors = np.asarray(points_layer.face_color, dtype=float)[:, :3]
    return data, colors


def publish(viewer, source, data, what: str, cache: dict, **kwargs):
    """Add ``<source name> <what>`` or update it in place when its shape still fits.

    The new layer takes the source's scale and translate unless ``scale``/``translate`` are given,
    and sits right above the source so hint points and other overlays stay on top.
    """
    name = f"{source.name} {what}"
    kwargs.setdefault("scale", source.scale)
    kwargs.setdefault("translate", source.translate)
    layer = cache.get((id(source), what))
    if layer is None or layer not in viewer.layers:
        layer = viewer.layers[name] if name in viewer.layers else None
    if layer is not None and layer.data.shape == data.shape and layer.ndim == len(kwargs["scale"]):
        layer.data = data
        layer.scale, layer.translate = kwargs["scale"], kwargs["translate"]
    else:
        if layer is not None:
            viewer.layers.remove(layer)
        layer = viewer.add_image(data, name=name, **kwargs)
        if source in viewer.layers:
            viewer.layers.move(viewer.layers.index(layer), viewer.layers.index(source) + 1)
    cache[(id(source), what)] = layer
    return layer
