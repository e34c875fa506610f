"""Reading color photos from folders and WebDataset-style tars, and dropping gray or sepia ones."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def iter_images(source: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, rgb_uint8)`` for every image in a folder, a tar, or a single file.

    Unreadable members are skipped with a warning rather than ending the run.
    """
    import warnings

    path = Path(source)
    if not path.exists():
        raise InputError(f"No such file or folder: {path}")
    if path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            for member in tar:
                if not member.isfile() or not member.name.lower().endswith(IMAGE_SUFFIXES):
                    continue
                try:
                    yield member.name, _decode(tar.extractfile(member).read())
                except Exception as exc:  # noqa: BLE001 - a bad member must not end the read
                    warnings.warn(f"skipped unreadable {member.name}: {exc}", stacklevel=2)
        return
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES or p.suffix == ".tar"
    )
    for f in files:
        if f.suffix == ".tar":
            yield from iter_images(f)
            continue
        try:
            yield f.name, _decode(f.read_bytes())
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"skipped unreadable {f}: {exc}", stacklevel=2)


def is_colorful(rgb: np.ndarray, min_chroma: float = 1.5, min_spread: float = 2.0) -> bool:
    """False for gray and sepia-like photos, which teach a colorizer nothing useful.

    Gray photos have almost no chroma; sepia ones have chroma but nearly one hue, so the spread of
    their ab values around the mean is small.
    """
    from .color import rgb_to_lab

    lab = rgb_to_lab(rgb[::2, ::2].astype(np.float32) / 255.0)
    ab = lab[..., 1:].reshape(-1, 2)
    chroma = float(np.hypot(ab[:, 0], ab[:, 1]).mean())
    spread = float(np.sqrt(ab.var(axis=0).sum()))
    return chroma >= min_chroma and spread >= min_spread


def load_array(
    sources: list[str | os.PathLike],
    size: int = 64,
    cache_dir: str | os.PathLike | None = None,
    filter_gray: bool = True,
) -> np.ndarray:
    """All images of ``sources`` as one uint8 array (N, size, size, 3), cached on disk.

    Images of another size are center-cropped and resized. The cache key covers the sources'
    paths, sizes and mtimes, so a changed source is read again.
    """
    from skimage.transform import resize

    key = hashlib.sha1()
    for s in sources:
        st = Path(s).stat()
        key.update(f"{Path(s).resolve()}|{st.st_size}|{st.st_mtime_ns}|{size}|{filter_gray}".encode())
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"images-{key.hexdigest()[:16]}.npy"
        if cache.exists():
            return np.load(cache)
    out = []
    for src in sources:
        for _, rgb in iter_images(src):
            if rgb.shape[0] != size or rgb.shape[1] != size:
                s = min(rgb.shape[:2])
                y0, x0 = (rgb.shape[0] - s) // 2, (rgb.shape[1] - s) // 2
                crop = rgb[y0 : y0 + s, x0 : x0 + s]
                rgb = (resize(crop, (size, size), anti_aliasing=True) * 255).round().astype(np.uint8)
            if filter_gray and not is_colorful(rgb):
                continue
            out.append(rgb)
    if not out:
        raise InputError(f"No usable color images found in {', '.join(map(str, sources))}.")
    arr = np.stack(out)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, arr)
        os.replace(tmp, cache)
    return arr
