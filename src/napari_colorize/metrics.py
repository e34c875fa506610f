"""Colorization quality metrics, napari-free: see ``napari_colorize.core.metrics``."""

from .core.metrics import (
    FULL_REFERENCE_KEYS,
    NO_REFERENCE_KEYS,
    ab_histogram,
    ab_rmse,
    ciede2000,
    color_range,
    colorfulness,
    colorfulness_diff,
    contrast,
    delta_e,
    gray_baseline,
    psnr,
    report,
    report_planes,
    saturation,
    ssim,
    summarize,
)

__all__ = [
    "FULL_REFERENCE_KEYS", "NO_REFERENCE_KEYS", "ab_histogram", "ab_rmse", "ciede2000", "color_range",
    "colorfulness", "colorfulness_diff", "contrast", "delta_e", "gray_baseline", "psnr", "report",
    "report_planes", "saturation", "ssim", "summarize",
]
