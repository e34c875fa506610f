"""Running one measurement in a fresh process, so that its peak memory is its own."""

from __future__ import annotations

import json
import resource
import subprocess


def peak_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def sample_photo():
    """A 1024 x 1024 uint8 gray photo (the astronaut mirrored), whose copies join smoothly when tiled."""
    import numpy as np
    from skimage import data
    from skimage.color import rgb2gray

    g = (rgb2gray(data.astronaut()) * 255).astype(np.uint8)
    g = np.concatenate([g, g[:, ::-1]], axis=1)
    return np.concatenate([g, g[::-1]], axis=0)


def run_child(cmd: list[str], size: int, timeout: float) -> dict | None:
    """Run ``cmd``, which prints a JSON line last, and return that line's dict.

    A timeout or a failure is printed (with the child's last progress or error) and gives None.
    """
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        last = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:]
        print(f"{size:>7} timed out after {timeout:.0f} s; last progress: {last}")
        return None
    if proc.returncode:
        print(f"{size:>7} failed:\n{proc.stderr[-2000:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])
