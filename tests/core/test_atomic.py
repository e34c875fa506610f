"""Atomic writes: a failed write leaves the old file, temporaries of dead processes are cleaned."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from napari_colorize.core.atomic import TEMP_SUFFIX, atomic_write, clean_stale, temp_path


def test_atomic_write_cleans_up_and_stale_temps_of_dead_processes_go(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def fail(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, fail)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    # a temp of a process that died, one of a live process (ours) and a user's file that looks alike
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    mine = temp_path(target)
    stale = mine.with_name(mine.name.replace(f"-{os.getpid()}-", f"-{pid}-"))
    user = tmp_path / f".notes{TEMP_SUFFIX}"
    for p in (mine, stale, user):
        p.write_bytes(b"x")
    assert clean_stale(tmp_path) == 1
    assert not stale.exists() and mine.exists() and user.exists()
