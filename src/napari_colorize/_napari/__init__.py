"""Everything napari- or Qt-specific: the docks, their base class, layer helpers, sample data."""
