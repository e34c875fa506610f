"""Reading and writing image files for the CLI, and batch colorization as dask tasks.

Outputs are written atomically (:mod:`napari_colorize.core.atomic`), so an interrupted or killed
batch leaves no half-written file, a rerun skips the finished ones and removes the temporaries of
killed runs. An input is never an output: not by name, not through a link, not on a rerun.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import numpy as np

from ..core.arrays import check_number, to_dtype
from ..core.atomic import atomic_write, clean_stale, remove, temp_path
from ..core.data import MAX_PIXELS, check_pixels, open_pil
from ..core.errors import ColorizeError, InputError
from ..core.stores import output_problem
from .paths import WRITE_SUFFIXES, expand_inputs, is_zarr, output_paths
from .runner import (
    MODEL,
    Job,
    describe,
    finish_zarr,
    plan_zarr,
    refuse_overwriting_inputs,
    summary,
)
from .runner import SCHEDULER_TIMEOUT as SCHEDULER_TIMEOUT  # re-exported, as are the next two
from .runner import OutputError as OutputError
from .runner import colorize_zarr_plane_task as colorize_zarr_plane_task
from .runner import connect as _connect
from .runner import run_distributed as _run_distributed
from .runner import run_in_thread as _run_in_thread
from .runner import run_local as _run_local


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Pixels of a PNG, JPEG, BMP or (multi-page) TIFF file, in their stored dtype.

    Images whose planes have more than ``max_pixels`` pixels (0: no limit) are refused from
    their header, before anything is decoded.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.series[0].keyframe  # what asarray() reads, as tifffile.imread does
                check_pixels(page.imagelength, page.imagewidth, path, max_pixels)
                arr = tif.asarray()
                # color stored plane by plane is one image (..., 3, H, W), not a stack of 3 grays
                planar = page.photometric == tifffile.PHOTOMETRIC.RGB and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
                return np.moveaxis(arr, -3, -1) if planar and arr.ndim >= 3 else arr
        from PIL import ImageOps

        with open_pil(path, path, max_pixels) as im:
            im.load()
            # a camera's portrait photo is stored sideways with an EXIF orientation that viewers
            # follow: colorize it (and write it) the way up it is seen
            im = ImageOps.exif_transpose(im)
            if im.mode in ("P", "PA", "LA", "RGBA", "CMYK", "YCbCr", "1"):
                im = im.convert("RGB") if im.mode != "LA" else im.convert("L")
            return np.asarray(im)
    except InputError:
        raise
    except (OSError, ValueError, SyntaxError, IndexError) as exc:
        raise InputError(f"Cannot read image '{path}': {exc}") from None


def tiff_resolution(path: str | os.PathLike) -> dict:
    """A TIFF's pixel size tags (``resolution``, ``resolutionunit``) as ``tifffile.imwrite`` takes
    them, or {} where it has none (or is not a TIFF)."""
    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        return {}
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            tags = page.tags
            if "XResolution" not in tags or "YResolution" not in tags:
                return {}
            return {"resolution": page.resolution, "resolutionunit": page.resolutionunit}
    except (OSError, ValueError, tifffile.TiffFileError):
        return {}


def write_image(path: str | os.PathLike, rgb: np.ndarray, resolution: dict | None = None) -> None:
    """Write float RGB in [0, 1] atomically: uint8 for PNG/JPEG, uint16 for TIFF (with the pixel
    size tags of :func:`tiff_resolution` when given)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise InputError(f"Unsupported output type '{suffix}'; use one of {', '.join(WRITE_SUFFIXES)}.")
    if suffix not in (".tif", ".tiff") and rgb.ndim != 3:
        raise InputError(f"{suffix} holds one 2D image; write stacks as .tif instead.")
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        if suffix in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, to_dtype(rgb, np.uint16), photometric="rgb",
                             **(resolution or {}))
        else:
            from PIL import Image

            # the format by name: the temporary's suffix says nothing
            Image.fromarray(to_dtype(rgb, np.uint8)).save(
                tmp, format="JPEG" if suffix in (".jpg", ".jpeg") else "PNG"
            )

    atomic_write(path, write)


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove a file can be made in it; raise :class:`OutputError`.

    A probe file rather than ``os.access``: the latter says yes to root on read-only mounts and
    knows nothing of quotas.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temp_path(folder / "probe")  # named as a temporary: a kill here leaves nothing for good
        with open(probe, "x"):
            pass
        os.unlink(probe)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"Cannot write to '{folder}': it (or a parent) is a file, not a folder.") from None
    except OSError as exc:
        raise OutputError(f"Cannot write to output folder '{folder}': {exc.strerror or exc}.") from None


def check_temperature(temperature) -> None:
    """Raise :class:`InputError` unless ``temperature`` is None or a number in (0, 5]."""
    if temperature is not None:
        check_number("temperature", temperature, 0.0, 5.0, open_low=True)


# -- tasks: module-level functions, so dask.distributed workers can unpickle them by name -------------
def colorize_file_task(job: int, src: str, dst: str, model, temperature,
                       max_pixels: int = MAX_PIXELS) -> tuple[int, str | None]:
    """Read, colorize and atomically write one image file.

    Returns
    -------
    (job, error)
        ``error`` is None on success, else why the input was skipped.

    Raises
    ------
    OutputError
        The output could not be written; the batch should stop.
    """
    from ..api import colorize
    from ..core.planes import check_image

    out = Path(dst)
    try:
        img = read_image(src, max_pixels)
        if img.ndim == 3 and img.shape[-1] == 4:
            img = img[..., :3]  # alpha does not carry luminance
        lead = img.shape[: -3 if check_image(img, values=False) else -2]
        if lead and out.suffix.lower() not in (".tif", ".tiff"):  # never another name than the one planned
            return job, f"a stack of {int(np.prod(lead))} images does not fit a {out.suffix} file; name a .tif output"
        rgb = colorize(img, model=model, temperature=temperature)
    except Exception as exc:  # noqa: BLE001 - one bad input must not end a batch of thousands
        return job, describe(exc)
    try:
        write_image(out, rgb, tiff_resolution(src))  # a microscope's pixel size stays with the image
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:  # this output's name, not the disk: the others can go on
            return job, f"Cannot write '{out}': {exc.strerror}."
        raise OutputError(f"Cannot write '{out}': {exc.strerror or exc}.") from None
    return job, None


def colorize_files(inputs: list[str], output: str, *, model=None, temperature=None,
                   overwrite: bool = False, progress=None, scheduler=None, workers: int | None = None,
                   max_pixels: int = MAX_PIXELS, fmt: str = "auto") -> dict:
    """Colorize image files, folders and zarr arrays into ``output`` as dask tasks.

    Each file (or zarr plane) is one task that reads, colorizes and writes atomically, so an
    interrupted batch leaves only complete outputs and a rerun skips them.

    Parameters
    ----------
    inputs : list of str
        Image files, folders of them (searched recursively) and zarr arrays.
    output : str
        Output folder, or an output file (``.zarr`` for a zarr input) when there is one input.
    model, temperature
        As for :func:`napari_colorize.colorize`.
    overwrite : bool
        Replace existing outputs; else they are skipped, and an existing output file named by
        ``output`` for a single input is an error. An input is never replaced.
    progress : callable, optional
        ``progress(total, desc)`` returning a tqdm-like bar.
    scheduler : str or distributed.Client, optional
        A dask.distributed scheduler address (or client) to run on; inputs and outputs must be on a
        file system the workers share. Default: local threads.
    workers : int, optional
        Threads of the local scheduler (default: one per core).
    max_pixels : int
        Inputs with more pixels per plane (height x width) fail without being decoded; 0: no limit.
    fmt : {"auto", "ome-zarr"}
        "ome-zarr" writes each input as a uint8 multiscale OME-Zarr (one task an input, chunk by
        chunk), keeping an OME-Zarr input's pixel sizes. "auto" does so for OME-Zarr inputs and
        outputs named ``.ome.zarr``.

    Returns
    -------
    dict
        ``done``, ``skipped`` and ``failed`` counts and ``errors``: ``(input, why)`` pairs.

    Raises
    ------
    OutputError
        An output folder cannot be written (checked before starting) or a write failed (e.g. the
        disk is full); outputs already written are complete and untouched.
    InputError
        Bad arguments (temperature, max_pixels), no inputs, or an output that would replace an input.
    ColorizeError
        No input could be colorized, or the scheduler cannot be reached.
    """
    from ..api import load_model
    from ..core.modelfile import Colorizer
    from ..core.runtime import default_threads, release_memory

    check_temperature(temperature)  # one error here rather than one per file
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 0:
        raise InputError(f"max_pixels must be a whole number >= 0 (0: no limit), got {max_pixels!r}.")
    files = [f.resolve() for f in expand_inputs(inputs, output)]  # workers may run in another folder
    if fmt not in ("auto", "ome-zarr"):
        raise InputError(f"fmt must be 'auto' or 'ome-zarr'; got {fmt!r}.")
    targets = [t.resolve() for t in output_paths(files, output, fmt)]
    seen: dict = {}
    for f, t in zip(files, targets):
        if t in seen:
            raise InputError(f"'{seen[t]}' and '{f}' would both be written to '{t}'; "
                             "colorize them into separate folders.")
        seen[t] = f
    refuse_overwriting_inputs(files, targets)
    if len(files) == 1 and targets[0] == Path(output).resolve() and targets[0].exists() and not overwrite:
        # a file named on its own is not a batch to resume: skipping it would look like success
        raise InputError(f"'{output}' already exists; pass --overwrite to replace it.")
    for folder in sorted({t.parent for t in targets}):
        check_writable(folder)
        clean_stale(folder)  # temporaries of killed runs
    # loaded here, so a bad model is one error rather than one per file; a Colorizer is used as it is
    m = model if isinstance(model, Colorizer) else load_model(model)
    jobs = [Job(s, d) for s, d in zip(files, targets)]
    todo, refused = [], []
    for key, job in enumerate(jobs):
        job.error, exists = output_problem(job.dst, overwrite)
        if job.error is not None:
            refused.append(job)  # this input fails, the others go on
        elif overwrite or not exists:
            todo.append(key)
    counts = {"done": 0, "skipped": len(jobs) - len(todo) - len(refused), "failed": 0, "errors": []}
    client, own = _connect(scheduler) if scheduler is not None and todo else (None, False)
    bar = None

    def say(text: str) -> None:
        if bar is not None:
            bar.write(text, file=sys.stderr)  # above the bar, not through it
        else:
            print(text, file=sys.stderr)

    def finish(job: Job) -> None:
        if job.tmp is not None:
            finish_zarr(job)
        if job.error is None:
            counts["done"] += 1
        else:
            counts["failed"] += 1
            counts["errors"].append((str(job.src), job.error))
            say(f"napari-colorize: failed {job.src}: {job.error}")

    def on_result(result) -> None:
        key, error = result
        job = jobs[key]
        if error is not None and job.error is None:
            job.error = error
        job.pending -= 1
        if job.pending == 0:
            finish(job)
        if bar is not None:
            bar.update(1)

    try:
        for job in refused:
            finish(job)
        tasks = []
        for key in todo:
            job = jobs[key]
            if job.dst.name.lower().endswith(".ome.zarr"):
                from ..omezarr import colorize_task

                planned = [(colorize_task, key, str(job.src), str(job.dst), MODEL, temperature, max_pixels)]
            elif is_zarr(job.src):
                planned = plan_zarr(job, key, MODEL, temperature, max_pixels)
            else:
                planned = [(colorize_file_task, key, str(job.src), str(job.dst), MODEL, temperature, max_pixels)]
            job.pending = len(planned)
            tasks.extend(planned)
            if not planned:
                finish(job)
        if progress is not None:
            bar = progress(len(tasks) + counts["skipped"], "colorize")
            bar.update(counts["skipped"])
        if client is not None and tasks:
            _run_in_thread(lambda stopping: _run_distributed(client, tasks, m, on_result, stopping=stopping))
        elif tasks:
            _run_in_thread(lambda stopping: _run_local(tasks, m, workers or default_threads(), on_result, stopping))
    except BaseException:
        for job in jobs:  # unfinished zarr outputs; finished ones were already renamed into place
            if job.tmp is not None:
                remove(job.tmp)
        raise
    finally:
        if own:
            client.close()
        if bar is not None:
            bar.close()
        release_memory()  # each of the batch's threads kept freed memory for its next file
        summary(counts)
    if counts["failed"] and not counts["done"] and not counts["skipped"]:
        raise ColorizeError("No file could be colorized.")
    return counts
