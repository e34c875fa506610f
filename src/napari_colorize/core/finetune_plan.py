"""Planning fine-tuning data: tiles of the user's images, a held-out share, batches of crops.

The images are never copied whole: each is split into a grid of tiles (a share of them held out
for validation) and every training batch reads only its random crops, so numpy views and lazy
dask arrays of any size work in bounded memory. The input arrays are only read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .arrays import check_finite
from .color import intensity_range, rgb_to_lab
from .errors import InputError
from .inference import guided_upsample
from .model import encode_input
from .modelfile import Colorizer
from .training import lab_batch, loss_fn

AUGMENTATIONS = ("flip", "rotate", "scale")
#: Settings used where the caller gives none.
DEFAULTS = {"seconds": 120.0, "lr": 2e-3, "batch_size": 16, "crop": 64, "val_fraction": 0.2,
            "max_val_tiles": 16, "augment": ("flip", "scale")}
GRAY_CHROMA = 2.0  # mean chroma (CIELAB units) below which an image counts as gray
MIN_SIDE = 8


@dataclass
class _Plane:
    """One RGB plane (H, W, 3 or 4) of a source; reads crops as uint8 without copying the rest."""

    data: object
    source: int
    lo: float = 0.0
    hi: float = 255.0

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(int(s) for s in self.data.shape[:2])

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        patch = np.asarray(self.data[y0:y1, x0:x1, :3])
        if patch.dtype == np.uint8:
            return np.array(patch)  # a copy: batches must never alias the user's data
        check_finite(patch, "training image")  # lazy data is checked as it is read
        scaled = (patch.astype(np.float32) - self.lo) * (255.0 / max(self.hi - self.lo, 1e-12))
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


@dataclass
class DataPlan:
    """Training regions, validation tiles and a summary of where they came from."""

    planes: list
    regions: np.ndarray  # (M, 5): plane, y0, y1, x0, x1
    val_tiles: np.ndarray  # (K, V, V, 3) uint8
    crop: int
    tile: int
    summary: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


def resolve_device(device: str | None) -> str:
    """``"auto"`` (or None) picks CUDA, then MPS, then the CPU; others are checked."""
    device = (device or "auto").lower()
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if device.startswith("cuda") and not cuda:
        raise InputError("CUDA was chosen but this torch build sees no CUDA GPU; choose 'auto' or 'cpu'.")
    if device == "mps" and not mps:
        raise InputError("MPS was chosen but it is not available here; choose 'auto' or 'cpu'.")
    if device != "cpu" and not device.startswith(("cuda", "mps")):
        raise InputError(f"Unknown device '{device}'; use auto, cpu, cuda or mps.")
    return device


# -- data -------------------------------------------------------------------------------------
def _named(images, what: str) -> list[tuple[str, object]]:
    """``images`` as (name, array) pairs: a dict, one array or a list of arrays."""
    if images is None:
        return []
    if isinstance(images, dict):
        pairs = list(images.items())
    elif hasattr(images, "shape") and hasattr(images, "ndim"):
        pairs = [(f"{what} 0", images)]
    else:
        pairs = [(f"{what} {i}", im) for i, im in enumerate(images)]
    return [(str(n), im if hasattr(im, "shape") else np.asarray(im)) for n, im in pairs]


def _planes_of(name: str, arr) -> list:
    """The RGB planes of an image or a stack, as views; explains why non-RGB data is refused."""
    shape = tuple(int(s) for s in getattr(arr, "shape", ()))
    if len(shape) < 3 or shape[-1] not in (3, 4):
        raise InputError(
            f"'{name}' (shape {shape}) is not an RGB image: fine-tuning learns colors from color "
            "images, and a grayscale or multichannel image has none to learn. Choose RGB layers."
        )
    dtype = np.dtype(arr.dtype)
    if dtype.kind not in "uifb":
        raise InputError(f"'{name}' has pixel type {dtype}; expected integers or floats.")
    lead = shape[:-3]
    return [arr[idx] if idx else arr for idx in np.ndindex(*lead)] if lead else [arr]


def _probe(planes: list, rng: np.random.Generator, k: int = 12, size: int = 48) -> np.ndarray:
    """A few small random crops (raw values) from random planes, to judge range and color."""
    out = []
    for _ in range(k):
        p = planes[int(rng.integers(len(planes)))]
        h, w = (int(s) for s in p.shape[:2])
        s_h, s_w = min(size, h), min(size, w)
        y, x = int(rng.integers(0, h - s_h + 1)), int(rng.integers(0, w - s_w + 1))
        out.append(np.asarray(p[y : y + s_h, x : x + s_w, :3], dtype=np.float32).reshape(-1, 3))
    return np.concatenate(out)


def _value_range(sample: np.ndarray, dtype: np.dtype) -> tuple[float, float]:
    lo, hi = intensity_range(sample, dtype)
    return (lo, hi) if hi > lo else (lo, hi + 1.0)


def _mean_chroma(rgb_u8: np.ndarray) -> float:
    lab = rgb_to_lab(rgb_u8.reshape(-1, 1, 3).astype(np.float32) / 255.0)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def _check_sources(named, rng, notes: list, drop_gray: bool = True):
    """Planes of every source with their value ranges; gray sources are dropped with a note."""
    planes, summary = [], []
    for name, arr in named:
        raw = _planes_of(name, arr)
        dtype = np.dtype(arr.dtype)
        if isinstance(arr, np.ndarray):
            check_finite(arr, f"layer '{name}'")
        sample = _probe(raw, rng)
        lo, hi = _value_range(sample, dtype)
        u8 = np.clip(np.rint((sample - lo) * (255.0 / max(hi - lo, 1e-12))), 0, 255).astype(np.uint8)
        chroma = _mean_chroma(u8)
        entry = {"name": str(name), "shape": [int(s) for s in arr.shape], "dtype": str(dtype),
                 "planes": len(raw), "mean_chroma": round(chroma, 2)}
        if chroma < GRAY_CHROMA:
            notes.append(f"'{name}' looks gray (mean chroma {chroma:.1f}): it has no colors to teach"
                         + (" and was left out." if drop_gray else "."))
            if drop_gray:
                continue
        summary.append(entry)
        idx = len(summary) - 1
        planes.extend(_Plane(p, idx, lo, hi) for p in raw)
    return planes, summary


def _enlarge_small(planes: list, crop: int, notes: list) -> list:
    """Planes smaller than the crop are upscaled (they are small, so read whole); tiny ones dropped."""
    out, small, tiny = [], 0, 0
    for p in planes:
        h, w = p.shape
        if min(h, w) < MIN_SIDE:
            tiny += 1
            continue
        if h < crop or w < crop:
            small += 1
            rgb = torch.from_numpy(p.read(0, h, 0, w)).permute(2, 0, 1)[None].float()
            f = crop / min(h, w)
            size = (max(crop, math.ceil(h * f)), max(crop, math.ceil(w * f)))
            up = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)
            p = _Plane(up[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy(), p.source)
        out.append(p)
    if tiny:
        notes.append(f"{tiny} image(s) smaller than {MIN_SIDE} x {MIN_SIDE} pixels were left out.")
    if small:
        notes.append(f"{small} image(s) smaller than the {crop}-pixel crop were upscaled to fit it.")
    return out


def _grid(h: int, w: int, t: int) -> list[tuple[int, int, int, int]]:
    """Non-overlapping tiles covering an image, each at least ``t`` wide where the image allows."""
    ys = np.linspace(0, h, max(1, h // t) + 1).astype(int)
    xs = np.linspace(0, w, max(1, w // t) + 1).astype(int)
    return [(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(len(ys) - 1) for j in range(len(xs) - 1)]


def _center(p: _Plane, y0, y1, x0, x1, v: int) -> np.ndarray:
    """A v x v uint8 tile from the center of a region (the whole region resized if smaller)."""
    h, w = y1 - y0, x1 - x0
    if h >= v and w >= v:
        cy, cx = y0 + (h - v) // 2, x0 + (w - v) // 2
        return p.read(cy, cy + v, cx, cx + v)
    s = min(h, w)
    cy, cx = y0 + (h - s) // 2, x0 + (w - s) // 2
    t = torch.from_numpy(p.read(cy, cy + s, cx, cx + s)).permute(2, 0, 1)[None].float()
    t = F.interpolate(t, size=(v, v), mode="bilinear", align_corners=False)
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _hold_out(regions: np.ndarray, ok: np.ndarray, k: int, share: float, rng) -> np.ndarray:
    """Indices of ``k`` regions to hold out, taken image by image in turn (each at most its
    ``share``, at least one from as many images as ``k`` allows), so the held-out error speaks
    for every image and no held-out tile shares a pixel with a training region."""
    images = rng.permutation(np.unique(regions[:, 0]))
    pools = {i: list(rng.permutation(np.flatnonzero(ok & (regions[:, 0] == i)))) for i in images}
    quota = {i: max(1, math.ceil(share * int((regions[:, 0] == i).sum()))) for i in images}
    held: list[int] = []
    while len(held) < k:
        before = len(held)
        for i in images:
            if len(held) < k and pools[i] and quota[i] > 0:
                held.append(int(pools[i].pop()))
                quota[i] -= 1
        if len(held) == before:  # every image gave its share: the rest from wherever tiles are left
            rest = [j for i in images for j in pools[i]]
            held.extend(int(j) for j in rng.permutation(rest)[: k - len(held)])
            break
    return np.sort(np.asarray(held, dtype=np.int64))


def plan_data(images, *, val_images=None, crop: int = 64, val_fraction: float = 0.2,
              max_val_tiles: int = 16, seed: int = 0) -> DataPlan:
    """Check the images and split them into training regions and validation tiles.

    Parameters
    ----------
    images : array, list of arrays or dict name -> array
        RGB(A) images (..., H, W, 3) of any sizes and dtypes, numpy or dask; every plane of a
        stack is an image.
    val_images : same, optional
        Validation images; when None, ``val_fraction`` of each image's tiles (at most
        ``max_val_tiles`` in all, spread over the images) is held out of training instead.
    crop : int
        Side of the training crops (rounded down to a multiple of 8).

    Returns
    -------
    DataPlan
    """
    notes: list[str] = []
    rng = np.random.default_rng([seed, 1])
    named = _named(images, "image")
    if not named:
        raise InputError("No training images: choose one or more RGB image layers or a folder.")
    planes, summary = _check_sources(named, rng, notes)
    if not planes:
        raise InputError("All training images are gray: there are no colors to learn. "
                         + " ".join(notes))
    crop = max(16, int(crop) // 8 * 8)
    biggest = max(min(p.shape) for p in planes)
    if biggest < crop:  # every image is small: a smaller crop beats upscaling them all
        crop = max(16, biggest // 8 * 8)
        notes.append(f"All images are smaller than the crop; crops of {crop} pixels are used.")
    planes = _enlarge_small(planes, crop, notes)
    if not planes:
        raise InputError("The training images are too small to learn from. " + " ".join(notes))

    # tiles twice the crop leave room for random crop positions and scales; the crop itself
    # when the images are too small to give a few of those
    def tiles(t):
        return [(i, *r) for i, p in enumerate(planes) for r in _grid(*p.shape, t)]

    tile = 2 * crop
    regions = tiles(tile)
    if sum(1 for r in regions if r[2] - r[1] >= tile and r[4] - r[3] >= tile) < 4:
        tile = crop
        regions = tiles(tile)
    regions = np.asarray(regions, dtype=np.int64)

    named_val = _named(val_images, "validation image")
    if named_val:
        vplanes, vsummary = _check_sources(named_val, np.random.default_rng([seed, 2]), notes,
                                           drop_gray=False)
        cands = [(p, *r) for p in vplanes for r in _grid(*p.shape, tile)]
        pick = np.random.default_rng([seed, 3]).permutation(len(cands))[:max_val_tiles]
        val = np.stack([_center(*cands[i], tile) for i in sorted(pick)])
        vsource = {"source": "validation images", "images": vsummary}
    else:
        ok = (regions[:, 2] - regions[:, 1] >= tile) & (regions[:, 4] - regions[:, 3] >= tile)
        k = min(max_val_tiles, max(1, int(round(val_fraction * len(regions)))), len(regions) - 1,
                int(ok.sum()))
        if k >= 1 and val_fraction > 0:
            held = _hold_out(regions, ok, k, val_fraction, np.random.default_rng([seed, 3]))
            val = np.stack([_center(planes[r[0]], *r[1:], tile) for r in regions[held]])
            regions = np.delete(regions, held, axis=0)
            vsource = {"source": "held-out tiles", "fraction": round(k / (len(regions) + k), 3)}
        else:
            # too little data to hold any out: validation figures then describe training tiles
            use = np.random.default_rng([seed, 3]).permutation(len(regions))[:max_val_tiles]
            val = np.stack([_center(planes[r[0]], *r[1:], crop) for r in regions[np.sort(use)]])
            vsource = {"source": "training tiles (too little data to hold any out)"}
            notes.append("Too little data to hold tiles out: validation uses training tiles.")
    vsource.update({"tiles": int(len(val)), "tile_size": int(val.shape[1])})
    summary_doc = {"images": summary, "training_regions": int(len(regions)), "crop": crop,
                   "validation": vsource}
    return DataPlan(planes, regions, val, crop, tile, summary_doc, notes)


class RegionSampler:
    """Random augmented crops from the training regions of a :class:`DataPlan`.

    Called as ``sampler(images, n, crop, rng)`` like :func:`~.training.random_crops`; regions
    are drawn in proportion to their area. Augmentations: ``flip`` (left-right), ``rotate``
    (quarter turns and up-down flips, for data without an up, e.g. slides) and ``scale`` (zoom
    out by up to the factor at which the colorizer sees the whole image, at most 4).
    """

    def __init__(self, plan: DataPlan, augment=("flip", "scale"), working_size: int = 256):
        bad = set(augment) - set(AUGMENTATIONS)
        if bad:
            raise InputError(f"Unknown augmentation(s) {sorted(bad)}; choose from {AUGMENTATIONS}.")
        self.plan = plan
        self.augment = set(augment)
        r = plan.regions
        area = ((r[:, 2] - r[:, 1]) * (r[:, 4] - r[:, 3])).astype(np.float64)
        self.p = area / area.sum()
        self.zoom = np.array([min(4.0, max(1.0, max(p.shape) / working_size)) for p in plan.planes])

    def __call__(self, images, n: int, crop: int, rng: np.random.Generator) -> np.ndarray:
        out = np.empty((n, crop, crop, 3), np.uint8)
        for j, k in enumerate(rng.choice(len(self.p), size=n, p=self.p)):
            i, y0, y1, x0, x1 = (int(v) for v in self.plan.regions[k])
            h, w = y1 - y0, x1 - x0
            size = crop
            if "scale" in self.augment:
                zmax = min(self.zoom[i], h / crop, w / crop)
                if zmax > 1.0:
                    size = min(h, w, int(round(crop * math.exp(rng.uniform(0.0, math.log(zmax))))))
            y = y0 + int(rng.integers(0, h - size + 1))
            x = x0 + int(rng.integers(0, w - size + 1))
            patch = self.plan.planes[i].read(y, y + size, x, x + size)
            if size != crop:
                t = torch.from_numpy(patch).permute(2, 0, 1)[None].float()
                t = F.interpolate(t, size=(crop, crop), mode="bilinear", antialias=True, align_corners=False)
                patch = t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
            if "flip" in self.augment and rng.random() < 0.5:
                patch = patch[:, ::-1]
            if "rotate" in self.augment:
                patch = np.rot90(patch, int(rng.integers(4)))
                if rng.random() < 0.5:
                    patch = patch[::-1]
            out[j] = patch
        return out


# -- validation -----------------------------------------------------------------------------
@torch.no_grad()
def validation_metrics(model: Colorizer, tiles: np.ndarray, seed: int = 0, batch: int = 8,
                       loss: bool = False) -> dict:
    """ab RMSE without hints on uint8 tiles (and, with ``loss``, the training loss with fixed hints).

    The network must already be in eval mode. ``val_ab_rmse`` is the root mean square of the
    Euclidean ab distance over all pixels, in CIELAB units, of the network's hint-free colors:
    the one figure a run shows, plots and keeps its best weights by.
    """
    dev = next(model.net.parameters()).device
    losses, sq, n = [], 0.0, 0
    for i in range(0, len(tiles), batch):
        chunk = tiles[i : i + batch]
        if loss:
            losses.append(float(loss_fn(model, chunk, np.random.default_rng([seed, 7919, i]))) * len(chunk))
        l_chan, ab = lab_batch(chunk)
        l_dev = l_chan.to(dev)
        zeros = torch.zeros((len(chunk), 2, *l_chan.shape[-2:]), device=dev)
        logits = model.net(encode_input(l_dev, zeros, zeros[:, :1]))
        ab_low = model.decode(logits)
        l_low = F.interpolate(l_dev, size=ab_low.shape[-2:], mode="area")
        pred = guided_upsample(ab_low, l_low, l_dev).cpu()
        sq += float(((pred - ab) ** 2).sum(1).sum())
        n += ab[:, 0].numel()
    out = {"val_ab_rmse": round(math.sqrt(sq / n), 4)}
    if loss:
        out["val_loss"] = round(sum(losses) / len(tiles), 5)
    return out
