"""Landlock via raw syscalls: the ruleset is built in the parent, applied in the child.

The ruleset fd is built once per sandbox; ``restrict_child`` runs in ``preexec_fn`` and only
makes two syscalls, so it does not touch locks another thread could hold.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Iterable

_NR = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
_PR_SET_NO_NEW_PRIVS = 38
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

READ_EXEC = EXECUTE | READ_FILE | READ_DIR


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _nr() -> tuple[int, int, int] | None:
    return _NR.get(platform.machine())


def abi_version() -> int:
    """0 when Landlock is missing (old kernel, not in ``lsm=``, other architecture)."""
    nr = _nr()
    if nr is None:
        return 0
    res = _libc.syscall(nr[0], None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return int(res) if res > 0 else 0


def _fs_mask(abi: int) -> int:
    mask = (1 << 13) - 1
    if abi >= 2:
        mask |= REFER
    if abi >= 3:
        mask |= TRUNCATE
    if abi >= 5:
        mask |= IOCTL_DEV
    return mask


def build_ruleset(
    read_only: Iterable[str], read_write: Iterable[str], *, block_tcp: bool, abi: int
) -> int:
    """Return a ruleset fd: read/exec on ``read_only``, everything on ``read_write``.

    With ABI >= 4 TCP bind/connect is denied when ``block_tcp``; with ABI >= 6 abstract Unix
    sockets and signals are scoped to the sandbox.
    """
    nr = _nr()
    if nr is None or abi < 1:
        raise OSError("Landlock is not available")
    fs_mask = _fs_mask(abi)
    attr = _RulesetAttr(fs_mask, 0, 0)
    size = 8
    if abi >= 4:
        size = 16
        attr.handled_access_net = (NET_BIND_TCP | NET_CONNECT_TCP) if block_tcp else 0
    if abi >= 6:
        size = 24
        attr.scoped = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL
    fd = _libc.syscall(nr[0], ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock_create_ruleset: {os.strerror(err)}")
    try:
        for paths, access in ((read_only, READ_EXEC), (read_write, fs_mask)):
            for path in paths:
                _add_path(int(fd), path, access, fs_mask)
    except BaseException:
        os.close(fd)
        raise
    os.set_inheritable(int(fd), False)
    return int(fd)


def _add_path(ruleset_fd: int, path: str, access: int, fs_mask: int) -> None:
    nr = _nr()
    assert nr is not None
    try:
        pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a missing optional path (e.g. /lib64) is simply not allowed
    try:
        if not os.path.isdir(f"/proc/self/fd/{pfd}"):
            # rights that only make sense on directories are refused for files
            access &= EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
        rule = _PathBeneath(access & fs_mask, pfd)
        res = _libc.syscall(
            nr[1],
            ctypes.c_int(ruleset_fd),
            ctypes.c_int(_RULE_PATH_BENEATH),
            ctypes.byref(rule),
            ctypes.c_uint32(0),
        )
        if res < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"landlock_add_rule({path}): {os.strerror(err)}")
    finally:
        os.close(pfd)


def restrict_child(ruleset_fd: int) -> None:
    """Call in ``preexec_fn``: no new privileges, then enforce the ruleset on this process."""
    nr = _nr()
    assert nr is not None
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS)")
    if _libc.syscall(nr[2], ctypes.c_int(ruleset_fd), ctypes.c_uint32(0)) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self")
