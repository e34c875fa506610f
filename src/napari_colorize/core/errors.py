"""Exceptions with messages meant for users, shown by the CLI and napari instead of a traceback."""


class ColorizeError(Exception):
    """Base class of errors whose message is meant for the user."""


class InputError(ColorizeError, ValueError):
    """The input image, layer or hints cannot be used as given."""


class ModelLoadError(ColorizeError, OSError):
    """A model file is missing, unreadable or not a napari-colorize model."""
