"""Shared fixtures. Each test gets its own user model folder, so no test sees another's models."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _user_models(tmp_path, monkeypatch):
    d = tmp_path / "user-models"
    monkeypatch.setenv("NAPARI_COLORIZE_MODEL_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def model():
    from napari_colorize import load_model

    return load_model()


@pytest.fixture(scope="session")
def photo():
    """A color photo (uint8 RGB) shipped with scikit-image."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def gray_photo(photo):
    from skimage.color import rgb2gray

    return (rgb2gray(photo) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module: tiny batches gain nothing from threads, and on a busy
    2-core machine oversubscribed torch threads make each training step many times slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture()
def errors(monkeypatch):
    """Messages the plugin shows as napari error notifications, in order."""
    shown: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    return shown


@pytest.fixture()
def colorize_dock(make_napari_viewer):
    """A viewer and its Colorize dock, opened from the plugin's manifest."""
    viewer = make_napari_viewer()
    _, dock = viewer.window.add_plugin_dock_widget("napari-colorize", "Colorize")
    return viewer, dock


@pytest.fixture(scope="module")
def tiny():
    """A randomly initialised narrow network: same architecture and receptive field, much faster."""
    from napari_colorize.core.color import ab_bins
    from napari_colorize.core.modelfile import Colorizer

    torch.manual_seed(0)
    m = Colorizer.new(torch.from_numpy(ab_bins()), width=4)
    m.net.eval()
    return m
