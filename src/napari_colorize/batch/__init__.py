"""Colorizing files and folders: reading, writing, naming, the pixel limit, local and distributed runs."""

from .files import colorize_files, read_image, write_image

__all__ = ["colorize_files", "read_image", "write_image"]
