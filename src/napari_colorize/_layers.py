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


def publish(viewer, source, data, suffix: str, cache: dict, **kwargs):
    """Add ``<source name> <suffix>`` with the source's scale and translate, or update it in place."""
    name = f"{source.name} {suffix}"
    layer = cache.get((id(source), suffix))
    if layer is None or layer not in viewer.layers:
        layer = viewer.layers[name] if name in viewer.layers else None
    if layer is not None and layer.data.shape == data.shape:
        layer.data = data
    else:
        if layer is not None:
            viewer.layers.remove(layer)
        layer = viewer.add_image(data, name=name, scale=source.scale, translate=source.translate, **kwargs)
        if source in viewer.layers:
            # right above its input, so hint points and other overlays stay on top
            viewer.layers.move(viewer.layers.index(layer), viewer.layers.index(source) + 1)
    cache[(id(source), suffix)] = layer
    return layer
