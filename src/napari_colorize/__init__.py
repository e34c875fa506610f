"""Colorize grayscale images with a compact CNN, steered by color hints."""

from importlib import metadata as _metadata

from .api import colorize, load_model
from .core.errors import ColorizeError, InputError, ModelLoadError
from .core.finetune import finetune

try:  # the one version literal is in pyproject.toml; installed metadata carries it here
    __version__ = _metadata.version("napari-colorize")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["colorize", "load_model", "finetune", "ColorizeError", "InputError", "ModelLoadError", "__version__"]
