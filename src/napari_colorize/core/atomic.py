"""The one way files and folders are written: a temporary beside the target, fsync, rename.

A reader never sees a half-written file, a failure leaves the target as it was and removes the
temporary, and temporaries left by a killed process are cleaned by the next run that writes to
the same folder (:func:`clean_stale`). Temporaries are named ``.<name>.<host>-<pid>-<random>.ncz-tmp``
so that only those of dead processes on this machine are ever removed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import zlib
from collections.abc import Callable
from pathlib import Path

TEMP_SUFFIX = ".ncz-tmp"
_HOST = format(zlib.crc32(socket.gethostname().encode()), "08x")


def temp_path(target: str | os.PathLike) -> Path:
    """A fresh temporary path in ``target``'s folder (the file name is kept short)."""
    target = Path(target)
    return target.with_name(f".{target.name[:100]}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot open a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_tree(path: Path) -> None:
    if path.is_dir():
        for root, _, files in os.walk(path):
            for f in files:
                _fsync_file(Path(root) / f)
            _fsync_dir(Path(root))
    else:
        _fsync_file(path)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: str | os.PathLike) -> None:
    """Remove a file or folder if it is there (a temporary; never a user's file)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def commit(tmp: str | os.PathLike, target: str | os.PathLike, mode: int | None = 0o644) -> Path:
    """Move a finished temporary (file or folder) onto ``target`` durably.

    A folder already at ``target`` (a previous result) is replaced only after the new one is
    complete; a file is replaced atomically. The temporary is removed if the move fails.
    """
    tmp, target = Path(tmp), Path(target)
    try:
        _fsync_tree(tmp)
        if mode is not None and tmp.is_file():
            os.chmod(tmp, mode)
        if tmp.is_dir() and target.is_dir() and not target.is_symlink():
            old = temp_path(target)
            os.replace(target, old)
            os.replace(tmp, target)
            remove(old)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        remove(tmp)
        raise
    return target


def atomic_write(target: str | os.PathLike, write: Callable[[Path], object], mode: int | None = 0o644) -> Path:
    """Write ``target`` by calling ``write(tmp)`` on a temporary path, then :func:`commit` it.

    ``write`` creates the file (or folder) at the path it is given. Any exception, including
    KeyboardInterrupt, leaves ``target`` untouched and removes the temporary.
    """
    target = Path(target)
    tmp = temp_path(target)
    try:
        write(tmp)
    except BaseException:
        remove(tmp)
        raise
    return commit(tmp, target, mode)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(folder: str | os.PathLike) -> int:
    """Remove temporaries that processes of this machine which have since died left in ``folder``.

    Returns how many were removed. Those of running processes, of other machines sharing the
    folder, and every file not named as a temporary are left alone.
    """
    folder = Path(folder)
    n = 0
    try:
        entries = list(folder.iterdir())
    except OSError:
        return 0
    for p in entries:
        name = p.name
        if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
            continue
        token = name[: -len(TEMP_SUFFIX)].rsplit(".", 1)[-1]
        parts = token.split("-")
        if len(parts) != 3 or parts[0] != _HOST or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid != os.getpid() and not _alive(pid):
            remove(p)
            n += 1
    return n
