"""The command line: colorize files and folders, evaluate, train, clear errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import warnings

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

from napari_colorize.batch.files import read_image
from napari_colorize.cli import main


@pytest.fixture()
def gray_files(tmp_path, gray_photo):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(gray_photo[:128, :128]).save(folder / "a.png")
    Image.fromarray(gray_photo[200:300, 100:260]).save(folder / "b.jpg")
    import tifffile

    tifffile.imwrite(folder / "c.tif", (gray_photo[:64, :80].astype(np.uint16) * 257))
    return folder


def test_colorize_one_file_keeps_lightness(tmp_path, gray_files):
    out = tmp_path / "a_color.png"
    assert main(["colorize", str(gray_files / "a.png"), "-o", str(out)]) == 0
    rgb = read_image(out)
    gray = read_image(gray_files / "a.png")
    assert rgb.shape == gray.shape + (3,) and rgb.dtype == np.uint8
    l_out = rgb2lab(rgb)[..., 0]
    l_in = rgb2lab(np.repeat(gray[..., None], 3, 2))[..., 0]
    assert np.abs(l_out - l_in).mean() < 0.6  # 8-bit rounding only


def test_mode_picks_whole_or_tiled_as_the_api_does(tmp_path, gray_photo, model):
    from napari_colorize import colorize

    src = tmp_path / "scan.tif"
    import tifffile

    tifffile.imwrite(src, gray_photo[:200, :240])
    for mode in ("whole", "tiled"):
        out = tmp_path / f"{mode}.tif"
        assert main(["colorize", str(src), "-o", str(out), "--mode", mode]) == 0
        expected = colorize(gray_photo[:200, :240], model=model, mode=mode)
        assert np.abs(read_image(out) / 65535.0 - expected).max() < 1e-3
    assert np.abs(read_image(tmp_path / "whole.tif") / 65535.0 - read_image(tmp_path / "tiled.tif") / 65535.0).max() > 0.05
    assert model.tile_above == 16384  # the cached bundled model is left as it was


def test_colorize_folder_then_skips_done_files(tmp_path, gray_files, capsys):
    out = tmp_path / "out"
    assert main(["colorize", str(gray_files), "-o", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a_colorized.png", "b_colorized.png", "c_colorized.tif"]
    tif = read_image(out / "c_colorized.tif")
    assert tif.shape == (64, 80, 3) and tif.dtype == np.uint16
    stamp = (out / "a_colorized.png").stat().st_mtime_ns
    assert main(["colorize", str(gray_files), "-o", str(out)]) == 0
    assert (out / "a_colorized.png").stat().st_mtime_ns == stamp
    assert "skipped 3 existing" in capsys.readouterr().err


def test_unreadable_file_is_reported_and_the_rest_done(tmp_path, gray_files, capsys):
    (gray_files / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    assert main(["colorize", str(gray_files), "-o", str(out)]) == 1  # some inputs failed
    err = capsys.readouterr().err
    assert "failed" in err and "broken.png" in err and "Traceback" not in err
    assert len(list(out.iterdir())) == 3


def test_missing_input_and_bad_model_are_one_line_errors(tmp_path, gray_files):
    proc = subprocess.run(
        [sys.executable, "-m", "napari_colorize.cli", "colorize", str(tmp_path / "nope.png"), "-o", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "No such file" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage" * 10)
    proc = subprocess.run(
        [sys.executable, "-m", "napari_colorize.cli", "colorize", str(gray_files / "a.png"), "-o",
         str(tmp_path / "o.png"), "--model", str(bad)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "not a readable safetensors" in proc.stderr
    assert "Traceback" not in proc.stderr


def _photo_tar(path, photos):
    with tarfile.open(path, "w") as tar:
        for i, p in enumerate(photos):
            buf = io.BytesIO()
            Image.fromarray(p).save(buf, format="JPEG", quality=95)
            info = tarfile.TarInfo(f"img_{i}.jpg")
            info.size = buf.tell()
            buf.seek(0)
            tar.addfile(info, buf)


def test_evaluate_prints_model_and_gray_baseline(tmp_path, photo, capsys):
    from skimage import data

    tar = tmp_path / "photos.tar"
    _photo_tar(tar, [photo[::4, ::4], data.coffee()[::4, ::4], data.chelsea()[::4, ::4]])
    assert main(["evaluate", "--data", str(tar), "--hints", "10", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_images"] == 3 and res["n_hints"] == 10
    for key in ("psnr", "psnr_gray", "ssim", "ssim_gray", "ciede2000", "ciede2000_gray", "colorfulness"):
        assert np.isfinite(res[key])
    assert res["ciede2000_gray"] > 0
    assert main(["evaluate", "--data", str(tar)]) == 0
    text = capsys.readouterr().out
    assert "psnr" in text and "gray" in text


def test_evaluate_skips_gray_photos_unless_asked(tmp_path, photo, gray_photo, capsys):
    tar = tmp_path / "photos.tar"
    gray_rgb = np.repeat(gray_photo[::4, ::4, None], 3, axis=2)
    _photo_tar(tar, [photo[::4, ::4], gray_rgb])
    assert main(["evaluate", "--data", str(tar), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_images"] == 1 and res["n_skipped_gray"] == 1
    assert np.isfinite(res["psnr_pooled"]) and np.isfinite(res["psnr_pooled_gray"])
    assert main(["evaluate", "--data", str(tar), "--json", "--include-gray"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["n_images"] == 2 and both["n_skipped_gray"] == 0
    # the gray baseline is exact on a gray photo, so including it raises the baseline's mean PSNR
    assert both["psnr_gray"] > res["psnr_gray"] + 10
    only_gray = tmp_path / "gray.tar"
    _photo_tar(only_gray, [gray_rgb])
    assert main(["evaluate", "--data", str(only_gray)]) == 2
    assert "No color photos" in capsys.readouterr().err


def test_train_a_few_steps_resumes_and_saves_a_loadable_model(tmp_path, photo):
    from skimage import data

    from napari_colorize import colorize, load_model

    tar = tmp_path / "train.tar"
    _photo_tar(tar, [photo[::8, ::8], data.coffee()[::6, ::6], data.chelsea()[::4, ::4], data.rocket()[::6, ::6]])
    args = ["train", "--data", str(tar), "--out", str(tmp_path / "m"), "--steps", "2", "--batch-size", "4",
            "--width", "8", "--size", "32", "--crop", "32", "--checkpoint-dir", str(tmp_path / "ck")]
    assert main(args) == 0
    resume = [*args[:-2], "--steps", "3", "--checkpoint-dir", str(tmp_path / "ck"), "--resume"]
    first = (tmp_path / "m.safetensors").read_bytes()
    assert main(resume) == 2  # the first run's model is not replaced unasked
    assert (tmp_path / "m.safetensors").read_bytes() == first
    assert main([*resume, "--overwrite"]) == 0
    m = load_model(tmp_path / "m.safetensors")
    assert m.card["training"]["steps"] == 3 and m.config["width"] == 8
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["training"]["seed"] == 0
    assert colorize(np.zeros((16, 16), np.uint8), model=m).shape == (16, 16, 3)


def test_train_fine_tunes_from_base_on_a_folder_of_larger_photos(tmp_path):
    from skimage import data
    from skimage.io import imsave

    from napari_colorize import load_model

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("coffee", "chelsea", "astronaut"):
        imsave(folder / f"{name}.png", getattr(data, name)(), check_contrast=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["train", "--data", str(folder), "--base", "default", "--steps", "3", "--batch-size", "4",
                   "--size", "96", "--crop", "48", "--threads", "1", "--out", str(tmp_path / "cli-tuned")])
    assert rc == 0
    tuned = load_model(tmp_path / "cli-tuned.safetensors")
    assert tuned.card["training"]["base"] == "default" and tuned.card["training"]["steps"] == 3


def test_train_validates_on_photos_of_several_shapes(tmp_path, photo):
    from skimage import data

    tar, val = tmp_path / "train.tar", tmp_path / "val.tar"
    _photo_tar(tar, [photo[::8, ::8], data.coffee()[::6, ::6]])
    _photo_tar(val, [data.chelsea()[::4, ::4], data.rocket()[::6, ::6].transpose(1, 0, 2)])  # landscape, portrait
    base = ["train", "--data", str(tar), "--steps", "2", "--batch-size", "2", "--width", "8", "--size", "32",
            "--crop", "32", "--val-every", "1", "--threads", "1"]
    assert main([*base, "--val", str(val), "--out", str(tmp_path / "a")]) == 0
    history = json.loads((tmp_path / "a.json").read_text())["history"]
    assert any("val_psnr_h0" in h for h in history)
    assert main([*base, "--val", str(val), "--val-count", "0", "--out", str(tmp_path / "b")]) == 0


@pytest.mark.parametrize("extra, why", [
    (["--batch-size", "0"], "--batch-size must be an integer from 1"),
    (["--lr", "nan"], "--lr must be a number above 0"),
    (["--width", "100"], "--width must be an integer from 4 to 64"),
    (["--rebalance-lambda", "nan"], "--rebalance-lambda"),
    (["--threads", "-1"], "--threads"),
    (["--data", "nope"], "No such file or folder: nope"),
    (["--out", "FILE/m"], "Cannot create the output folder"),
    (["--base", "no-such-model"], "--base: No model named 'no-such-model'"),
    (["--resume"], "--resume continues from --checkpoint-dir"),
    (["--device", "cuda"], "no CUDA GPU"),
])
def test_train_options_are_checked_before_any_work(tmp_path, extra, why, capsys):
    import torch

    if extra == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    (tmp_path / "data").mkdir()
    (tmp_path / "FILE").write_text("a file where a folder is needed")
    extra = [str(tmp_path / "FILE" / "m") if e == "FILE/m" else e for e in extra]
    args = ["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "m")]
    for flag, value in zip(extra[::2], extra[1::2] + [None] * len(extra)):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag] + ([value] if value is not None else [])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert why in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE", "data"]


def test_train_never_replaces_its_base_and_a_damaged_checkpoint_is_one_line(tmp_path, photo, capsys, _user_models):
    from napari_colorize import load_model

    load_model().save(tmp_path / "base")
    before = (tmp_path / "base.safetensors").read_bytes()
    tar = tmp_path / "t.tar"
    _photo_tar(tar, [photo[::8, ::8]])
    args = ["train", "--data", str(tar), "--steps", "1", "--batch-size", "2", "--size", "32", "--crop", "32"]
    load_model().save(_user_models / "mine")
    mine = (_user_models / "mine.safetensors").read_bytes()
    for base, out in ((tmp_path / "base.safetensors", tmp_path / "base"), (tmp_path / "base", tmp_path / "base"),
                      (tmp_path / "base", tmp_path / "base.json"), ("mine", _user_models / "mine")):
        assert main([*args, "--base", str(base), "--out", str(out), "--overwrite"]) == 2
        assert "would replace the --base model" in capsys.readouterr().err
    assert (tmp_path / "base.safetensors").read_bytes() == before
    assert (_user_models / "mine.safetensors").read_bytes() == mine
    assert main([*args, "--width", "8", "--out", str(tmp_path / "base.json")]) == 2  # named as the save names it
    assert "already exists" in capsys.readouterr().err
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "checkpoint.safetensors").write_bytes(b"not a checkpoint")
    assert main([*args, "--width", "8", "--out", str(tmp_path / "m"), "--checkpoint-dir", str(tmp_path / "ck"),
                 "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "Cannot resume from" in err and "damaged or belongs to another model" in err


@pytest.mark.parametrize("extra, why", [
    (["--hints", "-3"], "--hints must be an integer from 0"),
    (["--limit", "0"], "--limit must be an integer from 1"),
    (["--seed", "-1", "--hints", "2"], "--seed must be an integer from 0"),
    (["--levin"], "add --hints N"),
])
def test_evaluate_options_are_one_line_errors(tmp_path, extra, why, capsys):
    tar = tmp_path / "p.tar"
    _photo_tar(tar, [np.zeros((8, 8, 3), np.uint8)])
    assert main(["evaluate", "--data", str(tar), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert why in err and len(err.splitlines()) == 1


def test_evaluate_on_a_truncated_tar_is_one_line(tmp_path, photo, capsys):
    from skimage import data

    tar = tmp_path / "p.tar"
    _photo_tar(tar, [photo[::4, ::4], data.coffee()[::4, ::4]])
    raw = tar.read_bytes()
    tar.write_bytes(raw[: len(raw) // 2])
    assert main(["evaluate", "--data", str(tar), "--json"]) == 2
    assert "is truncated or not a tar file" in capsys.readouterr().err


def test_train_on_a_truncated_tar_is_one_line(tmp_path, photo, capsys):
    tar = tmp_path / "t.tar"
    _photo_tar(tar, [photo[::4, ::4], photo[::3, ::3]])
    raw = tar.read_bytes()
    tar.write_bytes(raw[: len(raw) // 2])
    assert main(["train", "--data", str(tar), "--steps", "1", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "truncated or not a tar file" in err
