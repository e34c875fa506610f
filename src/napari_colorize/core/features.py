"""Feature layers in one import: preprocessing, edges, segments and shapes (napari-free).

See :mod:`.preprocess`, :mod:`.edges`, :mod:`.segments` and :mod:`.shapes` for the details; the
CNN's own features are in :mod:`.inspect`.
"""

from .edges import (
    OPERATORS,
    STEPS,
    canny_steps,
    color_gradient,
    gradient,
    hysteresis,
    non_max_suppression,
)
from .preprocess import GRAY_METHODS, flip, normalize, resize, resize_transform, rotate, smooth, to_gray
from .segments import METHODS, SPACES, color_kmeans, convert_colorspace, segment_job, superpixels
from .shapes import (
    MATCH_METHODS,
    highlight,
    hu_distance,
    log_hu,
    match_shapes,
    polygon_mask,
    shape_descriptors,
    write_csv,
)

__all__ = [
    "GRAY_METHODS", "MATCH_METHODS", "METHODS", "OPERATORS", "SPACES", "STEPS",
    "canny_steps", "color_gradient", "color_kmeans", "convert_colorspace", "flip", "gradient", "highlight",
    "hu_distance", "hysteresis", "log_hu", "match_shapes", "non_max_suppression", "normalize",
    "polygon_mask", "resize", "resize_transform", "rotate", "segment_job", "shape_descriptors", "smooth",
    "superpixels", "to_gray", "write_csv",
]
