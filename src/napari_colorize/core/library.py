"""The user's own models: save, rename, delete, export and import by name.

A model named ``n`` is the pair ``<user folder>/n.safetensors`` and ``n.json``; names are checked
(:data:`.modelfile.NAME_PATTERN`) before any path is made from them, so no name reaches outside
the folder or onto another model's files. Nothing here overwrites a file the caller did not name.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .atomic import atomic_write, clean_stale
from .errors import InputError
from .modelfile import (
    NAME_PATTERN,
    Colorizer,
    available_models,
    bundled_dir,
    forget,
    load,
    model_paths,
    models_in,
    user_dir,
)

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


def check_model_name(name: str) -> str:
    """A usable model name (stripped), or an error saying why not."""
    name = str(name).strip()
    if name.endswith(".safetensors"):
        name = name[: -len(".safetensors")]
    if not NAME_PATTERN.match(name) or name.endswith("."):
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise InputError(f"'{shown}' is not a usable model name: use letters, digits, spaces and . _ + - ( ), "
                         "starting with a letter or digit, at most 80 characters.")
    if (bundled_dir() / f"{name}.safetensors").exists():
        raise InputError(f"'{name}' is the name of a bundled model; choose another name.")
    return name


def _check_new_name(name: str) -> str:
    """A usable name for a model to be written (not ending in .json: it would be saved as another)."""
    name = check_model_name(name)
    if name.lower().endswith(".json"):
        raise InputError(f"'{name}' ends in .json, the card's suffix; name the model without it.")
    return name


def user_models() -> dict[str, Path]:
    """The user's own models (not the bundled ones), name to weights file."""
    return models_in(user_dir())


def unique_name(name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... if a model of that name exists already."""
    name = check_model_name(name)
    taken = set(available_models())
    if name not in taken:
        return name
    k = 2
    while f"{name}-{k}" in taken:
        k += 1
    return check_model_name(f"{name}-{k}")


def checkpoint_dir(name: str) -> Path:
    """Where a fine-tuning run of the user's model ``name`` keeps its checkpoint (for Resume)."""
    return user_dir() / ".checkpoints" / check_model_name(name)


def _user_model(name: str) -> Path:
    path = user_models().get(str(name))
    if path is None:
        if str(name) in available_models():
            raise InputError(f"'{name}' is a bundled model; only your own models can be changed.")
        raise InputError(f"There is no model named '{name}' in {user_dir()}.")
    return path


def save_user_model(model: Colorizer, name: str, overwrite: bool = False) -> Path:
    """Save ``model`` as ``name`` in the user's model folder (atomically) and tell listeners."""
    name = _check_new_name(name)
    if user_dir().exists() and not user_dir().is_dir():
        raise InputError(f"The user model folder '{user_dir()}' is a file (NAPARI_COLORIZE_MODEL_DIR?).")
    weights, card = model_paths(user_dir() / name)
    if (weights.exists() or card.exists()) and not overwrite:
        raise InputError(f"A model named '{name}' exists already; choose another name or delete it first.")
    model.name = name
    path = model.save(weights)
    notify_models_changed()
    return path


def rename_model(old: str, new: str) -> Path:
    """Rename one of the user's models (weights, card and any checkpoint); returns the new weights path."""
    src = _user_model(old)
    new = _check_new_name(new)
    dst, dst_card = model_paths(user_dir() / new)
    if new in available_models() or dst.exists() or dst_card.exists():
        raise InputError(f"A model named '{new}' exists already.")
    forget(src)
    os.replace(src, dst)  # weights first: they alone make a model, the JSON card is a copy for people
    card = model_paths(src)[1]
    if card.exists():
        os.replace(card, dst_card)
    if checkpoint_dir(old).is_dir() and not checkpoint_dir(new).exists():
        os.replace(checkpoint_dir(old), checkpoint_dir(new))
    notify_models_changed()
    return dst


def delete_model(name: str) -> None:
    """Delete one of the user's models, its card and its fine-tuning checkpoint."""
    path = _user_model(name)
    ckpt = checkpoint_dir(name)  # the name is checked before a folder is made of it
    forget(path)
    path.unlink()
    model_paths(path)[1].unlink(missing_ok=True)
    shutil.rmtree(ckpt, ignore_errors=True)
    notify_models_changed()


def _refuse_links(*paths: Path) -> None:
    for p in paths:
        if p.is_symlink():
            raise InputError(f"'{p}' is a symbolic link; give the file itself.")


def export_model(name: str, dest: str | os.PathLike, overwrite: bool = False) -> Path:
    """Copy a model (bundled or the user's) to ``dest``: a folder, or a path ending in ``.safetensors``.

    Existing files are never replaced unless ``overwrite``; the card goes beside the weights.
    """
    from .modelfile import resolve

    src = resolve(name)
    src_card = model_paths(src)[1]
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / src.name
    elif dest.exists() and not (overwrite and dest.is_file() and dest.name.endswith(".safetensors")):
        raise InputError(f"'{dest}' exists and is not a folder; export to a folder or a new .safetensors path.")
    if not dest.name.endswith(".safetensors"):
        raise InputError(f"Export to a folder or to a path ending in .safetensors, not '{dest}'.")
    weights, card = model_paths(dest)
    _refuse_links(src, src_card, weights, card)
    for p in (weights, card):
        if p.exists() and not overwrite:
            raise InputError(f"'{p}' exists already; choose another name or pass overwrite=True.")
    _copy_pair(src, src_card, weights, card)
    return weights


def _copy_pair(src: Path, src_card: Path, weights: Path, card: Path) -> None:
    """Copy a model's weights and card (if any) atomically, weights first."""
    weights.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(weights.parent)
    atomic_write(weights, lambda tmp: shutil.copyfile(src, tmp, follow_symlinks=False))
    if src_card.is_file():
        atomic_write(card, lambda tmp: shutil.copyfile(src_card, tmp, follow_symlinks=False))


def import_model(path: str | os.PathLike, name: str | None = None) -> str:
    """Check a model file by loading it, copy it into the user's folder; returns its name there."""
    src, src_card = model_paths(path)
    _refuse_links(src, src_card)
    if not src.is_file():
        raise InputError(f"No model file at '{src}'.")
    load(src)  # raises ModelLoadError for anything that is not a valid napari-colorize model
    name = _check_new_name(name or src.name[: -len(".safetensors")])
    if name in available_models():
        raise InputError(f"A model named '{name}' exists already; import it under another name.")
    target, target_card = model_paths(user_dir() / name)
    if target.exists() or target_card.exists():
        raise InputError(f"A model named '{name}' exists already; import it under another name.")
    _copy_pair(src, src_card, target, target_card)
    notify_models_changed()
    return name
