"""Reading color photos from folders and WebDataset-style tars, and dropping gray or sepia ones."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
MAX_PIXELS = 178_956_970
"""Default limit on the pixels (height x width) of one image plane, checked before decoding.

Pillow's own decompression-bomb error threshold: a few hundred KB of deflate can claim
20000 x 20000 pixels, and decoding that takes gigabytes. 0 means no limit.
"""


def check_pixels(height: int, width: int, name, max_pixels: int = MAX_PIXELS) -> None:
    """Raise :class:`InputError` if a ``height`` x ``width`` plane is over ``max_pixels`` (0: no limit)."""
    if max_pixels and height * width > max_pixels:
        raise InputError(f"'{name}' is {width} x {height} = {height * width:,} pixels, over the limit of "
                         f"{max_pixels:,} (--max-pixels; 0 for none).")


def open_pil(fp, name, max_pixels: int = MAX_PIXELS):
    """``PIL.Image.open`` with the pixel limit checked on the header, before any pixel is decoded."""
    from PIL import Image

    # Pillow refuses images over 2 * MAX_IMAGE_PIXELS in open(): raise its limit (never lower it, as
    # other threads may be reading) so that ours is the one that decides
    if max_pixels == 0:
        Image.MAX_IMAGE_PIXELS = None
    elif Image.MAX_IMAGE_PIXELS is not None and max_pixels > 2 * Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        im = Image.open(fp)
    except Image.DecompressionBombError as exc:
        raise InputError(f"'{name}': {exc}") from None
    except Image.UnidentifiedImageError:  # Pillow's own message names a BytesIO, not the file
        raise InputError(f"Cannot read image '{name}': not a format Pillow reads.") from None
    try:
        check_pixels(im.height, im.width, name, max_pixels)
    except InputError:
        im.close()
        raise
    return im


def _decode(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    from PIL import ImageOps

    with open_pil(io.BytesIO(data), name, max_pixels) as im:
        # upright, as viewers show a photo stored sideways with an EXIF orientation
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def iter_images(source: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, rgb_uint8)`` for every image in a folder, a tar, or a single file.

    Unreadable members, and images over ``max_pixels`` (0: no limit), are skipped with a warning
    rather than ending the run.

    Raises
    ------
    InputError
        ``source`` does not exist, or is a ``.tar`` file that is not a tar archive.
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
                    yield member.name, _decode(tar.extractfile(member).read(), member.name, max_pixels)
                except Exception as exc:  # noqa: BLE001 - a bad member must not end the read
                    warnings.warn(f"skipped unreadable {member.name}: {exc}", stacklevel=2)
        return
    if path.is_file() and path.suffix.lower() == ".tar":
        # not a tar after all: reading it as a folder of one file would come back here forever
        raise InputError(f"'{path}' is named .tar but is not a tar archive.")
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if (p.suffix.lower() in IMAGE_SUFFIXES or p.suffix == ".tar") and p.is_file()
    )
    for f in files:
        try:
            if f.suffix == ".tar" and f != path:
                yield from iter_images(f, max_pixels)
                continue
            yield f.name, _decode(f.read_bytes(), str(f), max_pixels)
        except InputError as exc:  # one bad tar or image inside a folder must not end the read
            warnings.warn(f"skipped {f}: {exc}", stacklevel=2)
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

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: np.save would append .npy to a path
                np.save(f, arr)

        atomic_write(cache, save)
    return arr
