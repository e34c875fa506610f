"""Checks of scalar arguments shared by the API, the CLI and the widgets."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import InputError


def is_dask(data) -> bool:
    """Whether ``data`` is a dask array (checked by module, so dask is never imported for it)."""
    return type(data).__module__.startswith("dask")


def check_finite(values, what: str = "image") -> None:
    """Raise :class:`InputError` if a float array (numpy) holds NaN or infinite values."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        raise InputError(f"The {what} contains NaN or infinite values; replace them first.")


def check_dtype(name: str, dtype, allowed) -> np.dtype:
    """``dtype`` as a numpy dtype among ``allowed``, or an InputError naming ``name``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or not any(dt == np.dtype(a) for a in allowed):  # None would compare equal to float64
        names = ", ".join(np.dtype(a).name for a in allowed)
        raise InputError(f"{name} must be one of {names}; got {dtype!r}.")
    return dt


def check_number(name: str, value, lo: float, hi: float, *, integer: bool = False,
                 open_low: bool = False) -> float | int:
    """``value`` as a float (or int) within [lo, hi] (``(lo, hi]`` with ``open_low``), or an InputError.

    Complex numbers, strings, booleans, NaN and infinities are refused with a message naming
    ``name``; bounds keep a parameter from asking for absurd amounts of memory or time.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    try:
        v = float(value) if ok else math.nan
    except OverflowError:  # an int beyond float range is out of every range here
        ok, v = False, math.nan
    if ok and integer and not v.is_integer():
        ok = False
    inside = (lo < v if open_low else lo <= v) and v <= hi
    if not ok or not inside:
        kind = "an integer" if integer else "a number"
        def show(x):  # whole numbers in full: "4294967295", not "4.29497e+09"
            return str(int(x)) if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"

        rng = f"{'above' if open_low else 'from'} {show(lo)} {'and at most' if open_low else 'to'} {show(hi)}"
        raise InputError(f"{name} must be {kind} {rng}; got {value!r}.")
    return int(v) if integer else v


def to_dtype(rgb: np.ndarray, dtype) -> np.ndarray:
    """Float RGB in [0, 1] as ``dtype``: integers scaled to their full range and rounded."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        return np.rint(np.clip(rgb, 0.0, 1.0) * float(np.iinfo(dtype).max)).astype(dtype)
    return np.asarray(rgb).astype(dtype, copy=False)
