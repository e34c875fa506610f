"""The user's models and model files: names never collide, nothing is overwritten or lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from napari_colorize import colorize, load_model
from napari_colorize.core import library, modelfile
from napari_colorize.core.atomic import TEMP_SUFFIX, atomic_write, clean_stale, temp_path
from napari_colorize.core.errors import ColorizeError, InputError, ModelLoadError


def _tamper(src, dst, tensors=None, config=None):
    """Copy model file ``src`` to ``dst`` with changed tensors or settings."""
    t = load_file(str(src))
    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
    t.update(tensors or {})
    cfg = json.loads(meta["config"])
    cfg.update(config or {})
    meta["config"] = json.dumps(cfg)
    save_file(t, str(dst), metadata=meta)
    return dst


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


def test_a_file_in_the_working_folder_never_stands_in_for_a_named_model(model, tmp_path, monkeypatch):
    bad = {k: torch.full_like(v, float("nan")) for k, v in load_file(str(modelfile.resolve(None))).items()
           if k.startswith("net.") and v.is_floating_point()}
    _tamper(modelfile.resolve(None), tmp_path / "default.safetensors", tensors=bad)
    monkeypatch.chdir(tmp_path)
    assert modelfile.resolve("default") == modelfile.bundled_dir() / "default.safetensors"
    with pytest.raises(ModelLoadError, match="NaN"):
        load_model("./default.safetensors")


@pytest.mark.parametrize("change", [
    {"config": {"width": 400}},
    {"config": {"debias": 1e308}},
    {"config": {"temperature": "hot"}},
    {"config": {"vivid": float("nan")}},
    {"config": {"working_size": True}},
    {"tensors": {"bins": torch.full((261, 2), float("inf"))}},
    {"tensors": {"net.head.bias": torch.zeros(261, dtype=torch.float64)}},
    {"tensors": {"net.head.bias": torch.zeros(7)}},
    {"tensors": {"extra": torch.zeros(3)}},
])
def test_damaged_model_content_is_refused_at_load(model, tmp_path, change):
    src = modelfile.resolve(None)
    path = _tamper(src, tmp_path / "bad.safetensors", **change)
    with pytest.raises(ModelLoadError, match="damaged"):
        load_model(path)
    with pytest.raises(ColorizeError):
        library.import_model(path, "bad")
    assert library.user_models() == {}


def test_a_card_left_behind_by_a_killed_save_is_rewritten(model, _user_models):
    library.save_user_model(model, "m")
    card = _user_models / "m.json"
    stale = json.loads(card.read_text())
    model2 = load_model()
    model2.card = {**model2.card, "note": "second save"}
    weights = model2.save(_user_models / "m")
    card.write_text(json.dumps(stale))  # as if the second save died between weights and card
    modelfile.forget()
    assert load_model("m").card["note"] == "second save"
    assert json.loads(card.read_text())["note"] == "second save"
    assert json.loads(card.read_text())["weights_sha256"] == modelfile._sha256(weights)


def test_atomic_write_cleans_up_and_stale_temps_of_dead_processes_go(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def fail(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, fail)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    # a temp of a process that died, one of a live process (ours) and a user's file that looks alike
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    mine = temp_path(target)
    stale = mine.with_name(mine.name.replace(f"-{os.getpid()}-", f"-{pid}-"))
    user = tmp_path / f".notes{TEMP_SUFFIX}"
    for p in (mine, stale, user):
        p.write_bytes(b"x")
    assert clean_stale(tmp_path) == 1
    assert not stale.exists() and mine.exists() and user.exists()


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


@pytest.mark.parametrize("ref", ["", ".", "/", 5, "x" * 5000, "dangling.safetensors", "sub/", "no-such-model"])
def test_bad_model_references_are_one_clear_error(tmp_path, monkeypatch, ref):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dangling.safetensors").symlink_to(tmp_path / "gone.safetensors")
    (tmp_path / "sub").mkdir()
    with pytest.raises(ModelLoadError) as info:
        load_model(ref)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300
