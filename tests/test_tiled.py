"""Big images (seamless tiles, bounded memory, file outputs), multiscale levels, temporal smoothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from napari_colorize import InputError, colorize
from napari_colorize.core.tiling import axis_windows, colorize_tiled, receptive_radius, tile_geometry


@pytest.fixture(scope="module")
def tiny():
    """A randomly initialised narrow network: same architecture and receptive field, much faster."""
    from napari_colorize.core.color import ab_bins
    from napari_colorize.core.modelfile import Colorizer

    torch.manual_seed(0)
    m = Colorizer.new(torch.from_numpy(ab_bins()), width=4)
    m.net.eval()
    return m


@pytest.fixture(scope="module")
def big_gray(gray_photo):
    """A 640 x 720 plane with structure everywhere (the photo, mirrored)."""
    g = np.concatenate([gray_photo, gray_photo[:, ::-1]], axis=1)
    return np.ascontiguousarray(np.concatenate([g, g[::-1]], axis=0)[:640, :720])


class Recorder:
    """An array-like that records the size of every read or write it gets."""

    def __init__(self, arr):
        self.arr, self.shape, self.dtype, self.pieces = arr, arr.shape, arr.dtype, []

    def __getitem__(self, key):
        piece = self.arr[key]
        self.pieces.append(piece.shape[0] * piece.shape[1])
        return piece

    def __setitem__(self, key, value):
        self.pieces.append(value.shape[0] * value.shape[1])
        self.arr[key] = value


def _chroma(rgb):
    return np.hypot(*np.moveaxis(rgb2lab(rgb)[..., 1:], -1, 0))


# -- core: tiles --------------------------------------------------------------------------------------------
def test_margin_covers_the_measured_receptive_field(model, tiny):
    r = receptive_radius(model)
    assert 40 < r < 120 and receptive_radius(tiny) == r  # same architecture, same reach
    geo = tile_geometry(model)
    assert geo["radius"] >= r and geo["margin"] % 8 == 0 and geo["step"] % 8 == 0
    with pytest.raises(InputError, match="receptive field"):
        tile_geometry(model, 128)


def test_tiles_match_one_window_and_leave_no_seam(model, big_gray):
    kw = {"downsample": 4, "temperature": 0.4}
    whole = colorize_tiled(model, big_gray, tile=None, **kw)
    tiled = colorize_tiled(model, big_gray, tile=256, **kw)
    # the margins exceed the receptive field, so tiling changes nothing (float rounding aside)
    assert np.abs(tiled - whole).max() < 1e-3
    assert _chroma(tiled).mean() > 2.0  # and there is color to find seams in
    # no step where neighbouring windows cross-fade: the column-to-column change there is typical
    geo = tile_geometry(model, 256)
    wins = axis_windows(2 * -(-big_gray.shape[1] // 8), geo)
    assert len(wins) >= 3
    # no step where neighbouring windows cross-fade: column-to-column change there is the photo's own
    jump = np.abs(np.diff(tiled, axis=1)).mean(axis=(0, 2))
    jump_whole = np.abs(np.diff(whole, axis=1)).mean(axis=(0, 2))
    for o, _ in wins[1:]:
        x = (o + geo["radius"] + geo["blend"] // 2) * 4  # middle of the cross-fade, image pixels
        assert np.abs(jump[x - 8 : x + 8] - jump_whole[x - 8 : x + 8]).max() < 2e-4


def test_tiled_reads_and_writes_bounded_pieces(tiny, big_gray, monkeypatch):
    from napari_colorize.core import tiling

    wide = np.ascontiguousarray(np.tile(big_gray[:160], (1, 2)))  # 160 x 1440: one row of windows
    ref = colorize_tiled(tiny, wide, tile=384, downsample=2)
    monkeypatch.setattr(tiling, "_STRIP_PIXELS", 40_000)
    src = Recorder(wide)
    dst = Recorder(np.zeros(wide.shape + (3,), np.uint8))
    colorize_tiled(tiny, src, tile=384, downsample=2, out=dst)
    area = wide.size
    assert len(dst.pieces) > 4 and max(dst.pieces) < area / 4 and sum(dst.pieces) == area
    assert len(src.pieces) > 4 and max(src.pieces) <= 160 * 384 * 2  # a window at most, never the plane
    np.testing.assert_allclose(dst.arr / 255.0, ref, atol=1 / 255 + 1e-6)


def test_auto_mode_keeps_small_images_whole_and_tiles_big_ones(tiny, gray_photo, big_gray):
    from napari_colorize.core.inference import colorize_plane

    np.testing.assert_array_equal(colorize(gray_photo, model=tiny), colorize_plane(tiny, gray_photo))
    auto = colorize(big_gray, model=tiny)
    np.testing.assert_allclose(auto, colorize_tiled(tiny, big_gray), atol=1e-6)
    calls = []
    colorize(big_gray, model=tiny, tile=256, downsample=4, progress=lambda d, t: calls.append((d, t)))
    assert len(calls) >= 3 and calls[-1][0] == calls[-1][1]
    with pytest.raises(InputError, match="mode"):
        colorize(gray_photo, model=tiny, mode="fast")
    with pytest.raises(InputError, match="downsample"):
        colorize(big_gray, model=tiny, mode="tiled", downsample=0)


def test_file_outputs_match_memory_and_bad_input_leaves_old_file_alone(tiny, big_gray, tmp_path):
    big_gray = big_gray[:320, :360]
    ref = colorize(big_gray, model=tiny, tile=256, downsample=4)
    npy = colorize(big_gray, model=tiny, tile=256, downsample=4, out=tmp_path / "out.npy")
    np.testing.assert_allclose(np.asarray(npy), ref, atol=1e-6)
    zarr = pytest.importorskip("zarr")
    z = colorize(big_gray, model=tiny, tile=256, downsample=4, out=tmp_path / "out.zarr", dtype="uint8")
    np.testing.assert_allclose(np.asarray(z[:]) / 255.0, ref, atol=1 / 255 + 1e-6)
    # an existing zarr array is filled in place
    arr = zarr.zeros(big_gray.shape + (3,), chunks=(256, 256, 3), dtype="f4")
    assert colorize(big_gray, model=tiny, tile=256, downsample=4, out=arr) is arr
    np.testing.assert_allclose(arr[:], ref, atol=1e-6)

    before = np.load(tmp_path / "out.npy")
    bad = np.lib.format.open_memmap(tmp_path / "bad.npy", "w+", np.float32, big_gray.shape)
    bad[:] = big_gray / 255.0
    bad[300, 350] = np.nan
    with pytest.raises(InputError, match="NaN"):
        colorize(bad, model=tiny, tile=256, downsample=4, out=tmp_path / "out.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), before)
    assert not [p.name for p in tmp_path.iterdir() if "partial" in p.name]  # no leftovers
    with pytest.raises(InputError, match="shape"):
        colorize(big_gray, model=tiny, out=np.zeros((3, 3, 3), np.float32))


def test_dask_stacks_stay_lazy_per_plane(tiny, gray_photo):
    da = pytest.importorskip("dask.array")
    calls = []

    def load(block, block_info=None):
        calls.append(block_info[None]["chunk-location"][0])
        return block

    stack = np.stack([gray_photo[:96, :96], gray_photo[100:196, 100:196], gray_photo[200:296, :96]])
    lazy_in = da.from_array(stack, chunks=(1, 96, 96)).map_blocks(load, dtype=stack.dtype)
    out = colorize(lazy_in, model=tiny, mode="tiled", tile=256, downsample=1)
    assert isinstance(out, da.Array) and out.shape == (3, 96, 96, 3) and not calls
    np.testing.assert_allclose(out[1].compute(), colorize(stack[1], model=tiny, mode="tiled", tile=256,
                                                          downsample=1), atol=1e-6)
    assert calls == [1]
    # temporal smoothing chains the planes lazily and gives the same as the in-memory loop
    smooth = colorize(lazy_in, model=tiny, temporal=0.6)
    assert isinstance(smooth, da.Array)
    np.testing.assert_allclose(smooth.compute(), colorize(stack, model=tiny, temporal=0.6), atol=1e-6)


def test_multiscale_level_choice(tiny, gray_photo):
    pyramid = [gray_photo, gray_photo[::2, ::2], gray_photo[::4, ::4]]
    np.testing.assert_array_equal(colorize(pyramid, model=tiny), colorize(gray_photo, model=tiny))
    np.testing.assert_array_equal(colorize(pyramid, level=2, model=tiny),
                                  colorize(gray_photo[::4, ::4], model=tiny))
    with pytest.raises(InputError, match="level"):
        colorize(pyramid, level=3, model=tiny)
    with pytest.raises(InputError, match="multiscale"):
        colorize(gray_photo, level=1, model=tiny)


# -- core: temporal consistency -----------------------------------------------------------------------------
def _flicker(rgb_stack):
    ab = rgb2lab(rgb_stack)[..., 1:]
    return float(np.abs(np.diff(ab, axis=0)).mean())


def test_temporal_smoothing_reduces_flicker_and_keeps_color(model, gray_photo):
    rng = np.random.default_rng(0)
    scene = gray_photo[150:278, 180:308].astype(float)
    frames = np.clip(scene + rng.normal(0, 10, (6,) + scene.shape), 0, 255).astype(np.uint8)
    plain = colorize(frames, model=model)
    smooth = colorize(frames, model=model, temporal=0.7)
    assert _flicker(smooth) < 0.8 * _flicker(plain)
    assert _chroma(smooth).mean() > 0.7 * _chroma(plain).mean() > 1.0  # still colored
    with pytest.raises(InputError, match="temporal"):
        colorize(frames, model=model, temporal=1.5)


def test_temporal_smoothing_does_not_ghost_after_a_cut(model, gray_photo):
    a, b = gray_photo[:128, :128], gray_photo[300:428, 300:428]
    plain = colorize(b, model=model)
    smooth = colorize(np.stack([a, b]), model=model, temporal=0.8)[1]
    moved = np.abs(a.astype(int) - b.astype(int)) > 60
    diff = np.abs(rgb2lab(smooth)[..., 1:] - rgb2lab(plain)[..., 1:]).mean(axis=-1)
    assert diff[moved].mean() < 3.0  # where the content changed, the old colors do not linger


# -- widget -------------------------------------------------------------------------------------------------
@pytest.fixture()
def widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-colorize", "Colorize")
    return viewer, w


def _wait(qtbot, w):
    qtbot.waitUntil(lambda: w._worker is None, timeout=60000)


def test_widget_colorizes_a_chosen_pyramid_level(qtbot, widget, gray_photo):
    viewer, w = widget
    pyramid = [gray_photo, gray_photo[::2, ::2]]
    src = viewer.add_image(pyramid, multiscale=True, name="pyr", scale=(0.5, 0.5), translate=(3, 4))
    w.reset_choices()
    w.image.value = src
    assert w.level.enabled and list(w.level.choices) == [0, 1] and w.level.value == 0
    w.level.value = 1
    w.run()
    _wait(qtbot, w)
    out = viewer.layers["pyr colorized"]
    assert out.data.shape == (256, 256, 3)
    np.testing.assert_allclose(out.scale, (1.0, 1.0))
    np.testing.assert_allclose(out.translate, (3, 4))


def test_widget_previews_the_field_of_view_in_place(qtbot, widget, gray_photo):
    viewer, w = widget
    pyramid = [gray_photo, gray_photo[::2, ::2], gray_photo[::4, ::4]]
    src = viewer.add_image(pyramid, multiscale=True, name="pyr", scale=(2.0, 2.0), translate=(10, -6))
    w.reset_choices()
    w.image.value = src
    viewer.camera.center = (10 + 2 * 300, -6 + 2 * 200)
    viewer.camera.zoom = 2.0  # four screen pixels per image pixel: full resolution is used
    w.preview()
    _wait(qtbot, w)
    prev = viewer.layers["pyr preview"]
    assert prev.rgb and prev.data.dtype == np.float32
    np.testing.assert_allclose(prev.scale, (2.0, 2.0))
    # the preview covers exactly what is on screen (clipped to the image), at the right place
    h_can, w_can = viewer.canvas.size
    lo = np.array([10 + 600 - h_can / 4, -6 + 400 - w_can / 4])
    hi = np.array([10 + 600 + h_can / 4, -6 + 400 + w_can / 4])
    lo_img = np.maximum(lo, np.array([10, -6]))
    hi_img = np.minimum(hi, np.array([10, -6]) + 2 * 512)
    p_lo = np.asarray(prev.translate)
    p_hi = p_lo + np.asarray(prev.data.shape[:2]) * 2
    assert (p_lo <= lo_img + 1e-6).all() and (p_lo > lo_img - 2.01).all()
    assert (p_hi >= hi_img - 1e-6).all() and (p_hi < hi_img + 2.01).all()
    origin = np.rint((p_lo - np.array([10, -6])) / 2).astype(int)
    crop = gray_photo[origin[0] : origin[0] + prev.data.shape[0], origin[1] : origin[1] + prev.data.shape[1]]
    np.testing.assert_allclose(prev.data, colorize(crop, mode="whole", temperature=w.temperature.value),
                               atol=1e-5)
    # zoomed out, a coarser level is used and placed with its bigger pixels
    viewer.camera.zoom = 0.1
    w.preview()
    _wait(qtbot, w)
    prev = viewer.layers["pyr preview"]
    assert prev.scale[0] >= 4.0
