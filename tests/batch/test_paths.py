"""Where batch results go: one rule per kind of input and output name."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from napari_colorize.batch.paths import output_paths
from napari_colorize.cli import main
from napari_colorize.core.errors import InputError


@pytest.fixture
def inputs(tmp_path):
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("ome_zarr")
    from ome_zarr.writer import write_image

    g = np.random.default_rng(0).integers(0, 255, (2, 32, 40), dtype=np.uint8)
    write_image(g, zarr.open_group(str(tmp_path / "cells.ome.zarr"), mode="w"), axes="zyx", scale_factors=[])
    zarr.open_array(store=str(tmp_path / "plain.zarr"), mode="w", shape=g.shape[1:], dtype=np.uint8)[:] = g[0]
    for name in ("scan.v1.png", "scan.v2.png"):
        Image.fromarray(g[0]).save(tmp_path / name)
    return tmp_path


def test_each_kind_of_input_keeps_its_kind_and_its_whole_stem(inputs):
    files = [inputs / n for n in ("cells.ome.zarr", "plain.zarr", "scan.v1.png", "scan.v2.png")]
    out = inputs / "out"
    assert [p.name for p in output_paths(files, str(out))] == [
        "cells_colorized.ome.zarr", "plain_colorized.zarr", "scan.v1_colorized.png", "scan.v2_colorized.png"]
    assert [p.name for p in output_paths(files, str(out), "ome-zarr")] == [
        "cells_colorized.ome.zarr", "plain_colorized.ome.zarr", "scan.v1_colorized.ome.zarr",
        "scan.v2_colorized.ome.zarr"]
    # any single input may be named into an OME-Zarr image
    for f in files:
        assert output_paths([f], str(inputs / "x.ome.zarr")) == [inputs / "x.ome.zarr"]


@pytest.mark.parametrize("names, out, fmt, why", [
    (["scan.v1.png", "scan.v2.png"], "two.ome.zarr", "ome-zarr", "2 inputs need an output folder"),
    (["scan.v1.png"], "g.zarr", "auto", "'scan.v1.png' is an image file"),
    (["cells.ome.zarr"], "q.zarr", "auto", "name ending in .ome.zarr"),
    (["scan.v1.png"], "q.zarr", "ome-zarr", "name ending in .ome.zarr"),
    (["plain.zarr"], "p.png", "auto", "A zarr input needs a .zarr output"),
])
def test_output_names_that_do_not_fit_are_one_clear_error(inputs, names, out, fmt, why):
    with pytest.raises(InputError, match=why):
        output_paths([inputs / n for n in names], str(inputs / out), fmt)


def test_an_ome_zarr_input_gives_an_ome_zarr_result_by_default(inputs, capsys):
    import zarr

    assert main(["colorize", str(inputs / "cells.ome.zarr"), "-o", str(inputs / "out")]) == 0
    group = zarr.open_group(str(inputs / "out" / "cells_colorized.ome.zarr"), mode="r")
    ms = dict(group.attrs)["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"] and group["0"].shape == (3, 2, 32, 40)


def test_an_ome_zarr_inputs_time_axis_units_and_sizes_are_kept(tmp_path):
    import dask.array as da
    import zarr

    from napari_colorize.core.gen import drain
    from napari_colorize.omezarr import open_ome, write

    rgb = np.random.default_rng(0).random((2, 40, 48, 3)).astype(np.float32)
    units = {"t": "second", "y": "micrometer", "x": "micrometer"}
    drain(write(da.from_array(rgb), tmp_path / "movie.ome.zarr", scale=(10, 0.5, 0.5), lead_axes=["t"], units=units))
    np.testing.assert_allclose(open_ome(tmp_path / "movie.ome.zarr").compute(), rgb)  # read back as written
    assert main(["colorize", str(tmp_path / "movie.ome.zarr"), "-o", str(tmp_path / "out")]) == 0
    res = tmp_path / "out" / "movie_colorized.ome.zarr"
    ms = dict(zarr.open_group(str(res), mode="r").attrs)["ome"]["multiscales"][0]
    assert [(a["name"], a["type"], a.get("unit")) for a in ms["axes"]] == [
        ("t", "time", "second"), ("c", "channel", None), ("y", "space", "micrometer"), ("x", "space", "micrometer")]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [10.0, 1.0, 0.5, 0.5]
    assert open_ome(res).shape == rgb.shape


def test_zarr_stores_in_an_input_folder_are_inputs_and_never_walked_into(inputs, tmp_path):
    import shutil

    from napari_colorize.batch.paths import expand_inputs

    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    shutil.copytree(inputs / "plain.zarr", folder / "sub" / "plain.zarr")
    shutil.copytree(inputs / "cells.ome.zarr", folder / "cells.ome.zarr")
    shutil.copy(inputs / "scan.v1.png", folder / "sub" / "plain.zarr" / "stray.png")  # inside a store
    shutil.copy(inputs / "scan.v1.png", folder / "scan.v1.png")
    import zarr

    zarr.open_group(str(folder / "labels.zarr"), mode="w").create_array("a", shape=(2,), dtype=np.uint8)
    (folder / "gone.png").symlink_to(folder / "nowhere.png")  # a broken link is not an input
    found = [p.relative_to(folder).as_posix() for p in expand_inputs([str(folder)])]
    assert found == ["cells.ome.zarr", "scan.v1.png", "sub/plain.zarr"]
    assert main(["colorize", str(folder), "-o", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir() if "_colorized" in p.name) == [
        "cells_colorized.ome.zarr", "plain_colorized.zarr", "scan.v1_colorized.png"]
    assert [p.relative_to(folder).as_posix() for p in expand_inputs([str(folder)], str(folder))] == found


def test_an_ome_zarr_v04_input_keeps_axes_sizes_and_units(tmp_path):
    """Metadata as the OME-NGFF 0.4 specification lays it out in a zarr v2 group, written by hand."""
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("ome_zarr")
    g = np.random.default_rng(0).integers(0, 255, (2, 32, 40), dtype=np.uint8)
    group = zarr.open_group(str(tmp_path / "v4.ome.zarr"), mode="w", zarr_format=2)
    group.create_array("s0", shape=g.shape, dtype=np.uint8)[:] = g
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [
        {"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"], "datasets": [
        {"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": [2.0, 0.5, 0.5]}]}]}]
    assert main(["colorize", str(tmp_path / "v4.ome.zarr"), "-o", str(tmp_path / "out")]) == 0
    res = tmp_path / "out" / "v4_colorized.ome.zarr"
    ms = dict(zarr.open_group(str(res), mode="r").attrs)["ome"]["multiscales"][0]
    assert [(a["name"], a.get("unit")) for a in ms["axes"]] == [
        ("c", None), ("z", "micrometer"), ("y", "micrometer"), ("x", "micrometer")]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 2.0, 0.5, 0.5]
