"""Training and validating the colorizer, from scratch or from a base model.

Every step draws its batch, flips and hints from ``default_rng([seed, step])``, so a run resumed
from a checkpoint takes the same path as one that never stopped. Under torchrun (see
:mod:`.distributed`) each process draws its share of the batch from ``[seed, step, rank]``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write
from .color import ab_bins, rgb_to_lab_t
from .distributed import DistContext
from .hints import simulate_hints
from .model import AB_SCALE, encode_input, rebalance_weights, soft_encode, split_output
from .modelcheck import has_regression_head
from .modelfile import Colorizer


@dataclass
class TrainConfig:
    """Settings of a training run."""

    steps: int = 6000
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 200
    seed: int = 0
    width: int = 24
    crop: int = 64
    rebalance_lambda: float = 0.5
    val_every: int = 1000
    checkpoint_every: int = 250
    decoder_only: bool = False
    seconds: float | None = None
    device: str = "cpu"
    #: "batch": BatchNorm normalises with each batch's statistics and updates its running ones
    #: (training from scratch); "frozen": it keeps the running statistics it has (fine-tuning
    #: on few small batches, whose statistics are too noisy to normalise with)
    batchnorm: str = "batch"


@dataclass
class StepInfo:
    """What a callback sees after each step."""

    step: int
    total: int
    loss: float
    lr: float
    elapsed: float
    val: dict = field(default_factory=dict)
    done: int = 1  # steps run in this session (``step`` also counts resumed ones)
    _eta: float | None = field(default=None, repr=False)

    @property
    def eta(self) -> float:
        """Seconds left: as set by the run, else at the mean pace of this session's steps."""
        if self._eta is not None:
            return self._eta
        return self.elapsed / max(1, self.done) * max(0, self.total - self.step)

    @eta.setter
    def eta(self, seconds: float) -> None:
        self._eta = float(seconds)


def lab_batch(rgb_u8: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 RGB (B, H, W, 3) to L (B, 1, H, W) and ab (B, 2, H, W)."""
    t = torch.from_numpy(rgb_u8).permute(0, 3, 1, 2).float().div_(255.0)
    lab = rgb_to_lab_t(t)
    return lab[:, :1], lab[:, 1:]


def estimate_prior(images: np.ndarray, bins: torch.Tensor, n: int = 4000, seed: int = 0) -> torch.Tensor:
    """Empirical distribution of soft-encoded ab over (a sample of) the training images."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(images), size=min(n, len(images)), replace=False)
    counts = torch.zeros(bins.shape[0])
    for i in range(0, len(idx), 256):
        _, ab = lab_batch(images[np.sort(idx[i : i + 256])])
        ab = torch.nn.functional.avg_pool2d(ab, 2)
        k, w = soft_encode(ab, bins)
        counts.index_add_(0, k.reshape(-1), w.reshape(-1))
    return counts / counts.sum()


def random_crops(images, n: int, crop: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random crops (n, crop, crop, 3) with random horizontal flips from a list of arrays.

    ``images`` is a uint8 array (N, H, W, 3) or a list of (H, W, 3) arrays of any sizes (numpy or
    dask); only the crops are read, so big or lazy images are never copied whole.
    """
    out = np.empty((n, crop, crop, 3), np.uint8)
    picks = rng.integers(0, len(images), n)
    for j, i in enumerate(picks):
        img = images[i]
        h, w = img.shape[:2]
        y = int(rng.integers(0, h - crop + 1))
        x = int(rng.integers(0, w - crop + 1))
        patch = np.asarray(img[y : y + crop, x : x + crop])
        out[j] = patch[:, ::-1] if rng.random() < 0.5 else patch
    return out


# the regression term's weight, chosen so that it is of the size of the cross entropy at the start
REG_WEIGHT = 10.0
REG_BETA = 2.0  # ab units below which smooth L1 is quadratic


def loss_fn(model: Colorizer, rgb_u8: np.ndarray, rng: np.random.Generator, net=None) -> torch.Tensor:
    """Rebalanced soft-encoded cross entropy of one batch with simulated hints.

    A regression network adds ``REG_WEIGHT`` times the smooth-L1 error of its regressed ab
    (Zhang et al. 2017 train their main output with this loss).

    Lab and hints are made on the CPU, soft-encoded targets on the network's device;
    ``model.bins`` and ``model.rebalance`` stay where they are. ``net`` runs the forward pass instead of
    ``model.net`` (its DistributedDataParallel wrapper, whose forward arms the gradient all-reduce).
    """
    dev = next(model.net.parameters()).device
    l_chan, ab = lab_batch(rgb_u8)
    hint_ab, mask = simulate_hints(ab, rng)
    x = encode_input(l_chan, hint_ab, mask).to(dev, memory_format=torch.channels_last)
    logits, reg = split_output((net or model.net)(x), model.bins.shape[0])
    # the nearest-bin search is the costliest part of the targets: it runs where the network does
    target = torch.nn.functional.avg_pool2d(ab.to(dev), 2)
    idx, wgt = soft_encode(target, model.bins.to(dev))
    weight = model.rebalance.to(dev)[idx[:, 0]]
    logp = torch.log_softmax(logits, dim=1)
    nll = -(logp.gather(1, idx) * wgt).sum(1)
    loss = (nll * weight).mean()
    if reg is not None:
        loss = loss + REG_WEIGHT * torch.nn.functional.smooth_l1_loss(
            reg / AB_SCALE, target / AB_SCALE, beta=REG_BETA / AB_SCALE)
    return loss


def _lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def _trainable(model: Colorizer, decoder_only: bool):
    if not decoder_only:
        return list(model.net.parameters())
    keep = [model.net.dec3, model.net.dec2, model.net.head]
    if model.net.reg is not None:
        keep.append(model.net.reg)
    return [p for m in keep for p in m.parameters()]


class Trainer:
    """Runs (and resumes) training of a :class:`Colorizer`.

    Parameters
    ----------
    model : Colorizer
        Model to train in place (pass a copy to keep the original).
    images : sequence of uint8 RGB arrays
        Training images, an (N, H, W, 3) array or a list of arrays (numpy or dask) of any sizes.
    cfg : TrainConfig
    checkpoint_dir : path, optional
        Where ``checkpoint.safetensors`` is written every ``cfg.checkpoint_every`` steps and read
        from on resume.
    validate : callable, optional
        ``validate(model) -> dict`` of validation figures; called every ``cfg.val_every`` steps.
    sampler : callable, optional
        ``sampler(images, n, crop, rng) -> uint8 (n, crop, crop, 3)`` batch maker; default
        :func:`random_crops`.
    dist : DistContext, optional
        Data-parallel run (from :func:`.distributed.init_from_env`): each process trains on
        ``cfg.batch_size / world_size`` crops, gradients are averaged, only rank 0 validates and
        writes checkpoints. Default: a single process.
    """

    def __init__(self, model: Colorizer, images, cfg: TrainConfig, checkpoint_dir=None,
                 validate: Callable[[Colorizer], dict] | None = None, sampler=None,
                 dist: DistContext | None = None):
        self.dist = dist or DistContext(device=cfg.device)
        if cfg.batch_size % self.dist.world_size:
            raise ValueError(f"batch size {cfg.batch_size} does not split evenly over "
                             f"{self.dist.world_size} processes")
        self._ddp = None  # DistributedDataParallel wrapper, made when training starts
        self.model = model
        self.images = images
        self.cfg = cfg
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.validate = validate
        self.sampler = sampler or random_crops
        model.net.to(cfg.device)
        self.params = _trainable(model, cfg.decoder_only)
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=1e-4)
        self.step = 0
        self.history: list[dict] = []
        self.best: dict | None = None

    # -- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self) -> Path | None:
        """Write weights, optimizer state and history atomically; returns the path."""
        if self.checkpoint_dir is None:
            return None
        from safetensors.torch import save_file

        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        tensors = {f"net.{k}": v.detach().cpu().clone().contiguous() for k, v in self.model.net.state_dict().items()}
        for i, p in enumerate(self.params):
            st = self.opt.state.get(p, {})
            for k in ("exp_avg", "exp_avg_sq"):
                if k in st:
                    tensors[f"opt.{i}.{k}"] = st[k].detach().cpu().contiguous()
            if "step" in st:
                tensors[f"opt.{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float32).cpu().reshape(1)
        tensors["bins"] = self.model.bins.contiguous()
        tensors["rebalance"] = self.model.rebalance.contiguous()
        meta = {"step": str(self.step), "config": json.dumps(asdict(self.cfg)),
                "model_config": json.dumps(self.model.config), "history": json.dumps(self.history)}
        path = self.checkpoint_dir / "checkpoint.safetensors"
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
        return path

    def load_checkpoint(self) -> bool:
        """Resume from ``checkpoint_dir`` if a checkpoint is there; returns whether it did."""
        if self.checkpoint_dir is None:
            return False
        path = self.checkpoint_dir / "checkpoint.safetensors"
        if not path.exists():
            return False
        from safetensors import safe_open
        from safetensors.torch import load_file

        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
        self.model.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        for i, p in enumerate(self.params):
            if f"opt.{i}.exp_avg" in tensors:
                self.opt.state[p] = {
                    "step": tensors[f"opt.{i}.step"][0].clone(),
                    "exp_avg": tensors[f"opt.{i}.exp_avg"].to(p.device),
                    "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"].to(p.device),
                }
        self.step = int(meta["step"])
        self.history = json.loads(meta.get("history", "[]"))
        return True

    # -- loop ----------------------------------------------------------------------------------
    def train_mode(self) -> None:
        """Put the network in training mode.

        A frozen encoder keeps its BatchNorm statistics, and so does the whole network with
        ``cfg.batchnorm == "frozen"``.
        """
        self.model.net.train()
        if self.cfg.batchnorm == "frozen":
            for m in self.model.net.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        elif self.cfg.decoder_only:
            for m in (self.model.net.enc1, self.model.net.enc2, self.model.net.enc3, self.model.net.enc4):
                m.eval()

    def run(self, callback: Callable[[StepInfo], None] | None = None,
            stop: Callable[[], bool] | None = None) -> list[dict]:
        """Train until ``cfg.steps`` (or ``cfg.seconds``) or until ``stop()`` is true."""
        for info in self.steps(stop):
            if callback is not None:
                callback(info)
        return self.history

    def steps(self, stop: Callable[[], bool] | None = None):
        """Generator form of :meth:`run`: yields a :class:`StepInfo` after every step.

        Between two yields the network is in training mode; a consumer that evaluates it there
        calls :meth:`train_mode` afterwards. ``cfg.steps`` is read at every step, so it may be
        changed while iterating (e.g. to fit a time budget).
        """
        cfg = self.cfg
        start = time.perf_counter()
        first = self.step
        # channels_last: about a quarter faster for these convolutions on CPU (measured, AVX2);
        # the default layout comes back at the end, so a trained model computes as a loaded one
        self.model.net.to(memory_format=torch.channels_last)
        ddp = self.dist
        if ddp.enabled and self._ddp is None:
            # wrapped here, after any load_checkpoint() and in the training layout; wrapping
            # copies rank 0's weights to every process
            self._ddp = ddp.wrap(self.model.net)
        self.train_mode()
        running = None
        try:
            while self.step < cfg.steps:
                halt = (stop is not None and stop()) or (
                    cfg.seconds is not None and time.perf_counter() - start > cfg.seconds)
                if ddp.any(halt):  # every process stops at the same step, or the others would hang
                    break
                seed = [cfg.seed, self.step, ddp.rank] if ddp.enabled else [cfg.seed, self.step]
                rng = np.random.default_rng(seed)
                batch = self.sampler(self.images, cfg.batch_size // ddp.world_size, cfg.crop, rng)
                lr = _lr_at(cfg, self.step)
                for g in self.opt.param_groups:
                    g["lr"] = lr
                # the plain call when alone: fine-tuning and its tests wrap loss_fn(model, batch, rng)
                loss = (loss_fn(self.model, batch, rng, net=self._ddp) if ddp.enabled
                        else loss_fn(self.model, batch, rng))
                mean_loss = ddp.mean(loss)  # the same on every process, so all raise together
                if not torch.isfinite(mean_loss):
                    raise FloatingPointError(f"loss became {mean_loss.item()} at step {self.step}")
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.params, 5.0)
                self.opt.step()
                self.step += 1
                lv = mean_loss.item()
                running = lv if running is None else 0.98 * running + 0.02 * lv
                info = StepInfo(self.step, cfg.steps, lv, lr, time.perf_counter() - start,
                                done=self.step - first)
                record = {"step": self.step, "loss": round(running, 5)}
                if self.validate is not None and ddp.is_main and (
                        self.step % cfg.val_every == 0 or self.step == cfg.steps):
                    self.model.net.eval()
                    info.val = self.validate(self.model)
                    self.train_mode()
                    record.update(info.val)
                if self.step % 50 == 0 or info.val:
                    self.history.append(record)
                if self.checkpoint_dir and ddp.is_main and (
                        self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps):
                    self.save_checkpoint()
                yield info
        finally:
            self.model.net.to(memory_format=torch.contiguous_format)
            self.model.net.eval()


def new_model(images: np.ndarray, width: int = 24, lam: float = 0.5, seed: int = 0,
              regression: bool = False) -> Colorizer:
    """A fresh model whose rebalancing weights come from the training images' ab prior."""
    torch.manual_seed(seed)
    bins = torch.from_numpy(ab_bins())
    prior = estimate_prior(images, bins, seed=seed)
    return Colorizer.new(bins, rebalance_weights(prior, lam), width=width, regression=regression)


def model_from_checkpoint(checkpoint_dir, bins=None, rebalance=None) -> Colorizer:
    """The model saved in a training checkpoint (older checkpoints need ``bins`` and ``rebalance``)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(checkpoint_dir) / "checkpoint.safetensors"
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["config"])
    mcfg = json.loads(meta.get("model_config", "null")) or {"width": cfg["width"]}
    bins = tensors.get("bins", bins)
    model = Colorizer.new(bins, tensors.get("rebalance", rebalance), width=int(mcfg["width"]),
                          regression=has_regression_head(tensors))
    if any(k.startswith("net.glob.") for k in tensors):
        model.add_global_branch()
    model.config.update(mcfg)
    model.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    model.net.eval()
    model.card["training"] = {"steps": int(meta["step"]), "seed": cfg["seed"], "batch_size": cfg["batch_size"],
                              "lr": cfg["lr"], "planned_steps": cfg["steps"]}
    model.card["history"] = json.loads(meta.get("history", "[]"))
    return model
