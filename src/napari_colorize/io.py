"""Reading and writing image files for the CLI; outputs are written atomically."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .core.errors import ColorizeError, InputError

READ_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
WRITE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Pixels of a PNG, JPEG, BMP or (multi-page) TIFF file, in their stored dtype."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return tifffile.imread(path)
        from PIL import Image

        with Image.open(path) as im:
            im.load()
            if im.mode in ("P", "PA", "LA", "RGBA", "CMYK", "YCbCr", "1"):
                im = im.convert("RGB") if im.mode != "LA" else im.convert("L")
            return np.asarray(im)
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"Cannot read image '{path}': {exc}") from None


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write float RGB in [0, 1] atomically: uint8 for PNG/JPEG, uint16 for TIFF."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise InputError(f"Unsupported output type '{suffix}'; use one of {', '.join(WRITE_SUFFIXES)}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, (np.clip(rgb, 0, 1) * 65535 + 0.5).astype(np.uint16), photometric="rgb")
        else:
            if rgb.ndim != 3:
                raise InputError(f"{suffix} holds one 2D image; write stacks as .tif instead.")
            from PIL import Image

            Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)).save(
                tmp, format="JPEG" if suffix in (".jpg", ".jpeg") else "PNG"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Image files named or inside the folders named, in a stable order."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in READ_SUFFIXES))
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"No such file or folder: {p}")
    if not files:
        raise InputError("No image files (PNG, TIFF, JPEG) found in the inputs.")
    return files


def output_paths(files: list[Path], output: str) -> list[Path]:
    """Where each input's result goes: ``output`` itself for a single file with an image suffix,
    else ``output/<stem>_colorized<suffix>`` (TIFF stays TIFF, the rest become PNG)."""
    out = Path(output)
    if len(files) == 1 and out.suffix.lower() in WRITE_SUFFIXES:
        return [out]
    paths = []
    for f in files:
        suffix = ".tif" if f.suffix.lower() in (".tif", ".tiff") else ".png"
        paths.append(out / f"{f.stem}_colorized{suffix}")
    return paths


def colorize_files(inputs: list[str], output: str, *, model=None, temperature=None,
                   overwrite: bool = False, progress=None) -> dict:
    """Colorize image files and folders into ``output``; unreadable files are reported and skipped.

    Returns counts ``{"done", "skipped", "failed"}``; raises if every file failed.
    """
    from .api import colorize, load_model

    files = expand_inputs(inputs)
    targets = output_paths(files, output)
    if len(set(targets)) != len(targets):
        raise InputError("Two inputs share a file name; colorize them into separate folders.")
    m = load_model(model)
    counts = {"done": 0, "skipped": 0, "failed": 0}
    bar = progress(len(files), "colorize") if progress else None
    for src, dst in zip(files, targets):
        try:
            if dst.exists() and not overwrite:
                counts["skipped"] += 1
                continue
            img = read_image(src)
            if img.ndim == 3 and img.shape[-1] == 4:
                img = img[..., :3]  # alpha does not carry luminance
            rgb = colorize(img, model=m, temperature=temperature)
            if rgb.ndim > 3 and dst.suffix.lower() not in (".tif", ".tiff"):
                dst = dst.with_suffix(".tif")
            write_image(dst, rgb)
            counts["done"] += 1
        except ColorizeError as exc:
            counts["failed"] += 1
            print(f"napari-colorize: skipped {src}: {exc}", file=sys.stderr)
        except PermissionError as exc:
            raise ColorizeError(f"Cannot write to '{dst.parent}': {exc.strerror}.") from None
        finally:
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    print(f"colorized {counts['done']}, skipped {counts['skipped']} existing, failed {counts['failed']}",
          file=sys.stderr)
    if counts["failed"] and not counts["done"] and not counts["skipped"]:
        raise ColorizeError("No file could be colorized.")
    return counts
