"""Running the progress-yielding generators of the core to their end."""

from __future__ import annotations

from collections.abc import Callable, Generator


def drain(gen: Generator, on_step: Callable | None = None):
    """Run ``gen`` to its end and return its return value; ``on_step(item)`` sees each yield."""
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_step is not None:
            on_step(item)
