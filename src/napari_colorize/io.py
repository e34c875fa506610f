"""Reading and writing image files for the CLI, and batch colorization as dask tasks.

Outputs are written atomically (temp file + rename), so an interrupted batch leaves no half-written
file and a rerun skips the finished ones.
"""

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


class OutputError(ColorizeError):
    """An output cannot be written (permissions, full disk): the batch stops, files written stay."""


def is_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a zarr array or group (a ``.zarr`` folder or one with zarr metadata)."""
    p = Path(path)
    if p.suffix.lower() == ".zarr":
        return True
    return p.is_dir() and any((p / n).exists() for n in ("zarr.json", ".zarray", ".zgroup"))


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Image files and zarr arrays named, or image files inside the folders named, in a stable order."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if is_zarr(p) and p.exists():
            files.append(p)
        elif p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in READ_SUFFIXES))
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"No such file or folder: {p}")
    if not files:
        raise InputError("No image files (PNG, TIFF, JPEG) found in the inputs.")
    return files


def output_paths(files: list[Path], output: str) -> list[Path]:
    """Where each input's result goes.

    ``output`` itself for a single input whose suffix fits (an image suffix, or ``.zarr`` for a
    zarr input), else ``output/<stem>_colorized<suffix>``: TIFF stays TIFF, zarr stays zarr, the
    rest become PNG.
    """
    out = Path(output)
    zarr_out = out.suffix.lower() == ".zarr"
    if zarr_out and (len(files) > 1 or not is_zarr(files[0])):
        raise InputError(f"'{out}' takes one zarr input; give several inputs an output folder.")
    if len(files) == 1 and (out.suffix.lower() in WRITE_SUFFIXES or zarr_out):
        if is_zarr(files[0]) and not zarr_out:
            raise InputError(f"A zarr input needs a .zarr output or a folder, not '{out}'.")
        return [out]
    paths = []
    for f in files:
        if is_zarr(f):
            suffix = ".zarr"
        else:
            suffix = ".tif" if f.suffix.lower() in (".tif", ".tiff") else ".png"
        paths.append(out / f"{f.stem}_colorized{suffix}")
    return paths


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove a file can be made in it; raise :class:`OutputError`.

    A probe file rather than ``os.access``: the latter says yes to root on read-only mounts and
    knows nothing of quotas.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".napari-colorize-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"Cannot write to '{folder}': it (or a parent) is a file, not a folder.") from None
    except OSError as exc:
        raise OutputError(f"Cannot write to output folder '{folder}': {exc.strerror or exc}.") from None


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ColorizeError) else f"{type(exc).__name__}: {exc}"


def _to_dtype(rgb: np.ndarray, dtype) -> np.ndarray:
    top = np.iinfo(dtype).max
    return (np.clip(rgb, 0, 1) * top + 0.5).astype(dtype)


# -- tasks: module-level functions, so dask.distributed workers can unpickle them by name -------------
def colorize_file_task(job: int, src: str, dst: str, model, temperature) -> tuple[int, str | None]:
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
    from .api import colorize

    try:
        img = read_image(src)
        if img.ndim == 3 and img.shape[-1] == 4:
            img = img[..., :3]  # alpha does not carry luminance
        rgb = colorize(img, model=model, temperature=temperature)
    except Exception as exc:  # noqa: BLE001 - one bad input must not end a batch of thousands
        return job, _describe(exc)
    out = Path(dst)
    if rgb.ndim > 3 and out.suffix.lower() not in (".tif", ".tiff"):
        out = out.with_suffix(".tif")
    try:
        write_image(out, rgb)
    except OSError as exc:
        raise OutputError(f"Cannot write '{out}': {exc.strerror or exc}.") from None
    return job, None


def colorize_zarr_plane_task(job: int, src: str, tmp: str, index: tuple[int, ...], model,
                             temperature) -> tuple[int, str | None]:
    """Colorize plane ``index`` of the zarr array ``src`` into the same plane of ``tmp``.

    Returns and raises like :func:`colorize_file_task`.
    """
    import zarr

    from .api import colorize

    try:
        plane = np.asarray(zarr.open_array(store=src, mode="r")[index])
        rgb = colorize(plane, model=model, temperature=temperature)
    except Exception as exc:  # noqa: BLE001
        return job, f"plane {index}: {_describe(exc)}"
    try:
        out = zarr.open_array(store=tmp, mode="r+")
        out[index] = _to_dtype(rgb, out.dtype)
    except OSError as exc:
        raise OutputError(f"Cannot write '{tmp}': {exc.strerror or exc}.") from None
    return job, None


def _require_zarr():
    try:
        import zarr
    except ImportError:
        raise InputError("Reading zarr needs the zarr package: pip install 'napari-colorize[zarr]'.") from None
    return zarr


class _Job:
    """One input: a file (one task) or a zarr array (one task per plane), written to ``dst``."""

    def __init__(self, src: Path, dst: Path):
        self.src, self.dst = src, dst
        self.tmp: Path | None = None  # zarr: written here, renamed to dst when every plane is done
        self.pending = 0
        self.error: str | None = None


def _plan_zarr(job: _Job, key: int, model, temperature) -> list[tuple]:
    """Open the input, create the temporary output array and return one task per plane."""
    from .core.inference import validate_image

    zarr = _require_zarr()
    try:
        arr = zarr.open(store=str(job.src), mode="r")
    except Exception as exc:  # noqa: BLE001
        job.error = f"not a readable zarr array: {_describe(exc)}"
        return []
    if not hasattr(arr, "shape"):
        names = ", ".join(sorted(k for k, _ in arr.arrays())) or "none"
        job.error = f"is a zarr group; name one of its arrays (found: {names}) as the input"
        return []
    try:
        is_rgb = validate_image(arr)
    except ColorizeError as exc:
        job.error = str(exc)
        return []
    lead = arr.shape[:-3] if is_rgb else arr.shape[:-2]
    spatial = arr.shape[len(lead) : len(lead) + 2]
    dtype = np.uint8 if arr.dtype == np.uint8 else np.uint16
    job.tmp = Path(tempfile.mkdtemp(prefix=f".{job.dst.name}.", suffix=".partial", dir=job.dst.parent))
    # one plane per chunk row so that concurrent plane tasks never write the same chunk
    zarr.open_array(store=str(job.tmp), mode="w", shape=(*lead, *spatial, 3), dtype=dtype,
                    chunks=(1,) * len(lead) + tuple(min(s, 1024) for s in spatial) + (3,))
    return [(colorize_zarr_plane_task, key, str(job.src), str(job.tmp), idx, model, temperature)
            for idx in np.ndindex(*lead)]


def _finish_zarr(job: _Job) -> None:
    import shutil

    if job.error is not None:
        shutil.rmtree(job.tmp, ignore_errors=True)
        return
    try:
        if job.dst.exists():  # --overwrite: move the old one aside so dst is never half-written
            old = job.dst.with_name(f".{job.dst.name}.old-{os.getpid()}")
            os.replace(job.dst, old)
            os.replace(job.tmp, job.dst)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(job.tmp, job.dst)
    except OSError as exc:
        raise OutputError(f"Cannot write '{job.dst}': {exc.strerror or exc}.") from None


SCHEDULER_TIMEOUT = "5s"
MODEL = object()  # placeholder for the model in a task's arguments; each runner ships it its own way


def _connect(scheduler):
    """A ``distributed.Client`` for an address, or the client given; (client, whether we own it)."""
    try:
        from distributed import Client
    except ImportError:
        raise ColorizeError("--scheduler needs dask.distributed: pip install distributed.") from None
    if isinstance(scheduler, Client):
        return scheduler, False
    from distributed.comm.addressing import parse_address, parse_host_port

    try:  # before Client(): a malformed address leaves a half-made client that hangs on exit
        protocol, loc = parse_address(str(scheduler))
        if protocol in ("tcp", "tls", "ws", "wss"):
            parse_host_port(loc)
    except ValueError as exc:
        raise ColorizeError(f"Not a dask scheduler address: '{scheduler}' ({exc}); "
                            "expected e.g. tcp://host:8786.") from None
    try:
        return Client(scheduler, timeout=SCHEDULER_TIMEOUT, set_as_default=False), True
    except (OSError, TimeoutError) as exc:
        why = "" if "Timed out" in str(exc) else f" ({exc})"
        raise ColorizeError(f"Cannot reach the dask scheduler at '{scheduler}' within {SCHEDULER_TIMEOUT}{why}; "
                            "is the cluster running and the address right?") from None


def _run_local(tasks, model, workers: int, on_result) -> None:
    import uuid

    import dask
    from dask.callbacks import Callback

    # one literal graph node: no tokenizing (hashing) of the weights, no dataclass traversal per task
    mdel = dask.delayed(model, traverse=False, name=f"colorize-model-{uuid.uuid4().hex}")
    calls = [dask.delayed(fn, pure=False)(*[mdel if a is MODEL else a for a in args]) for fn, *args in tasks]

    class _Progress(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            if isinstance(result, tuple):  # the model node also passes through here
                on_result(result)

    with _Progress():
        dask.compute(*calls, scheduler="threads", num_workers=workers)


def _run_distributed(client, tasks, model, on_result) -> None:
    from distributed import as_completed

    # ship the model to every worker once, not once per task
    mfut = client.scatter(model, broadcast=True, hash=False)
    job_of = {}
    futures = []
    for fn, *args in tasks:
        fut = client.submit(fn, *[mfut if a is MODEL else a for a in args], pure=False)
        job_of[fut.key] = args[0]
        futures.append(fut)
    try:
        for fut in as_completed(futures, loop=client.loop):
            if fut.status == "cancelled":
                raise ColorizeError("Lost the dask scheduler (or the tasks were cancelled) before the batch "
                                    "finished; run again to do the rest.")
            if fut.status == "error":
                exc = fut.exception()
                if isinstance(exc, OutputError):
                    raise exc
                # e.g. KilledWorker: the task crashed its worker; report the input, keep going
                on_result((job_of[fut.key], _describe(exc)))
                continue
            on_result(fut.result())
    except BaseException:
        client.cancel(futures)
        raise


def colorize_files(inputs: list[str], output: str, *, model=None, temperature=None,
                   overwrite: bool = False, progress=None, scheduler=None, workers: int | None = None) -> dict:
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
        Replace existing outputs; else they are skipped.
    progress : callable, optional
        ``progress(total, desc)`` returning a tqdm-like bar.
    scheduler : str or distributed.Client, optional
        A dask.distributed scheduler address (or client) to run on; inputs and outputs must be on a
        file system the workers share. Default: local threads.
    workers : int, optional
        Threads of the local scheduler (default: one per core).

    Returns
    -------
    dict
        ``done``, ``skipped`` and ``failed`` counts and ``errors``: ``(input, why)`` pairs.

    Raises
    ------
    OutputError
        An output folder cannot be written (checked before starting) or a write failed (e.g. the
        disk is full); outputs already written are complete and untouched.
    ColorizeError
        No input could be colorized, or the scheduler cannot be reached.
    """
    from .api import load_model
    from .core.training import default_threads

    files = [f.resolve() for f in expand_inputs(inputs)]  # workers may run in another folder
    targets = [t.resolve() for t in output_paths(files, output)]
    if len(set(targets)) != len(targets):
        raise InputError("Two inputs share a file name; colorize them into separate folders.")
    for folder in sorted({t.parent for t in targets}):
        check_writable(folder)
    m = load_model(model)  # here, so a bad model is one error rather than one per file
    jobs = [_Job(s, d) for s, d in zip(files, targets)]
    todo = [k for k, j in enumerate(jobs) if overwrite or not j.dst.exists()]
    counts = {"done": 0, "skipped": len(jobs) - len(todo), "failed": 0, "errors": []}
    client, own = _connect(scheduler) if scheduler is not None and todo else (None, False)
    bar = None

    def say(text: str) -> None:
        if bar is not None:
            bar.write(text, file=sys.stderr)  # above the bar, not through it
        else:
            print(text, file=sys.stderr)

    def finish(job: _Job) -> None:
        if job.tmp is not None:
            _finish_zarr(job)
        if job.error is None:
            counts["done"] += 1
        else:
            counts["failed"] += 1
            counts["errors"].append((str(job.src), job.error))
            say(f"napari-colorize: skipped {job.src}: {job.error}")

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
        tasks = []
        for key in todo:
            job = jobs[key]
            if is_zarr(job.src):
                planned = _plan_zarr(job, key, MODEL, temperature)
            else:
                planned = [(colorize_file_task, key, str(job.src), str(job.dst), MODEL, temperature)]
            job.pending = len(planned)
            tasks.extend(planned)
            if not planned:
                finish(job)
        if progress is not None:
            bar = progress(len(tasks) + counts["skipped"], "colorize")
            bar.update(counts["skipped"])
        if client is not None and tasks:
            _run_distributed(client, tasks, m, on_result)
        elif tasks:
            _run_local(tasks, m, workers or default_threads(), on_result)
    except BaseException:
        import shutil

        for job in jobs:  # unfinished zarr outputs; finished ones were already renamed into place
            if job.tmp is not None and job.tmp.exists():
                shutil.rmtree(job.tmp, ignore_errors=True)
        raise
    finally:
        if own:
            client.close()
        if bar is not None:
            bar.close()
        _summary(counts)
    if counts["failed"] and not counts["done"] and not counts["skipped"]:
        raise ColorizeError("No file could be colorized.")
    return counts


def _summary(counts: dict) -> None:
    print(f"colorized {counts['done']}, skipped {counts['skipped']} existing, failed {counts['failed']}",
          file=sys.stderr)
    if counts["errors"]:
        print("failed: " + ", ".join(sorted(Path(src).name for src, _ in counts["errors"])), file=sys.stderr)

