"""Colorize grayscale images with a compact CNN, steered by color hints."""

import os as _os
from importlib import metadata as _metadata

# GNU OpenMP's threads (torch's on Linux) spin 300,000 times waiting for work before they sleep:
# on a machine that is busy with something else the spinning holds the cores others need, and a
# 1 MP photo took 0.17-0.40 s instead of 0.06 (0.09-0.18 s with 3000, the same 0.06 when idle).
# Read when torch loads libgomp, so it must come first; a value already set is kept.
_os.environ.setdefault("GOMP_SPINCOUNT", "3000")

from .api import colorize, load_model
from .core.errors import ColorizeError, InputError, ModelLoadError
from .core.finetune import finetune
from .core.library import save_user_model as save_model

try:  # the one version literal is in pyproject.toml; installed metadata carries it here
    __version__ = _metadata.version("napari-colorize")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["colorize", "load_model", "finetune", "save_model", "ColorizeError", "InputError", "ModelLoadError",
           "__version__"]
