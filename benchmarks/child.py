"""Running one measurement in a fresh process, so that its peak memory is its own."""

from __future__ import annotations

import json
import subprocess


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
