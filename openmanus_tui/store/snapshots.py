"""Workspace snapshots: a content-addressed git object store kept outside the workspace.

Owns ``WorkspaceSnapshots`` — capture the workspace as a git tree id (``snapshot``), make the
workspace equal to a tree again (``restore``), list what changed (``changed_since``, ``diff``)
and drop what no one needs (``prune``) — plus its report types and errors.

Design decisions (the why):

* **git CLI, no library.** ``git`` is on every machine that runs us and in CI; its hashing,
  zlib and delta packing (``gc``) are C. dulwich would add a dependency and pack in Python.
* **No git index, no work tree.** ``git add`` applies the workspace's own ``.gitattributes``
  (``eol``, ``ident``, ``working-tree-encoding``, filters), so restored bytes could differ from
  the snapshot, and it turns a nested repository into a gitlink — or fails outright when that
  repository has no commit yet (an agent running ``git init``). So we walk the workspace
  ourselves, store blobs with ``git hash-object -w --no-filters`` and trees with ``git mktree``.
  ``GIT_WORK_TREE`` is never set: git reads nothing of the workspace except files we name.
* **A stat cache** (path -> size, mtime, ctime, inode, mode, blob id) makes an unchanged
  workspace cost one directory walk and no subprocess. Like git's index, an entry whose mtime
  or ctime is within ``RACY_NS`` of when it was taken is re-hashed (same-tick edits are
  invisible to stat). Tree ids are computed here and checked against what ``mktree`` returns.
* **``.git`` is out of scope**: any entry named ``.git`` (the workspace's repository or a nested
  one) is neither captured nor ever touched by ``restore``; a snapshot carrying such a name is
  refused. The working files of nested repositories are captured as plain files.
* **Not captured**: empty directories (git trees cannot hold them; ``restore`` removes
  directories it empties) and special files (FIFOs, sockets, devices: skipped, left alone).
  Only the executable bit of a mode is kept (git's 644 / 755), as ``git checkout`` does.
* **Restore never follows a link**: every path is walked one component at a time from a
  directory fd with ``O_NOFOLLOW`` and written as temp file + ``rename``; symlinks are restored
  as links. Tree entries are validated before anything is changed (``..``, ``.git``, absolute,
  duplicate or file-vs-directory entries are refused — the store may have been tampered with),
  and blob contents are re-hashed while they are written.
* **Bounded** (``snapshot_budget.py``): excluded names, sparse and huge files, a file-count and
  a byte budget and a time limit; what is skipped is named in ``last`` and left alone by
  ``restore``.
* **One operation at a time per store**: an ``flock`` on a file in the store (threads and
  processes alike).
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import stat as stat_mod
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from openmanus_tui.errors import ErrorClass, OpenManusError
from openmanus_tui.store.snapshot_budget import (
    Deadline,
    Skipped,
    SnapshotBudget,
    SnapshotOutcome,
    is_sparse,
)

MODE_FILE = "100644"
MODE_EXEC = "100755"
MODE_LINK = "120000"
_MODE_TREE = "40000"
_BLOB_MODES = frozenset({MODE_FILE, MODE_EXEC, MODE_LINK})
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_OID_RE = re.compile(r"[0-9a-f]{40}")
_SESSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

RACY_NS = 2_000_000_000  # covers filesystems with 1-2 s timestamps (ext3, FAT)
MAX_TEXT_DIFF_BYTES = 128 * 1024
_BINARY_SNIFF = 8000  # git's heuristic: a NUL in the first 8000 bytes means binary
_CHUNK = 1 << 20
_CACHE_NAME = "openmanus-statcache.json"
_CACHE_VERSION = 1
_LOCK_NAME = "openmanus.lock"
_GEN_NAME = "openmanus-generation"  # changes on every prune: other instances drop their caches
_LINK_TMP = "openmanus-tmp"
_KEEP_REFS = "refs/openmanus/keep/"
_GIT_TIMEOUT = 300.0
_GC_TIMEOUT = 1800.0
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# Pinned on every call so neither the user's config nor a tampered store config can run hooks,
# an fsmonitor or filters, or rewrite bytes.
_GIT_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.autocrlf=false",
    "core.safecrlf=false",
    "core.fileMode=true",
    "core.symlinks=true",
    "core.attributesFile=/dev/null",
    "core.quotePath=false",
    "gc.auto=0",
    "maintenance.auto=false",
)
_STORE_CONFIG = (
    "[core]\n\tfileMode = true\n\tsymlinks = true\n\tautocrlf = false\n"
    "\tlogAllRefUpdates = false\n[gc]\n\tauto = 0\n"
)


class SnapshotError(OpenManusError):
    """A workspace snapshot could not be taken, read or restored."""


class GitUnavailable(SnapshotError):
    """The ``git`` executable is missing."""

    error_class: ErrorClass = "resource"


class SnapshotStoreError(SnapshotError):
    """The snapshot store is unusable (damaged, not a git store, git failed)."""


class SnapshotNotFound(SnapshotError):
    error_class: ErrorClass = "user"


class UnsafeSnapshot(SnapshotError):
    """A stored tree holds an entry that would land outside the workspace or in ``.git``."""

    error_class: ErrorClass = "security"


class RestoreConflict(SnapshotError):
    """Something in the workspace that snapshots do not capture stands in the way."""

    error_class: ErrorClass = "user"


@dataclass(frozen=True)
class Entry:
    """One file of a snapshot: git mode (``100644``, ``100755``, ``120000``), blob id, size."""

    mode: str
    oid: str
    size: int


Manifest = dict[str, Entry]
ChangeStatus = Literal["added", "modified", "deleted"]


@dataclass(frozen=True)
class FileChange:
    """A path that differs. ``diff`` is a unified diff (``diff()`` only, small text files);
    ``binary`` marks content with a NUL byte; ``too_large`` content over the text-diff limit."""

    path: str
    status: ChangeStatus
    old_mode: str | None = None
    new_mode: str | None = None
    old_id: str | None = None
    new_id: str | None = None
    old_size: int | None = None
    new_size: int | None = None
    binary: bool = False
    too_large: bool = False
    diff: str | None = None

    @property
    def mode_only(self) -> bool:
        return self.status == "modified" and self.old_id == self.new_id


@dataclass
class RestoreReport:
    """What ``restore`` did. ``before`` is a snapshot of the workspace taken just before it, so a
    restore can itself be undone and changes made outside the agent are never lost."""

    tree: str
    before: str
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    mode_changed: list[str] = field(default_factory=list)
    dirs_removed: list[str] = field(default_factory=list)
    # in the snapshot, but now excluded or skipped (sparse, huge, over budget): not touched
    left_alone: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.written or self.deleted or self.mode_changed or self.dirs_removed)


@dataclass
class PruneReport:
    kept: list[str]
    missing: list[str]
    size_before: int
    size_after: int


def default_store_dir(data_dir: Path, session_id: str) -> Path:
    """``<data_dir>/snapshots/<session_id>.git`` (the session id must be a plain name)."""
    if not _SESSION_RE.fullmatch(session_id) or ".." in session_id:
        raise SnapshotError(f"invalid session id for a snapshot store: {session_id!r}")
    return Path(data_dir) / "snapshots" / f"{session_id}.git"


def _git_mode(st: os.stat_result) -> str:
    if stat_mod.S_ISLNK(st.st_mode):
        return MODE_LINK
    return MODE_EXEC if st.st_mode & stat_mod.S_IXUSR else MODE_FILE


def _c_quote(path: bytes) -> bytes:
    """Quote a path for ``hash-object --stdin-paths`` (which reads lines and strips a CR)."""
    out = bytearray(b'"')
    for byte in path:
        if byte in (0x22, 0x5C):
            out += b"\\" + bytes([byte])
        elif byte < 0x20 or byte >= 0x7F:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    out += b'"'
    return bytes(out)


def _check_oid(oid: str) -> str:
    if not isinstance(oid, str) or not _OID_RE.fullmatch(oid):
        raise SnapshotNotFound(f"not a snapshot id: {oid!r} (expected 40 hex digits)")
    return oid


def _validate_path(raw: bytes) -> str:
    if not raw or raw.startswith(b"/") or b"\0" in raw:
        raise UnsafeSnapshot(f"snapshot entry {raw!r} is not a relative path")
    for part in raw.split(b"/"):
        if part in (b"", b".", b".."):
            raise UnsafeSnapshot(f"snapshot entry {raw!r} would leave the workspace")
        if part == b".git":
            raise UnsafeSnapshot(f"snapshot entry {raw!r} would write into a .git directory")
    return os.fsdecode(raw)


def _parents(path: str) -> Iterator[str]:
    """``a/b/c`` -> ``a/b``, ``a`` (not the root)."""
    while "/" in path:
        path = path.rpartition("/")[0]
        yield path


def _compare(old: Manifest, new: Manifest) -> list[FileChange]:
    changes: list[FileChange] = []
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path), new.get(path)
        if a == b or (a and b and a.mode == b.mode and a.oid == b.oid):
            continue
        status: ChangeStatus = "added" if a is None else "deleted" if b is None else "modified"
        changes.append(
            FileChange(
                path=path,
                status=status,
                old_mode=a.mode if a else None,
                new_mode=b.mode if b else None,
                old_id=a.oid if a else None,
                new_id=b.oid if b else None,
                old_size=a.size if a else None,
                new_size=b.size if b else None,
            )
        )
    return changes


def _unified(path: str, old: bytes | None, new: bytes | None) -> str:
    def lines(data: bytes | None) -> list[str]:
        if data is None:
            return []
        out = data.decode("utf-8", errors="replace").splitlines(keepends=True)
        if out and not out[-1].endswith(("\n", "\r")):
            out[-1] += "\n"
        return out

    return "".join(
        difflib.unified_diff(
            lines(old),
            lines(new),
            fromfile=f"a/{path}" if old is not None else "/dev/null",
            tofile=f"b/{path}" if new is not None else "/dev/null",
        )
    )


class _Git:
    """Runs git against one bare store with a scrubbed environment."""

    def __init__(self, git_dir: Path) -> None:
        exe = shutil.which("git")
        if exe is None:
            raise GitUnavailable(
                "git is not installed (needed for workspace snapshots)",
                hint="install git and make sure it is on PATH",
            )
        self.exe = exe
        self.git_dir = git_dir
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            GIT_DIR=str(git_dir),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            GIT_ATTR_NOSYSTEM="1",
            GIT_NO_REPLACE_OBJECTS="1",
            GIT_TERMINAL_PROMPT="0",
            LC_ALL="C",
            LANGUAGE="C",
        )
        self.env = env
        self.prefix = [exe]
        for item in _GIT_CONFIG:
            self.prefix += ["-c", item]

    def _error(self, args: tuple[str, ...], stderr: bytes) -> SnapshotStoreError:
        lines = [ln for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        detail = "; ".join(lines[-2:]) or "no message"
        error_class: ErrorClass = "resource" if "No space left" in detail else "permanent"
        return SnapshotStoreError(
            f"snapshot store {self.git_dir}: git {args[0]} failed: {detail}",
            hint=f"the store may be damaged; removing {self.git_dir} starts it over "
            "(its snapshots are lost, the workspace is not touched)",
            error_class=error_class,
        )

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        timeout: float = _GIT_TIMEOUT,
    ) -> subprocess.CompletedProcess[bytes]:
        try:
            proc = subprocess.run(
                [*self.prefix, *args],
                input=input,
                capture_output=True,
                env=self.env,
                timeout=timeout,
                stdin=None if input is not None else subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise SnapshotStoreError(
                f"git {args[0]} took more than {timeout:.0f} s on snapshot store {self.git_dir}",
                error_class="transient",
            ) from exc
        except OSError as exc:
            raise GitUnavailable(f"cannot run git: {exc.strerror or exc}") from exc
        if check and proc.returncode != 0:
            raise self._error(args, proc.stderr)
        return proc

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(
                [*self.prefix, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env,
            )
        except OSError as exc:
            raise GitUnavailable(f"cannot run git: {exc.strerror or exc}") from exc


class _BlobReader:
    """One ``git cat-file --batch`` process; streams blobs and checks their hash."""

    def __init__(self, git: _Git) -> None:
        self._git = git
        self._proc = git.popen("cat-file", "--batch")

    def _fail(self, oid: str, why: str) -> SnapshotStoreError:
        self._proc.kill()
        _, err = self._proc.communicate()
        if err:
            return self._git._error(("cat-file",), err)
        return SnapshotStoreError(
            f"snapshot store {self._git.git_dir}: object {oid} {why}",
            hint="the store is damaged; the snapshot cannot be restored",
        )

    def stream(self, oid: str, sink: Callable[[bytes], object]) -> None:
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(oid.encode() + b"\n")
            proc.stdin.flush()
        except BrokenPipeError:
            raise self._fail(oid, "could not be read") from None
        header = proc.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob" or header[0] != oid.encode():
            raise self._fail(oid, "is missing or not a file")
        size = remaining = int(header[2])
        digest = hashlib.sha1(b"blob %d\0" % size)
        while remaining:
            chunk = proc.stdout.read(min(remaining, _CHUNK))
            if not chunk:
                raise self._fail(oid, "is truncated")
            digest.update(chunk)
            sink(chunk)
            remaining -= len(chunk)
        proc.stdout.read(1)  # the LF after each object
        if digest.hexdigest() != oid:
            raise self._fail(oid, "is corrupt (its content does not match its id)")

    def read(self, oid: str) -> bytes:
        parts: list[bytes] = []
        self.stream(oid, parts.append)
        return b"".join(parts)

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()


class WorkspaceSnapshots:
    """Snapshots of one workspace in one bare git store (``store_dir``), outside the workspace.

    Synchronous and blocking (subprocesses, file I/O): call from a worker thread
    (``asyncio.to_thread``). Safe to share between threads and processes (a lock per store).
    """

    def __init__(
        self, store_dir: Path, workspace: Path, budget: SnapshotBudget | None = None
    ) -> None:
        self.budget = budget or SnapshotBudget()
        self.last = SnapshotOutcome()  # what the latest snapshot skipped
        self._deadline: Deadline | None = None
        self.store_dir = Path(store_dir).absolute()
        self.workspace = Path(workspace).absolute()
        ws, store = self.workspace.resolve(), self.store_dir.resolve()
        if store == ws or store.is_relative_to(ws):
            raise SnapshotError(
                f"the snapshot store {self.store_dir} must be outside the "
                f"workspace {self.workspace}"
            )
        self._git = _Git(self.store_dir)
        self._ready = False
        self._cache: dict[str, list] | None = None
        self._known_trees: set[str] = set()
        self._generation: str | None = None

    # ---- public API -----------------------------------------------------------------------

    def snapshot(self) -> str:
        """Store the workspace as it is now and return its tree id."""
        with self._locked():
            start = time.perf_counter()
            tree = self._snapshot()[0]
            self.last.tree, self.last.seconds = tree, time.perf_counter() - start
            return tree

    def restore(self, tree: str) -> RestoreReport:
        """Make the workspace equal to ``tree`` (bytes, exec bits, symlinks as links)."""
        with self._locked():
            target = self._read_tree(tree)  # validated before anything is touched
            before, current = self._snapshot()
            if self.last.incomplete:
                raise RestoreConflict(
                    "cannot restore: the workspace could not be read within the snapshot time "
                    "limit, so a restore could overwrite what was not captured",
                    hint="remove or exclude large folders (sandbox snapshot settings), then retry",
                    error_class="resource",
                )
            report = RestoreReport(tree=tree, before=before)
            target, report.left_alone = self._uncaptured_dropped(target)
            if before == tree:
                return report
            self._apply(target, current, report)
            if self._cache is not None:
                for path in (*report.written, *report.deleted, *report.mode_changed):
                    self._cache.pop(path, None)
            return report

    def changed_since(self, tree: str) -> list[FileChange]:
        """Paths added / modified / deleted in the workspace relative to ``tree``."""
        with self._locked():
            target = self._read_tree(tree)
            _, current = self._snapshot()
            target, _ = self._uncaptured_dropped(target)
            return _compare(target, current)

    def _uncaptured_dropped(self, target: Manifest) -> tuple[Manifest, list[str]]:
        """``target`` without the paths the latest snapshot excluded or skipped."""
        skipped = {s.path for s in self.last.skipped}
        gone = sorted(p for p in target if p in skipped or self.budget.excluded(p))
        return {p: e for p, e in target.items() if p not in gone}, gone

    def diff(
        self, tree_a: str, tree_b: str, *, max_text_bytes: int = MAX_TEXT_DIFF_BYTES
    ) -> list[FileChange]:
        """Changes from ``tree_a`` to ``tree_b``, with a unified diff per small text file."""
        with self._locked():
            changes = _compare(self._read_tree(tree_a), self._read_tree(tree_b))
            reader = _BlobReader(self._git)
            try:
                return [self._with_text(c, reader, max_text_bytes) for c in changes]
            finally:
                reader.close()

    def size_bytes(self) -> int:
        """Bytes on disk used by the store (0 before the first snapshot)."""
        total = 0
        for root, _dirs, files in os.walk(self.store_dir):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(root, name)).st_size
        return total

    def prune(self, keep_trees: Iterable[str]) -> PruneReport:
        """Delete every object not reachable from ``keep_trees`` and repack the rest."""
        keep = sorted({_check_oid(t) for t in keep_trees})
        with self._locked():
            size_before = self.size_bytes()
            present = self._existing_trees(keep)
            old_refs = (
                self._git.run("for-each-ref", "--format=%(refname)", _KEEP_REFS)
                .stdout.decode()
                .split()
            )
            wanted = {_KEEP_REFS + t: t for t in present}
            commands = [f"delete {ref}\n" for ref in old_refs if ref not in wanted]
            commands += [f"update {ref} {oid}\n" for ref, oid in wanted.items()]
            if commands:
                self._git.run("update-ref", "--stdin", input="".join(commands).encode())
            self._git.run("reflog", "expire", "--expire=now", "--all")
            self._git.run("gc", "--prune=now", "--quiet", timeout=_GC_TIMEOUT)
            # cached blob and tree ids may name objects that are gone now
            self._cache = {}
            self._save_cache()
            self._known_trees = set(present)
            self._generation = secrets.token_hex(8)
            (self.store_dir / _GEN_NAME).write_text(self._generation, "ascii")
            return PruneReport(
                kept=present,
                missing=[t for t in keep if t not in present],
                size_before=size_before,
                size_after=self.size_bytes(),
            )

    # ---- store, lock, cache ---------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.store_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.store_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise SnapshotStoreError(
                f"cannot open the snapshot store {self.store_dir}: {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not self._ready:
                self._ensure_store()
            self._check_generation()
            try:
                yield
            except OSError as exc:
                where = f" ({exc.filename})" if exc.filename else ""
                raise SnapshotError(
                    f"workspace snapshot failed: {exc.strerror or exc}{where}",
                    error_class="resource" if exc.errno == errno.ENOSPC else "permanent",
                ) from exc
        finally:
            os.close(fd)

    def _ensure_store(self) -> None:
        if not (self.store_dir / "HEAD").exists():
            ours = {_LOCK_NAME, _CACHE_NAME, _GEN_NAME}
            if any(p.name not in ours for p in self.store_dir.iterdir()):
                raise SnapshotStoreError(
                    f"{self.store_dir} is not a snapshot store (not empty, no git repository)",
                    hint="point the store at an empty or missing directory",
                )
            self._git.run("init", "--bare", "--quiet", str(self.store_dir))
            # appended rather than one `git config` process per key; a section may repeat
            with (self.store_dir / "config").open("a", encoding="utf-8") as cfg:
                cfg.write(_STORE_CONFIG)
        if not (self.store_dir / "objects").is_dir() or not (self.store_dir / "HEAD").is_file():
            raise SnapshotStoreError(
                f"snapshot store {self.store_dir} is damaged (no objects directory or HEAD)",
                hint=f"remove {self.store_dir} to start it over",
            )
        if not self.workspace.is_dir():
            raise SnapshotError(
                f"workspace {self.workspace} does not exist or is not a directory",
                error_class="user",
            )
        self._ready = True

    def _check_generation(self) -> None:
        try:
            generation = (self.store_dir / _GEN_NAME).read_text("ascii")
        except FileNotFoundError:
            generation = ""
        if generation != self._generation:
            # another instance pruned: cached ids may name objects that are gone
            self._cache, self._known_trees = None, set()
            self._generation = generation

    def _load_cache(self) -> dict[str, list]:
        if self._cache is None:
            self._cache = {}
            with contextlib.suppress(OSError, ValueError):
                data = json.loads((self.store_dir / _CACHE_NAME).read_text("utf-8"))
                if data.get("version") == _CACHE_VERSION and data.get("workspace") == str(
                    self.workspace
                ):
                    self._cache = {
                        k: v
                        for k, v in data["entries"].items()
                        if isinstance(v, list) and len(v) == 7
                    }
        return self._cache

    def _save_cache(self) -> None:
        path = self.store_dir / _CACHE_NAME
        tmp = path.with_name(f"{_CACHE_NAME}.{secrets.token_hex(4)}")
        payload = {
            "version": _CACHE_VERSION,
            "workspace": str(self.workspace),
            "entries": self._cache or {},
        }
        tmp.write_text(json.dumps(payload, separators=(",", ":")), "utf-8")
        os.replace(tmp, path)

    # ---- snapshot -------------------------------------------------------------------------

    def _walk(self) -> list[tuple[str, os.stat_result]]:
        """Regular files and symlinks under the workspace (no ``.git``, links not followed)."""
        found: list[tuple[str, os.stat_result]] = []
        stack = [""]
        budget, deadline = self.budget, self._deadline
        while stack:
            if deadline is not None and deadline.passed():
                self.last.incomplete = True
                break
            rel = stack.pop()
            try:
                with os.scandir(self.workspace / rel if rel else self.workspace) as it:
                    entries = list(it)
            except FileNotFoundError:
                if not rel:
                    raise SnapshotError(
                        f"workspace {self.workspace} does not exist", error_class="user"
                    ) from None
                continue  # removed while we walked
            except OSError as exc:
                raise SnapshotError(
                    f"cannot read workspace directory {rel or '.'}: {exc.strerror or exc}",
                    error_class="user",
                ) from exc
            for entry in entries:
                if entry.name == ".git":
                    continue
                path = f"{rel}/{entry.name}" if rel else entry.name
                if budget.exclude and budget.excluded(path):
                    self.last.excluded += 1
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat_mod.S_ISDIR(st.st_mode):
                    stack.append(path)
                elif stat_mod.S_ISREG(st.st_mode) or stat_mod.S_ISLNK(st.st_mode):
                    found.append((path, st))
        return found

    def _scan(self) -> Manifest:
        """The workspace as a manifest; every blob it names is in the store afterwards."""
        cache = self._load_cache()
        taken = time.time_ns()
        budget = self.budget
        self.last = SnapshotOutcome()
        deadline = Deadline(budget.time_limit_s)
        skipped = self.last.skipped
        manifest: Manifest = {}
        fresh: dict[str, list] = {}
        to_hash: list[tuple[str, os.stat_result]] = []
        new_bytes = 0
        self._deadline = deadline
        for path, st in sorted(self._walk(), key=lambda item: item[0]):
            if stat_mod.S_ISREG(st.st_mode):
                if budget.skip_sparse and is_sparse(st.st_size, st.st_blocks):
                    skipped.append(Skipped(path, "sparse", st.st_size, st.st_blocks * 512))
                    continue
                if st.st_size > budget.max_file_bytes:
                    skipped.append(Skipped(path, "too_large", st.st_size, st.st_blocks * 512))
                    continue
            if len(manifest) + len(to_hash) >= budget.max_files:
                skipped.append(Skipped(path, "file_budget", st.st_size))
                continue
            mode = _git_mode(st)
            hit = cache.get(path)
            if (
                hit
                and hit[:5] == [mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
                and max(st.st_mtime_ns, st.st_ctime_ns) < hit[6] - RACY_NS
            ):
                manifest[path] = Entry(mode, hit[5], st.st_size)
                fresh[path] = hit
            elif new_bytes + st.st_size > budget.max_bytes:
                skipped.append(Skipped(path, "byte_budget", st.st_size))
            else:
                new_bytes += st.st_size
                to_hash.append((path, st))
        for (path, st), oid in zip(to_hash, self._hash_within(to_hash, deadline), strict=False):
            if oid is None:
                skipped.append(Skipped(path, "time_limit", st.st_size))
                continue
            mode = _git_mode(st)
            manifest[path] = Entry(mode, oid, st.st_size)
            fresh[path] = [mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, oid, taken]
        skipped.sort(key=lambda s: s.path)
        if fresh != cache:
            self._cache = fresh
            self._save_cache()
        return manifest

    def _hash_within(
        self, items: list[tuple[str, os.stat_result]], deadline: Deadline
    ) -> list[str | None]:
        """``_hash`` in batches of at most 64 MiB; ``None`` for files left when time ran out."""
        out: list[str | None] = []
        start = 0
        while start < len(items):
            if deadline.passed():
                return out + [None] * (len(items) - start)
            end, size = start, 0
            while end < len(items) and (end == start or size + items[end][1].st_size <= 64 << 20):
                size += items[end][1].st_size
                end += 1
            end = min(end, start + 2000)
            out += self._hash(items[start:end])
            start = end
        return out

    def _hash(self, items: list[tuple[str, os.stat_result]]) -> list[str]:
        """Write blobs for files (their bytes) and symlinks (their target) into the store."""
        if not items:
            return []
        tmp_dir = self.store_dir / _LINK_TMP
        lines: list[bytes] = []
        try:
            for i, (path, st) in enumerate(items):
                full = self.workspace / path
                if stat_mod.S_ISLNK(st.st_mode):
                    tmp_dir.mkdir(exist_ok=True)
                    link = tmp_dir / f"link{i}"
                    link.write_bytes(os.readlink(os.fsencode(full)))
                    full = link
                elif not os.access(full, os.R_OK):
                    if not os.path.lexists(full):
                        raise SnapshotError(
                            f"a workspace file changed during the snapshot ({path} vanished)",
                            hint="try again",
                            error_class="transient",
                        )
                    raise SnapshotError(
                        f"cannot read workspace file {path} (permission denied)",
                        hint="make it readable or remove it",
                        error_class="user",
                    )
                lines.append(_c_quote(os.fsencode(full)) + b"\n")
            proc = self._git.run(
                "hash-object",
                "-w",
                "--no-filters",
                "--stdin-paths",
                input=b"".join(lines),
                check=False,
            )
            if proc.returncode != 0 and b"could not open" in proc.stderr:
                detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1]
                raise SnapshotError(
                    f"a workspace file changed during the snapshot ({detail})",
                    hint="try again",
                    error_class="transient",
                )
            if proc.returncode != 0:
                raise self._git._error(("hash-object",), proc.stderr)
            out = proc.stdout.decode().split()
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        if len(out) != len(items) or not all(_OID_RE.fullmatch(o) for o in out):
            raise SnapshotStoreError(
                f"git hash-object returned {len(out)} ids for {len(items)} files"
            )
        return out

    def _snapshot(self) -> tuple[str, Manifest]:
        manifest = self._scan()
        try:
            return self._write_trees(manifest), manifest
        except SnapshotStoreError as exc:
            if "unavailable" not in str(exc) and "missing" not in str(exc):
                raise
        # a cached blob id names an object the store no longer has: hash everything again
        self._cache, self._known_trees = {}, set()
        manifest = self._scan()
        return self._write_trees(manifest), manifest

    def _write_trees(self, manifest: Manifest) -> str:
        """Compute tree ids bottom-up, ``mktree`` the ones not known to be stored yet."""
        files: dict[str, list[tuple[bytes, str, str]]] = defaultdict(list)
        subdirs: dict[str, set[str]] = defaultdict(set)
        for path, entry in manifest.items():
            parent, _, name = path.rpartition("/")
            files[parent].append((os.fsencode(name), entry.mode, entry.oid))
            while parent:
                grand, _, dname = parent.rpartition("/")
                if dname in subdirs[grand]:
                    break
                subdirs[grand].add(dname)
                parent = grand
        dirs = {
            "",
            *files,
            *subdirs,
            *(f"{d}/{s}" if d else s for d, names in subdirs.items() for s in names),
        }
        tree_ids: dict[str, str] = {}
        pending: list[tuple[str, bytes]] = []
        for d in sorted(dirs, key=lambda p: p.count("/") + 1 if p else 0, reverse=True):
            items = list(files.get(d, []))
            items += [
                (os.fsencode(s), _MODE_TREE, tree_ids[f"{d}/{s}" if d else s])
                for s in subdirs.get(d, ())
            ]
            items.sort(key=lambda it: it[0] + b"/" if it[1] == _MODE_TREE else it[0])
            body = b"".join(
                mode.encode() + b" " + name + b"\0" + bytes.fromhex(oid)
                for name, mode, oid in items
            )
            tid = hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()
            tree_ids[d] = tid
            if tid not in self._known_trees:
                listing = b"".join(
                    f"{mode} {'tree' if mode == _MODE_TREE else 'blob'} {oid}\t".encode()
                    + name
                    + b"\0"
                    for name, mode, oid in items
                )
                pending.append((tid, listing + b"\0"))
        if pending:
            out = (
                self._git.run("mktree", "-z", "--batch", input=b"".join(p[1] for p in pending))
                .stdout.decode()
                .split()
            )
            expected = [p[0] for p in pending]
            if out != expected:
                raise SnapshotStoreError(
                    f"git mktree returned unexpected tree ids in {self.store_dir}"
                )
            self._known_trees.update(expected)
        return tree_ids[""]

    # ---- reading trees --------------------------------------------------------------------

    def _read_tree(self, tree: str) -> Manifest:
        tree = _check_oid(tree)
        proc = self._git.run("ls-tree", "-r", "-z", "-l", "--full-tree", tree, check=False)
        if proc.returncode != 0:
            kind = self._git.run("cat-file", "-t", tree, check=False)
            if kind.returncode != 0:
                raise SnapshotNotFound(f"snapshot {tree} is not in the store {self.store_dir}")
            if kind.stdout.strip() != b"tree":
                raise SnapshotNotFound(
                    f"{tree} is a {kind.stdout.decode().strip()}, not a snapshot"
                )
            raise self._git._error(("ls-tree",), proc.stderr)
        manifest: Manifest = {}
        for record in proc.stdout.split(b"\0"):
            if not record:
                continue
            meta, sep, raw = record.partition(b"\t")
            fields = meta.decode("ascii", "replace").split()
            if not sep or len(fields) != 4:
                raise SnapshotStoreError(f"unreadable entry in snapshot {tree}: {record!r}")
            mode, kind_, oid, size = fields
            path = _validate_path(raw)
            if mode in _BLOB_MODES and kind_ == "blob" and not size.isdigit():
                raise SnapshotStoreError(
                    f"snapshot store {self.store_dir}: object {oid} ({path}) is unreadable",
                    hint="the store is damaged; this snapshot cannot be restored",
                )
            if mode not in _BLOB_MODES or kind_ != "blob" or not _OID_RE.fullmatch(oid):
                raise UnsafeSnapshot(
                    f"snapshot {tree} has an unsupported entry {path!r} ({mode} {kind_})"
                )
            if path in manifest:
                raise UnsafeSnapshot(f"snapshot {tree} lists {path!r} twice")
            manifest[path] = Entry(mode, oid, int(size))
        for path in manifest:
            for parent in _parents(path):
                if parent in manifest:
                    raise UnsafeSnapshot(
                        f"snapshot {tree} has {parent!r} as both a file and a directory"
                    )
        return manifest

    def _existing_trees(self, oids: list[str]) -> list[str]:
        if not oids:
            return []
        out = self._git.run(
            "cat-file", "--batch-check", input="".join(f"{o}\n" for o in oids).encode()
        ).stdout.decode()
        return [
            line.split()[0]
            for line in out.splitlines()
            if len(line.split()) == 3 and line.split()[1] == "tree"
        ]

    def _with_text(self, change: FileChange, reader: _BlobReader, limit: int) -> FileChange:
        if change.mode_only:
            return change
        sizes = [s for s in (change.old_size, change.new_size) if s is not None]
        if any(s > limit for s in sizes):
            return replace(change, too_large=True)
        old = reader.read(change.old_id) if change.old_id else None
        new = reader.read(change.new_id) if change.new_id else None
        if any(b"\0" in data[:_BINARY_SNIFF] for data in (old, new) if data is not None):
            return replace(change, binary=True)
        return replace(change, diff=_unified(change.path, old, new))

    # ---- restore --------------------------------------------------------------------------

    def _apply(self, target: Manifest, current: Manifest, report: RestoreReport) -> None:
        to_delete = sorted(p for p in current if p not in target)
        to_write: list[str] = []
        for path, entry in sorted(target.items()):
            have = current.get(path)
            if (
                have is None
                or have.oid != entry.oid
                or (have.mode == MODE_LINK) != (entry.mode == MODE_LINK)
            ):
                to_write.append(path)
            elif have.mode != entry.mode:
                report.mode_changed.append(path)
        target_dirs = {d for p in target for d in _parents(p)}
        self._check_obstacles(target, current, target_dirs)

        with _DirFds(self.workspace) as fds:
            for path in to_delete:
                parent, _, name = path.rpartition("/")
                dfd = fds.get(parent, create=False)
                if dfd is None:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=dfd)
                    report.deleted.append(path)
            if to_write:
                reader = _BlobReader(self._git)
                try:
                    for path in to_write:
                        if self._write_one(fds, path, target[path], reader):
                            report.dirs_removed.append(path)
                        report.written.append(path)
                finally:
                    reader.close()
            for path in report.mode_changed:
                parent, _, name = path.rpartition("/")
                dfd = fds.get(parent, create=False)
                if dfd is None:
                    raise RestoreConflict(
                        f"cannot restore: {parent} vanished while restoring",
                        error_class="transient",
                    )
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                try:
                    mode = os.fstat(fd).st_mode & 0o7777
                    mode = (
                        mode | (mode & 0o444) >> 2
                        if target[path].mode == MODE_EXEC
                        else mode & ~0o111
                    )
                    os.fchmod(fd, mode)
                finally:
                    os.close(fd)
            emptied = {d for p in report.deleted for d in _parents(p)} - target_dirs - set(target)
            for d in sorted(emptied, key=lambda p: p.count("/"), reverse=True):
                parent, _, name = d.rpartition("/")
                dfd = fds.get(parent, create=False)
                if dfd is None:
                    continue
                fds.forget(d)
                try:
                    os.rmdir(name, dir_fd=dfd)
                    report.dirs_removed.append(d)
                except OSError:
                    pass  # not empty: it holds something snapshots do not capture

    def _check_obstacles(self, target: Manifest, current: Manifest, target_dirs: set[str]) -> None:
        """Refuse, before changing anything, when an uncaptured thing blocks the restore."""
        replaced: set[str] = set()  # directories that do not exist yet or replace a file/link
        for d in sorted(target_dirs, key=lambda p: p.count("/")):
            if any(p in replaced for p in _parents(d)):
                replaced.add(d)
                continue
            try:
                st = os.lstat(self.workspace / d)
            except FileNotFoundError:
                replaced.add(d)
                continue
            if stat_mod.S_ISDIR(st.st_mode):
                continue
            if d in current:
                replaced.add(d)  # a file or link the restore deletes first
                continue
            raise RestoreConflict(
                f"cannot restore: {d} must become a directory but is a special file",
                hint="move it out of the workspace",
            )
        for path in target:
            if any(p in replaced for p in _parents(path)):
                continue
            try:
                st = os.lstat(self.workspace / path)
            except FileNotFoundError:
                continue
            if stat_mod.S_ISDIR(st.st_mode):
                self._check_removable(path, current)

    def _check_removable(self, directory: str, current: Manifest) -> None:
        for root, dirs, files in os.walk(self.workspace / directory):
            rel_root = os.path.relpath(root, self.workspace)
            for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                rel = f"{rel_root}/{name}"
                if name == ".git" or rel not in current:
                    raise RestoreConflict(
                        f"cannot restore: {directory} must become a file but the directory "
                        f"holds {rel}, which snapshots do not capture",
                        hint="move it out of the workspace and restore again",
                    )
            if ".git" in dirs:
                raise RestoreConflict(
                    f"cannot restore: {directory} must become a file but "
                    f"holds a git repository ({rel_root}/.git)",
                    hint="move it out of the workspace and restore again",
                )

    def _write_one(self, fds: _DirFds, path: str, entry: Entry, reader: _BlobReader) -> bool:
        """Write one file or link atomically; true if an emptied directory had to go first."""
        parent, _, name = path.rpartition("/")
        dfd = fds.get(parent, create=True)
        assert dfd is not None
        removed_dir = False
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat_mod.S_ISDIR(st.st_mode):
                fds.forget_under(path)
                _remove_empty_tree(dfd, name)
                removed_dir = True
        except FileNotFoundError:
            pass
        tmp = f".omsnap-{secrets.token_hex(8)}.tmp"
        try:
            if entry.mode == MODE_LINK:
                os.symlink(os.fsdecode(reader.read(entry.oid)), tmp, dir_fd=dfd)
            else:
                fd = os.open(
                    tmp,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o777 if entry.mode == MODE_EXEC else 0o666,
                    dir_fd=dfd,
                )
                with os.fdopen(fd, "wb") as out:
                    reader.stream(entry.oid, out.write)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
        return removed_dir


def _remove_empty_tree(parent_fd: int, name: str) -> None:
    """rmdir ``name`` and its subdirectories; anything else inside is a conflict."""
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False) and entry.name != ".git":
                _remove_empty_tree(fd, entry.name)
            else:
                raise RestoreConflict(
                    f"cannot restore: a directory stands where a file goes and holds {entry.name}"
                )
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)


class _DirFds:
    """Directory fds under the workspace, opened one component at a time with O_NOFOLLOW."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._fds: dict[str, int] = {}

    def __enter__(self) -> _DirFds:
        self._fds[""] = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def get(self, rel: str, *, create: bool) -> int | None:
        """The fd of directory ``rel``; ``None`` if it is missing and ``create`` is false."""
        if rel in self._fds:
            return self._fds[rel]
        parent, _, name = rel.rpartition("/")
        pfd = self.get(parent, create=create)
        if pfd is None:
            return None
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(name, 0o777, dir_fd=pfd)
            fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                if not create:
                    return None
                raise RestoreConflict(
                    f"cannot restore: {rel} changed into a file or link while restoring",
                    error_class="transient",
                ) from exc
            raise
        self._fds[rel] = fd
        return fd

    def forget(self, rel: str) -> None:
        fd = self._fds.pop(rel, None)
        if fd is not None:
            os.close(fd)

    def forget_under(self, rel: str) -> None:
        for key in [k for k in self._fds if k == rel or k.startswith(rel + "/")]:
            self.forget(key)
