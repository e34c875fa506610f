"""``napari-colorize colorize --reference``: another photo's palette from the command line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from napari_colorize.batch.files import read_image
from napari_colorize.cli import main
from napari_colorize.core.ab_stats import ab_histogram


@pytest.fixture()
def files(tmp_path, gray_photo):
    Image.fromarray(gray_photo[::4, ::4]).save(tmp_path / "gray.png")
    Image.fromarray(skdata.coffee()[::4, ::4]).save(tmp_path / "ref.png")
    Image.fromarray(gray_photo[:50, :50]).save(tmp_path / "grayref.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    return tmp_path


def _distance(rgb, reference) -> float:
    h1, _ = ab_histogram(rgb, step=10.0)
    h2, _ = ab_histogram(reference, step=10.0)
    return 0.5 * float(np.abs(h1 / h1.sum() - h2 / h2.sum()).sum())


def test_reference_gives_the_results_its_palette(files):
    assert main(["colorize", str(files / "gray.png"), "-o", str(files / "auto.png")]) == 0
    assert main(["colorize", str(files / "gray.png"), "-o", str(files / "ref_out.png"),
                 "--reference", str(files / "ref.png"), "--reference-strength", "1"]) == 0
    ref = read_image(files / "ref.png")
    auto, steered = read_image(files / "auto.png"), read_image(files / "ref_out.png")
    assert steered.shape == auto.shape
    assert _distance(steered, ref) < 0.8 * _distance(auto, ref)


@pytest.mark.parametrize(("name", "words"), [("broken.png", "Cannot read image"),
                                              ("grayref.png", "color (RGB) image"),
                                              ("missing.png", "No such file")])
def test_a_bad_reference_is_one_line_and_exit_status_2(files, name, words):
    proc = subprocess.run(
        [sys.executable, "-m", "napari_colorize.cli", "colorize", str(files / "gray.png"), "-o",
         str(files / "o.png"), "--reference", str(files / name)],
        capture_output=True, text=True,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and words in lines[0], proc.stderr
    assert not (files / "o.png").exists()
