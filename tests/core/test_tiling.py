"""Big images: seamless tiles, bounded memory, file outputs, lazy stacks, multiscale levels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from skimage.color import rgb2lab

from napari_colorize import InputError, colorize
from napari_colorize.core.tiling import (
    DEFAULT_DOWNSAMPLE,
    MAX_VIEW,
    auto_downsample,
    axis_windows,
    colorize_tiled,
    receptive_radius,
    tile_geometry,
)


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


def test_tiled_hints_get_their_color_and_stay_off_far_regions(model, big_gray):
    import copy

    from skimage.color import lab2rgb

    pts = np.array([[300.0, 100.0], [100.0, 400.0]])
    # colors of the pixels' own lightness, so that they are displayable there
    gray = np.repeat(big_gray[..., None], 3, -1)[pts[:, 0].astype(int), pts[:, 1].astype(int)] / 255.0
    cols = lab2rgb(np.stack([rgb2lab(gray[None])[0, :, 0], [-35.0, 40.0], [35.0, -30.0]], 1)[None])[0]
    plain = colorize_tiled(model, big_gray, downsample=2)
    loose = copy.deepcopy(model)
    loose.config["hint_reach"] = 0.0  # the hinted network pass alone
    errors = {}
    for name, m in (("matched", model), ("network alone", loose)):
        out = colorize_tiled(m, big_gray, pts, cols, downsample=2)
        at = rgb2lab(out[pts[:, 0].astype(int), pts[:, 1].astype(int)][None])[0, :, 1:]
        errors[name] = np.linalg.norm(at - rgb2lab(cols[None])[0, :, 1:], axis=1).max()
        far = (slice(0, 40), slice(680, 720))  # a corner away from both hints
        assert np.abs(rgb2lab(out[far])[..., 1:] - rgb2lab(plain[far])[..., 1:]).mean() < 5.0
    assert errors["matched"] < 10.0 and errors["matched"] < 0.7 * errors["network alone"]


def test_a_tiled_hint_changes_its_surroundings_only(model, big_gray):
    from skimage.color import lab2rgb

    pt = np.array([[300.0, 100.0]])
    lum = rgb2lab(np.repeat(big_gray[None, None, 300, 100, None], 3, -1) / 255.0)[0, 0, 0]
    col = lab2rgb(np.array([[[lum, -35.0, 40.0]]]))[0]
    plain = rgb2lab(colorize_tiled(model, big_gray, downsample=2))[..., 1:]
    hinted = rgb2lab(colorize_tiled(model, big_gray, pt, col, downsample=2))[..., 1:]
    moved = np.linalg.norm(hinted - plain, axis=-1)
    assert moved[295:306, 95:106].mean() > 20.0
    # far from the hint the plane keeps its automatic colors (also its automatic decoding)
    assert moved[:, 500:].mean() < 0.5 and np.percentile(moved[:, 500:], 99) < 2.0


def test_temporal_smoothing_also_steadies_a_tiled_hints_colors(model, big_gray):
    from skimage.color import lab2rgb

    pt = np.array([[300.0, 100.0]])
    lum = rgb2lab(np.repeat(big_gray[None, None, 300, 100, None], 3, -1) / 255.0)[0, 0, 0]
    col = lab2rgb(np.array([[[lum, -35.0, 40.0]]]))[0]
    rng = np.random.default_rng(3)
    frames = [np.clip(big_gray + rng.normal(0, 12, big_gray.shape), 0, 255).astype(np.uint8) for _ in range(3)]
    near = (slice(260, 340), slice(60, 140))
    flicker = {}
    for temporal in (0.0, 0.7):
        state: dict = {}
        ab = [rgb2lab(colorize_tiled(model, f, pt, col, downsample=2, state=state, temporal=temporal)[near])[..., 1:]
              for f in frames]
        flicker[temporal] = np.mean([np.abs(b - a).mean() for a, b in zip(ab, ab[1:])])
    assert flicker[0.7] < 0.9 * flicker[0.0]


def test_tiled_reads_and_writes_bounded_pieces(tiny, big_gray, monkeypatch):
    from napari_colorize.core import chroma, tiling

    wide = np.ascontiguousarray(np.tile(big_gray[:160], (1, 2)))  # 160 x 1440: one row of windows
    ref = colorize_tiled(tiny, wide, tile=384, downsample=2)
    monkeypatch.setattr(tiling, "_STRIP_PIXELS", 40_000)
    monkeypatch.setattr(chroma, "_WRITE_PIXELS", 40_000)
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
    import dask.array as da

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


@given(st.integers(1, 200_000), st.integers(1, 200_000))
def test_the_default_scale_keeps_the_networks_view_bounded(h, w):
    k = auto_downsample((h, w))
    assert k >= DEFAULT_DOWNSAMPLE
    view = h * w / k**2  # network pixels
    assert view <= MAX_VIEW**2 or k == DEFAULT_DOWNSAMPLE  # coarser only where the view is too big
    if k > DEFAULT_DOWNSAMPLE:  # and no coarser than needed
        assert h * w / (k - 1) ** 2 > MAX_VIEW**2
