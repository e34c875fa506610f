"""Colorize grayscale images with a compact CNN, steered by color hints."""

from .api import colorize, load_model
from .core.errors import ColorizeError, InputError, ModelLoadError

__version__ = "0.1.0"
__all__ = ["colorize", "load_model", "ColorizeError", "InputError", "ModelLoadError", "__version__"]
