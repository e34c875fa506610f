"""Bad arguments to the API are one clear error, and nothing the user did not name is touched."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from napari_colorize import colorize, finetune
from napari_colorize.core.errors import InputError
from napari_colorize.core.finetune import FinetuneRun, FinetuneSettings
from napari_colorize.metrics import ab_histogram


@pytest.fixture(scope="module")
def gray():
    return np.random.default_rng(0).integers(0, 255, (24, 32)).astype(np.uint8)


def test_an_existing_folder_given_as_out_is_left_alone(gray, tmp_path):
    for name in ("d.npy", "d.tif"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "keep.txt").write_text("mine")
        with pytest.raises(InputError, match="existing folder"):
            colorize(gray, out=str(folder))
        assert (folder / "keep.txt").read_text() == "mine"
    plain = tmp_path / "data.zarr"
    plain.mkdir()
    (plain / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="is a folder, not a zarr array"):
        colorize(gray, out=str(plain))
    assert (plain / "keep.txt").read_text() == "mine"
    res = colorize(gray, out=str(tmp_path / "new.npy"))
    assert res.shape == gray.shape + (3,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npy", "d.tif", "data.zarr", "new.npy"]


def test_a_zarr_group_given_as_out_is_never_replaced(gray, tmp_path):
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("raw", shape=gray.shape, dtype=np.uint8)[:] = gray
    for out in ("g.zarr", "g.ome.zarr"):
        if out == "g.ome.zarr":  # a group without multiscales is not an OME-Zarr image either
            zarr.open_group(str(tmp_path / out), mode="w").create_array("labels", shape=(2,), dtype=np.uint8)
        with pytest.raises(InputError, match="is a zarr group, not"):
            colorize(gray, out=str(tmp_path / out))
    np.testing.assert_array_equal(zarr.open_group(str(tmp_path / "g.zarr"), mode="r")["raw"][:], gray)
    first = colorize(gray, out=str(tmp_path / "r.zarr"))  # an earlier array result is replaced
    again = colorize(gray[::-1], out=str(tmp_path / "r.zarr"))
    np.testing.assert_allclose(np.asarray(again), np.asarray(colorize(gray[::-1])), atol=1e-6)
    assert first.shape == again.shape


def test_an_output_never_replaces_the_file_its_input_is_read_from(gray, tmp_path):
    import dask.array as da
    import tifffile
    zarr = pytest.importorskip("zarr")

    np.save(tmp_path / "a.npy", gray)
    tifffile.imwrite(tmp_path / "a.tif", gray)
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("raw", shape=gray.shape, dtype=np.uint8)[:] = gray
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    cases = [(np.load(tmp_path / "a.npy", mmap_mode="r")[2:], "a.npy"),
             (tifffile.memmap(tmp_path / "a.tif", mode="r"), "a.tif"),
             (zarr.open_array(str(tmp_path / "g.zarr" / "raw"), mode="r"), "g.zarr/raw"),
             (da.from_zarr(str(tmp_path / "g.zarr" / "raw")), "g.zarr/raw"),
             (da.from_zarr(str(tmp_path / "g.zarr" / "raw")), "g.zarr")]
    for image, out in cases:
        with pytest.raises(InputError, match="would replace the input"):
            colorize(image, out=str(tmp_path / out))
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    rgb = np.random.default_rng(1).random((16, 16, 3)).astype(np.float32)
    with pytest.raises(InputError, match="shares memory"):
        colorize(rgb, out=rgb)


def test_a_read_only_out_array_is_refused(gray):
    out = np.zeros(gray.shape + (3,), np.float32)
    out.flags.writeable = False
    with pytest.raises(InputError, match="read-only"):
        colorize(gray, out=out)
    assert not out.any()


@pytest.mark.parametrize("dtype, top", [(np.float32, 3.4e38), (np.float64, 1e300), (np.float64, 8e307)])
def test_values_near_the_type_limits_give_finite_colors(dtype, top):
    img = np.linspace(-top, top, 24 * 32, dtype=dtype).reshape(24, 32)
    before = img.copy()
    rgb = colorize(img)
    assert np.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1
    np.testing.assert_array_equal(img, before)
    # the stretch is linear: the brightest quarter stays brighter than the darkest
    assert rgb[-6:].mean() > rgb[:6].mean() + 0.3


@pytest.mark.parametrize("kw, word", [
    ({"temperature": 1j}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"tile": float("nan")}, "tile"),
    ({"downsample": 1e6}, "downsample"),
    ({"points": [[1, 2]], "colors": [["red", "green", "blue"]]}, "colors"),
    ({"points": [["a", 2]], "colors": [[1, 0, 0]]}, "points"),
    ({"temporal": "yes"}, "temporal must be True, False or a number"),
    ({"dtype": "foo"}, "dtype must be one of float32"),
    ({"dtype": None, "out": "OUT.ome.zarr", "scale": ("a", 1)}, "scale needs 2 positive"),
    ({"level": "1"}, "level='1' needs a multiscale image"),
])
def test_bad_arguments_name_themselves(gray, kw, word, tmp_path):
    if "out" in kw:
        pytest.importorskip("ome_zarr")
        kw = {**kw, "out": str(tmp_path / kw["out"])}
    with pytest.raises(InputError, match=f"(?i){word}"):
        colorize(gray, **kw)
    assert not list(tmp_path.iterdir())


def test_stack_hints_on_missing_planes_are_reported(gray):
    stack = np.stack([gray, gray])
    with pytest.warns(UserWarning, match="2 hint point"):
        colorize(stack, points=[[5, 3, 3], [-1, 3, 3], [1, 3, 3]], colors=[[1, 0, 0]] * 3)


@pytest.mark.parametrize("kw", [{"step": 1e-6}, {"step": float("nan")}, {"limit": 1e12}])
def test_histogram_parameters_are_bounded(kw):
    with pytest.raises(InputError):
        ab_histogram(np.zeros((4, 4, 3), np.float32), **kw)


@pytest.mark.parametrize("kw", [{"seconds": float("inf")}, {"crop": float("nan")}, {"steps": 0},
                                {"seconds": -1}, {"lr": 2.0}])
def test_finetune_budgets_are_checked(kw):
    with pytest.raises(InputError):
        FinetuneSettings(**kw).resolved()


def test_finetune_resume_needs_its_checkpoint_folder(model):
    rgb = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    with pytest.raises(InputError, match="resume continues from checkpoint_dir"):
        finetune([rgb], model=model, steps=1, resume=True)


def test_finetune_refuses_a_nan_base(model):
    bad = copy.deepcopy(model)
    with torch.no_grad():
        next(bad.net.parameters()).fill_(float("nan"))
    with pytest.raises(InputError, match="NaN"):
        finetune([np.zeros((64, 64, 3), np.uint8)], model=bad, steps=1)


@pytest.mark.parametrize("damage", ["checkpoint", "state"])
def test_resume_from_damaged_files_is_a_message(model, tmp_path, damage, one_thread):
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 255, (96, 96, 3)).astype(np.uint8) for _ in range(2)]
    ckpt = tmp_path / "ckpt"
    run = FinetuneRun(imgs, model=model, settings=FinetuneSettings(steps=2, batch_size=2, crop=32),
                      checkpoint_dir=ckpt)
    for _ in run.events():
        pass
    if damage == "checkpoint":
        path = ckpt / "checkpoint.safetensors"
        path.write_bytes(path.read_bytes()[:1000])
    else:
        (ckpt / "finetune.json").write_text("{not json")
    with pytest.raises(InputError, match="(?i)resume"):
        FinetuneRun(imgs, model=model, settings=FinetuneSettings(steps=4, batch_size=2, crop=32),
                    checkpoint_dir=ckpt, resume=True)


def test_arguments_that_would_do_nothing_say_so(gray, tmp_path):
    with pytest.warns(UserWarning, match="scale is kept only in an OME-Zarr out"):
        colorize(gray, scale=(0.5, 0.5))
    with pytest.warns(UserWarning, match="a single image is not smoothed"):
        colorize(gray, temporal=0.5)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        colorize(np.stack([gray, gray]), temporal=0.5)  # a stack is smoothed: nothing to say


def test_an_ome_zarr_out_with_too_many_axes_fails_before_any_work(gray, tmp_path, monkeypatch):
    pytest.importorskip("ome_zarr")
    import napari_colorize.api as api

    monkeypatch.setattr(api, "iter_colorize_dask", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(InputError, match="at most 2 leading axes"):
        colorize(np.broadcast_to(gray, (2, 2, 2) + gray.shape), out=str(tmp_path / "x.ome.zarr"))
    for kw, why in (({"dtype": "foo"}, "dtype must be one of"), ({"scale": ("a", 1)}, "scale needs"),
                    ({"dtype": "float64"}, "dtype must be one of float32, uint8")):
        with pytest.raises(InputError, match=why):
            colorize(gray, out=str(tmp_path / "x.ome.zarr"), **kw)
    (tmp_path / "taken.ome.zarr").write_text("mine")
    with pytest.raises(InputError, match="is a file, not an OME-Zarr image"):
        colorize(gray, out=str(tmp_path / "taken.ome.zarr"))
    assert [p.name for p in tmp_path.iterdir()] == ["taken.ome.zarr"]


def test_numpy_booleans_and_an_ignored_tile_are_accepted(gray):
    off = colorize(gray, temporal=np.False_)
    np.testing.assert_array_equal(off, colorize(gray))
    np.testing.assert_array_equal(colorize(gray, mode="whole", tile=64), off)  # whole mode has no tiles
