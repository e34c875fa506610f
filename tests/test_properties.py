"""Property-based tests (hypothesis): arbitrary inputs give a valid result or a ColorizeError.

Three contracts, each over inputs a user, a file or a caller could plausibly hand over:

* ``colorize`` with any dtype, shape, values, hints and temperature returns float32 RGB of shape
  ``spatial + (3,)`` (stacks: ``lead + spatial + (3,)``), finite and in [0, 1], and leaves its input
  untouched, or raises one of the project's ``ColorizeError`` types;
* the metrics return finite floats (inf only for PSNR of identical planes, NaN only for
  ``neutral_chroma`` with no neutral reference pixel) or raise a ``ColorizeError``;
* a damaged or tampered model file either loads into a model that colorizes to finite RGB, or
  ``load`` raises a ``ModelLoadError`` (or another ``ColorizeError``), quickly.

Any other exception is a bug in the package. Random search is backed by parametrized edge cases that
it would reach only now and then. About 30 s on two busy cores.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import time
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from napari_colorize import ColorizeError, ModelLoadError, colorize
from napari_colorize.core import metrics as M
from napari_colorize.core import modelfile

SETTINGS = dict(deadline=None, database=None, phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])


@pytest.fixture(scope="module", autouse=True)
def _single_thread(one_thread):
    """Tiny images gain nothing from torch threads, and a busy machine makes them slow."""
    yield


@functools.lru_cache(maxsize=1)
def _model():
    """The bundled model, loaded once (not a fixture: hypothesis would print it in failure reports)."""
    from napari_colorize import load_model

    return load_model()


# -- arrays of any dtype ------------------------------------------------------------------------
DTYPES = [np.uint8, np.uint16, np.int16, np.int32, np.float16, np.float32, np.float64, np.bool_]


def _extremes(dtype) -> list:
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return [False, True]
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return [int(info.min), int(info.max), 0, 1, int(info.max) - 1]
    info = np.finfo(dt)
    big = [1e300, -1e300] if dt == np.float64 else []
    return [float(info.max), -float(info.max), float(info.tiny), 0.0, 1.0, -0.0, 0.5,
            math.nan, math.inf, -math.inf, *big]


def elements(dtype, *, unit_floats: bool = False):
    """Values of ``dtype``: anything it holds, weighted toward plain data and the type's limits."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return st.booleans()
    if dt.kind in "ui":
        info = np.iinfo(dt)
        plain = st.integers(0, min(255, int(info.max)))
        return st.one_of(plain, st.integers(int(info.min), int(info.max)), st.sampled_from(_extremes(dt)))
    width = dt.itemsize * 8
    unit = st.floats(0.0, 1.0, width=width)
    if unit_floats:
        return st.one_of(unit, unit, unit, st.floats(width=width), st.sampled_from(_extremes(dt)))
    return st.one_of(unit, st.floats(width=width), st.sampled_from(_extremes(dt)))


@st.composite
def any_array(draw, shapes, *, unit_floats: bool = False, dtypes=DTYPES):
    """An array of any listed dtype and one of ``shapes``: random, constant, or a non-contiguous view."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = draw(shapes)
    elems = elements(dtype, unit_floats=unit_floats)
    if draw(st.integers(0, 4)) == 0:  # a constant image
        arr = np.full(shape, draw(elems), dtype=dtype)
    else:
        arr = draw(hnp.arrays(dtype, shape, elements=elems))
    layout = draw(st.sampled_from(["c", "c", "f", "reversed"]))
    if layout == "f":
        arr = np.asfortranarray(arr)
    elif layout == "reversed" and arr.ndim:
        arr = arr[::-1]
    if draw(st.booleans()):
        arr.flags.writeable = False
    return arr


def as_container(arr: np.ndarray, kind: str):
    """``arr`` as a caller might pass it: numpy, a masked array, a torch tensor or nested lists.

    Masked arrays and C-ordered tensors share ``arr``'s memory, so changes to them show in ``arr``.
    """
    if kind == "masked":
        return np.ma.masked_array(arr)
    if kind == "torch":
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a read-only array gives a tensor that torch calls unsafe
            # a reversed axis of length 1 keeps a negative stride, which torch refuses: copy then
            shared = arr.flags.c_contiguous and min(arr.strides, default=0) >= 0
            return torch.from_numpy(arr if shared else arr.copy())
    if kind == "list":
        return arr.tolist()
    return arr


CONTAINERS = st.sampled_from(["numpy", "numpy", "numpy", "numpy", "masked", "torch"])


def _snapshot(arr: np.ndarray):
    return arr.dtype, arr.shape, arr.flags.writeable, arr.tobytes()


def _assert_unchanged(arr: np.ndarray, snap) -> None:
    dtype, shape, writeable, data = snap
    assert arr.dtype == dtype and arr.shape == shape
    assert arr.flags.writeable == writeable, "the input's writeable flag was changed"
    assert arr.tobytes() == data, "the input array was modified"


# -- 1. colorize ------------------------------------------------------------------------------
SIDE = st.integers(1, 40)
SMALL = st.integers(1, 24)
IMAGE_SHAPES = st.one_of(
    st.tuples(SIDE, SIDE),                               # 2D gray
    st.tuples(st.just(2), SMALL, SMALL),                 # a stack of two planes
    st.tuples(SIDE, SIDE, st.just(3)),                   # RGB
    st.tuples(SMALL, SMALL, st.just(4)),                 # RGBA: refused
    st.sampled_from([(0,), (0, 5), (5, 0), (0, 0), (2, 0, 4), (0, 4, 4, 3), (3, 0, 3), ()]),  # empty
    st.tuples(SIDE),                                     # 1D
)

NUMBERS = st.one_of(st.integers(-5, 45), st.floats(-50, 50), st.floats(allow_nan=True, allow_infinity=True))
GARBAGE = st.one_of(
    st.sampled_from([5, 2.5, 0, True, np.float64(1.0), np.int64(3), 1j]),  # scalars
    st.sampled_from(["abc", "", ["a", "b"], [["x", 1.0]], [[1.0, 2.0], [3.0]], None, [None], {"a": 1},
                     b"\x00\x01", [[1j, 2j]], object(), np.array([[1.0, 2.0]], dtype=object)]),
)


@st.composite
def hints(draw, ndim: int):
    """(points, colors): none, empty, numeric ones of good or bad shape and values, or garbage."""
    kind = draw(st.sampled_from(["none", "empty", "numeric", "numeric", "garbage", "garbage"]))
    if kind == "none":
        return None, draw(st.sampled_from([None, [], np.zeros((0, 3))]))
    if kind == "empty":
        return draw(st.sampled_from([[], np.zeros((0, 2)), np.zeros((0, ndim))])), draw(
            st.sampled_from([None, [], np.zeros((0, 3))]))
    n = draw(st.integers(1, 4))
    k = draw(st.sampled_from([2, 2, max(2, ndim), 1, 4]))
    points = draw(hnp.arrays(np.float64, (n, k), elements=NUMBERS))
    if kind == "garbage":
        if draw(st.integers(0, 2)):
            points = draw(GARBAGE)
        colors = draw(st.one_of(GARBAGE, st.just(np.full((n, 3), 0.5))))
        return points, colors
    ccount = draw(st.sampled_from([n, n, n, n + 1, max(0, n - 1)]))
    cchan = draw(st.sampled_from([3, 3, 4, 2]))
    cvals = st.one_of(st.floats(0.0, 1.0), st.floats(0.0, 1.0),
                      st.floats(allow_nan=True, allow_infinity=True))
    colors = draw(hnp.arrays(np.float64, (ccount, cchan), elements=cvals))
    if draw(st.booleans()):
        colors = colors.tolist()
    if draw(st.booleans()):
        points = points.tolist()
    return points, colors


@st.composite
def sane_hints(draw, shape: tuple):
    """No hints, or a few well-formed ones, inside the image or a little outside it."""
    if draw(st.booleans()):
        return None, None
    rgb = len(shape) >= 3 and shape[-1] == 3
    spatial = shape[-3:-1] if rgb else shape[-2:]
    lead = shape[:-3] if rgb else shape[:-2]
    if len(spatial) < 2 or 0 in shape:
        spatial, lead = (4, 4), ()
    n = draw(st.integers(1, 3))
    rows = [draw(st.floats(-2.0, spatial[0] + 1.0)) for _ in range(n)]
    cols = [draw(st.floats(-2.0, spatial[1] + 1.0)) for _ in range(n)]
    pts = np.column_stack([rows, cols])
    if lead and draw(st.booleans()):
        pts = np.column_stack([np.array([[draw(st.integers(-1, 2)) for _ in lead] for _ in range(n)]), pts])
    colors = draw(hnp.arrays(np.float64, (n, 3), elements=st.floats(0.0, 1.0)))
    return pts, colors


EXTREME_NUMBERS = st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 10**400, -(10**400),
                                   2**63, 2**64, -(2**63)])
TEMPERATURES = st.one_of(
    st.none(),
    EXTREME_NUMBERS,
    st.floats(0.01, 5.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**30), 10**30),
    st.complex_numbers(max_magnitude=10),
    st.text(max_size=3),
    st.booleans(),
    st.sampled_from([0, 0.0, -0.0, -1, 5e-324, 5.0, 5.0000001, math.nan, math.inf, -math.inf, 1j, "0.5",
                     np.float32(0.5), np.float16(0.7), np.int64(1), Fraction(1, 2), [0.5], np.array([0.5])]),
)


def _expected_shape(shape: tuple) -> tuple:
    rgb = len(shape) >= 3 and shape[-1] == 3
    return (shape[:-1] if rgb else shape) + (3,)


def _check_colorize(image, points, colors, temperature, container: str = "numpy") -> None:
    snap = _snapshot(image)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = colorize(as_container(image, container), points=points, colors=colors,
                           temperature=temperature, model=_model())
    except ColorizeError:
        _assert_unchanged(image, snap)
        return
    _assert_unchanged(image, snap)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float32
    assert out.shape == _expected_shape(image.shape)
    assert np.isfinite(out).all(), "colorize returned NaN or inf"
    assert out.min() >= 0.0 and out.max() <= 1.0


SANE_TEMPERATURES = st.one_of(st.none(), st.floats(0.05, 2.0))


@settings(max_examples=250, **SETTINGS)
@given(data=st.data())
def test_colorize_any_image(data):
    """Any dtype, shape and values; hints and temperature mostly sensible."""
    image = data.draw(any_array(IMAGE_SHAPES), label="image")
    if data.draw(st.integers(0, 3), label="arbitrary hints") == 0:
        points, colors = data.draw(hints(image.ndim), label="points, colors")
        temperature = data.draw(TEMPERATURES, label="temperature")
    else:
        points, colors = data.draw(sane_hints(image.shape), label="points, colors")
        temperature = data.draw(SANE_TEMPERATURES, label="temperature")
    _check_colorize(image, points, colors, temperature, data.draw(CONTAINERS, label="container"))


VALID_SHAPES = st.one_of(
    st.tuples(st.integers(2, 24), st.integers(2, 24)),
    st.tuples(st.just(2), st.integers(2, 16), st.integers(2, 16)),
    st.tuples(st.integers(2, 16), st.integers(2, 16), st.just(3)),
)


@settings(max_examples=250, **SETTINGS)
@given(data=st.data())
def test_colorize_any_hints(data):
    """A small image of any dtype with finite values; hints arbitrary."""
    image = data.draw(any_array(VALID_SHAPES, unit_floats=True), label="image")
    points, colors = data.draw(hints(image.ndim), label="points, colors")
    temperature = data.draw(SANE_TEMPERATURES, label="temperature")
    _check_colorize(image, points, colors, temperature, data.draw(CONTAINERS, label="container"))


@settings(max_examples=200, **SETTINGS)
@given(data=st.data())
def test_colorize_any_temperature(data):
    """A small image of any dtype with finite values, sensible hints; temperature arbitrary."""
    image = data.draw(any_array(VALID_SHAPES, unit_floats=True), label="image")
    points, colors = data.draw(sane_hints(image.shape), label="points, colors")
    temperature = data.draw(TEMPERATURES, label="temperature")
    _check_colorize(image, points, colors, temperature, data.draw(CONTAINERS, label="container"))


# Values a random search reaches only now and then (hypothesis tries each special value about once
# a run), checked every run on a small gray image, a stack and an RGB image.
EDGE_ARGUMENTS = [
    (5, [[0.5, 0.5, 0.5]], None),
    (2.5, None, None),
    (np.float64(1.0), [[0.5, 0.5, 0.5]], None),
    (object(), None, None),
    ("ab", [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]], None),
    ([[1.0, 2.0], [3.0]], [[0.5, 0.5, 0.5]] * 2, None),
    ([[1, 2]], 5, None),
    ([[1, 2]], "red", None),
    ([[1, 2]], [[0.5, 0.5, 0.5]], 10**400),
    ([[1, 2]], [[0.5, 0.5, 0.5]], -(10**400)),
    (None, None, 2**1023 * 2**1023),
    (None, None, 5e-324),
    (None, None, 1j),
    (None, None, "0.5"),
    (None, None, np.float32(np.nan)),
    ([[1e300, 1, 2]], [[0.5, 0.5, 0.5]], None),
    ([[-1e300, -1e300]], [[0.5, 0.5, 0.5]], None),
    ([[np.nan, 1, 2]], [[0.5, 0.5, 0.5]], None),
]
EDGE_IMAGES = {
    "gray": np.arange(36, dtype=np.uint8).reshape(6, 6),
    "stack": np.linspace(0, 1, 72, dtype=np.float32).reshape(2, 6, 6),
    "rgb": np.linspace(0, 1, 108).reshape(6, 6, 3),
}


@pytest.mark.parametrize("image_kind", sorted(EDGE_IMAGES))
@pytest.mark.parametrize(("points", "colors", "temperature"), EDGE_ARGUMENTS,
                         ids=[f"edge{i}" for i in range(len(EDGE_ARGUMENTS))])
def test_colorize_edge_arguments(image_kind, points, colors, temperature):
    _check_colorize(EDGE_IMAGES[image_kind].copy(), points, colors, temperature)


# -- 2. metrics -------------------------------------------------------------------------------
MSIDE = st.integers(1, 14)
METRIC_SHAPES = st.one_of(
    st.tuples(MSIDE, MSIDE, st.just(3)),
    st.tuples(st.integers(11, 14), st.integers(11, 14), st.just(3)),  # big enough for SSIM
    st.tuples(st.just(2), MSIDE, MSIDE, st.just(3)),
    st.tuples(MSIDE, MSIDE, st.sampled_from([1, 2, 4])),
    st.tuples(MSIDE, MSIDE),
    st.sampled_from([(0, 4, 3), (4, 0, 3), (2, 0, 5, 3), (3,), ()]),
)
METRIC_DTYPES = [np.uint8, np.uint16, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_]

METRICS = {
    "report": lambda a, b: M.report(a, b),
    "report_no_reference": lambda a, b: M.report(a),
    "psnr": M.psnr,
    "ssim": M.ssim,
    "delta_e": M.delta_e,
    "colorfulness": lambda a, b: M.colorfulness(a),
    "neutral_chroma": M.neutral_chroma,
    "psnr_per_plane": lambda a, b: M.psnr(a, b, per_plane=True),
    "delta_e_per_plane": lambda a, b: M.delta_e(a, b, per_plane=True),
    "neutral_chroma_per_plane": lambda a, b: M.neutral_chroma(a, b, per_plane=True),
    "saturation": lambda a, b: M.saturation(a),
    "contrast": lambda a, b: M.contrast(a),
    "color_range": lambda a, b: M.color_range(a),
    "ab_histogram": lambda a, b: M.ab_histogram(a),
    "ab_rmse": M.ab_rmse,
    "colorfulness_diff": M.colorfulness_diff,
    "gray_baseline": lambda a, b: M.gray_baseline(b),
}


def _values(result, key: str = ""):
    """(key, float) pairs of a metric's result: a number, an array or a dict of them (nested)."""
    if isinstance(result, dict):
        for k, v in result.items():
            yield from _values(v, k)
    elif isinstance(result, tuple):
        for v in result:
            yield from _values(v, key)
    elif isinstance(result, np.ndarray):
        assert result.dtype.kind == "f", f"{key}: {result.dtype} array"
        for v in result.ravel():
            yield key, float(v)
    else:
        assert isinstance(result, (float, int)) and not isinstance(result, bool), f"{key}: {type(result)}"
        yield key, float(result)


@settings(max_examples=300, **SETTINGS)
@given(data=st.data(), name=st.sampled_from(sorted(METRICS)))
def test_metrics_return_finite_floats_or_raise_a_colorize_error(data, name):
    image = data.draw(any_array(METRIC_SHAPES, unit_floats=True, dtypes=METRIC_DTYPES), label="image")
    how = data.draw(st.sampled_from(["same", "other", "other", "other", "other_shape"]), label="reference")
    if how == "same":
        reference = image.copy()
    else:
        shapes = METRIC_SHAPES if how == "other_shape" else st.just(image.shape)
        reference = data.draw(any_array(shapes, unit_floats=True, dtypes=METRIC_DTYPES), label="reference")
    container = data.draw(st.sampled_from(["numpy", "numpy", "numpy", "masked", "torch", "list"]),
                          label="container")
    snaps = _snapshot(image), _snapshot(reference)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = METRICS[name](as_container(image, container), as_container(reference, container))
    except ColorizeError:
        _assert_unchanged(image, snaps[0])
        _assert_unchanged(reference, snaps[1])
        return
    _assert_unchanged(image, snaps[0])
    _assert_unchanged(reference, snaps[1])
    for key, v in _values(result):
        if name.startswith("psnr") or key in ("psnr", "psnr_gray"):
            assert not math.isnan(v) and v > -math.inf, f"{name} {key} = {v}"  # inf: identical planes
        elif name.startswith("neutral_chroma"):
            assert not math.isinf(v), f"{name} {key} = {v}"  # NaN: no neutral pixel in the reference
        else:
            assert math.isfinite(v), f"{name} {key} = {v}"


# -- 3. model files ---------------------------------------------------------------------------
def _bundled_keys() -> list[str]:
    from safetensors import safe_open

    with safe_open(str(modelfile.bundled_dir() / "default.safetensors"), framework="pt") as f:
        return sorted(f.keys())


KEYS = _bundled_keys()
KEY = st.one_of(
    st.sampled_from(["bins", "rebalance", "net.head.weight", "net.head.bias", "net.enc1.0.0.weight",
                     "net.enc1.0.1.running_var", "net.enc1.0.1.num_batches_tracked", "net.reg.1.weight"]),
    st.sampled_from(KEYS),
)
CONFIG_KEYS = ["width", "working_size", "temperature", "debias", "vivid", "tile_above", "hint_reach"]
JSON_VALUES = st.one_of(
    EXTREME_NUMBERS,
    st.sampled_from([0, -1, 1, 400, 4096, 10**6, 0.5, 1e-3, 16.0, 16.5, True, False, None, "16", "", [], [16], {},
                     {"width": 16}]),
    st.integers(),
    st.floats(),
    st.text(max_size=4),
)
CONFIG_VALUE = st.tuples(st.just("config"), st.sampled_from([*CONFIG_KEYS, "unknown"]), JSON_VALUES)
SETTINGS_MUTATIONS = st.one_of(
    CONFIG_VALUE,
    st.tuples(st.just("config_del"), st.sampled_from(CONFIG_KEYS)),
    st.tuples(st.just("config_raw"), st.sampled_from(["", "null", "[]", '"x"', "{", "NaN", "1e999", "{}",
                                                      '{"width": 16}', '{"width": 16, "width": 400}'])),
    st.tuples(st.just("card_raw"), st.sampled_from(["", "null", "[]", "{", '"x"', "NaN", '{"a": NaN}'])),
    st.tuples(st.just("format"), st.sampled_from([None, "", "napari-colorize/2", "NAPARI-COLORIZE/1"])),
)
CASTS = st.tuples(st.just("cast"), KEY, st.sampled_from(["float64", "float16", "bfloat16", "int32", "int64",
                                                          "float32", "bool", "uint8"]))
VALUE_MUTATIONS = st.one_of(
    st.tuples(st.just("set"), KEY, st.sampled_from([math.nan, math.inf, -math.inf, 3.4e38, -3.4e38, 0.0, -1.0,
                                                    1e-45, 200.0, -2.0])),
    st.tuples(st.just("scale"), KEY, st.sampled_from([-1.0, 0.0, 1e30, -1e30, 1e-30, 1e4, 3.0])),
    st.tuples(st.just("reshape"), KEY, st.sampled_from(["flatten", "unsqueeze", "drop_last", "scalar", "empty",
                                                        "double"])),
    st.tuples(st.just("remove"), KEY),
    st.tuples(st.just("add"), st.sampled_from(["net.extra", "net.reg.9.weight", "net.glob.0.weight",
                                               "net.glob.2.bias", "extra", "net.head.weight.x"]),
              st.sampled_from([(), (3,), (2, 2)])),
)
MUTATIONS = st.one_of(SETTINGS_MUTATIONS, CASTS, VALUE_MUTATIONS)
FILE_DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 4000)),
    st.tuples(st.just("truncate_end"), st.integers(1, 5000)),
    st.tuples(st.just("random"), st.binary(max_size=300)),
    st.tuples(st.just("flip"), st.integers(0, 600), st.integers(0, 255)),
)
CARD_FILE = st.sampled_from(["original", "stale", "garbage", "list", "null", "string"])

_counter = itertools.count()


class _Quiet(tuple):
    """A tuple with a short repr, so that hypothesis' failure reports do not print whole models."""

    def __repr__(self):
        return "<saved bundled model>"


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    """The bundled model saved to a file: its tensors, metadata and JSON card."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from napari_colorize import load_model

    weights = load_model().save(tmp_path_factory.mktemp("base") / "m")
    with safe_open(str(weights), framework="pt") as f:
        meta = dict(f.metadata())
    card = weights.with_suffix(".json").read_text()
    return _Quiet((load_file(str(weights)), meta, card))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mutated")


def _mutate_tensor(t, op: str, arg):
    import torch

    t = t.clone()
    if op == "cast":
        return t.to(getattr(torch, arg))
    if op == "set":
        if not t.numel():
            return t
        if not t.is_floating_point():
            arg = int(arg) if math.isfinite(arg) and abs(arg) < 2**31 else -1
        try:
            t.reshape(-1)[t.numel() // 2] = arg
        except (ValueError, RuntimeError, OverflowError):  # a value the (cast) dtype cannot hold
            pass
        return t
    if op == "scale":
        return t * arg if t.is_floating_point() else t * int(arg > 0)
    if op == "reshape":
        if arg == "flatten":
            return t.reshape(-1)
        if arg == "unsqueeze":
            return t.unsqueeze(0)
        if arg == "drop_last":
            return t.reshape(-1)[:-1].clone() if t.numel() else t
        if arg == "scalar":
            return t.reshape(-1)[0].clone() if t.numel() else t
        if arg == "empty":
            return t.reshape(-1)[:0].clone()
        return torch.cat([t.reshape(-1), t.reshape(-1)])  # double
    raise AssertionError(op)


def _write_mutated(base, folder, mutations, damage, card_file):
    import torch
    from safetensors.torch import save_file

    tensors, meta, card = base
    tensors, meta = dict(tensors), dict(meta)
    config = json.loads(meta["config"])
    config_raw = None
    for m in mutations:
        op = m[0]
        if op == "config":
            config[m[1]] = m[2]
        elif op == "config_del":
            config.pop(m[1], None)
        elif op == "config_raw":
            config_raw = m[1]
        elif op == "card_raw":
            meta["card"] = m[1]
        elif op == "format":
            if m[1] is None:
                meta.pop("format", None)
            else:
                meta["format"] = m[1]
        elif op == "remove":
            tensors.pop(m[1], None)
        elif op == "add":
            tensors[m[1]] = torch.ones(m[2])
        elif m[1] in tensors:
            tensors[m[1]] = _mutate_tensor(tensors[m[1]], op, m[2])
    meta["config"] = config_raw if config_raw is not None else json.dumps(config)
    path = folder / f"m{next(_counter)}.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=meta)
    if damage is not None:
        raw = path.read_bytes()
        if damage[0] == "truncate":
            raw = raw[: damage[1]]
        elif damage[0] == "truncate_end":
            raw = raw[: -damage[1]]
        elif damage[0] == "random":
            raw = damage[1]
        else:
            pos = damage[1] % max(1, len(raw))
            raw = raw[:pos] + bytes([damage[2]]) + raw[pos + 1:]
        path.write_bytes(raw)
    card_path = path.with_suffix(".json")
    if card_file == "original":
        card_path.write_text(card)
    elif card_file == "stale":
        doc = json.loads(card)
        doc["weights_sha256"] = "0" * 64
        card_path.write_text(json.dumps(doc))
    elif card_file is not None:
        card_path.write_text({"garbage": "{not json", "list": "[1, 2]", "null": "null",
                              "string": '"card"'}[card_file])
    return path


GRAY = np.linspace(0, 255, 24 * 20).reshape(24, 20).astype(np.uint8)


def _check_loads_or_fails_cleanly(path):
    t0 = time.perf_counter()
    try:
        m = modelfile.load(path)
    except ColorizeError:
        assert time.perf_counter() - t0 < 5.0, "rejecting a bad model file took over 5 s"
        return None
    assert time.perf_counter() - t0 < 5.0, "loading a small model file took over 5 s"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = colorize(GRAY, model=m, points=[[3, 4]], colors=[[0.9, 0.2, 0.1]])
    except ColorizeError:
        return m
    assert out.shape == (24, 20, 3) and out.dtype == np.float32
    assert np.isfinite(out).all(), f"the model loaded from {path.name} colorizes to NaN or inf"
    assert out.min() >= 0.0 and out.max() <= 1.0
    return m


def _check_mutated(base, folder, mutations, damage=None, card_file=None) -> None:
    path = _write_mutated(base, folder, mutations, damage, card_file)
    try:
        _check_loads_or_fails_cleanly(path)
    finally:
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)


@settings(max_examples=200, **SETTINGS)
@given(mutations=st.lists(SETTINGS_MUTATIONS, min_size=1, max_size=3))
def test_model_file_with_any_settings(base_model, model_dir, mutations):
    """Card settings of any JSON value, damaged metadata: a working model or a ModelLoadError."""
    _check_mutated(base_model, model_dir, mutations)


@settings(max_examples=100, **SETTINGS)
@given(mutations=st.lists(CASTS, min_size=1, max_size=2))
def test_model_file_with_any_weight_dtypes(base_model, model_dir, mutations):
    """Tensors cast to other dtypes: a working model or a ModelLoadError."""
    _check_mutated(base_model, model_dir, mutations)


@settings(max_examples=200, **SETTINGS)
@given(mutations=st.lists(VALUE_MUTATIONS, min_size=1, max_size=3))
def test_model_file_with_any_weight_values_and_shapes(base_model, model_dir, mutations):
    """Tensors reshaped, removed, added, NaN or extreme: a working model or a ModelLoadError."""
    _check_mutated(base_model, model_dir, mutations)


@settings(max_examples=100, **SETTINGS)
@given(mutations=st.lists(MUTATIONS, max_size=2), damage=FILE_DAMAGE)
def test_damaged_model_file(base_model, model_dir, mutations, damage):
    """Truncated, overwritten or corrupted files: a ModelLoadError (or, rarely, a working model)."""
    _check_mutated(base_model, model_dir, mutations, damage)


@settings(max_examples=60, **SETTINGS)
@given(mutations=st.lists(MUTATIONS, max_size=1), card_file=CARD_FILE)
def test_model_file_with_any_json_card(base_model, model_dir, mutations, card_file):
    """The JSON card beside the weights (stale, garbage, not an object) never breaks loading."""
    _check_mutated(base_model, model_dir, mutations, card_file=card_file)


EXTREME_SETTINGS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 10**400, -(10**400), 2**63, 0, -1, 16.5, True,
                    None, "16", [], {}]


@pytest.mark.parametrize("key", CONFIG_KEYS)
@pytest.mark.parametrize("value", EXTREME_SETTINGS, ids=[f"v{i}" for i in range(len(EXTREME_SETTINGS))])
def test_model_file_with_extreme_setting(base_model, model_dir, key, value):
    """Each setting at each extreme value, every run (random search reaches these only rarely)."""
    _check_mutated(base_model, model_dir, [("config", key, value)])


# finite weights of the right names and shapes, which load accepts, but of another dtype or degenerate
ODD_WEIGHTS = {
    "bins_float64": [("cast", "bins", "float64")],
    "bins_float16": [("cast", "bins", "float16")],
    "bins_int32": [("cast", "bins", "int32")],
    "rebalance_float64_debiased": [("cast", "rebalance", "float64"), ("config", "debias", 0.5)],
    "negative_running_var": [("scale", "net.enc1.0.1.running_var", -1.0)],
    "huge_head_weight": [("set", "net.head.weight", 3.4e38)],
    "huge_regression_weight": [("set", "net.reg.1.weight", 3.4e38)],
    "huge_conv_weight": [("set", "net.enc1.0.0.weight", 3.4e38)],
}


@pytest.mark.parametrize("name", sorted(ODD_WEIGHTS))
def test_model_file_with_odd_weights(base_model, model_dir, name):
    _check_mutated(base_model, model_dir, ODD_WEIGHTS[name])


def test_unmutated_saved_model_loads_and_colorizes(base_model, model_dir):
    assert _check_loads_or_fails_cleanly(_write_mutated(base_model, model_dir, [], None, "original")) is not None


@pytest.mark.parametrize("width", [400, 10**6, 10**400, 2**63], ids=["400", "1e6", "1e400", "2**63"])
def test_a_huge_width_fails_fast(base_model, model_dir, width):
    path = _write_mutated(base_model, model_dir, [("config", "width", width)], None, None)
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError):
        modelfile.load(path)
    assert time.perf_counter() - t0 < 5.0
