"""The user's models by name: save, rename, delete, export, import; names never collide, nothing is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from napari_colorize import colorize, load_model
from napari_colorize.core import library, modelfile
from napari_colorize.core.atomic import TEMP_SUFFIX
from napari_colorize.core.errors import InputError, ModelLoadError


def test_models_save_rename_export_import_delete(model, tmp_path, _user_models):
    changes = []
    library.on_models_changed(lambda: changes.append(1))
    saved = library.save_user_model(load_model(), "mine")
    assert saved.parent == _user_models and "mine" in library.available_models()
    assert library.unique_name("mine") == "mine-2"
    with pytest.raises(InputError, match="bundled"):
        library.save_user_model(model, "default")
    with pytest.raises(InputError, match="not a usable model name"):
        library.rename_model("mine", "../escape")

    library.rename_model("mine", "theirs")
    assert "mine" not in library.available_models() and load_model("theirs").name == "theirs"
    (tmp_path / "export").mkdir()
    out = library.export_model("theirs", tmp_path / "export")
    assert out == tmp_path / "export" / "theirs.safetensors" and out.with_suffix(".json").exists()
    with pytest.raises(InputError, match="exists already"):
        library.import_model(out)
    assert library.import_model(out, "copy") == "copy"
    library.delete_model("theirs")
    assert set(library.user_models()) == {"copy"}
    with pytest.raises(InputError, match="bundled"):
        library.delete_model("default")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError):
        library.import_model(bad)
    assert len(changes) == 4  # save, rename, import, delete


def test_a_dot_in_a_name_never_touches_another_model(model, _user_models):
    a = library.save_user_model(model, "slides v1")
    before = a.read_bytes()
    b = library.save_user_model(model, "slides v1.5")
    assert b.name == "slides v1.5.safetensors" and a.read_bytes() == before
    assert {"slides v1", "slides v1.5"} <= set(library.user_models())
    assert json.loads((_user_models / "slides v1.5.json").read_text())["config"]["width"] == model.config["width"]
    library.rename_model("slides v1.5", "slides v2.0")
    assert set(library.user_models()) == {"slides v1", "slides v2.0"} and a.read_bytes() == before
    with pytest.raises(InputError, match="exists already"):
        library.save_user_model(model, "slides v1")


def test_hidden_and_odd_files_are_not_models_and_cannot_be_deleted(model, _user_models):
    library.save_user_model(model, "keep")
    (_user_models / "...safetensors").write_bytes(b"x")
    (_user_models / ".hidden.safetensors").write_bytes(b"x")
    (_user_models / "dir.safetensors").mkdir()
    assert set(library.user_models()) == {"keep"}
    for bad in ("..", ".", "../keep", ""):
        with pytest.raises(InputError):
            library.delete_model(bad)
        with pytest.raises(InputError):
            library.rename_model(bad, "other")
    with pytest.raises(InputError):
        library.checkpoint_dir("..")
    assert (_user_models / "keep.safetensors").is_file() and (_user_models / "keep.json").is_file()


def test_export_never_replaces_files_it_was_not_given(model, tmp_path):
    victim = tmp_path / "victim.safetensors"
    victim.write_bytes(b"mine")
    (tmp_path / "victim.json").write_text("{}")
    for dest in (tmp_path / "victim.json", victim, tmp_path / "x.txt", "/dev/null"):
        with pytest.raises(InputError):
            library.export_model("default", dest)
    assert victim.read_bytes() == b"mine" and (tmp_path / "victim.json").read_text() == "{}"
    assert not (tmp_path / "x.safetensors").exists() and not os.path.exists("/dev/null.safetensors")
    out = library.export_model("default", tmp_path / "v1.5.safetensors")
    assert out.name == "v1.5.safetensors" and (tmp_path / "v1.5.json").is_file()
    assert library.export_model("default", tmp_path / "victim.safetensors", overwrite=True) == victim
    assert load_model(victim).n_parameters() == model.n_parameters()


def test_import_refuses_links(model, tmp_path):
    src = model.save(tmp_path / "src" / "m")
    secret = tmp_path / "secret.json"
    secret.write_text('{"token": 1}')
    secret.chmod(0o600)
    card = src.with_name("m.json")
    card.unlink()
    card.symlink_to(secret)
    with pytest.raises(InputError, match="symbolic link"):
        library.import_model(src, "copy")
    link = tmp_path / "link.safetensors"
    link.symlink_to(src)
    with pytest.raises(InputError, match="symbolic link"):
        library.import_model(link, "copy2")
    assert library.user_models() == {}


def test_a_failed_save_never_leaves_a_half_written_model(model, _user_models, monkeypatch):
    path = library.save_user_model(load_model(), "keep")
    good = path.read_bytes()

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(modelfile, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        library.save_user_model(load_model(), "keep", overwrite=True)
    assert path.read_bytes() == good
    assert sorted(p.name for p in _user_models.iterdir()) == ["keep.json", "keep.safetensors"]


def test_model_saves_killed_at_random_moments_leave_loadable_models(model, _user_models):
    """SIGKILL a process while it saves models over and over; every model left is whole."""
    script = textwrap.dedent("""
        import sys
        from napari_colorize import load_model
        from napari_colorize.core.library import save_user_model
        m = load_model()
        print("ready", flush=True)
        i = 0
        while True:
            m.card["i"] = i
            save_user_model(m, "busy", overwrite=True)
            i += 1
    """)
    env = {**os.environ, "NAPARI_COLORIZE_MODEL_DIR": str(_user_models)}
    rng = np.random.default_rng(0)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        try:
            proc.wait(timeout=0.2 + rng.random())
        except subprocess.TimeoutExpired:
            proc.kill()
        proc.wait()
        modelfile.forget()
        if (_user_models / "busy.safetensors").exists():
            assert load_model("busy").n_parameters() == model.n_parameters()
    library.save_user_model(model, "after")  # the next save cleans the dead processes' temporaries
    assert not [p for p in _user_models.iterdir() if p.name.endswith(TEMP_SUFFIX)]
    assert np.isfinite(colorize(np.zeros((16, 16), np.uint8), model="busy")).all()
