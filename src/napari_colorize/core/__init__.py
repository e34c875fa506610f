"""napari-free core of napari-colorize: color, model, inference, hints, training, metrics."""
