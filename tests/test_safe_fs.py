"""Escape attempts and basic operations against ``safe_fs.Workspace``, on both backends.

Every path case of SANDBOX.md ("File tools on the host side") is here, run against the openat2
backend and the O_NOFOLLOW walk fallback, on real files, symlinks, hard links, FIFOs and device
nodes in a temporary directory.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from openmanus_tui.tools import safe_fs
from openmanus_tui.tools.safe_fs import Workspace, WorkspacePathError

SECRET = "TOP-SECRET-OUTSIDE"
INSIDE = "inside-content"

BACKENDS = [
    pytest.param(
        "openat2",
        marks=pytest.mark.skipif(
            not safe_fs.openat2_available(), reason="openat2 not available on this kernel"
        ),
    ),
    "walk",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/ws (the workspace), tmp/ws-evil and tmp/outside (both must stay unreachable)."""
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    (ws / "file.txt").write_text(INSIDE)
    (ws / "sub" / "inner.txt").write_text(INSIDE)
    (tmp_path / "ws-evil").mkdir()
    (tmp_path / "ws-evil" / "secret.txt").write_text(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text(SECRET)
    (tmp_path / "outside" / "inner.txt").write_text(SECRET)
    return tmp_path


@pytest.fixture(params=BACKENDS)
def ws(request: pytest.FixtureRequest, tree: Path) -> Workspace:
    return Workspace(tree / "ws", backend=request.param, write_protected=(".git",))


def refused(ws: Workspace, op: str, path: str, *args: object) -> WorkspacePathError:
    with pytest.raises(WorkspacePathError) as info:
        getattr(ws, op)(path, *args)
    return info.value


def outside_untouched(tree: Path) -> None:
    assert (tree / "outside" / "secret.txt").read_text() == SECRET
    assert sorted(p.name for p in (tree / "outside").iterdir()) == ["inner.txt", "secret.txt"]


# --- lexical cases -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["../outside/secret.txt", "sub/../../outside/secret.txt", "../ws-evil/secret.txt", ".."],
)
def test_dotdot_escapes_are_refused(ws: Workspace, tree: Path, path: str) -> None:
    for op, extra in (("read_bytes", ()), ("write_bytes", (b"x",)), ("list_dir", ())):
        err = refused(ws, op, path, *extra)
        assert err.reason == "escape"
        assert "workspace" in str(err)
    outside_untouched(tree)
    assert (tree / "ws-evil" / "secret.txt").read_text() == SECRET


def test_dotdot_that_stays_inside_works(ws: Workspace) -> None:
    assert ws.read_text("sub/../file.txt") == INSIDE
    assert ws.read_text("./sub/./inner.txt") == INSIDE


@pytest.mark.parametrize("path", ["/etc/passwd", "/proc/self/root/etc/passwd", "//etc/passwd"])
def test_absolute_paths_are_refused(ws: Workspace, path: str) -> None:
    err = refused(ws, "read_bytes", path)
    assert err.reason == "escape" and "absolute" in str(err)


def test_absolute_path_into_the_workspace_is_still_refused(ws: Workspace) -> None:
    err = refused(ws, "read_bytes", str(ws.root / "file.txt"))
    assert "relative" in str(err)


@pytest.mark.parametrize("path", ["~", "~/.bashrc", "~root/.ssh/id_rsa"])
def test_home_paths_are_refused(ws: Workspace, path: str) -> None:
    assert refused(ws, "read_bytes", path).reason == "escape"
    assert refused(ws, "write_bytes", path, b"x").reason == "escape"


def test_a_file_really_named_tilde_is_reachable_with_dot_slash(ws: Workspace) -> None:
    ws.write_text("./~notes", "n")
    assert (ws.root / "~notes").read_text() == "n"


@pytest.mark.parametrize("path", ["file.txt\x00", "file.txt\x00/../../outside/secret.txt"])
def test_nul_bytes_are_refused(ws: Workspace, tree: Path, path: str) -> None:
    assert "NUL" in str(refused(ws, "read_bytes", path))
    assert "NUL" in str(refused(ws, "write_bytes", path, b"x"))
    assert (ws.root / "file.txt").read_text() == INSIDE
    outside_untouched(tree)


def test_empty_path_and_root_as_file_are_refused(ws: Workspace) -> None:
    assert "empty" in str(refused(ws, "read_bytes", ""))
    assert "root" in str(refused(ws, "write_bytes", "sub/..", b"x"))


# --- symlinks ------------------------------------------------------------------------------


def test_absolute_symlink_to_outside_file(ws: Workspace, tree: Path) -> None:
    os.symlink(tree / "outside" / "secret.txt", ws.root / "link")
    assert refused(ws, "read_bytes", "link").reason == "escape"
    assert refused(ws, "write_bytes", "link", b"pwned").reason == "escape"
    assert refused(ws, "stat", "link").reason == "escape"
    outside_untouched(tree)


def test_symlinked_directory_to_outside(ws: Workspace, tree: Path) -> None:
    os.symlink(tree / "outside", ws.root / "dlink")
    assert refused(ws, "read_bytes", "dlink/secret.txt").reason == "escape"
    assert refused(ws, "list_dir", "dlink").reason == "escape"
    assert refused(ws, "write_bytes", "dlink/new.txt", b"pwned").reason == "escape"
    assert refused(ws, "write_bytes", "dlink/deeper/new.txt", b"pwned").reason == "escape"
    outside_untouched(tree)


def test_relative_symlinks_that_escape(ws: Workspace, tree: Path) -> None:
    os.symlink("../outside/secret.txt", ws.root / "rel")
    os.symlink("../../ws-evil", ws.root / "sub" / "evil")
    assert refused(ws, "read_bytes", "rel").reason == "escape"
    assert refused(ws, "read_bytes", "sub/evil/secret.txt").reason == "escape"
    assert refused(ws, "write_bytes", "rel", b"pwned").reason == "escape"
    outside_untouched(tree)


def test_symlinks_that_stay_inside_work(ws: Workspace) -> None:
    os.symlink("../file.txt", ws.root / "sub" / "alias")
    os.symlink("sub", ws.root / "dalias")
    assert ws.read_text("sub/alias") == INSIDE
    assert ws.read_text("dalias/inner.txt") == INSIDE
    assert [e.name for e in ws.list_dir("dalias").entries] == ["alias", "inner.txt"]
    res = ws.write_text("sub/alias", "through the link")
    # Written to the link's target; the link itself is kept.
    assert res.path == "file.txt" and not res.created
    assert (ws.root / "sub" / "alias").is_symlink()
    assert (ws.root / "file.txt").read_text() == "through the link"
    ws.write_text("dalias/new.txt", "n")
    assert (ws.root / "sub" / "new.txt").read_text() == "n"


def test_dangling_inside_symlink_write_creates_the_target(ws: Workspace) -> None:
    os.symlink("sub/made.txt", ws.root / "dangling")
    res = ws.write_text("dangling", "made")
    assert res.created and res.path == "sub/made.txt"
    assert (ws.root / "dangling").read_text() == "made"


@pytest.mark.parametrize("op", ["read_bytes", "stat", "list_dir"])
def test_symlink_loops(ws: Workspace, op: str) -> None:
    os.symlink("loop2", ws.root / "loop1")
    os.symlink("loop1", ws.root / "loop2")
    os.symlink("self", ws.root / "self")
    for path in ("loop1", "self", "loop1/x"):
        assert refused(ws, op, path).reason == "symlink_loop"


def test_write_through_symlink_loop_is_refused(ws: Workspace) -> None:
    os.symlink("loop2", ws.root / "loop1")
    os.symlink("loop1", ws.root / "loop2")
    assert refused(ws, "write_bytes", "loop1", b"x").reason == "symlink_loop"


def test_symlinks_into_proc_self_root(ws: Workspace) -> None:
    os.symlink("/proc/self/root/etc/hostname", ws.root / "abs_proc")
    depth = len(ws.root.parts)
    os.symlink("../" * depth + "proc/self/root/etc/hostname", ws.root / "rel_proc")
    assert refused(ws, "read_bytes", "abs_proc").reason == "escape"
    assert refused(ws, "read_bytes", "rel_proc").reason == "escape"


@pytest.mark.parametrize("backend", BACKENDS)
def test_proc_magic_links_are_not_followed(backend: str) -> None:
    """With /proc/self as the root, 'root' and 'cwd' are magic links to the real filesystem."""
    proc = Workspace("/proc/self", backend=backend)  # type: ignore[arg-type]
    for path in ("root/etc/hostname", "cwd", "root"):
        err = refused(proc, "read_bytes", path)
        assert err.reason in ("symlink_loop", "escape"), err


# --- the symlink-swap race -----------------------------------------------------------------


def _swapper(link: Path, targets: list[str], stop: threading.Event) -> None:
    tmp = link.with_name(link.name + ".swap")
    i = 0
    while not stop.is_set():
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(targets[i % len(targets)], tmp)
        os.replace(tmp, link)  # atomic: the link always exists, pointing one way or the other
        i += 1
        time.sleep(0)  # let the reader run between swaps, so both sides are hit


@pytest.mark.parametrize(
    ("link", "path", "inside", "outside"),
    [
        ("swap", "swap", "file.txt", "{tree}/outside/secret.txt"),
        ("swap", "swap", "file.txt", "../outside/secret.txt"),
        ("dswap", "dswap/inner.txt", "sub", "{tree}/outside"),
        ("dswap", "dswap/inner.txt", "sub", "../outside"),
    ],
)
def test_symlink_swapped_mid_read_never_leaks(
    ws: Workspace, tree: Path, link: str, path: str, inside: str, outside: str
) -> None:
    targets = [inside, outside.format(tree=tree)]
    os.symlink(inside, ws.root / link)
    stop = threading.Event()
    thread = threading.Thread(target=_swapper, args=(ws.root / link, targets, stop), daemon=True)
    leaks = ok = blocked = 0
    thread.start()
    try:
        for _ in range(2000):
            try:
                data = ws.read_text(path)
            except WorkspacePathError:
                blocked += 1
                continue
            if SECRET in data:
                leaks += 1
            else:
                assert data == INSIDE
                ok += 1
    finally:
        stop.set()
        thread.join(timeout=10)
    assert leaks == 0
    # Both sides of the race were exercised, so the zero above means something.
    assert ok > 0 and blocked > 0, (ok, blocked)


def test_symlink_swapped_mid_write_never_writes_outside(ws: Workspace, tree: Path) -> None:
    os.symlink("sub", ws.root / "dswap")
    stop = threading.Event()
    targets = ["sub", str(tree / "outside")]
    thread = threading.Thread(target=_swapper, args=(ws.root / "dswap", targets, stop), daemon=True)
    written = blocked = 0
    thread.start()
    try:
        for i in range(500):
            try:
                ws.write_text(f"dswap/w{i}.txt", "x")
                written += 1
            except WorkspacePathError:
                blocked += 1
    finally:
        stop.set()
        thread.join(timeout=10)
    outside_untouched(tree)
    assert written > 0 and blocked > 0, (written, blocked)
    assert len(list((ws.root / "sub").glob("w*.txt"))) == written


# --- hard links, special files, names ------------------------------------------------------


def test_hardlink_to_outside_file(ws: Workspace, tree: Path) -> None:
    os.link(tree / "outside" / "secret.txt", ws.root / "hl")
    err = refused(ws, "write_bytes", "hl", b"pwned")
    assert err.reason == "hardlinked" and "hard links" in str(err)
    assert refused(ws, "read_bytes", "hl").reason == "hardlinked"
    outside_untouched(tree)
    lenient = Workspace(ws.root, backend=ws.backend, allow_hardlinked_reads=True)
    assert lenient.read_text("hl") == SECRET  # the documented opt-in
    assert refused(lenient, "write_bytes", "hl", b"pwned").reason == "hardlinked"


def _finishes(func, *args) -> object:
    """Run ``func`` in a thread; fail (instead of hanging) if it blocks, e.g. on a FIFO."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = func(*args)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the call blocked"
    return box.get("error", box.get("value"))


def test_fifo_is_refused_without_blocking(ws: Workspace) -> None:
    os.mkfifo(ws.root / "fifo")
    for op, args in (("read_bytes", ("fifo",)), ("write_bytes", ("fifo", b"x"))):
        err = _finishes(getattr(ws, op), *args)
        assert isinstance(err, WorkspacePathError) and err.reason == "not_regular", err
    assert stat.S_ISFIFO(os.lstat(ws.root / "fifo").st_mode)


def test_device_node_is_refused(ws: Workspace) -> None:
    try:
        os.mknod(ws.root / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    except PermissionError as exc:
        pytest.skip(f"cannot create a device node here: {exc}")
    err = _finishes(ws.read_bytes, "zero")
    assert isinstance(err, WorkspacePathError) and err.reason == "not_regular"
    assert "device" in str(err)
    assert refused(ws, "write_bytes", "zero", b"x").reason == "not_regular"
    assert stat.S_ISCHR(os.lstat(ws.root / "zero").st_mode)


def test_unix_socket_is_refused(ws: Workspace, tmp_path: Path) -> None:
    import socket

    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(ws.root / "sock"))
        assert refused(ws, "read_bytes", "sock").reason == "not_regular"
    finally:
        sock.close()


def test_directories_are_not_files(ws: Workspace) -> None:
    assert refused(ws, "read_bytes", "sub").reason == "is_directory"
    assert refused(ws, "write_bytes", "sub", b"x").reason == "is_directory"
    assert (ws.root / "sub").is_dir()


def test_trailing_slash(ws: Workspace) -> None:
    err = refused(ws, "read_bytes", "file.txt/")
    assert err.reason == "not_directory" and "ends with '/'" in str(err)
    assert "a file name is needed" in str(refused(ws, "write_bytes", "new/", b"x"))
    assert not (ws.root / "new").exists()
    assert [e.name for e in ws.list_dir("sub/").entries] == ["inner.txt"]
    assert stat.S_ISDIR(ws.stat("sub/").st_mode)
    assert not ws.exists("file.txt/")


def test_very_long_names(ws: Workspace) -> None:
    longest = "n" * 255
    ws.write_text(longest, "ok")
    assert ws.read_text(longest) == "ok"
    assert refused(ws, "read_bytes", "n" * 256).reason == "too_long"
    assert refused(ws, "write_bytes", "é" * 128, b"x").reason == "too_long"  # 256 bytes
    deep = "/".join(["d" * 200] * 21)  # 4220 bytes
    err = refused(ws, "write_bytes", deep, b"x")
    assert err.reason == "too_long" and "4095" in str(err)
    assert not (ws.root / ("d" * 200)).exists()


def test_a_component_that_is_a_file(ws: Workspace) -> None:
    assert refused(ws, "read_bytes", "file.txt/x").reason == "not_directory"
    assert refused(ws, "write_bytes", "file.txt/x", b"y").reason == "not_directory"


# --- protected names (.git) ----------------------------------------------------------------


@pytest.fixture
def git_ws(ws: Workspace) -> Workspace:
    (ws.root / ".git" / "hooks").mkdir(parents=True)
    (ws.root / ".git" / "config").write_text("[core]\n")
    return ws


@pytest.mark.parametrize(
    "path",
    [
        ".git/hooks/pre-commit",
        ".git/config",
        ".git/hooks/new/dir/x",
        "sub/../.git/config",
        "./.git/hooks/post-checkout",
        ".GIT/config",
        "vendor/lib/.git/hooks/pre-commit",
    ],
)
def test_git_hooks_and_config_are_write_protected(git_ws: Workspace, path: str) -> None:
    err = refused(git_ws, "write_bytes", path, b"#!/bin/sh\necho pwned\n")
    assert err.reason == "protected" and ".git" in str(err)
    assert (git_ws.root / ".git" / "config").read_text() == "[core]\n"
    assert list((git_ws.root / ".git" / "hooks").iterdir()) == []
    assert not (git_ws.root / "vendor").exists()
    assert not (git_ws.root / ".GIT").exists()


def test_symlinks_into_git_are_write_protected(git_ws: Workspace) -> None:
    os.symlink(".git/hooks", git_ws.root / "hooks")
    os.symlink(".git", git_ws.root / "g")
    os.symlink(".git/config", git_ws.root / "cfg")
    for path in ("hooks/pre-commit", "g/config", "g/newdir/x", "cfg"):
        assert refused(git_ws, "write_bytes", path, b"x").reason == "protected", path
    assert list((git_ws.root / ".git" / "hooks").iterdir()) == []
    assert sorted(p.name for p in (git_ws.root / ".git").iterdir()) == ["config", "hooks"]
    assert git_ws.read_text(".git/config") == "[core]\n"  # reading is fine


# --- ordinary operations -------------------------------------------------------------------


def test_write_creates_parents_atomically_and_reports(ws: Workspace) -> None:
    res = ws.write_text("a/b/c.txt", "hello")
    assert (res.path, res.created, res.size, res.previous_size) == ("a/b/c.txt", True, 5, None)
    res = ws.write_text("a/b/c.txt", "hello again")
    assert (res.created, res.previous_size) == (False, 5)
    assert (ws.root / "a" / "b" / "c.txt").read_text() == "hello again"
    assert sorted(p.name for p in (ws.root / "a" / "b").iterdir()) == ["c.txt"]  # no temp left


def test_overwrite_keeps_mode(ws: Workspace) -> None:
    script = ws.root / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o750)
    ws.write_text("run.sh", "#!/bin/sh\necho hi\n")
    assert stat.S_IMODE(script.stat().st_mode) == 0o750


def test_failed_write_leaves_no_temp_file(ws: Workspace) -> None:
    (ws.root / "sub" / "d").mkdir()
    with pytest.raises(WorkspacePathError):
        ws.write_bytes("sub/d", b"x")
    assert sorted(p.name for p in (ws.root / "sub").iterdir()) == ["d", "inner.txt"]


def test_read_bytes_limit_stat_exists(ws: Workspace) -> None:
    assert ws.read_bytes("file.txt", 6) == INSIDE.encode()[:6]
    assert ws.stat("file.txt").st_size == len(INSIDE)
    assert ws.exists("file.txt") and ws.exists("sub") and not ws.exists("nope")
    assert not ws.exists("file.txt/x")
    with pytest.raises(WorkspacePathError):
        ws.exists("../outside/secret.txt")  # refusals are not "missing"
    assert refused(ws, "read_bytes", "nope").reason == "not_found"


def test_list_dir_kinds_sizes_and_limit(ws: Workspace) -> None:
    os.symlink("file.txt", ws.root / "ln")
    os.mkfifo(ws.root / "fifo")
    listing = ws.list_dir(".")
    kinds = {e.name: (e.kind, e.size) for e in listing.entries}
    assert kinds == {
        "fifo": ("other", 0),
        "file.txt": ("file", len(INSIDE)),
        "ln": ("symlink", 0),
        "sub": ("dir", 0),
    }
    assert not listing.truncated
    limited = ws.list_dir(".", limit=2)
    assert len(limited.entries) == 2 and limited.truncated


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspacePathError, match="does not exist"):
        Workspace(tmp_path / "nope")


def test_default_backend_prefers_openat2(tree: Path) -> None:
    expected = "openat2" if safe_fs.openat2_available() else "walk"
    assert Workspace(tree / "ws").backend == expected
