"""Fine-tuning: it learns a new color domain, keeps the weights of the lowest error it shows, says
when it gained nothing, settles its step estimate, saves and loads, stops cleanly, survives bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_colorize import InputError, colorize, finetune, load_model
from napari_colorize.core.color import rgb_to_lab

TINY = {"batch_size": 8, "crop": 48}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def stain():
    """An immunohistochemistry slide (brown DAB, blue hematoxylin): a domain photos do not teach."""
    from skimage import data

    ihc = data.immunohistochemistry()
    train = {"top": ihc[:256], "bottom left": ihc[256:, :256]}
    return train, ihc[256:, 256:]


def ab_rmse(rgb01: np.ndarray, ref_u8: np.ndarray) -> float:
    a = rgb_to_lab(rgb01.astype(np.float32))[..., 1:]
    b = rgb_to_lab(ref_u8.astype(np.float32) / 255.0)[..., 1:]
    return float(np.sqrt(((a - b) ** 2).sum(-1).mean()))


def test_finetune_learns_a_stain_domain_and_leaves_base_and_inputs_alone(stain, model):
    train, held = stain
    copies = {k: v.copy() for k, v in train.items()}
    base_state = {k: v.clone() for k, v in model.net.state_dict().items()}
    seen = []
    tuned = finetune(train, model=model, steps=40, seed=0, callback=seen.append, **TINY)

    val = tuned.card["validation"]
    assert val["after"]["val_ab_rmse"] < 0.8 * val["before"]["val_ab_rmse"]
    assert tuned.card["finetune"]["improved"] and "->" in tuned.card["finetune"]["verdict"]
    assert any(not torch.equal(v, base_state[k]) for k, v in tuned.net.state_dict().items())
    # the bar fine-tuning must clear: at least 30% less ab error than the base model on held-out tissue
    before, after = ab_rmse(colorize(held, model=model), held), ab_rmse(colorize(held, model=tuned), held)
    assert after < 0.7 * before, (before, after)

    assert [i.step for i in seen] == list(range(1, 41))
    assert any(i.val for i in seen) and seen[-1].val and seen[-1].eta == 0
    for k, v in model.net.state_dict().items():  # the (cached) base model is untouched
        assert torch.equal(v, base_state[k]), k
    for k, v in train.items():
        np.testing.assert_array_equal(v, copies[k])
    assert next(tuned.net.parameters()).device.type == "cpu" and not tuned.net.training


def test_save_load_colorize_round_trip_with_a_full_card(stain, gray_photo, tmp_path):
    train, _ = stain
    tuned = finetune(train, steps=3, seed=1, name="ihc", **TINY)
    path = tuned.save(tmp_path / "ihc")
    loaded = load_model(path)
    img = gray_photo[:96, :128]
    np.testing.assert_array_equal(colorize(img, model=loaded), colorize(img, model=tuned))

    card = json.loads(path.with_suffix(".json").read_text())
    assert card["base_model"] == "default"
    data = card["finetune"]["data"]
    assert [(d["name"], d["shape"]) for d in data["images"]] == [("top", [256, 512, 3]),
                                                                ("bottom left", [256, 256, 3])]
    assert data["validation"]["source"] == "held-out tiles" and data["validation"]["tiles"] >= 1
    settings = card["finetune"]["settings"]
    assert (settings["steps"], settings["batch_size"], settings["crop"], settings["seed"]) == (3, 8, 48, 1)
    assert set(card["validation"]["before"]) == set(card["validation"]["after"]) == {"val_ab_rmse"}
    assert card["finetune"]["steps"] == 3


def test_stop_mid_run_keeps_a_loadable_best_model(stain, tmp_path):
    train, _ = stain
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 5

    tuned = finetune(train, steps=200, stop=stop, **TINY)
    ft = tuned.card["finetune"]
    assert ft["steps"] == 5 and ft["stopped"].startswith("stopped at step 5")
    # the weights at the stop were validated too, and the kept ones are of the lowest error shown
    shown = {h["step"]: h["val_ab_rmse"] for h in tuned.card["history"]}
    assert max(shown) == 5
    after = tuned.card["validation"]["after"]["val_ab_rmse"]
    assert after == min([*shown.values(), tuned.card["validation"]["before"]["val_ab_rmse"]])
    loaded = load_model(tuned.save(tmp_path / "stopped"))
    assert loaded.card["finetune"]["steps"] == 5


def test_a_nan_loss_stops_and_restores_the_best_weights(stain, monkeypatch):
    from napari_colorize.core import training

    real = training.loss_fn
    steps = []

    def flaky(model, batch, rng):  # the training step's loss turns NaN from the 8th step on
        loss = real(model, batch, rng)
        steps.append(1)
        return loss * float("nan") if len(steps) >= 8 else loss

    monkeypatch.setattr(training, "loss_fn", flaky)
    with pytest.warns(UserWarning, match="loss became nan"):
        tuned = finetune(stain[0], steps=50, **TINY)
    ft = tuned.card["finetune"]
    assert ft["steps"] == 7 and "best weights" in ft["stopped"]
    assert all(torch.isfinite(p).all() for p in tuned.net.state_dict().values())
    history = {h["step"]: h["val_ab_rmse"] for h in tuned.card["history"]}
    best = min(history.values(), default=np.inf)
    expected = min(best, tuned.card["validation"]["before"]["val_ab_rmse"])
    assert tuned.card["validation"]["after"]["val_ab_rmse"] == expected


def test_resume_continues_from_the_checkpoint(stain, tmp_path):
    train, _ = stain
    ckpt = tmp_path / "ckpt"
    first = finetune(train, steps=4, checkpoint_dir=ckpt, **TINY)
    assert (ckpt / "checkpoint.safetensors").exists() and (ckpt / "best.safetensors").exists()
    more = finetune(train, steps=8, checkpoint_dir=ckpt, resume=True, **TINY)
    ft = more.card["finetune"]
    assert ft["resumed_from_step"] == 4 and ft["steps"] == 8
    assert more.card["validation"]["before"] == first.card["validation"]["before"]
    assert max(h["step"] for h in more.card["history"]) == 8


def test_lazy_dask_layers_are_read_crop_by_crop():
    import dask.array as da

    reads = []

    def block(block_info=None):
        (y0, _), (x0, _), _ = block_info[None]["array-location"]
        reads.append((y0, x0))
        yy, xx = np.mgrid[y0 : y0 + 512, x0 : x0 + 512]
        rgb = np.stack([(yy * 7) % 256, (xx * 5) % 256, ((yy + xx) * 3) % 256], axis=-1)
        return rgb.astype(np.uint8)

    # 32768 x 32768 x 3: 3 GB if read whole, 4096 blocks
    big = da.map_blocks(block, dtype=np.uint8, chunks=((512,) * 64, (512,) * 64, (3,)))
    tuned = finetune({"big": big}, steps=3, batch_size=4, crop=32)
    assert tuned.card["finetune"]["steps"] == 3
    assert 0 < len(reads) < 400  # each crop touches at most 4 blocks


def test_refuses_non_rgb_and_gray_and_copes_with_small_images():
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="not an RGB image.*has none to learn"):
        finetune({"nuclei": rng.integers(0, 255, (64, 64), dtype=np.uint8)}, steps=1)
    gray = np.repeat(rng.integers(0, 255, (64, 64, 1), dtype=np.uint8), 3, axis=-1)
    with pytest.raises(InputError, match="gray"):
        finetune({"gray": gray}, steps=1)
    nan = rng.random((64, 64, 3)).astype(np.float32)
    nan[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        finetune([nan], steps=1)

    small = [rng.integers(0, 255, (20, 30, 3), dtype=np.uint8) for _ in range(3)]
    with pytest.warns(UserWarning) as caught:
        tuned = finetune(small + [gray], steps=2, batch_size=4)  # crop 64 by default
    notes = " ".join(str(w.message) for w in caught)
    assert "looks gray" in notes and "crops of 16 pixels" in notes
    assert tuned.card["finetune"]["data"]["crop"] == 16
    assert [d["name"] for d in tuned.card["finetune"]["data"]["images"]] == ["image 0", "image 1", "image 2"]


def test_float_and_rgba_stacks_and_a_validation_image():
    rng = np.random.default_rng(1)
    stack = rng.random((3, 96, 96, 4)).astype(np.float32)  # RGBA float stack: 3 planes, alpha ignored
    before = stack.copy()
    tuned = finetune({"stack": stack}, val_images={"val": (stack[0, ..., :3] * 255).astype(np.uint8)},
                     steps=2, batch_size=4, crop=32)
    data = tuned.card["finetune"]["data"]
    assert data["images"][0]["planes"] == 3 and data["validation"]["source"] == "validation images"
    np.testing.assert_array_equal(stack, before)


def test_unavailable_device_is_explained():
    from napari_colorize.core.finetune_plan import resolve_device

    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA"):
            resolve_device("cuda")
    with pytest.raises(InputError, match="Unknown device"):
        resolve_device("tpu")


def test_kept_weights_are_those_of_the_lowest_shown_error(stain, model):
    from napari_colorize.core.finetune import FinetuneRun, FinetuneSettings
    from napari_colorize.core.finetune_plan import validation_metrics

    run = FinetuneRun(stain[0], model=model, settings=FinetuneSettings(steps=12, lr=3e-3, validations=5, **TINY))
    shown = [(0, run.before["val_ab_rmse"])] + [(i.step, i.val["val_ab_rmse"]) for i in run.events() if i.val]
    assert len(shown) >= 5
    best_step, best = min(shown, key=lambda p: p[1])
    tuned = run.result()
    assert tuned.card["finetune"]["best_step"] == best_step
    assert validation_metrics(tuned, run.plan.val_tiles)["val_ab_rmse"] == best  # recomputed, not recalled


def test_a_run_that_cannot_learn_says_why_and_keeps_the_base_weights(stain, model):
    with pytest.warns(UserWarning, match="no step beat the base model.*learning rate is 0"):
        tuned = finetune(stain[0], model=model, steps=3, lr=0, **TINY)
    ft = tuned.card["finetune"]
    assert not ft["improved"] and ft["best_step"] == 0
    for k, v in model.net.state_dict().items():  # frozen BatchNorm: not even its statistics move
        assert torch.equal(v, tuned.net.state_dict()[k]), k


def test_held_out_tiles_come_from_every_image_and_never_overlap_training():
    from napari_colorize.core.finetune_plan import plan_data

    rng = np.random.default_rng(2)
    images = {f"photo {i}": rng.integers(0, 255, (200, 300, 3), dtype=np.uint8) for i in range(4)}
    images["big"] = rng.integers(0, 255, (1000, 1500, 3), dtype=np.uint8)
    plan = plan_data(images, crop=48, val_fraction=0.2, max_val_tiles=16)
    assert plan.summary["validation"]["source"] == "held-out tiles" and len(plan.val_tiles) == 16
    sources = []
    for tile in plan.val_tiles:  # find each tile in its image, then check it against every region
        for i, p in enumerate(plan.planes):
            hits = np.argwhere((p.data[:-95, :-95] == tile[0, 0]).all(-1))
            found = [(y, x) for y, x in hits if np.array_equal(p.data[y : y + 96, x : x + 96], tile)]
            if found:
                y, x = found[0]
                sources.append(i)
                train = plan.regions[plan.regions[:, 0] == i]
                overlap = (train[:, 1] < y + 96) & (train[:, 2] > y) & (train[:, 3] < x + 96) & (train[:, 4] > x)
                assert not overlap.any()
                break
    assert sorted(set(sources)) == list(range(5))  # every image gives some


def test_step_estimates_of_a_time_budget_settle():
    from napari_colorize.core.finetune_settings import StepBudget

    # per-step seconds recorded from a 60 s run on a shared 2-core machine: a slow first step,
    # validations, and a stretch where other work halved the pace
    rng = np.random.default_rng(0)
    times = np.concatenate([[2.5], rng.normal(0.3, 0.05, 80), rng.normal(0.6, 0.1, 40), rng.normal(0.3, 0.05, 400)])
    budget = StepBudget(seconds=60.0)
    elapsed, seen = 0.0, []
    for step, dt in enumerate(np.abs(times), start=1):
        elapsed += dt
        total = budget.update(step, elapsed, reserve=0.2 * 5)
        seen.append((elapsed, total, budget.settled))
        if step >= total or elapsed >= budget.time_limit:
            break
    settled = [(t, n) for t, n, ok in seen if ok]
    assert settled and settled[0][0] <= 0.1 * 60 + 1.0  # settled within the first tenth (one step late at most)
    first = settled[0][1]
    assert all(abs(n - first) <= 0.1 * first for _, n in settled)
    assert 60 * 0.9 <= elapsed <= 60 + 1.0  # and the run ends near the time asked for
    assert StepBudget(steps=50).update(1, 3.0) == 50  # a step budget is its own total
