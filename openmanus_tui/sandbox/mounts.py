"""Mounts made as root inside the sandbox's helper mount namespace (never on the host's table).

Run as ``python -m openmanus_tui.sandbox.mounts setup|protect PLAN_JSON`` by ``HostView``:

* ``setup`` binds the workspace at its view path. When the kernel and file system allow it the
  bind is **id-mapped**: the workspace owner's uid/gid appear as the sandbox's, files the sandbox
  creates are stored with the owner's ids, and nothing on disk is ever chowned (defect 10 of
  issue 12). Otherwise a plain bind is made and the caller falls back to handing files over and
  back around each command (``ownership.py``).
* the host path of the workspace is bound onto itself ``nosuid,nodev`` in the namespace: a
  command below L3 can reach it there, and a set-uid file it made through the id map belongs
  to the owner on disk (``ownership.SetidSweep`` removes such bits after each command);
* both modes then apply **protections** to paths relative to the workspace, at the host path
  *and* at the view path (at L0 a command may reach either):

  - ``ro``   the entry bound onto itself read-only (``.git`` directories and files);
  - ``mask`` an empty read-only file or directory bound over it (the program's own state);
  - ``pin``  the directory bound onto itself, still writable: a mount point cannot be renamed
    or removed, so a protected entry below it cannot be moved away and replaced.

Every target is opened with ``O_PATH | O_NOFOLLOW`` one component at a time from the workspace
directory, and mounted with the new mount API (``open_tree`` + ``mount_setattr`` +
``move_mount`` onto the fd), so a symlink swapped in by a command cannot redirect a mount, and a
read-only mount is never attached writable, not even for an instant.
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import subprocess
import sys
import time
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_NR_OPEN_TREE, _NR_MOVE_MOUNT, _NR_MOUNT_SETATTR = 428, 429, 442
_OPEN_TREE_CLONE = 1
_AT_EMPTY_PATH = 0x1000
_AT_RECURSIVE = 0x8000
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_IDMAP = 0x00100000


class _MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def _check(res: int, what: str) -> int:
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return res


def _clone(fd: int, *, recursive: bool = False) -> int:
    flags = _OPEN_TREE_CLONE | os.O_CLOEXEC | _AT_EMPTY_PATH | (_AT_RECURSIVE if recursive else 0)
    return _check(_libc.syscall(_NR_OPEN_TREE, fd, b"", flags), "open_tree")


def _setattr(tree: int, attr_set: int, userns_fd: int = 0) -> None:
    attr = _MountAttr(attr_set, 0, 0, userns_fd)
    _check(
        _libc.syscall(
            _NR_MOUNT_SETATTR, tree, b"", _AT_EMPTY_PATH, ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        ),
        "mount_setattr",
    )


def _attach(tree: int, target_fd: int) -> None:
    flags = _MOVE_MOUNT_F_EMPTY_PATH | _MOVE_MOUNT_T_EMPTY_PATH
    _check(_libc.syscall(_NR_MOVE_MOUNT, tree, b"", target_fd, b"", flags), "move_mount")


def open_beneath(root: str, rel: str) -> int:
    """An O_PATH fd of ``root/rel`` reached without following any symlink (or ``..``)."""
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in [p for p in rel.split("/") if p not in ("", ".")]:
            if part == "..":
                raise OSError(22, f"'..' in {rel!r}")
            nxt = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise OSError(40, f"{rel!r} is a symlink")
        return fd
    except BaseException:
        os.close(fd)
        raise


def _userns_fd(owner: tuple[int, int], to: tuple[int, int]) -> int:
    """A user namespace mapping the owner's ids (on disk) to the sandbox's ids (in the mount)."""
    child = subprocess.Popen(
        ["unshare", "--user", "--", "sleep", "30"],
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        # the child must have entered its namespace before the maps are written (a loaded
        # machine can take a while to get there: wait up to 5 s)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if os.readlink(f"/proc/{child.pid}/ns/user") != os.readlink("/proc/self/ns/user"):
                break
            time.sleep(0.001)
        with open(f"/proc/{child.pid}/uid_map", "w") as fh:
            fh.write(f"{owner[0]} {to[0]} 1\n")
        with open(f"/proc/{child.pid}/setgroups", "w") as fh:
            fh.write("deny")
        with open(f"/proc/{child.pid}/gid_map", "w") as fh:
            fh.write(f"{owner[1]} {to[1]} 1\n")
        return os.open(f"/proc/{child.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        child.kill()
        child.wait()


def bind_workspace(workspace: str, view: str, idmap: list[int] | None) -> bool:
    """Bind ``workspace`` at ``view``; True when the bind is id-mapped."""
    src = os.open(workspace, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    dst = os.open(view, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        mapped = False
        tree = _clone(src)
        try:
            if idmap:
                try:
                    ns = _userns_fd((idmap[0], idmap[1]), (idmap[2], idmap[3]))
                    try:
                        # nosuid: a set-uid file made through the map is the owner's on disk
                        _setattr(tree, MOUNT_ATTR_IDMAP | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID, ns)
                        mapped = True
                    finally:
                        os.close(ns)
                except OSError:
                    mapped = False  # file system or kernel without id-mapped mounts
            if not mapped:
                _setattr(tree, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID)
            _attach(tree, dst)
        finally:
            os.close(tree)
        return mapped
    finally:
        os.close(src)
        os.close(dst)


def protect(root: str, rel: str, how: str, mask_root: str) -> None:
    """Apply one protection (``ro``, ``mask`` or ``pin``) to ``root/rel``."""
    target = open_beneath(root, rel)
    try:
        st = os.fstat(target)
        if how == "mask":
            name = "dir" if stat.S_ISDIR(st.st_mode) else "file"
            src = os.open(os.path.join(mask_root, name), os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
        else:
            src = os.dup(target)
        try:
            tree = _clone(src)
        finally:
            os.close(src)
        try:
            attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
            if how in ("ro", "mask"):
                attrs |= MOUNT_ATTR_RDONLY
            _setattr(tree, attrs)
            _attach(tree, target)
        finally:
            os.close(tree)
    finally:
        os.close(target)


def apply(plan: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"idmap": False, "done": [], "failed": []}
    if plan.get("mode") == "setup":
        out["idmap"] = bind_workspace(plan["workspace"], plan["view"], plan.get("idmap"))
        # The host path of the workspace, as commands below L3 can also reach it in this
        # namespace: nosuid and nodev there too (the workspace bind itself is both already).
        protect(plan["workspace"], "", "pin", plan["mask_root"])
    for item in plan.get("protect", []):
        rel, how = item["rel"], item["how"]
        try:
            for root in (plan["workspace"], plan["view"]):
                protect(root, rel, how, plan["mask_root"])
            out["done"].append(rel)
        except OSError as exc:
            out["failed"].append(f"{rel}: {exc.strerror or exc}")
    return out


def main(argv: list[str]) -> int:
    plan = json.loads(argv[1])
    plan["mode"] = argv[0]
    try:
        out = apply(plan)
    except OSError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
