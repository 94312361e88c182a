"""One run per session at a time, across processes, and whether a session's run is alive.

Each session has a lock file next to the database (``<db>.locks/<session>.lock``). A run holds
an exclusive ``flock`` on it for as long as it drives the graph; the kernel drops the lock when
the process dies, however it dies (kill -9 included). So a second ``resume`` of a busy session
is refused with a clear message instead of racing the first for the events table, and a session
recorded as ``running`` whose lock nobody holds was interrupted (its process is gone).

``flock`` locks belong to an open file description, so two opens in one process exclude each
other too: the workbench checking a session it is running sees it as busy.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from openmanus_tui.errors import OpenManusError


class SessionBusy(OpenManusError):
    """Another run of the session holds its lock."""

    error_class = "user"


def lock_dir(db_path: Path) -> Path:
    return Path(str(db_path) + ".locks")


def _lock_path(db_path: Path, session_id: str) -> Path:
    # Session ids are generated (date, time, hex); keep any other id from leaving the folder.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in session_id)
    return lock_dir(db_path) / f"{safe}.lock"


def _try_exclusive(fd: int) -> bool:
    # ``is_running`` takes a shared lock for a few microseconds: a run starting at that
    # instant tries again rather than calling the session busy.
    for _ in range(20):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(0.01)
    return False


class SessionLock:
    """The exclusive lock of one session; ``acquire`` raises ``SessionBusy`` when held."""

    def __init__(self, db_path: Path, session_id: str) -> None:
        self.path = _lock_path(db_path, session_id)
        self.session_id = session_id
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if not _try_exclusive(fd):
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            where = f" (process {owner})" if owner.isdigit() else ""
            raise SessionBusy(
                f"session {self.session_id} is busy: another run of it is going on{where}",
                hint="Wait for it to finish or stop it, then try again.",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing drops the flock

    def __enter__(self) -> SessionLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_running(db_path: Path, session_id: str) -> bool:
    """Does a live process hold the session's lock (is a run of it going on)?"""
    path = _lock_path(db_path, session_id)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False  # never locked: no run since locks exist
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock just taken
    return False
