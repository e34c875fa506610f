"""The batch machinery behind :func:`napari_colorize.batch.files.colorize_files`.

Checks that no output replaces an input or has a name the file system refuses, the zarr tasks (one
per plane, into a temporary array renamed into place when complete), and the runners: local threads,
or a dask.distributed scheduler that must answer within a bound time. Reading and writing image
files, and the file task, are in :mod:`napari_colorize.batch.files`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..core.arrays import to_dtype
from ..core.atomic import commit, remove, temp_path
from ..core.data import MAX_PIXELS, check_pixels
from ..core.errors import ColorizeError, InputError

SCHEDULER_TIMEOUT = "5s"
PROBE_SECONDS = 5.0  # the whole probe of a scheduler address: connect, handshake and one reply
MODEL = object()  # placeholder for the model in a task's arguments; each runner ships it its own way


class OutputError(ColorizeError):
    """An output cannot be written (permissions, full disk): the batch stops, files written stay."""


def describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ColorizeError) else f"{type(exc).__name__}: {exc}"


def refuse_overwriting_inputs(files: list[Path], targets: list[Path]) -> None:
    """Raise :class:`InputError` if writing a target would replace an input, even with --overwrite."""
    by_id = {}
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        by_id[st.st_dev, st.st_ino] = f  # hard links and the same file under other names
    paths = set(files)
    for t in targets:
        same = t if t in paths else None
        if same is None:
            try:
                st = t.stat()
            except OSError:  # not there (or a name too long, reported per input later)
                st = None
            same = by_id.get((st.st_dev, st.st_ino)) if st is not None else None
        if same is None and t.suffix.lower() == ".zarr":  # replacing a folder removes what is inside it
            same = next((f for f in files if f.is_relative_to(t)), None)
        if same is not None:
            raise InputError(f"The output '{t}' would replace the input '{same}'; choose another output "
                             "(--overwrite never replaces an input).")


# -- zarr: one task per plane, written into a temporary array renamed into place when complete ---------
def colorize_zarr_plane_task(job: int, src: str, tmp: str, index: tuple[int, ...], model,
                             temperature) -> tuple[int, str | None]:
    """Colorize plane ``index`` of the zarr array ``src`` into the same plane of ``tmp``.

    Returns and raises like :func:`napari_colorize.batch.files.colorize_file_task`.
    """
    import zarr

    from ..api import colorize

    try:
        plane = np.asarray(zarr.open_array(store=src, mode="r")[index])
        if plane.ndim == 3 and plane.shape[-1] == 4:
            plane = plane[..., :3]
        rgb = colorize(plane, model=model, temperature=temperature)
    except Exception as exc:  # noqa: BLE001
        return job, f"plane {index}: {describe(exc)}"
    try:
        out = zarr.open_array(store=tmp, mode="r+")
        out[index] = to_dtype(rgb, out.dtype)
    except OSError as exc:
        raise OutputError(f"Cannot write '{tmp}': {exc.strerror or exc}.") from None
    return job, None


def _require_zarr():
    try:
        import zarr
    except ImportError:
        raise InputError("Reading zarr needs the zarr package: pip install 'napari-colorize[zarr]'.") from None
    return zarr


class Job:
    """One input: a file (one task) or a zarr array (one task per plane), written to ``dst``."""

    def __init__(self, src: Path, dst: Path):
        self.src, self.dst = src, dst
        self.tmp: Path | None = None  # zarr: written here, renamed to dst when every plane is done
        self.pending = 0
        self.error: str | None = None


def plan_zarr(job: Job, key: int, model, temperature, max_pixels: int = MAX_PIXELS) -> list[tuple]:
    """Open the input, create the temporary output array and return one task per plane."""
    from ..core.planes import check_image

    zarr = _require_zarr()
    try:
        arr = zarr.open(store=str(job.src), mode="r")
    except Exception as exc:  # noqa: BLE001
        job.error = f"not a readable zarr array: {describe(exc)}"
        return []
    if not hasattr(arr, "shape"):
        names = ", ".join(sorted(k for k, _ in arr.arrays())) or "none"
        job.error = f"is a zarr group; name one of its arrays (found: {names}) as the input"
        return []
    rgba = arr.ndim >= 3 and arr.shape[-1] == 4  # alpha does not carry luminance: dropped, as for files
    try:
        is_rgb = rgba or check_image(arr, values=False)
    except ColorizeError as exc:
        job.error = str(exc)
        return []
    lead = arr.shape[:-3] if is_rgb else arr.shape[:-2]
    spatial = arr.shape[len(lead) : len(lead) + 2]
    try:  # a plane task reads a whole plane
        check_pixels(*spatial, job.src, max_pixels)
    except InputError as exc:
        job.error = str(exc)
        return []
    dtype = np.uint8 if arr.dtype == np.uint8 else np.uint16
    job.tmp = temp_path(job.dst)
    try:
        # one plane per chunk row so that concurrent plane tasks never write the same chunk
        zarr.open_array(store=str(job.tmp), mode="w", shape=(*lead, *spatial, 3), dtype=dtype,
                        chunks=(1,) * len(lead) + tuple(min(s, 1024) for s in spatial) + (3,))
    except OSError as exc:
        remove(job.tmp)
        raise OutputError(f"Cannot write '{job.dst}': {exc.strerror or exc}.") from None
    return [(colorize_zarr_plane_task, key, str(job.src), str(job.tmp), idx, model, temperature)
            for idx in np.ndindex(*lead)]


def finish_zarr(job: Job) -> None:
    if job.error is not None:
        remove(job.tmp)
        return
    try:  # an existing dst (--overwrite) is replaced only once the new array is complete
        commit(job.tmp, job.dst, mode=None)
    except OSError as exc:
        raise OutputError(f"Cannot write '{job.dst}': {exc.strerror or exc}.") from None


# -- runners -----------------------------------------------------------------------------------------
def _bad_address(scheduler, why: str) -> ColorizeError:
    return ColorizeError(f"Not a dask scheduler address: '{scheduler}' ({why}); expected e.g. tcp://host:8786.")


async def _identity(address: str, timeout: float) -> dict:
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity"})
        return await comm.read()
    finally:
        comm.abort()


def probe_scheduler(address: str, timeout: float = PROBE_SECONDS) -> None:
    """Prove that a dask scheduler answers at ``address`` within ``timeout`` seconds in all.

    ``distributed.Client`` waits without limit for the handshake of a server that accepts a
    connection and never replies (or replies in HTTP), so the probe comes first: on a thread of its
    own with its own event loop, as the caller may run one already (Jupyter).

    Raises
    ------
    ColorizeError
        Nothing answers, or what answers is not a dask scheduler.
    """
    import asyncio
    import threading

    outcome: dict = {}

    def probe() -> None:
        try:
            outcome["reply"] = asyncio.run(asyncio.wait_for(_identity(address, timeout), timeout))
        except BaseException as exc:  # noqa: BLE001 - reported to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=probe, name="napari-colorize-probe", daemon=True)
    thread.start()
    thread.join(timeout + 2)  # asyncio.run's own clean-up is bounded too, but never wait on it
    reply, exc = outcome.get("reply"), outcome.get("error")
    hint = "is the cluster running and the address right?"
    if isinstance(exc, OSError) and "Timed out trying to connect" in str(exc):  # refused, or no route
        raise ColorizeError(f"Cannot reach the dask scheduler at '{address}' within {timeout:g}s; {hint}")
    if isinstance(reply, dict) and reply.get("type") == "Scheduler":
        return
    if thread.is_alive() or isinstance(exc, (TimeoutError, asyncio.TimeoutError)):  # the same from 3.11
        why = f"no dask handshake within {timeout:g}s"
    elif exc is not None:
        why = f"{type(exc).__name__}: {exc}".rstrip(": ")
    else:
        why = f"it says it is a {reply.get('type')!r}" if isinstance(reply, dict) else "no dask reply"
    raise ColorizeError(f"Cannot reach the dask scheduler at '{address}': something answers there but it is "
                        f"not a dask scheduler ({why}); {hint}")


def connect(scheduler):
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
    except ValueError as exc:
        raise _bad_address(scheduler, str(exc)) from None
    if protocol == "inproc":  # a scheduler in this process (a LocalCluster without processes)
        from distributed.comm.inproc import global_manager

        try:
            here = global_manager.get_listener_for(loc) is not None
        except ValueError:
            here = False
        if not here:
            raise ColorizeError(f"No dask scheduler inside this process at '{scheduler}': inproc:// addresses "
                                "work only there; give tcp://host:port.")
    elif protocol != "tcp":  # the probe below speaks plain TCP; TLS needs certificates we are not given
        raise ColorizeError(f"Unsupported scheduler address scheme '{protocol}://' in '{scheduler}'; "
                            "only tcp://host:port is supported.")
    else:
        try:
            parse_host_port(loc)
        except ValueError as exc:
            raise _bad_address(scheduler, str(exc)) from None
        probe_scheduler(f"tcp://{loc}")
    try:
        return Client(scheduler, timeout=SCHEDULER_TIMEOUT, set_as_default=False), True
    except (OSError, TimeoutError) as exc:
        why = "" if "Timed out" in str(exc) else f" ({exc})"
        raise ColorizeError(f"Cannot reach the dask scheduler at '{scheduler}' within {SCHEDULER_TIMEOUT}{why}; "
                            "is the cluster running and the address right?") from None


class _Stopped(Exception):
    """The batch thread stops early because the user stopped the batch (Ctrl-C, SIGTERM)."""


def run_in_thread(run) -> None:
    """Call ``run(stopping)`` on a thread of its own while this thread waits in ``time.sleep``.

    Ctrl-C and SIGTERM raise KeyboardInterrupt in the main thread wherever its Python code is;
    inside dask's or concurrent.futures' code that can leave a lock taken (``with`` is not safe
    against it) and the process hung at exit. Here it lands in the sleep: ``stopping()`` turns
    true, the batch thread lets the tasks that run finish and fires no more, and then the
    interrupt is raised again. A second interrupt stops the wait.
    """
    import threading
    import time

    state = {"stop": False, "done": False}  # plain values: reading or setting them takes no lock

    def target() -> None:
        try:
            run(lambda: state["stop"])
        except BaseException as exc:  # noqa: BLE001 - raised again below, in the caller's thread
            state["error"] = exc
        finally:
            state["done"] = True

    def wait() -> None:
        while not state["done"]:
            time.sleep(0.02)

    threading.Thread(target=target, name="napari-colorize-batch", daemon=True).start()
    try:
        wait()
    except KeyboardInterrupt:
        state["stop"] = True
        wait()
        raise
    error = state.get("error")
    if error is not None and not isinstance(error, _Stopped):
        raise error


def _unless_stopped(stopping, fn, *args):
    return None if stopping() else fn(*args)


def run_local(tasks, model, workers: int, on_result, stopping=lambda: False) -> None:
    """Run ``(fn, *args)`` tasks on ``workers`` threads, calling ``on_result`` with each result.

    Once ``stopping()`` is true, the tasks not yet started return at once without a result.
    """
    import uuid

    import dask
    from dask.callbacks import Callback

    # one literal graph node: no tokenizing (hashing) of the weights, no dataclass traversal per task
    mdel = dask.delayed(model, traverse=False, name=f"colorize-model-{uuid.uuid4().hex}")
    calls = [dask.delayed(_unless_stopped, pure=False)(stopping, fn, *[mdel if a is MODEL else a for a in args])
             for fn, *args in tasks]

    class _Progress(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            if isinstance(result, tuple):  # the model node (and stopped tasks) also pass through here
                on_result(result)

    with _Progress():
        dask.compute(*calls, scheduler="threads", num_workers=workers)


def run_distributed(client, tasks, model, on_result, fatal: tuple = (OutputError,), stopping=lambda: False) -> None:
    """Run tasks on a dask.distributed client; a task raising one of ``fatal`` stops the batch.

    Once ``stopping()`` is true the tasks left are cancelled and :class:`_Stopped` is raised.
    """
    import time

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
        done = as_completed(futures, loop=client.loop)
        while not done.is_empty():
            if stopping():
                raise _Stopped
            if not done.has_ready():  # poll, so that a stop is seen while tasks run
                time.sleep(0.05)
                continue
            for fut in done.next_batch(block=False):
                if fut.status == "cancelled":
                    raise ColorizeError("Lost the dask scheduler (or the tasks were cancelled) before the batch "
                                        "finished; run again to do the rest.")
                if fut.status == "error":
                    exc = fut.exception()
                    if isinstance(exc, fatal):
                        raise exc
                    # e.g. KilledWorker: the task crashed its worker; report the input, keep going
                    on_result((job_of[fut.key], describe(exc)))
                    continue
                on_result(fut.result())
    except BaseException:
        client.cancel(futures)
        raise


def summary(counts: dict) -> None:
    print(f"colorized {counts['done']}, skipped {counts['skipped']} existing, failed {counts['failed']}",
          file=sys.stderr)
    if counts["errors"]:
        print("failed: " + ", ".join(sorted(Path(src).name for src, _ in counts["errors"])), file=sys.stderr)

