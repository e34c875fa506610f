"""Big layers get a lazy multiscale result: a list of dask arrays, computed as napari shows it."""

from __future__ import annotations

import dask.array as da
import numpy as np


def test_multiscale_layer_gives_a_lazy_multiscale_result(make_napari_viewer, gray_photo, tiny):
    from napari_colorize._napari.lazy import add_lazy_result

    viewer = make_napari_viewer()
    big = da.from_array(np.tile(gray_photo, (4, 4)), chunks=512)
    pyramid = [big, big[::2, ::2], big[::4, ::4]]
    src = viewer.add_image(pyramid, multiscale=True, name="scan", scale=(0.5, 0.5))
    layer, used = add_lazy_result(viewer, src, tiny)
    assert layer.multiscale and layer.rgb and layer.name == "scan colorized"
    data = list(layer.data)
    assert all(isinstance(lv, da.Array) for lv in data) and len(data) == 3
    assert [lv.shape[:2] for lv in data] == [lv.shape for lv in pyramid]
    # the finest level the network sees whole: 512 px for this model's tile_above of 512
    assert used == 2 and max(pyramid[used].shape) <= tiny.tile_above < max(pyramid[used - 1].shape)
    assert tuple(layer.scale) == (0.5, 0.5)
    corner = np.asarray(data[0][:256, :256])
    assert corner.shape == (256, 256, 3) and 0.0 <= corner.min() and corner.max() <= 1.0


def test_single_dask_layer_is_given_a_pyramid(gray_photo, tiny):
    from napari_colorize._napari.lazy import lazy_multiscale

    levels, used = lazy_multiscale(da.from_array(np.tile(gray_photo, (3, 3)), chunks=512), tiny)
    assert len(levels) >= 2 and all(isinstance(lv, da.Array) for lv in levels)
    assert levels[0].shape[:2] == (3 * gray_photo.shape[0], 3 * gray_photo.shape[1])
    assert max(levels[-1].shape[:2]) <= 512 and 0 <= used < len(levels)


def test_colorize_dock_gives_a_big_layer_a_lazy_result(colorize_dock, gray_photo, qtbot):
    viewer, dock = colorize_dock
    big = da.from_array(np.tile(gray_photo, (3, 3)), chunks=256)
    src = viewer.add_image([big, big[::2, ::2]], multiscale=True, name="scan", scale=(2.0, 2.0))
    dock.image.value = src
    dock.run()
    qtbot.waitUntil(lambda: dock._worker is None, timeout=60000)
    out = viewer.layers["scan colorized"]
    assert out.multiscale and all(isinstance(lv, da.Array) for lv in out.data)
    assert tuple(out.scale) == (2.0, 2.0)
    assert "global pass at level" in dock.status.value
    first = out
    dock.run()  # a re-run replaces its own result rather than piling up layers
    qtbot.waitUntil(lambda: dock._worker is None, timeout=60000)
    names = [ly.name for ly in viewer.layers]
    assert names.count("scan colorized") == 1 and first not in viewer.layers
