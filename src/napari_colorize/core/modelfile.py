"""Model files: safetensors weights plus a JSON model card, written atomically, never pickle."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import ModelLoadError
from .model import ColorNet

FORMAT = "napari-colorize/1"
DEFAULT_NAME = "default"


@dataclass
class Colorizer:
    """A colorization model: network, ab bins, decoding defaults and its model card.

    Attributes
    ----------
    net : ColorNet
    bins : Tensor (Q, 2)
        ab centers of the output distribution.
    rebalance : Tensor (Q,)
        Class-rebalancing weights used in training.
    config : dict
        ``width``, ``working_size`` (longest side the network sees) and ``temperature``.
    card : dict
        Free-form model card (training data, steps, seed, validation metrics).
    """

    net: ColorNet
    bins: torch.Tensor
    rebalance: torch.Tensor
    config: dict = field(default_factory=dict)
    card: dict = field(default_factory=dict)
    name: str = "unsaved"

    @classmethod
    def new(cls, bins: torch.Tensor, rebalance: torch.Tensor | None = None, width: int = 24,
            working_size: int = 256, temperature: float = 0.4) -> Colorizer:
        """A freshly initialised model."""
        q = bins.shape[0]
        return cls(
            net=ColorNet(q, width),
            bins=bins.float(),
            rebalance=torch.ones(q) if rebalance is None else rebalance.float(),
            config={"width": width, "working_size": working_size, "temperature": temperature},
        )

    @property
    def temperature(self) -> float:
        return float(self.config.get("temperature", 0.4))

    @property
    def log_bias(self) -> torch.Tensor | None:
        """Decoding correction ``-debias * log(rebalance)``, or None when ``debias`` is 0."""
        beta = float(self.config.get("debias", 0.0))
        return None if beta == 0 else -beta * torch.log(self.rebalance)

    @property
    def working_size(self) -> int:
        return int(self.config.get("working_size", 256))

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``<path>.safetensors`` and ``<path>.json`` atomically; returns the weights path."""
        path = Path(path)
        if path.suffix in (".safetensors", ".json"):
            path = path.with_suffix("")
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        tensors["bins"] = self.bins.contiguous()
        tensors["rebalance"] = self.rebalance.contiguous()
        meta = {"format": FORMAT, "config": json.dumps(self.config), "card": json.dumps(self.card)}
        weights = path.with_suffix(".safetensors")
        card = path.with_suffix(".json")
        _atomic(weights, lambda tmp: save_file(tensors, tmp, metadata=meta))
        card_doc = {"format": FORMAT, "config": self.config, **self.card}
        _atomic(card, lambda tmp: Path(tmp).write_text(json.dumps(card_doc, indent=2) + "\n"))
        return weights


def _atomic(target: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; model files are meant to be shared
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def bundled_dir() -> Path:
    """Folder of the models shipped inside the package."""
    return Path(str(resources.files("napari_colorize") / "models"))


def user_dir() -> Path:
    """Folder of the user's own models (platformdirs user data dir)."""
    from platformdirs import user_data_dir

    override = os.environ.get("NAPARI_COLORIZE_MODEL_DIR")
    return Path(override) if override else Path(user_data_dir("napari-colorize")) / "models"


def available_models() -> dict[str, Path]:
    """Names of loadable models (bundled first, then the user's) mapped to their weights file."""
    found: dict[str, Path] = {}
    for folder in (bundled_dir(), user_dir()):
        if folder.is_dir():
            for f in sorted(folder.glob("*.safetensors")):
                found.setdefault(f.stem, f)
    return found


def resolve(name_or_path: str | os.PathLike | None) -> Path:
    """Weights file for a model name, a path with or without suffix, or None for the default."""
    if name_or_path is None:
        name_or_path = DEFAULT_NAME
    p = Path(name_or_path)
    for cand in (p, p.with_suffix(".safetensors"), p / f"{DEFAULT_NAME}.safetensors"):
        if cand.is_file():
            return cand
    models = available_models()
    if str(name_or_path) in models:
        return models[str(name_or_path)]
    known = ", ".join(models) or "none"
    raise ModelLoadError(f"No model named or found at '{name_or_path}'. Available models: {known}.")


_LISTENERS: list = []


def on_models_changed(callback) -> None:
    """Call ``callback()`` whenever a model is saved to, renamed in or removed from the user's folder."""
    _LISTENERS.append(callback)


def notify_models_changed() -> None:
    """Tell listeners (e.g. model lists in widgets) that the available models changed."""
    for cb in list(_LISTENERS):
        try:
            cb()
        except RuntimeError:  # a widget that was closed
            _LISTENERS.remove(cb)


_CACHE: dict[tuple[str, int, int], Colorizer] = {}


def load(name_or_path: str | os.PathLike | None = None) -> Colorizer:
    """Load a model by name or path (None: the bundled default); results are cached by file."""
    path = resolve(name_or_path)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key in _CACHE:
        return _CACHE[key]
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"'{path}' is not a readable safetensors model file ({exc}).") from None
    if meta.get("format") != FORMAT or "bins" not in tensors:
        raise ModelLoadError(f"'{path}' is a safetensors file but not a napari-colorize model.")
    try:
        config = json.loads(meta.get("config", "{}"))
        card = json.loads(meta.get("card", "{}"))
        bins = tensors.pop("bins")
        rebalance = tensors.pop("rebalance")
        net = ColorNet(bins.shape[0], int(config["width"]))
        state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        net.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"'{path}' is damaged or from an incompatible version ({exc}).") from None
    net.eval()
    model = Colorizer(net=net, bins=bins, rebalance=rebalance, config=config, card=card, name=path.stem)
    _CACHE.clear()  # one cached model at a time keeps memory flat when switching models
    _CACHE[key] = model
    return model
