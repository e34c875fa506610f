"""Model files: safetensors plus a JSON card, validated at load; bad references are one clear error."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from napari_colorize import load_model
from napari_colorize.core import library, modelfile
from napari_colorize.core.errors import ColorizeError, InputError, ModelLoadError
from napari_colorize.core.modelfile import bundled_dir, load


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


def test_the_bundled_card_matches_its_weights():
    model = load(None)
    card = json.loads((bundled_dir() / "default.json").read_text())
    assert card["config"] == model.config
    assert str(model.n_parameters()) in card["architecture"]
    assert ("regression" in card["architecture"]) == model.regression
    assert ("global" in card["architecture"]) == (model.net.glob is not None)


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
    assert json.loads(card.read_text())["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_loading_a_model_from_another_folder_never_writes_its_card(model, tmp_path):
    weights = model.save(tmp_path / "theirs")
    card = tmp_path / "theirs.json"
    doc = json.loads(card.read_text())
    edited = {**doc, "weights_sha256": "0" * 64, "notes": "my notes"}
    card.write_text(json.dumps(edited))
    modelfile.forget()
    with pytest.warns(UserWarning, match="does not describe the weights beside it"):
        loaded = modelfile.load(weights)
    assert json.loads(card.read_text()) == edited  # left as the user wrote it
    assert loaded.config == model.config
    card.write_text(json.dumps({**doc, "config": {**doc["config"], "vivid": 0.1}}))
    modelfile.forget()
    with pytest.warns(UserWarning, match="differ from those stored"):
        assert modelfile.load(weights).config["vivid"] == model.config["vivid"]


@pytest.mark.parametrize("ref", ["", ".", "/", 5, "x" * 5000, "dangling.safetensors", "sub/", "no-such-model"])
def test_bad_model_references_are_one_clear_error(tmp_path, monkeypatch, ref):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dangling.safetensors").symlink_to(tmp_path / "gone.safetensors")
    (tmp_path / "sub").mkdir()
    with pytest.raises(ModelLoadError) as info:
        load_model(ref)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_a_hinted_pass_is_decoded_with_its_own_vividness(model):
    import copy

    from napari_colorize.core.model import annealed_mean, split_output

    m = copy.deepcopy(model)
    m.config.update(vivid=1.0, hint_vivid=0.0, calm=0.0, neutral=0.0)
    out = torch.randn(1, m.bins.shape[0] + 2, 4, 5)
    logits, reg = split_output(out, m.bins.shape[0])
    torch.testing.assert_close(m.decode(out, hinted=True), reg)  # hint_vivid 0: the regressed ab
    auto = annealed_mean(logits, m.bins, m.temperature, m.log_bias)
    torch.testing.assert_close(m.decode(out, hinted=False), auto)  # vivid 1: the distribution's guess
    del m.config["hint_vivid"]
    torch.testing.assert_close(m.decode(out, hinted=True), auto)  # without it, as vivid says


def test_save_model_names_a_model_that_load_model_finds(model, _user_models, tmp_path, monkeypatch):
    import napari_colorize as nc

    nc.save_model(model, "slides")
    assert (_user_models / "slides.safetensors").exists()
    assert nc.load_model("slides").config == model.config
    with pytest.raises(InputError, match="ends in .json"):
        nc.save_model(model, "notes.json")
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("NAPARI_COLORIZE_MODEL_DIR", str(tmp_path / "afile"))
    with pytest.raises(InputError, match="is a file"):
        nc.save_model(model, "other")
    assert (tmp_path / "afile").read_text() == "x"
