"""Runtime settings: the cores to use, and the C allocator's settings for repeated inference.

glibc hands freed blocks above its mmap threshold, and free memory at the top of a heap above
its trim threshold, back to the system at once; the next colorization then faults every page of
its temporaries in again (about 8,000 page faults for a 256 px photo, half of its time). Raising
both keeps up to ``KEEP_FREE`` bytes of freed memory for reuse in each of glibc's arenas (about
one per thread that has allocated), while blocks above ``MMAP_ABOVE`` (a 3000 x 3000 float32
plane and larger) still go straight back to the system. :func:`release_memory` hands the kept
memory back, as a batch of many threads does when it ends.
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
    """Raise glibc's mmap and trim thresholds for this process, once; True if they are set.

    Nothing is changed on other C libraries (macOS, Windows, musl) or when the environment
    variable ``NAPARI_COLORIZE_MALLOC`` is ``system``. The settings are the process's, as
    ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` would make them.
    """
    if "done" not in _state:
        libc = _glibc()
        # the mmap threshold first: where it is refused (32-bit glibc) nothing has changed
        done = libc is not None and bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_ABOVE)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, KEEP_FREE))
        _state.update(done=done, libc=libc if done else None)
    return _state["done"]


def release_memory() -> None:
    """Hand the freed memory kept by :func:`tune_allocator` back to the system (glibc's
    ``malloc_trim``); nothing happens where the allocator was not tuned."""
    if _state.get("libc") is not None:  # the library tuned, whatever the environment says now
        _state["libc"].malloc_trim(0)


def _glibc():
    """The C library if it is glibc and tuning is not opted out of, else None."""
    if os.environ.get(OPT_OUT, "").strip().lower() == "system" or not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version"):  # musl and others
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    return libc
