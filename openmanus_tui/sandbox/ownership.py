"""Ownership of workspace files when we run as root and the workspace cannot be id-mapped.

Defect 10 of issue 12: the whole workspace was chowned to the sandbox uid once, for good (with
``--workspace ~`` that included ``~/.ssh/id_rsa``). The first choice is now an id-mapped bind
(``mounts.py``): nothing on disk changes. Where the kernel or file system cannot do that, this
ledger hands files over to the sandbox uid just before a command and gives them back right after
it: every changed owner is recorded by (device, inode) and restored, and files the command
created are given to the workspace's owner. The record is also written to a journal in the
data folder while a command runs: if the process dies before giving back, the next sandbox
on the workspace gives back from the journal first. ``openmanus doctor`` says which mode is in
use.

Walks use directory fds and never follow symlinks; hard-linked files and everything under a
``.git`` are never handed over (another link may live outside the workspace; git runs hooks).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

ENTRY_LIMIT = 200_000


def journal_path(store: Path, workspace: Path) -> Path:
    digest = hashlib.sha256(str(workspace).encode()).hexdigest()[:20]
    return store / "ownership" / f"{digest}.json"


class OwnershipLedger:
    def __init__(self, workspace: Path, uid: int, gid: int, journal: Path | None = None) -> None:
        self.workspace = workspace
        self.uid, self.gid = uid, gid
        self.journal = journal
        st = os.stat(workspace)
        self.owner = (st.st_uid, st.st_gid)
        self._record: dict[tuple[int, int], tuple[int, int]] = {}
        self._depth = 0  # commands running (concurrent commands share one hand-over)
        self._lock = threading.Lock()
        self.recovered = self._recover()

    def _recover(self) -> bool:
        """A journal left by a process that died during a command: give back from it."""
        if self.journal is None or not self.journal.exists():
            return False
        try:
            data = json.loads(self.journal.read_text())
            if data.get("ids") != [self.uid, self.gid]:
                return False
            self.owner = tuple(data["owner"])  # type: ignore[assignment]
            self._record = {(d, i): (u, g) for d, i, u, g in data["record"]}
        except (OSError, ValueError, KeyError, TypeError):
            return False
        self._depth = 1
        self.give_back()
        return True

    def _write_journal(self) -> None:
        if self.journal is None:
            return
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.journal.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            "workspace": str(self.workspace),
            "ids": [self.uid, self.gid],
            "owner": list(self.owner),
            "record": [[d, i, u, g] for (d, i), (u, g) in self._record.items()],
        }))
        os.replace(tmp, self.journal)

    def _walk(self, *, giving_back: bool = False) -> Iterator[tuple[int, str, os.stat_result]]:
        """Entries to hand over (not under ``.git``, not hard-linked), or, ``giving_back``,
        every entry: what the command made anywhere, a new repository included, goes back."""
        seen = 0
        for _top, dirs, files, dfd in os.fwalk(self.workspace):
            if ".git" in dirs and not giving_back:
                dirs.remove(".git")
            for name in dirs + files:
                seen += 1
                if seen > ENTRY_LIMIT:
                    return
                try:
                    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISLNK(st.st_mode):
                    continue
                if not giving_back and (
                    name == ".git" or (stat.S_ISREG(st.st_mode) and st.st_nlink > 1)
                ):
                    continue
                yield dfd, name, st

    def hand_over(self) -> None:
        """Record every owner to change, journal the record, then change them: a death at
        any point leaves a journal that covers every file already handed over."""
        with self._lock:
            self._depth += 1
            if self._depth > 1:
                return
            mine = (self.uid, self.gid)
            entries = [os.stat(self.workspace)] + [st for _, _, st in self._walk()]
            for st in entries:
                if (st.st_uid, st.st_gid) != mine:
                    self._record.setdefault((st.st_dev, st.st_ino), (st.st_uid, st.st_gid))
            self._write_journal()
            self._take(None, str(self.workspace), os.stat(self.workspace))
            for dfd, name, st in self._walk():
                self._take(dfd, name, st)

    def _take(self, dfd: int | None, name: str, st: os.stat_result) -> None:
        if (st.st_dev, st.st_ino) not in self._record:
            return  # made after the record was taken, or the sandbox's already
        try:
            os.chown(name, self.uid, self.gid, dir_fd=dfd, follow_symlinks=False)
        except OSError:
            pass

    def give_back(self) -> None:
        with self._lock:
            self._depth = max(0, self._depth - 1)
            if self._depth:
                return
            st = os.stat(self.workspace)
            self._restore(None, str(self.workspace), st)
            for dfd, name, st in self._walk(giving_back=True):
                self._restore(dfd, name, st)
            self._record.clear()
            if self.journal is not None:
                self.journal.unlink(missing_ok=True)

    def _restore(self, dfd: int | None, name: str, st: os.stat_result) -> None:
        if st.st_uid != self.uid and st.st_gid != self.gid:
            return
        known = (st.st_dev, st.st_ino) in self._record
        uid, gid = self._record.get((st.st_dev, st.st_ino), self.owner)
        try:
            os.chown(name, uid, gid, dir_fd=dfd, follow_symlinks=False)
            if not known and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                # a file the command made must not become a set-id file of the owner
                os.chmod(name, stat.S_IMODE(st.st_mode) & ~0o6000, dir_fd=dfd)
        except OSError:
            pass


class SetidSweep:
    """Set-uid/set-gid bits a command gave to files are removed after it.

    Through the id-mapped bind a file the sandbox uid makes belongs to the workspace owner on
    disk (root, say): with the set-uid bit it would run as that owner for anyone who can reach
    it on the host. The bind is ``nosuid`` for the sandbox itself; this sweep keeps the host
    safe. Set-id files that were there when the sandbox started are the person's and stay.
    """

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.known = {(st.st_dev, st.st_ino) for _, st in self._setid()}

    def _setid(self) -> Iterator[tuple[str, os.stat_result]]:
        """Regular files with a set-id bit (scandir: a stat per file, no fd per directory)."""
        seen = 0
        stack = [str(self.workspace)]
        while stack:
            try:
                with os.scandir(stack.pop()) as it:
                    entries = list(it)
            except OSError:
                continue
            for entry in entries:
                seen += 1
                if seen > ENTRY_LIMIT:
                    return
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                elif stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                    yield entry.path, st

    def sweep(self) -> list[str]:
        cleared = []
        for path, st in self._setid():
            if (st.st_dev, st.st_ino) in self.known:
                continue
            try:  # through an fd of the very file: a symlink swapped in is not followed
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                now = os.fstat(fd)
                if stat.S_ISREG(now.st_mode):
                    os.fchmod(fd, stat.S_IMODE(now.st_mode) & ~0o6000)
                    cleared.append(path)
            except OSError:
                pass
            finally:
                os.close(fd)
        return cleared
