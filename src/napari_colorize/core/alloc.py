"""Runtime settings: the cores to use, and the C allocator's settings for repeated inference.

glibc hands freed blocks above its mmap threshold, and free memory at the top of its heap above
its trim threshold, back to the system at once; the next colorization then faults every page of
its temporaries in again (about 8,000 page faults for a 256 px photo, half of its time). Raising
both keeps up to ``KEEP_FREE`` bytes of freed memory for reuse, while blocks above
``MMAP_ABOVE`` (a 4096 x 4096 float plane and larger) still go straight back to the system.
"""

from __future__ import annotations

import ctypes
import os
import sys

KEEP_FREE = 256 << 20
MMAP_ABOVE = 32 << 20
# mallopt's parameter numbers, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
OPT_OUT = "NAPARI_COLORIZE_MALLOC"

_state: dict = {}


def default_threads() -> int:
    """Threads to use: all cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def tune_allocator() -> bool:
    """Raise glibc's trim and mmap thresholds for this process, once; True if they are set.

    Nothing is changed on other C libraries (macOS, Windows, musl) or when the environment
    variable ``NAPARI_COLORIZE_MALLOC`` is ``system``. The settings are the process's, as
    ``MALLOC_TRIM_THRESHOLD_`` and ``MALLOC_MMAP_THRESHOLD_`` would make them.
    """
    if "done" not in _state:
        _state["done"] = _apply()
    return _state["done"]


def _apply() -> bool:
    if os.environ.get(OPT_OUT, "").strip().lower() == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt, _ = libc.mallopt, libc.gnu_get_libc_version
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_TRIM_THRESHOLD, KEEP_FREE)) and bool(mallopt(_M_MMAP_THRESHOLD, MMAP_ABOVE))
