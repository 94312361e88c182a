"""Host-side file access that cannot leave a workspace directory.

Owns ``Workspace`` (read / write / list / stat of paths strictly beneath one directory) and
``WorkspacePathError``. A ``normpath`` + prefix check leaks through symlinks, sibling prefixes
(``../ws-evil``) and symlinks swapped between check and use, so every open here goes through a
directory file descriptor instead of a path string:

* **openat2 backend** (used when the kernel has it: Linux >= 5.6, x86_64 / aarch64, syscall 437):
  ``openat2(dirfd, path, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`` — the kernel refuses any
  resolution step (``..``, absolute or relative symlink, ``/proc`` magic link) that would leave
  the directory, atomically with the open.
* **walk backend** (fallback for older kernels, other architectures or seccomp filters that hide
  openat2): the path is walked one component at a time with ``O_PATH | O_NOFOLLOW`` relative to
  directory fds this process holds; symlinks are read with ``readlinkat`` and spliced back into the
  walk, absolute targets refused, ``..`` pops a held fd and may not pop the root.

``Workspace.backend`` says which one is in use. Both refuse NUL bytes (ctypes would cut the path
there silently), absolute paths, ``~``, over-long names, non-regular files for reads and writes
(FIFOs and devices are opened ``O_NONBLOCK`` only after an ``O_PATH`` check) and hard-linked
files (``st_nlink > 1``: another link may live outside the workspace). Writes create missing
parent directories one ``mkdirat`` at a time beneath the workspace, write a temporary file in
the destination directory and ``renameat`` it into place, so readers never see half a file and
the destination is never written through a link. Symlinks that stay inside the workspace work.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import platform
import secrets
import stat as stat_mod
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from openmanus_tui.errors import ErrorClass, OpenManusError

Backend = Literal["openat2", "walk"]
EntryKind = Literal["file", "dir", "symlink", "other"]

NAME_MAX = 255  # bytes per path component (Linux)
PATH_MAX = 4095  # bytes per path, without the terminating NUL
MAX_SYMLINK_HOPS = 40  # same bound as the kernel's ELOOP limit

_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_OPENAT2_SYSCALL = {"x86_64": 437, "amd64": 437, "aarch64": 437, "arm64": 437}
_AT_FDCWD = -100
_EAGAIN_RETRIES = 64  # openat2 returns EAGAIN when a concurrent rename races a ".." lookup

_CLOEXEC = os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | _CLOEXEC


class WorkspacePathError(OpenManusError):
    """A workspace path was refused or could not be used; the message is meant for a model.

    ``reason`` is a short machine-readable code: ``invalid``, ``escape``, ``not_found``,
    ``not_directory``, ``is_directory``, ``not_regular``, ``hardlinked``, ``too_long``,
    ``symlink_loop``, ``protected``, ``permission``, ``io``.
    """

    error_class: ErrorClass = "security"

    def __init__(
        self, message: str, *, path: str = "", reason: str = "invalid", hint: str = ""
    ) -> None:
        user_reasons = {"not_found", "not_directory", "is_directory", "too_long", "io"}
        super().__init__(message, hint=hint, error_class="user" if reason in user_reasons else None)
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class DirEntry:
    name: str
    kind: EntryKind
    size: int


@dataclass(frozen=True)
class Listing:
    entries: list[DirEntry]
    truncated: bool


@dataclass(frozen=True)
class WriteResult:
    path: str  # the path actually written, relative to the root (differs for symlinked targets)
    created: bool
    size: int
    previous_size: int | None


# --- openat2 via ctypes --------------------------------------------------------------------


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


_libc: ctypes.CDLL | None = None
_openat2_ok: bool | None = None
_openat2_nr = _OPENAT2_SYSCALL.get(platform.machine(), -1)


def _raw_openat2(dirfd: int, path: bytes, flags: int, mode: int, resolve: int) -> int:
    assert _libc is not None
    how = _OpenHow(flags, mode, resolve)
    for _ in range(_EAGAIN_RETRIES):
        fd = _libc.syscall(
            ctypes.c_long(_openat2_nr),
            ctypes.c_int(dirfd),
            ctypes.c_char_p(path),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err != errno.EAGAIN:
            raise OSError(err, os.strerror(err), os.fsdecode(path))
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), os.fsdecode(path))


def openat2_available() -> bool:
    """Whether this process can use openat2 (probed once)."""
    global _libc, _openat2_ok
    if _openat2_ok is None:
        _openat2_ok = False
        if platform.system() == "Linux" and _openat2_nr > 0:
            try:
                _libc = ctypes.CDLL(None, use_errno=True)
                _libc.syscall.restype = ctypes.c_long
                fd = _raw_openat2(_AT_FDCWD, b".", _PATH_FLAGS, 0, _RESOLVE_BENEATH)
                os.close(fd)
                _openat2_ok = True
            except (OSError, AttributeError):
                # ENOSYS on old kernels; EPERM from some container seccomp profiles.
                _openat2_ok = False
    return _openat2_ok


# --- path checks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rel:
    text: str  # as given (for messages)
    parts: tuple[str, ...]  # components, without "" and "."; may contain ".."
    trailing_slash: bool

    @property
    def encoded(self) -> bytes:
        return os.fsencode("/".join(self.parts) or ".")


def _check_rel(path: str | os.PathLike[str], *, allow_root: bool) -> _Rel:
    if isinstance(path, bytes):
        raise WorkspacePathError("path must be text, not bytes", reason="invalid")
    text = os.fspath(path)
    shown = repr(text if len(text) <= 80 else text[:77] + "...")
    if "\x00" in text:
        raise WorkspacePathError(f"path {shown} contains a NUL byte", path=text)
    if not text.strip():
        raise WorkspacePathError("path is empty; give a path relative to the workspace", path=text)
    if text.startswith("/"):
        raise WorkspacePathError(
            f"path {shown} is absolute; give a path relative to the workspace root "
            "(for example 'src/main.py')",
            path=text,
            reason="escape",
        )
    if text.startswith("~"):
        raise WorkspacePathError(
            f"path {shown} starts with '~'; home directories are outside the workspace "
            "(use './~name' for a file really named '~name')",
            path=text,
            reason="escape",
        )
    raw = os.fsencode(text)
    if len(raw) > PATH_MAX:
        raise WorkspacePathError(
            f"path is too long ({len(raw)} bytes; the limit is {PATH_MAX})",
            path=text,
            reason="too_long",
        )
    parts = tuple(p for p in text.split("/") if p not in ("", "."))
    for part in parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise WorkspacePathError(
                f"a name in path {shown} is too long ({len(os.fsencode(part))} bytes; "
                f"the limit is {NAME_MAX} per name)",
                path=text,
                reason="too_long",
            )
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise WorkspacePathError(
                f"path {shown} goes above the workspace root; only paths inside the "
                "workspace are allowed",
                path=text,
                reason="escape",
            )
    if depth == 0 and not allow_root:
        raise WorkspacePathError(f"path {shown} names the workspace root itself", path=text)
    return _Rel(text, parts, text.endswith("/"))


def _error_from_os(exc: OSError, rel: _Rel, action: str) -> WorkspacePathError:
    shown = repr(rel.text)
    code = exc.errno
    if code == errno.EXDEV:
        return WorkspacePathError(
            f"cannot {action} {shown}: it leads outside the workspace (through '..' or a "
            "symlink pointing outside)",
            path=rel.text,
            reason="escape",
        )
    if code == errno.ELOOP:
        return WorkspacePathError(
            f"cannot {action} {shown}: symlink loop, too many symlinks, or a /proc magic link",
            path=rel.text,
            reason="symlink_loop",
        )
    if code == errno.ENOENT:
        return WorkspacePathError(
            f"{shown} does not exist in the workspace", path=rel.text, reason="not_found"
        )
    if code == errno.ENOTDIR and rel.trailing_slash:
        return WorkspacePathError(
            f"cannot {action} {shown}: it ends with '/' but is not a directory",
            path=rel.text,
            reason="not_directory",
        )
    if code == errno.ENOTDIR:
        return WorkspacePathError(
            f"cannot {action} {shown}: a part of the path is not a directory",
            path=rel.text,
            reason="not_directory",
        )
    if code == errno.EISDIR:
        return WorkspacePathError(
            f"cannot {action} {shown}: it is a directory", path=rel.text, reason="is_directory"
        )
    if code == errno.ENAMETOOLONG:
        return WorkspacePathError(
            f"cannot {action} {shown}: name too long", path=rel.text, reason="too_long"
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return WorkspacePathError(
            f"cannot {action} {shown}: permission denied", path=rel.text, reason="permission"
        )
    return WorkspacePathError(
        f"cannot {action} {shown}: {os.strerror(code or 0)}", path=rel.text, reason="io"
    )


def _kind(mode: int) -> EntryKind:
    if stat_mod.S_ISREG(mode):
        return "file"
    if stat_mod.S_ISDIR(mode):
        return "dir"
    if stat_mod.S_ISLNK(mode):
        return "symlink"
    return "other"


# --- the workspace -------------------------------------------------------------------------


class Workspace:
    """Files strictly beneath ``root``. Paths are relative text such as ``"src/app.py"``.

    ``write_protected`` names path components (compared case-insensitively) under which
    nothing may be written, checked on the real location of the destination directory, so a
    symlink pointing into ``.git/hooks`` does not help. ``allow_hardlinked_reads`` lets reads
    open files with ``st_nlink > 1`` (package stores such as pnpm's use hard links); writes to
    them are always refused.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        write_protected: Iterable[str] = (),
        allow_hardlinked_reads: bool = False,
        backend: Backend | None = None,
        denied: Iterable[Path | str] = (),
    ) -> None:
        self.root = Path(root).resolve()
        # Absolute paths (the program's own state) never read, listed or written, whatever
        # path or symlink leads there; checked on the real location of every opened fd.
        self.denied = tuple(os.path.realpath(p) for p in denied)
        if not self.root.is_dir():
            raise WorkspacePathError(
                f"workspace directory {str(self.root)!r} does not exist", reason="not_found"
            )
        if backend == "openat2" and not openat2_available():
            raise WorkspacePathError("openat2 is not available on this system", reason="io")
        self.backend: Backend = backend or ("openat2" if openat2_available() else "walk")
        self.write_protected = frozenset(name.lower() for name in write_protected)
        self.allow_hardlinked_reads = allow_hardlinked_reads

    # -- low level: open beneath a directory fd --

    @contextlib.contextmanager
    def _root_fd(self) -> Iterator[int]:
        fd = os.open(self.root, _PATH_FLAGS | os.O_DIRECTORY)
        try:
            yield fd
        finally:
            os.close(fd)

    def _open(self, root_fd: int, rel: _Rel, flags: int) -> int:
        flags |= _CLOEXEC
        if rel.trailing_slash:
            flags |= os.O_DIRECTORY
        if self.backend == "openat2":
            return _raw_openat2(
                root_fd, rel.encoded, flags, 0, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS
            )
        return _walk_open(root_fd, rel.parts, flags)

    def _check_denied(self, real: str, rel: _Rel, action: str) -> None:
        for denied in self.denied:
            if real == denied or real.startswith(denied.rstrip("/") + "/"):
                raise WorkspacePathError(
                    f"cannot {action} {rel.text!r}: it is openmanus's own configuration or "
                    "data, which tools may not touch",
                    path=rel.text,
                    reason="protected",
                )

    def _check_denied_fd(self, fd: int, rel: _Rel, action: str) -> None:
        if not self.denied:
            return
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            real = os.path.join(str(self.root), *_normalise(rel.parts))
        self._check_denied(real, rel, action)

    @contextlib.contextmanager
    def _opened(self, rel: _Rel, flags: int, action: str) -> Iterator[int]:
        with self._root_fd() as root_fd:
            try:
                fd = self._open(root_fd, rel, flags)
            except OSError as exc:
                raise _error_from_os(exc, rel, action) from None
        try:
            self._check_denied_fd(fd, rel, action)
            yield fd
        finally:
            os.close(fd)

    def _check_regular(self, st: os.stat_result, rel: _Rel, action: str) -> None:
        if stat_mod.S_ISDIR(st.st_mode):
            raise WorkspacePathError(
                f"cannot {action} {rel.text!r}: it is a directory (use list_files)",
                path=rel.text,
                reason="is_directory",
            )
        if not stat_mod.S_ISREG(st.st_mode):
            raise WorkspacePathError(
                f"cannot {action} {rel.text!r}: not a regular file (FIFO, socket or device)",
                path=rel.text,
                reason="not_regular",
            )
        if st.st_nlink > 1 and (action != "read" or not self.allow_hardlinked_reads):
            raise WorkspacePathError(
                f"cannot {action} {rel.text!r}: it has {st.st_nlink} hard links, and another "
                "link may be outside the workspace",
                path=rel.text,
                reason="hardlinked",
            )

    # -- reading --

    def open_read(self, path: str | os.PathLike[str]) -> io.BufferedReader:
        """Open a regular file beneath the root for reading (the caller closes it)."""
        rel = _check_rel(path, allow_root=False)
        # An O_PATH look first, so FIFOs and devices are never really opened.
        with self._opened(rel, os.O_PATH, "read") as probe:
            self._check_regular(os.fstat(probe), rel, "read")
        with self._root_fd() as root_fd:
            try:
                fd = self._open(root_fd, rel, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
            except OSError as exc:
                raise _error_from_os(exc, rel, "read") from None
        try:
            # Checked again on the fd actually read: the entry may have been swapped meanwhile.
            self._check_denied_fd(fd, rel, "read")
            self._check_regular(os.fstat(fd), rel, "read")
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def read_bytes(self, path: str | os.PathLike[str], max_bytes: int | None = None) -> bytes:
        """The file's bytes, at most ``max_bytes`` of them when given."""
        with self.open_read(path) as fh:
            return fh.read() if max_bytes is None else fh.read(max_bytes)

    def read_text(
        self,
        path: str | os.PathLike[str],
        max_bytes: int | None = None,
        *,
        encoding: str = "utf-8",
        errors: str = "strict",
    ) -> str:
        return self.read_bytes(path, max_bytes).decode(encoding, errors)

    def stat(self, path: str | os.PathLike[str] = ".") -> os.stat_result:
        """``stat`` of a path beneath the root, following symlinks that stay inside."""
        rel = _check_rel(path, allow_root=True)
        with self._opened(rel, os.O_PATH, "stat") as fd:
            return os.fstat(fd)

    def exists(self, path: str | os.PathLike[str]) -> bool:
        """False for missing paths; refused paths (escapes, loops...) still raise."""
        try:
            self.stat(path)
        except WorkspacePathError as exc:
            if exc.reason in ("not_found", "not_directory"):
                return False
            raise
        return True

    def list_dir(self, path: str | os.PathLike[str] = ".", limit: int | None = None) -> Listing:
        """Entries of a directory, sorted by name; symlinks are reported, not followed.

        With ``limit``, at most that many entries (in directory order, then sorted).
        """
        rel = _check_rel(path, allow_root=True)
        entries: list[DirEntry] = []
        truncated = False
        with (
            self._opened(rel, os.O_RDONLY | os.O_DIRECTORY, "list") as fd,
            os.scandir(fd) as it,
        ):
            for entry in it:
                if limit is not None and len(entries) >= limit:
                    truncated = True
                    break
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # removed while listing
                size = st.st_size if stat_mod.S_ISREG(st.st_mode) else 0
                entries.append(DirEntry(entry.name, _kind(st.st_mode), size))
        entries.sort(key=lambda e: e.name)
        return Listing(entries, truncated)

    # -- writing --

    def write_bytes(self, path: str | os.PathLike[str], data: bytes) -> WriteResult:
        """Atomically replace (or create) a regular file beneath the root."""
        rel = _check_rel(path, allow_root=False)
        if rel.trailing_slash:
            raise WorkspacePathError(
                f"cannot write {rel.text!r}: it ends with '/', a file name is needed",
                path=rel.text,
            )
        for _ in range(MAX_SYMLINK_HOPS):
            if self.write_protected:
                self._check_protected(_normalise(rel.parts), rel)  # early, before any mkdir
            outcome = self._write_once(rel, data)
            if isinstance(outcome, WriteResult):
                return outcome
            rel = outcome  # the destination is a symlink: write to its target instead
        raise WorkspacePathError(
            f"cannot write {path!r}: too many symlinks", path=str(path), reason="symlink_loop"
        )

    def write_text(
        self, path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8"
    ) -> WriteResult:
        return self.write_bytes(path, text.encode(encoding))

    def _write_once(self, rel: _Rel, data: bytes) -> WriteResult | _Rel:
        *parent_parts, name = rel.parts
        if name == "..":
            raise WorkspacePathError(f"cannot write {rel.text!r}: it is a directory", path=rel.text)
        with self._root_fd() as root_fd:
            try:
                dir_fd = self._make_parents(root_fd, tuple(parent_parts), rel)
            except OSError as exc:
                raise _error_from_os(exc, rel, "write") from None
        try:
            real_dir = self._real_parts(dir_fd, rel, _normalise(parent_parts))
            self._check_protected([*real_dir, name], rel)
            if self.denied:
                self._check_denied(os.path.join(str(self.root), *real_dir, name), rel, "write")
            try:
                old = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                old = None
            if old is not None and stat_mod.S_ISLNK(old.st_mode):
                target = os.readlink(name, dir_fd=dir_fd)
                if target.startswith("/"):
                    raise WorkspacePathError(
                        f"cannot write {rel.text!r}: it is a symlink to an absolute path",
                        path=rel.text,
                        reason="escape",
                    )
                # Relative to the link's real directory; the next round re-checks everything.
                return _check_rel("/".join([*real_dir, target]), allow_root=False)
            if old is not None:
                self._check_regular(old, rel, "write")
            self._replace(dir_fd, name, data, old)
        except OSError as exc:
            raise _error_from_os(exc, rel, "write") from None
        finally:
            os.close(dir_fd)
        return WriteResult(
            "/".join([*real_dir, name]),
            old is None,
            len(data),
            None if old is None else old.st_size,
        )

    def _make_parents(self, root_fd: int, parts: tuple[str, ...], rel: _Rel) -> int:
        """An O_PATH fd of the directory ``parts``, creating missing ones beneath the root."""
        fd = os.dup(root_fd)
        try:
            for i, part in enumerate(parts):
                prefix = _Rel("/".join(parts[: i + 1]), parts[: i + 1], True)
                try:
                    nxt = self._open(root_fd, prefix, os.O_PATH | os.O_DIRECTORY)
                except FileNotFoundError:
                    if part == "..":
                        raise
                    # Never create directories inside a protected tree (a symlink may lead there).
                    here = self._real_parts(fd, rel, _normalise(parts[:i]))
                    self._check_protected([*here, part], rel)
                    if self.denied:
                        self._check_denied(os.path.join(str(self.root), *here, part), rel, "write")
                    try:
                        os.mkdir(part, 0o777, dir_fd=fd)  # one name, relative to a checked fd
                    except FileExistsError:
                        pass  # created concurrently; the open below checks what it is
                    nxt = self._open(root_fd, prefix, os.O_PATH | os.O_DIRECTORY)
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _check_protected(self, parts: list[str], rel: _Rel) -> None:
        if any(p.lower() in self.write_protected for p in parts):
            raise WorkspacePathError(
                f"cannot write {rel.text!r}: files under "
                f"{', '.join(sorted(self.write_protected))} are write-protected",
                path=rel.text,
                reason="protected",
            )

    def _real_parts(self, dir_fd: int, rel: _Rel, requested: list[str]) -> list[str]:
        """Where a directory fd really is, as components below the root."""
        try:
            real = os.readlink(f"/proc/self/fd/{dir_fd}")
        except OSError:
            # No /proc: the requested path is the best we know (symlinks not accounted for).
            return requested
        try:
            return list(Path(real).relative_to(self.root).parts)
        except ValueError:
            raise WorkspacePathError(
                f"cannot write {rel.text!r}: its directory is no longer in the workspace",
                path=rel.text,
                reason="escape",
            ) from None

    @staticmethod
    def _replace(dir_fd: int, name: str, data: bytes, old: os.stat_result | None) -> None:
        tmp = f".{name[:200]}.{secrets.token_hex(6)}.tmp"
        # New files get 0o666 minus the umask from the kernel; replacements keep the old mode.
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC,
            0o666 if old is None else 0o600,
            dir_fd=dir_fd,
        )
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if old is not None:
                    with contextlib.suppress(PermissionError):
                        os.fchown(fd, old.st_uid, old.st_gid)  # before chmod: chown drops suid
                    os.fchmod(fd, stat_mod.S_IMODE(old.st_mode))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise


def _normalise(parts: Iterable[str]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            if out:
                out.pop()
        else:
            out.append(part)
    return out


def _walk_open(root_fd: int, parts: tuple[str, ...], flags: int) -> int:
    """Userspace RESOLVE_BENEATH: one O_NOFOLLOW component at a time from held fds."""
    pending = deque(parts)
    stack: list[int] = []  # fds of directories entered below the root (owned here)
    hops = 0

    def top() -> int:
        return stack[-1] if stack else root_fd

    def fail(code: int, name: str) -> OSError:
        return OSError(code, os.strerror(code), name)

    try:
        while pending:
            name = pending.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                if not stack:
                    raise fail(errno.EXDEV, name)
                os.close(stack.pop())
                continue
            last = not pending
            fd = os.open(name, _PATH_FLAGS | os.O_NOFOLLOW, dir_fd=top())
            mode = os.fstat(fd).st_mode
            if stat_mod.S_ISLNK(mode):
                os.close(fd)
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise fail(errno.ELOOP, name)
                try:
                    target = os.readlink(name, dir_fd=top())
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    pending.appendleft(name)  # no longer a symlink: look again
                    continue
                if target.startswith("/"):
                    raise fail(errno.EXDEV, name)
                pending.extendleft(reversed(target.split("/")))
                continue
            if not last:
                if not stat_mod.S_ISDIR(mode):
                    os.close(fd)
                    raise fail(errno.ENOTDIR, name)
                stack.append(fd)
                continue
            if flags & os.O_PATH and not flags & os.O_DIRECTORY:
                return fd
            os.close(fd)
            try:
                return os.open(name, flags | os.O_NOFOLLOW, dir_fd=top())
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                hops += 1  # swapped for a symlink since the O_PATH look: resolve it
                if hops > MAX_SYMLINK_HOPS:
                    raise
                pending.appendleft(name)
        return os.open(".", flags, dir_fd=top())
    finally:
        for fd in stack:
            os.close(fd)
