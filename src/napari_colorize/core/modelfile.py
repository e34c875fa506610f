"""Model files: safetensors weights plus a JSON model card, written atomically, never pickle."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import ModelLoadError
from .model import ColorNet, decode

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
            working_size: int = 256, temperature: float = 0.4, regression: bool = False) -> Colorizer:
        """A freshly initialised model."""
        q = bins.shape[0]
        return cls(
            net=ColorNet(q, width, regression=regression),
            bins=bins.float(),
            rebalance=torch.ones(q) if rebalance is None else rebalance.float(),
            config={"width": width, "working_size": working_size, "temperature": temperature},
        )

    def add_regression_head(self) -> None:
        """Give a bin-only model a regression head (starting at zero chroma), keeping its weights."""
        if self.regression:
            return
        net = ColorNet(self.bins.shape[0], int(self.config["width"]), regression=True)
        missing, unexpected = net.load_state_dict(self.net.state_dict(), strict=False)
        assert not unexpected and all(k.startswith("reg.") for k in missing)
        self.net = net.to(next(self.net.parameters()).device)

    @property
    def regression(self) -> bool:
        """Whether the network has a regression head (see :func:`.model.decode`)."""
        return self.net.reg is not None

    @property
    def vivid(self) -> float:
        """How far a regression model's chroma moves toward its distribution's annealed mean."""
        return float(self.config.get("vivid", 0.0))

    def decode(self, out: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """Chroma ab (B, 2, h, w) from a network output, with this model's decoding settings."""
        t = self.temperature if temperature is None else float(temperature)
        bias = self.log_bias
        return decode(out, self.bins.to(out.device), t, None if bias is None else bias.to(out.device),
                      self.vivid)

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

    @property
    def tile_above(self) -> int:
        """Longest side above which ``colorize(mode="auto")`` tiles; default twice the working size.

        A model that colors best when it sees the whole picture small sets it high, so that only
        images too big to hold whole are tiled.
        """
        return int(self.config.get("tile_above", 2 * self.working_size))

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


def has_regression_head(tensors: dict) -> bool:
    """Whether saved weights (keys ``net.*``) include a regression head."""
    return any(k.startswith("net.reg.") for k in tensors)


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
        net = ColorNet(bins.shape[0], int(config["width"]), regression=has_regression_head(tensors))
        state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        net.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"'{path}' is damaged or from an incompatible version ({exc}).") from None
    net.eval()
    model = Colorizer(net=net, bins=bins, rebalance=rebalance, config=config, card=card, name=path.stem)
    _CACHE.clear()  # one cached model at a time keeps memory flat when switching models
    _CACHE[key] = model
    return model


# -- the user's models: save, rename, delete, export, import ----------------------------------
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+()-]{0,79}$")


def check_model_name(name: str) -> str:
    """A usable model name (stripped), or an error saying why not."""
    from .errors import InputError

    name = str(name).strip()
    if name.endswith((".safetensors", ".json")):
        name = name.rsplit(".", 1)[0]
    if not _NAME_OK.match(name) or name.endswith("."):
        raise InputError(f"'{name}' is not a usable model name: use letters, digits, spaces and . _ + - ( ), "
                         "starting with a letter or digit, at most 80 characters.")
    if (bundled_dir() / f"{name}.safetensors").exists():
        raise InputError(f"'{name}' is the name of a bundled model; choose another name.")
    return name


def user_models() -> dict[str, Path]:
    """The user's own models (not the bundled ones), name to weights file."""
    folder = user_dir()
    return {f.stem: f for f in sorted(folder.glob("*.safetensors"))} if folder.is_dir() else {}


def unique_name(name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... if a model of that name exists already."""
    name = check_model_name(name)
    taken = set(available_models())
    if name not in taken:
        return name
    k = 2
    while f"{name}-{k}" in taken:
        k += 1
    return f"{name}-{k}"


def checkpoint_dir(name: str) -> Path:
    """Where a fine-tuning run of the user's model ``name`` keeps its checkpoint (for Resume)."""
    return user_dir() / ".checkpoints" / name


def _user_model(name: str) -> Path:
    from .errors import InputError

    path = user_models().get(str(name))
    if path is None:
        if str(name) in available_models():
            raise InputError(f"'{name}' is a bundled model; only your own models can be changed.")
        raise InputError(f"There is no model named '{name}' in {user_dir()}.")
    return path


def _forget(path: Path) -> None:
    for key in [k for k in _CACHE if k[0] == str(path.resolve())]:
        del _CACHE[key]


def save_user_model(model: Colorizer, name: str, overwrite: bool = False) -> Path:
    """Save ``model`` as ``name`` in the user's model folder (atomically) and tell listeners."""
    from .errors import InputError

    name = check_model_name(name)
    target = user_dir() / f"{name}.safetensors"
    if target.exists() and not overwrite:
        raise InputError(f"A model named '{name}' exists already; choose another name or delete it first.")
    model.name = name
    path = model.save(target)
    notify_models_changed()
    return path


def rename_model(old: str, new: str) -> Path:
    """Rename one of the user's models (weights, card and any checkpoint); returns the new weights path."""
    from .errors import InputError

    src = _user_model(old)
    new = check_model_name(new)
    dst = src.with_name(f"{new}.safetensors")
    if new in available_models():
        raise InputError(f"A model named '{new}' exists already.")
    _forget(src)
    os.replace(src, dst)  # weights first: they alone make a model, the JSON card is a copy for people
    card = src.with_suffix(".json")
    if card.exists():
        os.replace(card, dst.with_suffix(".json"))
    if checkpoint_dir(old).is_dir() and not checkpoint_dir(new).exists():
        os.replace(checkpoint_dir(old), checkpoint_dir(new))
    notify_models_changed()
    return dst


def delete_model(name: str) -> None:
    """Delete one of the user's models, its card and its fine-tuning checkpoint."""
    import shutil

    path = _user_model(name)
    _forget(path)
    path.unlink()
    path.with_suffix(".json").unlink(missing_ok=True)
    shutil.rmtree(checkpoint_dir(name), ignore_errors=True)
    notify_models_changed()


def export_model(name: str, dest: str | os.PathLike) -> Path:
    """Copy a model (bundled or the user's) to ``dest``: a folder or a path with or without suffix."""
    import shutil

    src = resolve(name)
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / src.name
    if dest.suffix in (".safetensors", ".json"):
        dest = dest.with_suffix("")
    dest.parent.mkdir(parents=True, exist_ok=True)
    weights = dest.with_suffix(".safetensors")
    _atomic(weights, lambda tmp: shutil.copyfile(src, tmp))
    if src.with_suffix(".json").exists():
        _atomic(dest.with_suffix(".json"), lambda tmp: shutil.copyfile(src.with_suffix(".json"), tmp))
    return weights


def import_model(path: str | os.PathLike, name: str | None = None) -> str:
    """Check a model file by loading it, copy it into the user's folder; returns its name there."""
    import shutil

    from .errors import InputError

    src = Path(path)
    if src.suffix != ".safetensors":
        src = src.with_suffix(".safetensors")
    if not src.is_file():
        raise InputError(f"No model file at '{src}'.")
    load(src)  # raises ModelLoadError for anything that is not a readable napari-colorize model
    name = check_model_name(name or src.stem)
    if name in available_models():
        raise InputError(f"A model named '{name}' exists already; import it under another name.")
    target = user_dir() / f"{name}.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    _atomic(target, lambda tmp: shutil.copyfile(src, tmp))
    if src.with_suffix(".json").exists():
        _atomic(target.with_suffix(".json"), lambda tmp: shutil.copyfile(src.with_suffix(".json"), tmp))
    notify_models_changed()
    return name
