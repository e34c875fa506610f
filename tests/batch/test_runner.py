"""Batch colorization as dask tasks (local threads and dask.distributed), zarr, bad input."""

from __future__ import annotations

import errno
import os
import socket
import time

import numpy as np
import pytest
from PIL import Image

from napari_colorize.batch.files import read_image
from napari_colorize.cli import main


def _images(folder, n=4, size=24, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size + 8), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture(scope="module")
def cluster():
    import distributed

    # in-process workers: the test checks the scheduling path, not process start-up (slow on 2 cores)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as lc:
        yield lc


def test_batch_on_a_distributed_cluster_then_skips_done_files(tmp_path, cluster, capsys):
    src = _images(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["colorize", str(src), "-o", str(out), "--scheduler", cluster.scheduler_address]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"img{i}_colorized.png" for i in range(4)]
    assert read_image(out / "img0_colorized.png").shape == (24, 32, 3)
    assert "colorized 4, skipped 0 existing, failed 0" in capsys.readouterr().err
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    _images(src, n=5)  # one new file
    assert main(["colorize", str(src), "-o", str(out), "--scheduler", cluster.scheduler_address]) == 0
    assert "colorized 1, skipped 4 existing, failed 0" in capsys.readouterr().err
    assert all((out / n).stat().st_mtime_ns == t for n, t in stamps.items())
    assert main(["colorize", str(src), "-o", str(out), "--overwrite", "--workers", "2"]) == 0
    assert "colorized 5, skipped 0 existing" in capsys.readouterr().err


def test_truncated_file_is_reported_the_rest_written(tmp_path, cluster, capsys):
    src = _images(tmp_path / "in")
    data = (src / "img1.png").read_bytes()
    (src / "img1.png").write_bytes(data[: len(data) // 2])  # truncated mid-stream
    (src / "zz.tif").write_bytes(b"II*\x00garbage")
    out = tmp_path / "out"
    for extra in ([], ["--scheduler", cluster.scheduler_address]):
        assert main(["colorize", str(src), "-o", str(out), "--overwrite", *extra]) == 1
        err = capsys.readouterr().err
        assert "colorized 3, skipped 0 existing, failed 2" in err and "Traceback" not in err
        assert "failed: img1.png, zz.tif" in err
        assert sorted(p.name for p in out.iterdir()) == ["img0_colorized.png", "img2_colorized.png",
                                                         "img3_colorized.png"]


def test_unwritable_output_is_a_clear_error_before_starting(tmp_path, capsys):
    src = _images(tmp_path / "in", n=1)
    blocker = tmp_path / "a-file"  # works as root too, unlike a chmod-ed folder
    blocker.write_text("x")
    assert main(["colorize", str(src), "-o", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert "Cannot write to" in err and "not a folder" in err and "colorized" not in err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_output_folder(tmp_path, capsys):
    src = _images(tmp_path / "in", n=1)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main(["colorize", str(src), "-o", str(out)]) == 2
        assert "Permission denied" in capsys.readouterr().err
    finally:
        out.chmod(0o755)


def test_full_disk_stops_the_batch_and_keeps_written_files(tmp_path, monkeypatch, capsys):
    import napari_colorize.batch.files as nio

    src = _images(tmp_path / "in")
    out = tmp_path / "out"
    real = nio.write_image
    calls = []

    def write_then_fill(path, rgb, *args):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, rgb, *args)

    monkeypatch.setattr(nio, "write_image", write_then_fill)
    assert main(["colorize", str(src), "-o", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    (written,) = out.iterdir()  # the first, complete; no temp files left behind
    assert read_image(written).shape == (24, 32, 3)


def test_dead_scheduler_is_a_quick_clear_error(tmp_path, capsys):
    src = _images(tmp_path / "in", n=1)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    assert main(["colorize", str(src), "-o", str(tmp_path / "out"), "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    assert time.monotonic() - t0 < 30  # the connect timeout is 5 s
    err = capsys.readouterr().err
    assert "Cannot reach the dask scheduler" in err and "colorized" not in err
    assert not any((tmp_path / "out").iterdir())  # nothing started
    assert main(["colorize", str(src), "-o", str(tmp_path / "out"), "--scheduler", "tcp://a:b:c"]) == 2
    assert "Not a dask scheduler address" in capsys.readouterr().err


def test_zarr_stack_in_zarr_out(tmp_path, cluster, capsys):
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(1)
    stack = rng.integers(0, 255, (3, 20, 28), dtype=np.uint8)
    z = zarr.open_array(store=str(tmp_path / "stack.zarr"), mode="w", shape=stack.shape, chunks=(1, 20, 28),
                        dtype=np.uint8)
    z[:] = stack
    out = tmp_path / "out"
    assert main(["colorize", str(tmp_path / "stack.zarr"), "-o", str(out),
                 "--scheduler", cluster.scheduler_address]) == 0
    res = zarr.open_array(store=str(out / "stack_colorized.zarr"), mode="r")
    assert res.shape == (3, 20, 28, 3) and res.dtype == np.uint8
    assert sorted(p.name for p in out.iterdir()) == ["stack_colorized.zarr"]  # no partial left
    from napari_colorize import colorize

    np.testing.assert_allclose(res[1] / 255.0, colorize(stack[1]), atol=1 / 255 + 1e-6)
    single = tmp_path / "one.zarr"
    assert main(["colorize", str(tmp_path / "stack.zarr"), "-o", str(single)]) == 0
    assert zarr.open_array(store=str(single), mode="r").shape == (3, 20, 28, 3)
    capsys.readouterr()
    assert main(["colorize", str(tmp_path / "stack.zarr"), "-o", str(single)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err


def test_a_camera_portrait_is_read_and_written_the_way_up_it_is_seen(tmp_path):
    stored = np.zeros((24, 32), np.uint8)
    stored[:, :4] = 255  # a bright band on the stored left side, the top once turned upright
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as phones write portraits
    im.save(tmp_path / "portrait.jpg", exif=exif, quality=95)
    seen = read_image(tmp_path / "portrait.jpg")
    assert seen.shape == (32, 24) and seen[:4].mean() > 200 and seen[-4:].mean() < 50
    from napari_colorize.core.data import iter_images

    (name, rgb), = list(iter_images(tmp_path))  # a folder of color photos to fine-tune on
    assert rgb.shape == (32, 24, 3) and rgb[:4].mean() > 200
    assert main(["colorize", str(tmp_path / "portrait.jpg"), "-o", str(tmp_path / "out.png")]) == 0
    out = read_image(tmp_path / "out.png")
    assert out.shape == (32, 24, 3) and out[:4].mean() > 200


@pytest.mark.parametrize("lead", [(), (2,)])
def test_color_stored_plane_by_plane_in_a_tiff_is_one_color_image(tmp_path, lead):
    import tifffile

    rgb = np.random.default_rng(0).integers(0, 255, lead + (24, 32, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(rgb, -1, -3), photometric="rgb", planarconfig="separate")
    tifffile.imwrite(tmp_path / "gray.tif", rgb[..., 0].reshape(-1, 24, 32)[:1].repeat(3, 0),
                     photometric="minisblack")  # three gray pages stay a stack
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif"), rgb)
    assert read_image(tmp_path / "gray.tif").shape == (3, 24, 32)


def test_a_tiffs_pixel_size_tags_stay_with_its_result(tmp_path):
    import tifffile

    stack = np.random.default_rng(0).integers(0, 255, (2, 24, 32), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "cal.tif", stack, photometric="minisblack", resolution=(4.0, 2.5),
                     resolutionunit="CENTIMETER")
    tifffile.imwrite(tmp_path / "plain.tif", stack[0], photometric="minisblack")
    assert main(["colorize", str(tmp_path / "cal.tif"), str(tmp_path / "plain.tif"), "-o", str(tmp_path / "o")]) == 0
    with tifffile.TiffFile(tmp_path / "o" / "cal_colorized.tif") as tif:
        assert tif.pages.first.resolution == (4.0, 2.5) and tif.pages.first.resolutionunit == 3
        assert tif.series[0].shape == (2, 24, 32, 3)
    with tifffile.TiffFile(tmp_path / "o" / "plain_colorized.tif") as tif:
        assert tif.pages.first.resolution == (1.0, 1.0)  # tifffile's default where the input had none


def test_an_rgba_zarr_is_colorized_from_its_rgb_as_an_rgba_png_is(tmp_path):
    zarr = pytest.importorskip("zarr")
    rgba = np.random.default_rng(0).integers(0, 255, (24, 32, 4), dtype=np.uint8)
    zarr.open_array(store=str(tmp_path / "in.zarr"), mode="w", shape=rgba.shape, dtype=np.uint8)[:] = rgba
    Image.fromarray(rgba[..., :3]).save(tmp_path / "in.png")
    assert main(["colorize", str(tmp_path / "in.zarr"), str(tmp_path / "in.png"), "-o", str(tmp_path / "o")]) == 0
    from_zarr = zarr.open_array(str(tmp_path / "o" / "in_colorized.zarr"), mode="r")[:]
    assert from_zarr.shape == (24, 32, 3)
    np.testing.assert_array_equal(from_zarr, read_image(tmp_path / "o" / "in_colorized.png"))
