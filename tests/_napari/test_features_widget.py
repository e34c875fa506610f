"""Feature layers in a real viewer: every contribution of the manifest, opened as a user would."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as skdata
from skimage.color import rgb2gray

PLUGIN = "napari-colorize"
FILTERS = {"resize", "rotate", "flip", "grayscale", "gaussian", "normalize", "color_channels", "color_gradient"}
DOCKS = {"colorize_widget", "inspect_widget", "metrics_widget", "finetune_widget", "edges_widget",
         "segments_widget", "shapes_widget"}
MENUS = {"napari/layers/transform": {"resize", "rotate", "flip"},
         "napari/layers/filter": {"gaussian", "normalize", "edges_widget", "color_gradient"},
         "napari/layers/data": {"grayscale", "color_channels"},
         "napari/layers/segment": {"segments_widget"},
         "napari/layers/measure": {"shapes_widget"}}


@pytest.fixture
def sample():
    rgb = skdata.astronaut()[::6, ::5][:80, :88].copy()  # 80 x 88 x 3 uint8
    return rgb, (rgb2gray(rgb) * 255).astype(np.uint8)


def _manifest():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    return pm.get_manifest(PLUGIN)


def _short(command_id: str) -> str:
    return command_id.split(".", 1)[1]


def _widgets():
    """(command short id, display name) of the manifest's docks."""
    return {_short(w.command): w.display_name for w in _manifest().contributions.widgets}


def _menu_commands() -> set:
    return {_short(item.command) for items in _manifest().contributions.menus.values() for item in items}


def _open_filter(viewer, cmd: str):
    """Open a filter dock the way its Layers menu entry does: by running the command."""
    from napari._app_model import get_app_model

    return get_app_model().commands.execute_command(f"{PLUGIN}.{cmd}").result()


def test_manifest_places_every_contribution_in_its_menu():
    mf = _manifest()
    assert set(_widgets()) == DOCKS
    # the core tools lead the Plugins menu, which lists the docks in manifest order
    assert [_short(w.command) for w in mf.contributions.widgets][:4] == [
        "colorize_widget", "inspect_widget", "metrics_widget", "finetune_widget"]
    titles = {_short(c.id): c.title for c in mf.contributions.commands}
    for menu, expected in MENUS.items():
        got = {_short(item.command) for item in mf.contributions.menus[menu]}
        assert got == expected, menu
        assert all(titles[c] for c in got)
    assert not FILTERS & set(_widgets())  # generic filters are in the Layers menus only


def test_plugins_menu_lists_the_docks_and_no_filter(make_napari_viewer):
    from napari._app_model import get_app_model

    make_napari_viewer()
    menu = get_app_model().menus.get_menu(f"napari/plugins/{PLUGIN}")
    ids = [_short(item.command.id) for item in menu if hasattr(item, "command")]
    assert ids[:4] == ["colorize_widget", "inspect_widget", "metrics_widget", "finetune_widget"]
    assert set(ids) == DOCKS


def _new_layers(viewer, before):
    return [lay for lay in viewer.layers if lay not in before]


def _wait(qtbot, w):
    qtbot.waitUntil(lambda: w._worker is None, timeout=30000)


def test_every_contribution_adds_its_layers(make_napari_viewer, qtbot, sample, tmp_path, model):
    from napari.layers import Image, Labels

    rgb, gray = sample
    viewer = make_napari_viewer()
    photo = viewer.add_image(rgb, name="photo", scale=(2.0, 2.0), translate=(5.0, -3.0))
    g = viewer.add_image(gray, name="gray", scale=(2.0, 2.0), translate=(5.0, -3.0))
    hw = rgb.shape[:2]

    # magicgui functions: (expected {name suffix: (type, shape)}, parameters)
    functions = {
        "resize": ({"resized": (Image, (40, 44, 3))}, {"factor": 0.5}),
        "rotate": ({"rotated": (Image, (*hw, 3))}, {"angle": 90.0}),
        "flip": ({"flipped": (Image, (*hw, 3))}, {"direction": "vertical"}),
        "grayscale": ({"gray": (Image, hw)}, {"method": "luma709"}),
        "gaussian": ({"smoothed": (Image, (*hw, 3))}, {"sigma": 1.5}),
        "normalize": ({"normalized": (Image, (*hw, 3))}, {}),
        "color_channels": ({"L*": (Image, hw), "a*": (Image, hw), "b*": (Image, hw)}, {"space": "lab"}),
        "color_gradient": ({"color gradient magnitude": (Image, hw), "color gradient direction": (Image, hw)}, {}),
    }
    names = _widgets()
    seen = set()
    for cmd, (expected, params) in functions.items():
        before = list(viewer.layers)
        viewer.layers.selection.active = g
        w = _open_filter(viewer, cmd)
        assert w.image.value is g  # preselected: the selected layer
        w.image.value = photo
        for k, v in params.items():
            getattr(w, k).value = v
        w()
        new = {lay.name: lay for lay in _new_layers(viewer, before)}
        assert set(new) == {f"photo {s}" for s in expected}, cmd
        for suffix, (kind, shape) in expected.items():
            lay = new[f"photo {suffix}"]
            assert isinstance(lay, kind) and lay.data.shape == shape, (cmd, suffix)
            if cmd not in ("resize", "rotate"):
                np.testing.assert_allclose(lay.translate, (5.0, -3.0))
                np.testing.assert_allclose(lay.scale, (2.0, 2.0))
        seen.add(cmd)
    # outputs keep the geometry: resize doubles the pixel size, the image stays in place
    np.testing.assert_allclose(viewer.layers["photo resized"].scale, (4.0, 4.0))
    np.testing.assert_allclose(viewer.layers["photo resized"].translate, (6.0, -2.0))
    assert (viewer.layers["photo flipped"].data == rgb[::-1]).all()
    assert photo.data is rgb or (photo.data == rgb).all()  # the input is untouched

    # Edges, step by step
    before = list(viewer.layers)
    _, edges = viewer.window.add_plugin_dock_widget(PLUGIN, names["edges_widget"])
    edges.image.value = g
    edges.run()
    _wait(qtbot, edges)
    new = {lay.name: lay for lay in _new_layers(viewer, before)}
    from napari_colorize.core.edges import STEPS

    assert set(new) == {f"gray {s}" for s in STEPS}
    assert all(isinstance(lay, Image) and lay.data.shape == hw for lay in new.values())
    canny = new["gray canny"]
    assert 0 < canny.data.sum() < canny.data.size / 4 and canny.visible and not new["gray nms"].visible
    assert viewer.layers.index(canny) > viewer.layers.index(new["gray gaussian"])
    seen.add("edges_widget")

    # Superpixels
    before = list(viewer.layers)
    _, seg = viewer.window.add_plugin_dock_widget(PLUGIN, names["segments_widget"])
    seg.image.value = photo
    seg.method.value = "slic"
    seg.n_segments.value = 30
    seg.run()
    _wait(qtbot, seg)
    (labels,) = _new_layers(viewer, before)
    assert isinstance(labels, Labels) and labels.name == "photo slic" and labels.data.shape == hw
    assert 15 <= labels.data.max() <= 45
    np.testing.assert_allclose(labels.scale, (2.0, 2.0))
    seen.add("segments_widget")

    # Shapes: descriptors into features, CSV, matching
    before = list(viewer.layers)
    _, shapes = viewer.window.add_plugin_dock_widget(PLUGIN, names["shapes_widget"])
    shapes.segments.value = labels
    table = shapes.measure()
    assert len(labels.features) == labels.data.max() == len(table["index"])
    assert {"area", "perimeter", "eccentricity", "solidity", "circularity", "hu_0"} <= set(labels.features)
    out = shapes.export_csv(tmp_path / "shapes.csv")
    assert len(out.read_text().splitlines()) == len(labels.features) + 1
    shapes.label_id.value = 1
    shapes.top.value = 3
    ids, _ = shapes.match()
    (matches,) = _new_layers(viewer, before)
    assert isinstance(matches, Labels) and matches.name == "photo slic matches" and matches.data.shape == hw
    assert set(np.unique(matches.data)) == {0, *ids[:3]} and 1 not in ids
    seen.add("shapes_widget")

    # Inspect model (issue 2's widget, in the same manifest sweep)
    before = list(viewer.layers)
    _, insp = viewer.window.add_plugin_dock_widget(PLUGIN, names["inspect_widget"])
    insp.image.value = g
    insp.stage.value = "enc2"
    insp._start("maps")
    _wait(qtbot, insp)
    (maps,) = _new_layers(viewer, before)
    assert isinstance(maps, Image) and maps.data.ndim == 3 and maps.data.shape[1:] == (40, 44)
    seen.add("inspect_widget")
    # every Layers menu entry of the manifest was opened and checked above
    assert _menu_commands() <= seen


def test_rerun_with_new_parameters_updates_the_layers(make_napari_viewer, qtbot, sample):
    _, gray = sample
    viewer = make_napari_viewer()
    g = viewer.add_image(gray, name="gray")
    w = _open_filter(viewer, "resize")
    assert w.image.value is g
    w.factor.value = 0.5
    w()
    layer = viewer.layers["gray resized"]
    w.factor.value = 0.25
    w()
    assert viewer.layers["gray resized"] is layer and layer.data.shape == (20, 22) and len(viewer.layers) == 2

    _, edges = viewer.window.add_plugin_dock_widget(PLUGIN, _widgets()["edges_widget"])
    edges.image.value = g
    edges.sigma.value = 0.5
    edges.run()
    _wait(qtbot, edges)
    canny = viewer.layers["gray canny"]
    n_sharp = int(canny.data.sum())
    edges.sigma.value = 3.0
    edges.run()
    _wait(qtbot, edges)
    assert viewer.layers["gray canny"] is canny and int(canny.data.sum()) < n_sharp
    assert len(viewer.layers) == 2 + 5


def test_dask_stacks_stay_lazy(make_napari_viewer, qtbot, sample):
    import dask.array as da

    _, gray = sample
    viewer = make_napari_viewer()
    stack = viewer.add_image(da.from_array(np.stack([gray, gray[::-1], gray[:, ::-1]]), chunks=(1, 80, 88)),
                             name="stack")
    _, edges = viewer.window.add_plugin_dock_widget(PLUGIN, _widgets()["edges_widget"])
    edges.image.value = stack
    edges.run()
    _wait(qtbot, edges)
    assert isinstance(viewer.layers["stack canny"].data, da.Array)
    assert viewer.layers["stack canny"].data.shape == (3, 80, 88)
    _, seg = viewer.window.add_plugin_dock_widget(PLUGIN, _widgets()["segments_widget"])
    seg.image.value = stack
    seg.method.value = "kmeans"
    seg.run()
    _wait(qtbot, seg)
    lab = viewer.layers["stack kmeans"].data
    assert lab.shape == (3, 80, 88) and set(np.unique(lab)) == {1, 2, 3, 4}
    assert seg.progress.value == seg.progress.max == 4


def test_bad_input_shows_a_message_and_changes_nothing(make_napari_viewer, qtbot, monkeypatch, sample):
    import napari.utils.notifications as notes

    from napari_colorize._napari.widgets import filters as fw

    shown = []
    monkeypatch.setattr(notes, "show_error", lambda msg: shown.append(msg))
    rgb, gray = sample
    viewer = make_napari_viewer()
    rgba = viewer.add_image(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), name="rgba")
    flat = viewer.add_image(np.full((16, 16), 7, np.uint16), name="flat")
    nan = viewer.add_image(np.where(gray > 100, np.nan, 1.0).astype(np.float32), name="nan")
    n = len(viewer.layers)
    assert fw.resize_image(rgba, 0.5) is None and "RGBA" in shown[-1]
    assert fw.grayscale(flat) is None and "needs an RGB" in shown[-1]
    assert fw.gaussian_smoothing(nan, 1.0) is None and "NaN" in shown[-1]
    assert fw.color_channels(flat) is None and "RGB" in shown[-1]
    _, seg = viewer.window.add_plugin_dock_widget(PLUGIN, _widgets()["segments_widget"])
    seg.image.value = flat
    seg.run()
    _wait(qtbot, seg)
    assert "constant" in shown[-1] and "constant" in seg.status.value
    _, shapes = viewer.window.add_plugin_dock_widget(PLUGIN, _widgets()["shapes_widget"])
    labels = viewer.add_labels(np.zeros((16, 16), np.int32), name="empty")
    shapes.segments.value = labels
    assert shapes.measure() is None and "no segments" in shown[-1]
    labels.data[2:8, 2:8] = 1
    shapes.label_id.value = 5
    assert shapes.match() is None and "no pixels" in shown[-1]
    assert len(viewer.layers) == n + 1  # only the labels layer added here
    assert (viewer.layers["flat"].data == 7).all() and rgba.data.shape[-1] == 4
    # the descriptor table shows one row per segment, its first column the label id
    labels.data[10:14, 10:14] = 2
    shapes.measure()
    table = shapes.table.value
    assert table["columns"][0] == "index" and [int(row[0]) for row in table["data"]] == [1, 2]
