"""Training on two processes with torch.distributed: weights stay in sync, only rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

TRAIN_SCRIPT = r'''
import json, sys
from pathlib import Path

import numpy as np
import torch

from napari_colorize.cli import main
from napari_colorize.core.distributed import init_from_env, param_digest, shutdown
from napari_colorize.core.training import TrainConfig, Trainer, new_model

out = Path(sys.argv[1])
ctx = init_from_env("cpu")
torch.set_num_threads(1)
images = np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
model = new_model(images, width=8, seed=ctx.rank)  # different on purpose: DDP must copy rank 0's
before = param_digest(model.net)
cfg = TrainConfig(steps=3, batch_size=4, crop=32, width=8, warmup=1, lr=1e-2)
trainer = Trainer(model, images, cfg, checkpoint_dir=out / f"ck{ctx.rank}", dist=ctx)
losses = [info.loss for info in trainer.steps()]
(out / f"rank{ctx.rank}.json").write_text(json.dumps(
    {"world": ctx.world_size, "before": before, "after": param_digest(model.net), "losses": losses}))
ctx.barrier()
# the command line in the same two processes (it reuses the process group and leaves it)
sys.exit(main(["train", "--data", str(out / "photos"), "--out", str(out / "m"), "--steps", "2",
               "--batch-size", "4", "--width", "8", "--size", "32", "--crop", "32"]))
'''


def test_training_on_two_processes_keeps_weights_in_sync(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(2)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    script = tmp_path / "train2.py"
    script.write_text(TRAIN_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path)], capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert r0["before"] != r1["before"]  # made differently on purpose
    assert r0["after"] == r1["after"] and r0["after"] != r0["before"]
    assert r0["losses"] == r1["losses"] and len(r0["losses"]) == 3  # the mean over both processes
    assert (tmp_path / "ck0" / "checkpoint.safetensors").exists()
    assert not (tmp_path / "ck1").exists()  # only rank 0 writes
    from napari_colorize import load_model

    m = load_model(tmp_path / "m.safetensors")
    assert m.card["training"]["processes"] == 2 and m.card["training"]["steps"] == 2
    assert "data parallel: 2 processes (gloo)" in proc.stderr
