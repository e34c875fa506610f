"""Lazy colorization: one global pass, chunks computed alone, pyramids, OME-Zarr output."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import torch

from napari_colorize import InputError, colorize


@pytest.fixture(scope="module")
def tiny():
    """A randomly initialised narrow network with a global branch: fast, same code paths."""
    from napari_colorize.core.color import ab_bins
    from napari_colorize.core.modelfile import Colorizer

    torch.manual_seed(0)
    m = Colorizer.new(torch.from_numpy(ab_bins()), width=4)
    from napari_colorize.core.model import ColorNet

    m.net = ColorNet(len(ab_bins()), width=4, global_context=True)
    torch.nn.init.normal_(m.net.glob[-1].weight, std=0.5)  # a branch that changes the colors
    m.net.eval()
    return m


@pytest.fixture(scope="module")
def plane(gray_photo):
    """A 1100 x 1300 plane with structure everywhere."""
    g = np.concatenate([gray_photo, gray_photo[:, ::-1]], axis=1)
    g = np.concatenate([g, g[::-1]], axis=0)
    return np.ascontiguousarray(np.tile(g, (2, 2))[:1100, :1300])


class ChunkLog:
    """A dask array that records which of its chunks are read."""

    def __init__(self, arr, chunks):
        self.reads = []

        def load(block, block_info=None):
            if block_info is not None and block.size:
                self.reads.append(tuple(block_info[None]["chunk-location"]))
            return block

        self.array = da.from_array(arr, chunks=chunks).map_blocks(load, dtype=arr.dtype)


@pytest.mark.parametrize("mode", ["whole", "tiled"])
def test_lazy_chunks_match_the_eager_result(tiny, plane, mode):
    kw = {"mode": mode, "tile": 256 if mode == "tiled" else None, "downsample": 2}
    eager = colorize(plane, model=tiny, **kw)
    lazy = colorize(da.from_array(plane, chunks=512), model=tiny, **kw)
    assert lazy.chunks[:2] == ((512, 512, 76), (512, 512, 276))  # the input's chunking
    np.testing.assert_allclose(lazy.blocks[1, 2].compute(), eager[512:1024, 1024:], atol=1e-3)
    np.testing.assert_allclose(lazy.compute(), eager, atol=1e-3)


def test_rgb_float_and_hinted_planes_match_too(tiny, plane):
    rgb = np.repeat((plane / 255.0)[..., None], 3, axis=2).astype(np.float32)[:600, :700]
    pts, cols = np.array([[100.0, 200.0], [500.0, 600.0]]), np.array([[1.0, 0.2, 0.1], [0.1, 0.3, 1.0]])
    eager = colorize(rgb, model=tiny, points=pts, colors=cols)
    lazy = colorize(da.from_array(rgb, chunks=(256, 256, 3)), model=tiny, points=pts, colors=cols)
    np.testing.assert_allclose(lazy.compute(), eager, atol=1e-3)


def test_one_chunk_reads_only_its_own_input_chunk(tiny, plane):
    big = np.tile(plane, (2, 2))  # 2200 x 2600: tiled above tile_above of the tiny model
    log = ChunkLog(big, chunks=512)
    lazy = colorize(log.array, model=tiny, mode="tiled", tile=256, downsample=4)
    assert log.reads  # the global pass read the plane once ...
    log.reads.clear()
    piece = lazy[1024:1536, 512:1024].compute()
    assert log.reads == [(2, 1)]  # ... and a chunk afterwards needs nothing else
    assert piece.shape == (512, 512, 3) and piece.dtype == np.float32


def test_stack_planes_run_their_global_pass_once_per_compute(tiny, plane):
    stack = np.stack([plane[:300, :400], plane[300:600, 400:800]])
    log = ChunkLog(stack, chunks=(1, 150, 200))
    lazy = colorize(log.array, model=tiny)
    assert not log.reads and lazy.shape == (2, 300, 400, 3)
    second = lazy[1].compute()
    assert sorted(log.reads) == [(1, i, j) for i in range(2) for j in range(2)]  # each chunk read once
    np.testing.assert_allclose(second, colorize(stack[1], model=tiny), atol=1e-3)


def test_pyramid_levels_share_one_global_pass(tiny, plane):
    from napari_colorize.core.lazy import colorize_pyramid, pick_global_level

    pyramid = [plane, plane[::2, ::2], plane[::4, ::4]]
    assert pick_global_level(pyramid, 1000) == 1 and pick_global_level(pyramid, 100) == 2
    sides = [max(p.shape) for p in pyramid]
    # seen whole at every level: the coarsest that is still big enough, never a finer one
    assert pick_global_level(pyramid, 10**6, sides[1]) == 1 and pick_global_level(pyramid, 10**6, sides[2]) == 2
    assert pick_global_level(pyramid, 10**6, sides[0] + 1) == 0  # none big enough: the finest
    levels, used = colorize_pyramid(pyramid, tiny, global_level=0)
    assert used == 0 and [lv.shape[:2] for lv in levels] == [p.shape for p in pyramid]
    assert all(isinstance(lv, da.Array) and lv.dtype == np.float32 for lv in levels)
    np.testing.assert_allclose(levels[0].compute(), colorize(plane, model=tiny, mode="whole"), atol=1e-3)
    coarse = levels[2].compute()
    # a coarse level's colors are those of the full-resolution result, seen from afar
    ref = colorize(plane, model=tiny, mode="whole")[::4, ::4]
    assert np.abs(coarse - ref).mean() < 0.02
    with pytest.raises(InputError, match="global_level"):
        colorize_pyramid(pyramid, tiny, global_level=3)


def test_ome_zarr_round_trip_keeps_levels_and_pixel_sizes(tiny, plane, tmp_path):
    pytest.importorskip("ome_zarr")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    target = tmp_path / "result.ome.zarr"
    ref = colorize(plane, model=tiny)
    got = colorize(plane, model=tiny, out=str(target), scale=(0.5, 0.25))
    np.testing.assert_allclose(np.asarray(got), ref, atol=1e-6)
    node = next(iter(Reader(parse_url(str(target)))()))
    shapes = [tuple(d.shape) for d in node.data]
    assert shapes[:3] == [(3, 1100, 1300), (3, 550, 650), (3, 275, 325)] and len(shapes) == 4
    scales = [t[0]["scale"] for t in node.metadata["coordinateTransformations"]]
    assert scales[0] == [1.0, 0.5, 0.25] and scales[1] == [1.0, 1.0, 0.5]
    np.testing.assert_allclose(np.moveaxis(np.asarray(node.data[0]), 0, -1), ref, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.ome.zarr"]  # no temporaries left
    # a path the user did not give to results is never replaced
    (tmp_path / "notes.ome.zarr").write_text("mine")
    with pytest.raises(InputError, match="is a file, not an OME-Zarr image"):
        colorize(plane, model=tiny, out=str(tmp_path / "notes.ome.zarr"))
    assert (tmp_path / "notes.ome.zarr").read_text() == "mine"
    with pytest.raises(InputError, match="pixel sizes"):
        colorize(plane, model=tiny, out=str(tmp_path / "b.ome.zarr"), scale=(1.0,))


def test_cli_writes_ome_zarr_and_keeps_an_ome_zarr_inputs_scale(tiny, plane, tmp_path, monkeypatch):
    pytest.importorskip("ome_zarr")
    import zarr
    from ome_zarr.writer import write_image

    import napari_colorize.api as api
    from napari_colorize import cli

    monkeypatch.setattr(api, "load", lambda m=None: tiny)
    src = tmp_path / "in.ome.zarr"
    write_image(plane[:600, :700], zarr.open_group(str(src), mode="w"), axes="yx", scale={"y": 0.3, "x": 0.3},
                scale_factors=[])
    out = tmp_path / "out"
    assert cli.main(["colorize", str(src), "-o", str(out), "--format", "ome-zarr"]) == 0
    res = out / "in_colorized.ome.zarr"
    group = zarr.open_group(str(res), mode="r")
    ms = dict(group.attrs)["ome"]["multiscales"][0]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 0.3, 0.3]
    assert group["0"].dtype == np.uint8 and group["0"].shape == (3, 600, 700)


def test_a_tiled_global_pass_of_a_dask_plane_reports_its_rows(tiny, plane):
    seen = []
    lazy = colorize(da.from_array(plane, chunks=512), model=tiny, mode="tiled", tile=256, downsample=2,
                    progress=lambda done, total: seen.append((done, total)))
    assert len(seen) > 1 and seen[-1][0] == seen[-1][1]  # one report per row of windows, the last full
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert lazy.shape == plane.shape + (3,)


@pytest.mark.parametrize("shape", [(700, 900), (2, 300, 400)])
def test_ome_zarr_progress_is_one_count_over_global_pass_and_writing(tiny, plane, shape, tmp_path):
    pytest.importorskip("ome_zarr")
    from napari_colorize.omezarr import write_steps

    image = plane[: shape[-2], : shape[-1]]
    image = np.stack([image] * shape[0]) if len(shape) == 3 else image
    seen = []
    kw = {"model": tiny, "mode": "tiled", "tile": 256, "downsample": 2}
    got = colorize(image, out=str(tmp_path / "r.ome.zarr"), progress=lambda done, total: seen.append((done, total)),
                   **kw)
    np.testing.assert_allclose(np.asarray(got), colorize(image, **kw), atol=1e-6)
    zarr = pytest.importorskip("zarr")
    ms = dict(zarr.open_group(str(tmp_path / "r.ome.zarr"), mode="r").attrs)["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == (["c", "z", "y", "x"] if len(shape) == 3 else ["c", "y", "x"])
    done = [d for d, _ in seen]
    assert done == list(range(1, len(seen) + 1))  # never starts again
    assert {t for _, t in seen} == {len(seen)}  # the total is known from the first step
    writing = write_steps(shape + (3,))
    # a plane's tiled global pass runs first and counts too; a stack's runs as its planes are written
    assert len(seen) > writing if len(shape) == 2 else len(seen) == writing


def test_an_ome_zarr_of_a_pyramid_level_gets_that_levels_pixel_size(tiny, plane, tmp_path):
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("ome_zarr")
    pyramid = [plane, plane[::2, ::2]]
    colorize(pyramid, model=tiny, level=1, out=str(tmp_path / "l1.ome.zarr"), scale=(0.25, 0.5))
    ms = dict(zarr.open_group(str(tmp_path / "l1.ome.zarr"), mode="r").attrs)["ome"]["multiscales"][0]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 0.5, 1.0]


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float64"])
def test_a_lazy_result_takes_the_dtype_asked_for_as_an_eager_one_does(tiny, plane, dtype):
    stack = np.stack([plane[:200, :240], plane[200:400, :240]])
    lazy = colorize(da.from_array(stack, chunks=(1, 200, 240)), model=tiny, dtype=dtype)
    assert lazy.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(np.asarray(lazy), colorize(stack, model=tiny, dtype=dtype))
