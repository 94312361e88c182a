"""Support directories (``sbx-*``) that prove whether their owner is alive, and their sweep.

Several processes (and several users' test runs) share ``/run/openmanus-sandbox``, so a folder
is removed only when its owner is provably dead: each folder is ``flock``-ed by its owner for as
long as it is used (the kernel drops the lock when the owner exits, however it dies, and the
lock works across PID namespaces). A folder is created under a hidden name, locked, then
renamed to ``sbx-<pid>-<random>``, so no sweeper ever sees a live folder unlocked. Folders of
the older layout (``sbx-<random>``, no lock) cannot be told apart from live ones of older
versions and are left alone; hidden ``.sbx-new-*`` folders are swept once they are an hour old
and unlocked (a creator dead between ``mkdtemp`` and the rename).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

_NAME_RE = re.compile(r"sbx-\d+-[a-z0-9_]+")
_NEW_PREFIX = ".sbx-new-"
_NEW_MAX_AGE_S = 3600.0
_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def make_root(parent: Path | None) -> tuple[Path, int]:
    """A fresh ``sbx-<pid>-<random>`` folder and the fd holding its lock (close it when done)."""
    tmp = tempfile.mkdtemp(prefix=_NEW_PREFIX, dir=parent)
    fd = os.open(tmp, _FLAGS)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        suffix = os.path.basename(tmp)[len(_NEW_PREFIX) :].lower().replace("-", "_")
        final = Path(os.path.dirname(tmp)) / f"sbx-{os.getpid()}-{suffix}"
        os.rename(tmp, final)
    except BaseException:
        os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, fd


def _locked_by_someone(path: Path) -> tuple[bool, int | None]:
    """(in use, our fd holding the lock when it was free)."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError:
        return True, None  # vanished, a symlink, unreadable: not ours to judge
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)  # EWOULDBLOCK: its owner holds it; anything else: leave it be
        return True, None
    return False, fd


def sweep(parent: Path | None) -> list[str]:
    """Remove the support folders in ``parent`` whose owner is dead; returns their names."""
    where = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    removed: list[str] = []
    try:
        entries = list(os.scandir(where))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if _NAME_RE.fullmatch(name):
            pass
        elif name.startswith(_NEW_PREFIX):
            with contextlib.suppress(OSError):
                if time.time() - entry.stat(follow_symlinks=False).st_mtime < _NEW_MAX_AGE_S:
                    continue
        else:
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        busy, fd = _locked_by_someone(Path(entry.path))
        if busy or fd is None:
            continue
        try:
            # the owner is gone; nothing in here is a mount on the host (mounts lived in the
            # owner's private namespace), and rmtree removes links without following them
            shutil.rmtree(entry.path, ignore_errors=True)
            if not os.path.exists(entry.path):
                removed.append(name)
        finally:
            os.close(fd)
    return removed
