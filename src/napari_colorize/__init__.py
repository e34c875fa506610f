"""Colorize grayscale images with a compact CNN, steered by color hints."""

from .api import colorize, load_model
from .core.errors import ColorizeError, InputError, ModelLoadError
from .core.finetune import finetune

__version__ = "0.1.0"
__all__ = ["colorize", "load_model", "finetune", "ColorizeError", "InputError", "ModelLoadError", "__version__"]
