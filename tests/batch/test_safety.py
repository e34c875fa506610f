"""Data safety of batch colorization: inputs are never replaced, bad arguments and hostile files are
clear errors, and a batch stopped by a signal (or killed) leaves only complete outputs."""

from __future__ import annotations

import http.server
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from napari_colorize.batch.files import read_image
from napari_colorize.cli import main
from napari_colorize.core.atomic import TEMP_SUFFIX
from napari_colorize.core.errors import InputError


def _images(folder, n=3, shape=(32, 48), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


def _temporaries(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX)]


# -- 1: an input is never an output ---------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".png", ".tif", ".zarr"])
def test_output_naming_the_input_is_refused_even_with_overwrite(tmp_path, suffix, capsys):
    src = tmp_path / f"a{suffix}"
    img = np.random.default_rng(0).integers(0, 255, (32, 48), dtype=np.uint8)
    if suffix == ".zarr":
        zarr = pytest.importorskip("zarr")
        zarr.open_array(store=str(src), mode="w", shape=img.shape, dtype=np.uint8)[:] = img
        before = sorted((p.relative_to(src), p.read_bytes()) for p in src.rglob("*") if p.is_file())
    elif suffix == ".tif":
        import tifffile

        tifffile.imwrite(src, img)
    else:
        Image.fromarray(img).save(src)
    before = before if suffix == ".zarr" else src.read_bytes()
    assert main(["colorize", str(src), "-o", str(src), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "would replace the input" in err and "Traceback" not in err and "colorized" not in err
    if suffix == ".zarr":
        assert sorted((p.relative_to(src), p.read_bytes()) for p in src.rglob("*") if p.is_file()) == before
    else:
        assert src.read_bytes() == before


def test_output_that_is_the_input_through_a_link_is_refused(tmp_path, capsys):
    src = _images(tmp_path / "in", n=1) / "img00.png"
    before = src.read_bytes()
    hard = tmp_path / "hard.png"
    os.link(src, hard)
    soft = tmp_path / "soft.png"
    soft.symlink_to(src)
    for out in (hard, soft):
        assert main(["colorize", str(src), "-o", str(out), "--overwrite"]) == 2
        assert "would replace the input" in capsys.readouterr().err
    assert src.read_bytes() == before


@pytest.mark.parametrize("name, n, why", [
    ("x.bmp", 1, "Unsupported output type '.bmp'"),
    ("x.webp", 1, "Unsupported output type '.webp'"),
    ("two.png", 2, "2 inputs need an output folder"),
])
def test_an_output_file_name_never_becomes_a_folder(tmp_path, name, n, why, capsys):
    src = _images(tmp_path / "in", n)
    assert main(["colorize", *map(str, sorted(src.iterdir())), "-o", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert why in err and len(err.splitlines()) == 1
    assert not (tmp_path / name).exists()


def test_an_existing_folder_with_an_image_suffix_stays_a_folder(tmp_path, capsys):
    src = _images(tmp_path / "in", 1)
    (tmp_path / "x.png").mkdir()
    assert main(["colorize", str(src / "img00.png"), "-o", str(tmp_path / "x.png")]) == 0
    assert [p.name for p in (tmp_path / "x.png").iterdir()] == ["img00_colorized.png"]
    pytest.importorskip("ome_zarr")
    assert main(["colorize", str(src / "img00.png"), "-o", str(tmp_path / "y.webp"), "--format", "ome-zarr"]) == 2
    assert "not '" in capsys.readouterr().err and not (tmp_path / "y.webp").exists()


def test_a_named_output_file_that_exists_is_an_error_not_a_skip(tmp_path, capsys):
    src = _images(tmp_path / "in", 1)
    out = tmp_path / "keep.png"
    out.write_bytes(b"someone else's file")
    assert main(["colorize", str(src / "img00.png"), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "already exists" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert out.read_bytes() == b"someone else's file"
    assert main(["colorize", str(src / "img00.png"), "-o", str(out), "--overwrite"]) == 0
    assert read_image(out).shape == (32, 48, 3)
    capsys.readouterr()
    assert main(["colorize", str(src / "img00.png"), "-o", str(src / "img00.png")]) == 2  # the input itself
    assert "would replace the input" in capsys.readouterr().err


def test_a_stack_for_a_png_output_fails_without_writing_another_name(tmp_path, capsys):
    import tifffile

    stack = np.random.default_rng(0).integers(0, 255, (3, 32, 48), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    (tmp_path / "res.tif").write_bytes(b"mine")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for out in ("stack.png", "res.png"):  # the .tif beside the named .png is the input, or a user's file
        assert main(["colorize", str(tmp_path / "stack.tif"), "-o", str(tmp_path / out), "--overwrite"]) == 2
        assert "a stack of 3 images does not fit a .png file" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_overwrite_replaces_only_an_earlier_result_of_the_same_kind(tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    src = tmp_path / "in.zarr"
    zarr.open_array(store=str(src), mode="w", shape=(32, 48), dtype=np.uint8)[:] = 9
    plain, group = tmp_path / "plain.zarr", tmp_path / "group.zarr"
    plain.mkdir()
    (plain / "keep.txt").write_text("mine")
    zarr.open_group(str(group), mode="w").create_array("raw", shape=(4,), dtype=np.uint8)[:] = 5
    for out, what in ((plain, "is a folder"), (group, "is a zarr group")):
        assert main(["colorize", str(src), "-o", str(out), "--overwrite"]) == 2
        assert f"{what}, not a zarr array: it is never replaced" in capsys.readouterr().err
    assert (plain / "keep.txt").read_text() == "mine"
    assert list(zarr.open_group(str(group), mode="r")["raw"][:]) == [5] * 4
    assert main(["colorize", str(src), "-o", str(tmp_path / "res.zarr")]) == 0
    assert main(["colorize", str(src), "-o", str(tmp_path / "res.zarr"), "--overwrite"]) == 0  # its own result
    assert zarr.open_array(str(tmp_path / "res.zarr"), mode="r").shape == (32, 48, 3)


def test_inputs_sharing_a_name_are_named_in_the_error(tmp_path, capsys):
    a, b = _images(tmp_path / "a", 1), _images(tmp_path / "b", 1)
    assert main(["colorize", str(a / "img00.png"), str(b / "img00.png"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(a / "img00.png") in err and str(b / "img00.png") in err


def test_rerun_into_the_input_folder_does_not_take_outputs_as_inputs(tmp_path, capsys):
    src = _images(tmp_path / "in")
    for _ in range(2):
        assert main(["colorize", str(src), "-o", str(src), "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "colorized 3, skipped 0 existing" in err and "colorized 0, skipped 3 existing, failed 0" in err
    assert sorted(p.name for p in src.iterdir()) == sorted(
        [f"img{i:02d}.png" for i in range(3)] + [f"img{i:02d}_colorized.png" for i in range(3)])
    assert not list(src.rglob("*_colorized_colorized*"))
    # an output folder inside the input folder: its results are not inputs of the next run either
    src = _images(tmp_path / "in2")
    assert main(["colorize", str(src), "-o", str(src / "out"), "--workers", "1"]) == 0
    assert main(["colorize", str(src), "-o", str(src / "out"), "--workers", "1"]) == 0
    assert "colorized 0, skipped 3 existing, failed 0" in capsys.readouterr().err
    assert not list(src.rglob("*_colorized_colorized*"))


# -- 2: a scheduler address where no dask scheduler answers -----------------------------------------
@pytest.fixture()
def silent_server():
    """A TCP port that accepts connections and never replies."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.1)
    conns, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except TimeoutError:
                pass
            except OSError:
                return

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def http_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"tcp://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("server", ["silent_server", "http_server"])
def test_scheduler_address_of_another_service_is_a_quick_clear_error(tmp_path, server, request, capsys):
    address = request.getfixturevalue(server)
    src = _images(tmp_path / "in", n=1)
    t0 = time.monotonic()
    assert main(["colorize", str(src), "-o", str(tmp_path / "out"), "--scheduler", address]) == 2
    assert time.monotonic() - t0 < 8
    err = capsys.readouterr().err
    assert "not a dask scheduler" in err and "Traceback" not in err and "colorized" not in err


def test_a_real_tcp_scheduler_passes_the_probe(tmp_path, capsys):
    import distributed

    src = _images(tmp_path / "in", n=2)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                                  dashboard_address=":0") as lc:
        assert lc.scheduler_address.startswith("tcp://")
        assert main(["colorize", str(src), "-o", str(tmp_path / "out"), "--scheduler", lc.scheduler_address]) == 0
    assert "colorized 2, skipped 0 existing, failed 0" in capsys.readouterr().err


@pytest.mark.parametrize("address, why", [("tls://127.0.0.1:8786", "Unsupported scheduler address scheme 'tls://'"),
                                          ("ucx://127.0.0.1:1", "Unsupported scheduler address scheme 'ucx://'"),
                                          ("inproc://127.0.0.1/1/2", "No dask scheduler inside this process")])
def test_scheduler_schemes_other_than_tcp_are_refused_at_once(tmp_path, address, why, capsys):
    src = _images(tmp_path / "in", n=1)
    t0 = time.monotonic()
    assert main(["colorize", str(src), "-o", str(tmp_path / "out"), "--scheduler", address]) == 2
    assert time.monotonic() - t0 < 3
    err = capsys.readouterr().err
    assert why in err and "Traceback" not in err


# -- 3: one pixel limit for every reader -------------------------------------------------------------
@pytest.fixture(scope="module")
def bomb_tif(tmp_path_factory):
    """A ~400 KB deflate TIFF that claims 20000 x 20000 pixels (400 MB decoded)."""
    import tifffile

    path = tmp_path_factory.mktemp("bomb") / "bomb.tif"
    tile = np.zeros((1024, 1024), np.uint8)
    n = (-(-20000 // 1024)) ** 2  # tiles, the last row and column partly outside
    tifffile.imwrite(path, (tile for _ in range(n)), shape=(20000, 20000), dtype=np.uint8, tile=tile.shape,
                     compression="zlib")
    assert path.stat().st_size < 1_000_000
    return path


def test_pixel_bomb_is_refused_from_its_header(bomb_tif):
    from napari_colorize.core.data import _decode

    for read in (lambda: read_image(bomb_tif), lambda: _decode(bomb_tif.read_bytes(), bomb_tif.name)):
        tracemalloc.start()
        t0 = time.monotonic()
        try:
            with pytest.raises(InputError, match="20000 x 20000|400000000 pixels"):
                read()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 20_000_000 and time.monotonic() - t0 < 5  # nothing decoded


def test_pixel_bomb_fails_alone_in_a_batch(tmp_path, bomb_tif, capsys):
    src = _images(tmp_path / "in", n=2)
    (src / "bomb.tif").symlink_to(bomb_tif)
    t0 = time.monotonic()
    assert main(["colorize", str(src), "-o", str(tmp_path / "out"), "--workers", "1"]) == 1
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert "colorized 2, skipped 0 existing, failed 1" in err and "failed: bomb.tif" in err
    assert "over the limit of 178,956,970" in err and "Traceback" not in err


def test_max_pixels_option_lowers_raises_and_lifts_the_limit(tmp_path, capsys, monkeypatch):
    import PIL.Image

    from napari_colorize.core.data import iter_images

    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", PIL.Image.MAX_IMAGE_PIXELS)  # restored afterwards
    src = _images(tmp_path / "in", n=2)
    assert main(["colorize", str(src), "-o", str(tmp_path / "o1"), "--max-pixels", "1000"]) == 2
    err = capsys.readouterr().err
    assert "failed 2" in err and "over the limit of 1,000" in err and "No file could be colorized" in err
    assert main(["colorize", str(src), "-o", str(tmp_path / "o2"), "--max-pixels", "0"]) == 0
    assert PIL.Image.MAX_IMAGE_PIXELS is None  # 0: Pillow's own limit is lifted too
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 1000)
    assert main(["colorize", str(src), "-o", str(tmp_path / "o3"), "--max-pixels", "5000"]) == 0
    assert PIL.Image.MAX_IMAGE_PIXELS >= 2500  # raised so that Pillow does not refuse what we allow
    with pytest.raises(SystemExit):
        main(["colorize", str(src), "-o", str(tmp_path / "o4"), "--max-pixels", "-1"])
    with pytest.warns(UserWarning, match="over the limit"):
        assert list(iter_images(src, max_pixels=1000)) == []


# -- 4: a .tar that is not a tar ----------------------------------------------------------------------
def test_evaluate_on_a_file_named_tar_that_is_not_one(tmp_path, capsys):
    from napari_colorize.core.data import iter_images

    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar archive at all" * 40)
    assert main(["evaluate", "--data", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "junk.tar" in err and "not a tar archive" in err and "Traceback" not in err
    # inside a folder it is one unreadable file among others
    folder = _images(tmp_path / "photos", n=1)
    (folder / "junk.tar").write_bytes(junk.read_bytes())
    with pytest.warns(UserWarning, match="junk.tar"):
        assert [name for name, _ in iter_images(folder)] == ["img00.png"]


# -- 5: names too long for the file system --------------------------------------------------------------
def test_names_too_long_for_the_file_system_fail_alone(tmp_path, capsys):
    src = _images(tmp_path / "in", n=1)
    if os.pathconf(src, "PC_NAME_MAX") != 255:
        pytest.skip("needs a file system with 255-byte names")
    img = Image.open(src / "img00.png")
    long250, long235 = "a" * 246 + ".png", "b" * 231 + ".png"  # outputs of 260 and 245 bytes
    img.save(src / long250)
    img.save(src / long235)
    out = tmp_path / "out"
    assert main(["colorize", str(src), "-o", str(out), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "colorized 2, skipped 0 existing, failed 1" in err and "Traceback" not in err
    assert "longer than the file system allows" in err and f"failed: {long250}" in err
    assert sorted(p.name for p in out.iterdir()) == sorted(["b" * 231 + "_colorized.png", "img00_colorized.png"])


# -- 6: a bad temperature is one error, up front --------------------------------------------------------
@pytest.mark.parametrize("t", ["0", "-1", "nan", "99", "inf"])
def test_bad_temperature_is_one_error_up_front(tmp_path, t, capsys):
    src = _images(tmp_path / "in")
    assert main(["colorize", str(src), "-o", str(tmp_path / "out"), "--temperature", t]) == 2
    err = capsys.readouterr().err
    assert err.count("temperature must be a number above 0 and at most 5") == 1 and "skipped" not in err and "colorized" not in err
    assert not (tmp_path / "out").exists()


# -- 7, 8: SIGTERM and SIGKILL in the middle of a batch ---------------------------------------------------
def _start(src, out):
    cmd = [sys.executable, "-m", "napari_colorize.cli", "colorize", str(src), "-o", str(out), "--workers", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _outputs(out):
    return sorted(p for p in out.iterdir() if not p.name.startswith(".")) if out.exists() else []


def _wait_for_output(proc, out, more_than=0, timeout=120):
    deadline = time.monotonic() + timeout
    while len(_outputs(out)) <= more_than and proc.poll() is None:
        assert time.monotonic() < deadline, "the batch wrote nothing"
        time.sleep(0.01)


def _assert_complete_pngs(out, shape):
    for p in _outputs(out):
        with Image.open(p) as im:
            im.verify()  # checksums and the end marker: a truncated PNG fails here
        with Image.open(p) as im:
            im.load()
            assert im.format == "PNG" and np.asarray(im).shape == shape


@pytest.fixture(scope="module")
def forty(tmp_path_factory):
    # large enough (~50 ms each) that a signal lands in the middle of the batch
    return _images(tmp_path_factory.mktemp("forty"), n=40, shape=(256, 320))


def test_sigterm_stops_the_batch_with_a_summary(tmp_path, forty):
    out = tmp_path / "out"
    proc = _start(forty, out)
    _wait_for_output(proc, out)
    time.sleep(0.2)  # a few more done
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "terminated" in err and "colorized " in err and "Traceback" not in err
    done = int(err.split("colorized ")[-1].split(",")[0])
    # tasks running when the signal came still finish (atomically), after the count
    assert done <= len(_outputs(out)) < 40
    assert _temporaries(out) == []
    _assert_complete_pngs(out, (256, 320, 3))


def test_sigkill_leaves_only_complete_outputs_and_a_rerun_finishes(tmp_path, forty):
    from napari_colorize.core.atomic import temp_path

    out = tmp_path / "out"
    rng = random.Random(20240611)
    for _ in range(3):
        proc = _start(forty, out)
        _wait_for_output(proc, out, more_than=len(_outputs(out)))
        time.sleep(rng.uniform(0.0, 0.5))
        proc.kill()
        proc.communicate(timeout=60)
        _assert_complete_pngs(out, (256, 320, 3))
    assert 0 < len(_outputs(out)) < 40
    # a temporary left by a process that has died, as a kill in the middle of a write leaves one
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = temp_path(out / "img39_colorized.png").name.replace(f"-{os.getpid()}-", f"-{dead.pid}-")
    (out / stale).write_bytes(b"\x89PNG half")
    proc = _start(forty, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert "failed 0" in err and "Traceback" not in err
    assert len(_outputs(out)) == 40 and _temporaries(out) == []
    _assert_complete_pngs(out, (256, 320, 3))
