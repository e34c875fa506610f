"""Model files: safetensors weights plus a JSON model card, written atomically, never pickle."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .atomic import atomic_write, clean_stale
from .errors import ModelLoadError
from .model import ColorNet, decode
from .modelcheck import check_config, check_tensors
from .runtime import tune_allocator

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
        ``width``, ``working_size`` (longest side the network sees), ``tile_above`` and the
        decoding settings ``temperature``, ``vivid``, ``calm``, ``neutral``, ``debias``, ``hint_reach``,
        ``hint_spread``, ``hint_vivid`` and ``hint_working_size`` (ranges in
        :data:`.modelcheck.CONFIG_RANGES`).
    card : dict
        Free-form model card (training data, steps, seed, validation metrics).
    reference : Reference or None
        A palette the decoding follows (:func:`.reference.with_reference`); never saved.
    """

    net: ColorNet
    bins: torch.Tensor
    rebalance: torch.Tensor
    config: dict = field(default_factory=dict)
    card: dict = field(default_factory=dict)
    name: str = "unsaved"
    reference: object = None
    _fast: tuple | None = field(default=None, init=False, repr=False, compare=False)

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
        self._grow(regression=True)

    def add_global_branch(self) -> None:
        """Give the network a global branch (starting at zero), keeping its weights."""
        if self.net.glob is None:
            self._grow(global_context=True)

    def _grow(self, **heads) -> None:
        kw = {"regression": self.regression, "global_context": self.net.glob is not None, **heads}
        net = ColorNet(self.bins.shape[0], int(self.config["width"]), **kw)
        missing, unexpected = net.load_state_dict(self.net.state_dict(), strict=False)
        assert not unexpected and all(k.startswith(("reg.", "glob.")) for k in missing)
        self.net = net.to(next(self.net.parameters()).device)

    @property
    def fast(self) -> ColorNet:
        """The network to run for inference: :meth:`.ColorNet.for_inference` of ``net``.

        Rebuilt whenever ``net`` is replaced, moved or its weights change in place (a
        fine-tuning step, a loaded state), so it never runs stale weights. While ``net`` is
        in training mode, ``net`` itself. The first build also tunes the C allocator for
        repeated inference (:func:`.runtime.tune_allocator`).
        """
        if self.net.training:
            return self.net
        tensors = [*self.net.parameters(), *self.net.buffers()]
        key = (id(self.net), tuple((id(t), t.device, t._version) for t in tensors))
        if self._fast is None or self._fast[0] != key:
            tune_allocator()
            self._fast = (key, self.net.for_inference())
        return self._fast[1]

    @property
    def regression(self) -> bool:
        """Whether the network has a regression head (see :func:`.model.decode`)."""
        return self.net.reg is not None

    @property
    def vivid(self) -> float:
        """How far a regression model's chroma moves toward its distribution's annealed mean."""
        return float(self.config.get("vivid", 0.0))

    def decode(self, out: torch.Tensor, temperature: float | None = None, hinted: bool = False) -> torch.Tensor:
        """Chroma ab (B, 2, h, w) from a network output, with this model's decoding settings.

        ``calm`` (pulling uncertain pixels toward neutral) and ``neutral`` (pulling pixels that
        may be gray toward it) apply to automatic colorization only: with ``hinted`` the user has
        settled what the network was unsure of, and measured on real photos, calm then costs PSNR.
        A hinted pass uses ``hint_vivid`` where the card has it, else ``vivid``.
        """
        t = self.temperature if temperature is None else float(temperature)
        if self.reference is not None:
            return self.reference.decode(out, self.bins.to(out.device), t)
        bias = self.log_bias
        calm = 0.0 if hinted else float(self.config.get("calm", 0.0))
        neutral = 0.0 if hinted else float(self.config.get("neutral", 0.0))
        # a hinted pass has its own vividness: where the user gave colors, the safer guess elsewhere
        vivid = float(self.config.get("hint_vivid", self.vivid)) if hinted else self.vivid
        return decode(out, self.bins.to(out.device), t, None if bias is None else bias.to(out.device),
                      vivid, calm, neutral)

    @property
    def hint_reach(self) -> float:
        """Pull of hint corrections back to the network's chroma (:func:`.propagate.refine_with_hints`).

        0 turns the edge-aware correction off; the larger, the shorter the distance a hint reaches.
        """
        return float(self.config.get("hint_reach", 1e-3))

    @property
    def hint_spread(self) -> float:
        """Pull of the network's hinted change back to its automatic chroma; 0 keeps it everywhere.

        The larger, the closer to the hints (and never across strong edges) the change stays
        (:func:`.inference.local_hints`).
        """
        return float(self.config.get("hint_spread", 0.0))

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
    def hint_working_size(self) -> int:
        """Longest side the network sees in a hinted pass (whole mode); the working size if unset."""
        return int(self.config.get("hint_working_size", self.working_size))

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
        """Write ``<path>.safetensors`` and ``<path>.json`` atomically; returns the weights path.

        The JSON card carries the weights' SHA-256, so a card left behind by an interrupted save
        is recognised (and rewritten from the weights' own copy by :func:`load`).
        """
        weights, card = model_paths(path)
        weights.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(weights.parent)
        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        tensors["bins"] = self.bins.contiguous()
        tensors["rebalance"] = self.rebalance.contiguous()
        meta = {"format": FORMAT, "config": json.dumps(self.config), "card": json.dumps(self.card)}
        atomic_write(weights, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
        _write_card(weights, card, self.config, self.card)
        return weights


def model_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """Weights and card paths of a model path given with or without ``.safetensors`` / ``.json``.

    Only those two suffixes are taken off: a name such as ``slides v1.5`` keeps its dot.
    """
    path = Path(path)
    stem = path.name
    for suffix in (".safetensors", ".json"):
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    return path.with_name(f"{stem}.safetensors"), path.with_name(f"{stem}.json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_card(weights: Path, card: Path, config: dict, extra: dict) -> None:
    doc = {"format": FORMAT, "config": config, **extra, "weights_sha256": _sha256(weights)}
    atomic_write(card, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=2) + "\n"))


def bundled_dir() -> Path:
    """Folder of the models shipped inside the package."""
    return Path(str(resources.files("napari_colorize") / "models"))


def user_dir() -> Path:
    """Folder of the user's own models (platformdirs user data dir)."""
    from platformdirs import user_data_dir

    override = os.environ.get("NAPARI_COLORIZE_MODEL_DIR")
    return Path(override) if override else Path(user_data_dir("napari-colorize")) / "models"


# a model's name: what is left of its file name without ".safetensors"; never a hidden file
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+()-]{0,79}$")


def models_in(folder: Path) -> dict[str, Path]:
    """Model files in ``folder`` by name: regular files whose name is a valid model name."""
    if not folder.is_dir():
        return {}
    found = {}
    for f in sorted(folder.iterdir()):
        name = f.name[: -len(".safetensors")] if f.name.endswith(".safetensors") else None
        if name and NAME_PATTERN.match(name) and not name.endswith(".") and f.is_file() and not f.is_symlink():
            found[name] = f
    return found


def available_models() -> dict[str, Path]:
    """Names of loadable models (bundled first, then the user's) mapped to their weights file."""
    found = dict(models_in(bundled_dir()))
    for name, f in models_in(user_dir()).items():
        found.setdefault(name, f)
    return found


def is_path(name_or_path) -> bool:
    """Whether a model reference is a path rather than a name.

    A path object, or a string with a folder separator or ending in ``.safetensors``; anything
    else is a model name, so a file in the current folder never stands in for a named model.
    """
    if isinstance(name_or_path, os.PathLike):
        return True
    s = str(name_or_path)
    return os.sep in s or (os.altsep or os.sep) in s or s.endswith(".safetensors")


def resolve(name_or_path: str | os.PathLike | None) -> Path:
    """Weights file for a model name (bundled or the user's) or a path; None is the default."""
    if name_or_path is None:
        name_or_path = DEFAULT_NAME
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ModelLoadError(f"A model is given by name or path, not {type(name_or_path).__name__}.")
    if is_path(name_or_path):
        if Path(name_or_path).is_dir() or not Path(name_or_path).name:
            raise ModelLoadError(f"'{name_or_path}' is a folder, not a model file.")
        weights, _ = model_paths(name_or_path)
        if weights.is_dir():
            raise ModelLoadError(f"'{weights}' is a folder, not a model file.")
        if not weights.is_file():
            raise ModelLoadError(f"No model file at '{weights}'.")
        return weights
    name = str(name_or_path)
    models = available_models()
    if name in models:
        return models[name]
    known = ", ".join(models) or "none"
    shown = name if len(name) <= 80 else name[:77] + "..."
    raise ModelLoadError(f"No model named '{shown}'. Available models: {known}; give a path with a folder "
                         "(e.g. ./my-model.safetensors) to load a file.")


@torch.inference_mode()
def _check_output(model: Colorizer) -> None:
    """Colorize a small ramp once: finite weights can still overflow to NaN on the way to ab."""
    ramp = torch.linspace(-0.5, 0.5, 32 * 32).reshape(1, 1, 32, 32)
    x = torch.cat([ramp, torch.zeros(1, 3, 32, 32)], 1)
    if not torch.isfinite(model.decode(model.net(x))).all():
        raise ModelLoadError("its network computes NaN or infinite values")


def _refresh_card(weights: Path, config: dict, card: dict) -> None:
    """Rewrite a JSON card that an interrupted save left behind its weights, in the user model
    folder only (its files are the plugin's); elsewhere the card is a user's file: say so, never
    write. Settings always come from the weights file, which holds the card too."""
    path = model_paths(weights)[1]
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads(path.read_text())
        stale = not isinstance(doc, dict) or doc.get("weights_sha256") not in (None, _sha256(weights))
        if stale and weights.resolve().parent == user_dir().resolve():
            _write_card(weights, path, config, card)
        elif stale:
            warnings.warn(f"'{path.name}' does not describe the weights beside it (edited, or left by an "
                          "interrupted save); the settings stored in the weights file are used.", stacklevel=4)
        elif doc.get("config", config) != config:
            warnings.warn(f"The settings in '{path.name}' differ from those stored in '{weights.name}', "
                          "which are the ones used; the card is a readable copy.", stacklevel=4)


_CACHE: dict[tuple[str, int, int], Colorizer] = {}


def forget(path: Path | None = None) -> None:
    """Drop the cached model loaded from ``path`` (all cached models when None)."""
    for key in [k for k in _CACHE if path is None or k[0] == str(Path(path).resolve())]:
        del _CACHE[key]


def load(name_or_path: str | os.PathLike | None = None) -> Colorizer:
    """Load a model by name or path (None: the bundled default); results are cached by file.

    The file is validated before a network is built: settings in range, weights of the dtypes
    and shapes the settings imply, all finite. Anything else is a :class:`ModelLoadError`.
    """
    path = resolve(name_or_path)
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        if key in _CACHE:
            return _CACHE[key]
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"'{path}' is not a readable safetensors model file ({exc}).") from None
    if meta.get("format") != FORMAT or "bins" not in tensors:
        raise ModelLoadError(f"'{path}' is a safetensors file but not a napari-colorize model.")
    try:
        config = check_config(json.loads(meta.get("config", "{}")))
        card = json.loads(meta.get("card", "{}"))
        regression = check_tensors(tensors, config)
        bins = tensors.pop("bins")
        rebalance = tensors.pop("rebalance")
        net = ColorNet(bins.shape[0], int(config["width"]), regression=regression,
                       global_context=any(k.startswith("net.glob.") for k in tensors))
        net.load_state_dict({k[4:]: v for k, v in tensors.items()})
        net.eval()
    except ModelLoadError as exc:
        raise ModelLoadError(f"'{path}' is damaged: {exc}.") from None
    except (KeyError, ValueError, RuntimeError, TypeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"'{path}' is damaged or from an incompatible version ({exc}).") from None
    net.eval()
    model = Colorizer(net=net, bins=bins, rebalance=rebalance, config=config, card=card, name=path.stem)
    try:
        _check_output(model)
    except ModelLoadError as exc:
        raise ModelLoadError(f"'{path}' is damaged: {exc}.") from None
    _CACHE.clear()  # one cached model at a time keeps memory flat when switching models
    _CACHE[key] = model
    _refresh_card(path, config, card if isinstance(card, dict) else {})
    return model


