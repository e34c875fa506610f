"""Hint layers: Points, Shapes and Labels layers to hint arrays, their next color, their edits.

A Points layer's face colors, a Shapes layer's paths and regions and a Labels layer's colored
segments all become the same (points, colors) arrays in the image's pixel coordinates
(:mod:`..core.scribbles` samples the shapes and segments), so every kind of hint goes through
one colorization mechanism.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..core.scribbles import MAX_POINTS, Stroke, ellipse_polygon, label_hints, stroke_hints
from .layers import hints_from_points, to_image_coords

#: border of hint points: a mid gray stands out on dark and on light pixels alike
HINT_BORDER = "#808080"
#: events that mean a layer's hints changed (data events fire twice: "-ing" before, "-ed" after)
HINT_EVENTS = {"Points": ("data", "face_color", "current_face_color"),
               "Shapes": ("data", "face_color", "edge_color"),
               "Labels": ("data", "paint", "colormap")}


def hint_layer_types() -> tuple:
    """The layer classes that can hold hints."""
    from napari.layers import Labels, Points, Shapes

    return Points, Shapes, Labels


def plane_shape(image_layer) -> tuple[int, int]:
    """Height and width of the image layer's planes at full resolution."""
    data = image_layer.data[0] if image_layer.multiscale else image_layer.data
    shape = tuple(data.shape)
    return shape[-3:-1] if image_layer.rgb else shape[-2:]


def _strokes(layer, image_layer) -> list:
    """The Shapes layer's shapes as :class:`Stroke` s in the image's coordinates, with their plane."""
    out = []
    for verts, kind, edge, face in zip(layer.data, layer.shape_type, layer.edge_color, layer.face_color):
        v = to_image_coords(layer, verts, image_layer)
        lead = tuple(np.rint(v[0, :-2]).astype(int))
        plane = ellipse_polygon(v[:, -2:]) if kind == "ellipse" else v[:, -2:]
        if kind in ("path", "line"):
            stroke = Stroke(plane, edge[:3]) if edge[3] > 0 else None
        elif face[3] > 0:  # a filled shape is a region hint; an unfilled one its outline
            stroke = Stroke(plane, face[:3], region=True)
        else:
            stroke = Stroke(plane, edge[:3], closed=True) if edge[3] > 0 else None
        if stroke is not None:
            out.append((lead, stroke))
    return out


def _with_lead(groups: dict, sample: Callable):
    """Points of several planes: ``sample(items)`` per plane, each point prefixed by its plane index."""
    pts, cols = [], []
    budget = max(1, MAX_POINTS // max(1, len(groups)))
    for lead, items in groups.items():
        p, c = sample(items, budget)
        pts.append(np.hstack([np.tile(np.asarray(lead, float), (len(p), 1)), p]))
        cols.append(c)
    if not pts or not sum(len(p) for p in pts):
        return None, None
    return np.concatenate(pts), np.concatenate(cols)


def hints_from_shapes(layer, image_layer):
    """Hint points and colors sampled along a Shapes layer's paths and inside its filled shapes."""
    shape = plane_shape(image_layer)
    groups: dict = {}
    for lead, stroke in _strokes(layer, image_layer):
        groups.setdefault(lead, []).append(stroke)
    return _with_lead(groups, lambda strokes, n: stroke_hints(strokes, shape, n))


def _present(plane: np.ndarray) -> np.ndarray:
    """Labels (> 0) present in an integer plane."""
    if plane.size and plane.min() >= 0 and plane.max() < (1 << 22):
        found = np.flatnonzero(np.bincount(plane.ravel()))  # far faster than unique on big planes
    else:
        found = np.unique(plane)
    return found[found > 0]


def hints_from_labels(layer, image_layer):
    """Hint points and colors inside a Labels layer's segments, each in its label's color."""
    data = np.asarray(layer.data[0] if layer.multiscale else layer.data)
    n_lead = data.ndim - 2
    groups = {}
    for idx in np.ndindex(*data.shape[:n_lead]):
        plane = data[idx] if idx else data
        ids = _present(plane)
        if len(ids):
            groups[idx] = (plane, {int(k): layer.get_color(int(k)) for k in ids})
    if not groups:
        return None, None

    def sample(item, n):
        plane, colors = item
        colors = {k: c for k, c in colors.items() if c is not None}
        return label_hints(plane, colors, n)

    pts, cols = _with_lead(groups, sample)
    if pts is None:
        return None, None
    return to_image_coords(layer, pts, image_layer), cols


def hints_from_layer(layer, image_layer):
    """(points, colors) of any hint layer in the image layer's data coordinates, or (None, None)."""
    from napari.layers import Labels, Shapes

    if layer is None:
        return None, None
    if isinstance(layer, Shapes):
        return hints_from_shapes(layer, image_layer)
    if isinstance(layer, Labels):
        return hints_from_labels(layer, image_layer)
    return hints_from_points(layer, image_layer)


def watch(layer, callback: Callable) -> Callable:
    """Call ``callback()`` after each finished edit of ``layer``'s hints; returns the disconnector.

    Data events that announce a change still to come ("adding", "changing", "removing") are
    skipped: the edit calls back once it is done.
    """
    def on_event(event=None):
        action = str(getattr(getattr(event, "action", None), "value", getattr(event, "action", "")) or "")
        if not action.endswith("ing"):
            callback()

    emitters = [getattr(layer.events, n) for n in HINT_EVENTS.get(type(layer).__name__, ())
                if hasattr(layer.events, n)]
    for em in emitters:
        em.connect(on_event)

    def disconnect():
        for em in emitters:
            em.disconnect(on_event)

    return disconnect


def set_next_color(layer, rgb) -> None:
    """Make ``rgb`` the color of the hints added next to ``layer``, leaving existing hints as they are.

    napari selects each new point and shape, and setting a current color recolors the selection;
    here the selection keeps its color. A Labels layer gets a new label of that color to paint with.
    """
    from napari.layers import Labels, Shapes

    rgba = np.append(np.asarray(rgb, float)[:3], 1.0)
    if isinstance(layer, Labels):
        _new_label(layer, rgba)
        return
    with layer.block_update_properties():
        layer.current_face_color = rgba
        if isinstance(layer, Shapes):
            layer.current_edge_color = rgba


def keep_next_color(layer, color: Callable, follow: Callable | None = None) -> Callable:
    """Give points and shapes added to ``layer`` the color ``color()``; returns the disconnector.

    napari makes a selected point's or shape's color the current one, so a hint added after
    selecting or moving another would take that one's color instead of the one chosen for the
    next hints. Only additions (``add``, drawing in an add mode) are recolored, never data set
    wholesale; their alpha is kept (a shape drawn with a clear face stays an outline). A color
    the user sets in the layer controls with nothing selected goes to ``follow(rgb)``, so the
    next hints take that one.
    """
    from napari.layers import Points, Shapes

    if not isinstance(layer, (Points, Shapes)):
        return lambda: None
    attrs = ("face_color",) if isinstance(layer, Points) else ("face_color", "edge_color")
    count = [len(layer.data)]

    def on_data(event=None):
        action = str(getattr(getattr(event, "action", None), "value", getattr(event, "action", "")))
        if action.endswith("ing"):
            return
        before, count[0] = count[0], len(layer.data)
        idx = np.asarray(getattr(event, "data_indices", ()) or (), int)
        # a shape too short to keep is removed yet announced as added: only real growth counts
        if action != "added" or not len(idx) or (idx >= 0).any() or count[0] <= before:
            return
        new = np.arange(before, count[0])
        rgb = np.asarray(color(), float)[:3]
        for attr in attrs:
            colors = np.array(getattr(layer, attr), float)
            if len(colors) != count[0] or np.allclose(colors[new, :3], rgb, atol=1e-3):
                continue
            colors[new, :3] = rgb
            setattr(layer, attr, colors)

    def on_current(event=None):
        from napari.utils.colormaps.standardize_color import transform_color

        rgb = transform_color(layer.current_face_color)[0][:3]
        # napari keeps the current color in 8 bits: a difference below that is the same color
        if follow is not None and not len(layer.selected_data) and not np.allclose(rgb, color()[:3], atol=0.005):
            follow(rgb)

    layer.events.data.connect(on_data)
    layer.events.current_face_color.connect(on_current)

    def disconnect():
        layer.events.data.disconnect(on_data)
        layer.events.current_face_color.disconnect(on_current)

    return disconnect


def _new_label(layer, rgba) -> None:
    from napari.utils.colormaps import DirectLabelColormap

    data = layer.data[0] if layer.multiscale else layer.data
    ids = _present(np.asarray(data))
    new = int(ids.max() if len(ids) else 0) + 1  # unused: no painted pixel changes color
    old = layer.colormap
    colors = dict(old.color_dict) if isinstance(old, DirectLabelColormap) else {None: np.array([0.5, 0.5, 0.5, 1.0])}
    colors.update({int(k): layer.get_color(int(k)) for k in ids if int(k) not in colors})
    colors.update({0: np.zeros(4), new: rgba})
    layer.colormap = DirectLabelColormap(color_dict=colors)
    layer.selected_label = new


def new_hints_layer(viewer, image_layer, rgb):
    """A Points layer over ``image_layer`` ready for hints: add mode, the given color, a visible border."""
    size = max(4.0, max(plane_shape(image_layer)) / 40.0)
    layer = viewer.add_points(
        np.zeros((0, image_layer.ndim)), name=f"{image_layer.name} hints", scale=image_layer.scale,
        translate=image_layer.translate, size=size, face_color=np.append(rgb, 1.0), border_color=HINT_BORDER,
        border_width=0.2, border_width_is_relative=True,
    )
    set_next_color(layer, rgb)
    layer.current_size = size
    viewer.layers.selection.active = layer
    layer.mode = "add"
    return layer


def pick_color(viewer, position):
    """RGB in [0, 1] of the topmost visible RGB image layer at world ``position``, or None when
    there is none or an opaque gray layer above it hides it there.

    The value is mapped through the layer's contrast limits, so it is the color on screen.
    """
    from napari.layers import Image

    for layer in reversed(list(viewer.layers)):
        if not (isinstance(layer, Image) and layer.visible):
            continue
        value = layer.get_value(position, world=True)
        if isinstance(value, tuple):  # multiscale: (level, value)
            value = value[1]
        if value is None:
            continue
        if not layer.rgb:
            if layer.opacity >= 1.0 and layer.blending in ("opaque", "translucent", "translucent_no_depth"):
                return None  # what is on screen here is this layer's gray
            continue
        v = np.asarray(value, dtype=float).ravel()[:3]
        if v.size < 3 or not np.isfinite(v).all():
            continue
        lo, hi = (float(x) for x in layer.contrast_limits)
        return np.clip((v - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    return None
