"""Tests of ``openmanus_tui.store.snapshots``: real git, real files, real symlinks.

Equality is checked on a manifest of the workspace (path -> exec bit + sha256, or link target),
built here with ``os.scandir`` independently of the code under test.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest

from openmanus_tui.errors import OpenManusError
from openmanus_tui.store import snapshots as snap
from openmanus_tui.store.snapshots import (
    GitUnavailable,
    RestoreConflict,
    SnapshotError,
    SnapshotNotFound,
    SnapshotStoreError,
    UnsafeSnapshot,
    WorkspaceSnapshots,
    default_store_dir,
)

BIG = 20 * 1024 * 1024


def manifest(root: Path, *, skip_git: bool = True) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}

    def walk(directory: Path, prefix: str) -> None:
        for entry in os.scandir(directory):
            if skip_git and entry.name == ".git":
                continue
            rel = prefix + entry.name
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(entry.path))
            elif stat.S_ISDIR(st.st_mode):
                walk(Path(entry.path), rel + "/")
            else:
                digest = hashlib.sha256(Path(entry.path).read_bytes()).hexdigest()
                out[rel] = ("exec" if st.st_mode & stat.S_IXUSR else "file", digest)

    walk(root, "")
    return out


def git(store: Path, *args: str, input: bytes | None = None) -> bytes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_DIR=str(store), GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    return subprocess.run(["git", *args], input=input, env=env, check=True,
                          capture_output=True).stdout


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "mod.py").write_text("def f():\n    return 1\n")
    (root / "README.md").write_text("# hello\n")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "données avec espaces.txt").write_text("unicode ✓\n")
    (root / "new\nline").write_bytes(b"odd name\n")
    (root / "blob.bin").write_bytes(bytes(range(256)) * 40)
    (root / "link-to-readme").symlink_to("README.md")
    (root / "link-outside").symlink_to("/etc/hostname")
    (root / "dangling").symlink_to("does/not/exist")
    return root


@pytest.fixture
def snaps(tmp_path: Path, ws: Path) -> WorkspaceSnapshots:
    return WorkspaceSnapshots(tmp_path / "data" / "snapshots" / "s1.git", ws)


def mutate(ws: Path) -> dict[str, str]:
    """Every kind of change; returns the expected status per path."""
    (ws / "src" / "pkg" / "mod.py").write_text("def f():\n    return 2\n")   # edit
    (ws / "src" / "new.txt").write_text("added\n")                          # add
    (ws / "README.md").unlink()                                             # delete
    (ws / "blob.bin").chmod(0o755)                                          # chmod +x
    (ws / "données avec espaces.txt").unlink()                              # file -> symlink
    (ws / "données avec espaces.txt").symlink_to("/etc/passwd")
    (ws / "big.bin").write_bytes(os.urandom(BIG))                           # big binary
    (ws / "link-to-readme").unlink()                                        # symlink -> file
    (ws / "link-to-readme").write_text("now a file\n")
    (ws / "empty-dir").mkdir()                                              # not captured
    return {
        "src/pkg/mod.py": "modified", "src/new.txt": "added", "README.md": "deleted",
        "blob.bin": "modified", "données avec espaces.txt": "modified", "big.bin": "added",
        "link-to-readme": "modified",
    }


def test_restore_is_byte_for_byte_both_ways(snaps: WorkspaceSnapshots, ws: Path) -> None:
    before = manifest(ws)
    t1 = snaps.snapshot()
    assert snaps.snapshot() == t1  # unchanged workspace, same id
    mutate(ws)
    after = manifest(ws)
    t2 = snaps.snapshot()
    assert t2 != t1

    report = snaps.restore(t1)
    assert manifest(ws) == before
    assert report.before == t2
    assert set(report.written) == {"src/pkg/mod.py", "README.md", "données avec espaces.txt",
                                   "link-to-readme"}
    assert set(report.deleted) == {"src/new.txt", "big.bin"}
    assert report.mode_changed == ["blob.bin"]
    assert os.readlink(ws / "link-outside") == "/etc/hostname"  # a link, not a copy
    assert (ws / "empty-dir").is_dir()  # not captured, not ours to delete

    report = snaps.restore(t2)
    assert manifest(ws) == after
    assert (ws / "big.bin").stat().st_size == BIG
    assert snaps.restore(t2).changed is False
    assert snaps.changed_since(t2) == []


def test_changed_since_lists_exactly_the_changes(snaps: WorkspaceSnapshots, ws: Path) -> None:
    t1 = snaps.snapshot()
    assert snaps.changed_since(t1) == []
    expected = mutate(ws)
    changes = snaps.changed_since(t1)
    assert {c.path: c.status for c in changes} == expected
    by_path = {c.path: c for c in changes}
    assert by_path["blob.bin"].mode_only
    assert (by_path["blob.bin"].old_mode, by_path["blob.bin"].new_mode) == ("100644", "100755")
    assert by_path["données avec espaces.txt"].new_mode == "120000"
    assert by_path["big.bin"].new_size == BIG
    # changed_since does not move the workspace
    assert (ws / "big.bin").exists() and not (ws / "README.md").exists()


def test_same_size_edit_with_old_mtime_is_seen(snaps: WorkspaceSnapshots, ws: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snap, "RACY_NS", 0)  # trust the stat cache at once
    path = ws / "src" / "pkg" / "mod.py"
    t1 = snaps.snapshot()
    st = path.stat()
    with path.open("r+b") as fh:  # same inode, same size, mtime put back
        fh.write(b"DEF")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert [c.path for c in snaps.changed_since(t1)] == ["src/pkg/mod.py"]
    assert snaps.snapshot() != t1


def test_diff_between_trees(snaps: WorkspaceSnapshots, ws: Path) -> None:
    t1 = snaps.snapshot()
    expected = mutate(ws)
    (ws / "src" / "large.txt").write_text("line\n" * 50_000)
    t2 = snaps.snapshot()
    changes = {c.path: c for c in snaps.diff(t1, t2)}
    assert {p: c.status for p, c in changes.items()} == {**expected, "src/large.txt": "added"}
    mod = changes["src/pkg/mod.py"]
    assert mod.diff is not None
    assert "-    return 1\n+    return 2\n" in mod.diff
    assert mod.diff.startswith("--- a/src/pkg/mod.py\n+++ b/src/pkg/mod.py\n")
    assert changes["src/new.txt"].diff == ("--- /dev/null\n+++ b/src/new.txt\n"
                                           "@@ -0,0 +1 @@\n+added\n")
    assert changes["big.bin"].too_large and changes["big.bin"].diff is None
    assert changes["src/large.txt"].too_large
    assert changes["blob.bin"].mode_only and changes["blob.bin"].diff is None
    assert changes["README.md"].status == "deleted" and "-# hello" in changes["README.md"].diff
    (ws / "small.bin").write_bytes(b"\x00\x01binary")
    t3 = snaps.snapshot()
    [added] = snaps.diff(t2, t3)
    assert added.path == "small.bin" and added.binary and added.diff is None
    assert snaps.diff(t3, t3) == []


def test_workspace_git_dirs_are_never_captured_or_touched(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    (ws / "tracked.txt").write_text("v1\n")
    nested = ws / "vendor" / "lib"
    nested.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(nested)], check=True)  # no commit: git add fails
    (nested / "code.c").write_text("int x;\n")
    snaps = WorkspaceSnapshots(tmp_path / "store.git", ws)
    t1 = snaps.snapshot()
    listed = git(snaps.store_dir, "ls-tree", "-r", "--name-only", t1).decode().split("\n")
    assert "vendor/lib/code.c" in listed  # nested repo files as plain files
    assert not any(p == ".git" or p.startswith(".git/") or "/.git/" in p for p in listed)

    (ws / "tracked.txt").write_text("v2\n")
    (ws / ".git" / "description").write_text("changed by the user\n")
    (nested / ".git" / "marker").write_text("keep me\n")
    git_before = manifest(ws / ".git", skip_git=False)
    nested_before = manifest(nested / ".git", skip_git=False)
    snaps.restore(t1)
    assert (ws / "tracked.txt").read_text() == "v1\n"
    assert manifest(ws / ".git", skip_git=False) == git_before
    assert manifest(nested / ".git", skip_git=False) == nested_before


def test_restore_never_writes_through_a_symlink(snaps: WorkspaceSnapshots, ws: Path,
                                                tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    t1 = snaps.snapshot()
    # the agent replaces a directory by a link to somewhere else, and a file by a link
    (ws / "src" / "pkg" / "mod.py").unlink()
    (ws / "src" / "pkg").rmdir()
    (ws / "src" / "pkg").symlink_to(outside)
    (ws / "README.md").unlink()
    (ws / "README.md").symlink_to(outside / "readme-target")
    snaps.restore(t1)
    assert list(outside.iterdir()) == []
    assert (ws / "src" / "pkg").is_dir() and not (ws / "src" / "pkg").is_symlink()
    assert (ws / "README.md").read_text() == "# hello\n" and not (ws / "README.md").is_symlink()


def test_type_changes_and_emptied_directories(snaps: WorkspaceSnapshots, ws: Path) -> None:
    t1 = snaps.snapshot()
    before = manifest(ws)
    (ws / "README.md").unlink()
    (ws / "README.md").mkdir()                      # file -> directory
    (ws / "README.md" / "inner.txt").write_text("x")
    for p in (ws / "src" / "pkg").iterdir():        # directory -> file
        p.unlink()
    (ws / "src" / "pkg").rmdir()
    (ws / "src" / "pkg").write_text("flat\n")
    (ws / "deep" / "er" / "est").mkdir(parents=True)
    (ws / "deep" / "er" / "est" / "f").write_text("f")
    t2 = snaps.snapshot()
    report = snaps.restore(t1)
    assert manifest(ws) == before
    assert not (ws / "deep").exists()  # emptied by the restore, so removed
    assert set(report.dirs_removed) >= {"deep", "deep/er", "deep/er/est", "README.md"}
    snaps.restore(t2)
    assert (ws / "src" / "pkg").read_text() == "flat\n"
    assert (ws / "README.md" / "inner.txt").read_text() == "x"


def test_uncaptured_content_blocking_a_restore_is_a_conflict(snaps: WorkspaceSnapshots,
                                                             ws: Path) -> None:
    t1 = snaps.snapshot()
    (ws / "README.md").unlink()
    (ws / "README.md").mkdir()
    os.mkfifo(ws / "README.md" / "pipe")  # special files are not captured
    (ws / "src" / "pkg" / "mod.py").write_text("changed\n")
    with pytest.raises(RestoreConflict, match=r"README\.md"):
        snaps.restore(t1)
    assert (ws / "src" / "pkg" / "mod.py").read_text() == "changed\n"  # nothing was changed


def _tree(store: Path, entries: list[tuple[str, str, str, bytes]]) -> str:
    listing = b"".join(f"{mode} {kind} {oid}\t".encode() + name + b"\0"
                       for mode, kind, oid, name in entries)
    return git(store, "mktree", "-z", input=listing).decode().strip()


@pytest.mark.parametrize("bad", [b"..", b".git"])
def test_tampered_tree_is_refused_before_any_change(snaps: WorkspaceSnapshots, ws: Path,
                                                    tmp_path: Path, bad: bytes) -> None:
    snaps.snapshot()
    store = snaps.store_dir
    blob = git(store, "hash-object", "-w", "--stdin", input=b"pwned\n").decode().strip()
    inner = _tree(store, [("100644", "blob", blob, b"evil")])
    evil = _tree(store, [("040000", "tree", inner, bad),
                         ("100644", "blob", blob, b"README.md")])
    with pytest.raises(UnsafeSnapshot):
        snaps.restore(evil)
    assert not (tmp_path / "evil").exists()
    assert not (ws / ".git").exists()
    assert (ws / "README.md").read_text() == "# hello\n"


def test_tree_with_file_and_directory_of_one_name_is_refused(snaps: WorkspaceSnapshots) -> None:
    snaps.snapshot()
    store = snaps.store_dir
    blob = git(store, "hash-object", "-w", "--stdin", input=b"x").decode().strip()
    inner = _tree(store, [("100644", "blob", blob, b"f")])
    # git's sort puts "a" (file) and "a/" (tree) apart; --literally lets us write both
    body = (b"100644 a\0" + bytes.fromhex(blob) + b"40000 a\0" + bytes.fromhex(inner))
    bad = git(store, "hash-object", "-w", "-t", "tree", "--literally", "--stdin",
              input=body).decode().strip()
    with pytest.raises(UnsafeSnapshot, match="both a file and a directory"):
        snaps.restore(bad)


def test_prune_keeps_roots_and_shrinks_the_store(snaps: WorkspaceSnapshots, ws: Path) -> None:
    t1 = snaps.snapshot()
    (ws / "big.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    t_big = snaps.snapshot()
    (ws / "big.bin").unlink()
    (ws / "README.md").write_text("# v3\n")
    t3 = snaps.snapshot()
    size_before = snaps.size_bytes()
    assert size_before > 4 * 1024 * 1024

    report = snaps.prune([t1, t3, "0" * 40])
    assert sorted(report.kept) == sorted([t1, t3]) and report.missing == ["0" * 40]
    assert snaps.size_bytes() < 1024 * 1024 < size_before
    assert report.size_after == snaps.size_bytes()
    with pytest.raises(SnapshotNotFound):
        snaps.restore(t_big)
    snaps.restore(t1)
    assert (ws / "README.md").read_text() == "# hello\n"
    git(snaps.store_dir, "fsck", "--strict", "--no-dangling")
    # the stat cache named the pruned blob; a new snapshot must store it again
    (ws / "big.bin").write_bytes(b"back\n")
    t4 = snaps.snapshot()
    snaps.restore(t3)
    snaps.restore(t4)
    assert (ws / "big.bin").read_bytes() == b"back\n"

    other = WorkspaceSnapshots(snaps.store_dir, ws)  # a second instance prunes everything
    other.prune([])
    snaps.restore(snaps.snapshot())  # must not trust ids from before that prune
    assert git(snaps.store_dir, "cat-file", "-t", snaps.snapshot()).strip() == b"tree"


def test_corrupt_store_gives_a_clear_error(snaps: WorkspaceSnapshots, ws: Path) -> None:
    t1 = snaps.snapshot()
    oid = git(snaps.store_dir, "rev-parse", f"{t1}:README.md").decode().strip()
    obj = snaps.store_dir / "objects" / oid[:2] / oid[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"garbage, not zlib")
    (ws / "README.md").write_text("changed\n")
    with pytest.raises(SnapshotStoreError) as info:
        snaps.restore(t1)
    message = str(info.value)
    assert "snapshot store" in message and "\n" not in message and "Traceback" not in message
    assert info.value.hint

    fresh = WorkspaceSnapshots(snaps.store_dir, ws)
    shutil.rmtree(snaps.store_dir / "objects")
    with pytest.raises(SnapshotStoreError, match="damaged"):
        fresh.snapshot()


def test_blob_with_wrong_content_is_caught_on_restore(snaps: WorkspaceSnapshots,
                                                      ws: Path) -> None:
    t1 = snaps.snapshot()
    # well-formed object, wrong content: only the hash check on restore can tell
    oid = git(snaps.store_dir, "rev-parse", f"{t1}:run.sh").decode().strip()
    obj = snaps.store_dir / "objects" / oid[:2] / oid[2:]
    obj.chmod(0o644)
    fake = b"#!/bin/sh\nrm -rf x\n"
    obj.write_bytes(zlib.compress(b"blob %d\0" % len(fake) + fake))
    (ws / "run.sh").write_text("changed\n")
    with pytest.raises(SnapshotStoreError, match="does not match its id"):
        snaps.restore(t1)
    assert (ws / "run.sh").read_text() == "changed\n"
    assert not [p for p in ws.iterdir() if p.name.startswith(".omsnap-")]  # temp file gone


def test_not_a_store_and_bad_ids(tmp_path: Path, ws: Path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    with pytest.raises(SnapshotStoreError, match="not a snapshot store"):
        WorkspaceSnapshots(junk, ws).snapshot()
    with pytest.raises(SnapshotError, match="outside the workspace"):
        WorkspaceSnapshots(ws / ".snapshots", ws)
    snaps = WorkspaceSnapshots(tmp_path / "s.git", ws)
    t1 = snaps.snapshot()
    with pytest.raises(SnapshotNotFound, match="40 hex"):
        snaps.restore("HEAD")
    with pytest.raises(SnapshotNotFound, match="not in the store"):
        snaps.restore("1" * 40)
    blob = git(snaps.store_dir, "rev-parse", f"{t1}:README.md").decode().strip()
    with pytest.raises(SnapshotNotFound, match="is a blob"):
        snaps.changed_since(blob)
    with pytest.raises(SnapshotError, match="invalid session id"):
        default_store_dir(tmp_path, "../x")
    assert default_store_dir(tmp_path, "abc-1") == tmp_path / "snapshots" / "abc-1.git"


def test_missing_git_is_a_clear_error(tmp_path: Path, ws: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(GitUnavailable, match="git is not installed") as info:
        WorkspaceSnapshots(tmp_path / "s.git", ws)
    assert isinstance(info.value, OpenManusError)


def test_unreadable_file_is_a_clear_error(snaps: WorkspaceSnapshots, ws: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    (ws / "secret").write_text("x")
    (ws / "secret").chmod(0)
    with pytest.raises(SnapshotError, match="cannot read workspace file secret"):
        snaps.snapshot()


def test_one_operation_at_a_time_per_store(snaps: WorkspaceSnapshots, ws: Path) -> None:
    t1 = snaps.snapshot()
    lock_fd = os.open(snaps.store_dir / "openmanus.lock", os.O_RDWR)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)  # as if another process were snapshotting
    results: list[str] = []
    worker = threading.Thread(target=lambda: results.append(
        WorkspaceSnapshots(snaps.store_dir, ws).snapshot()))
    worker.start()
    worker.join(timeout=1.0)
    assert worker.is_alive() and results == []  # waiting for the lock
    os.close(lock_fd)
    worker.join(timeout=30)
    assert results == [t1]

    # many instances at once on one store: same ids, consistent store
    (ws / "more.txt").write_text("more\n")
    out: list[str] = []
    threads = [threading.Thread(target=lambda: out.append(
        WorkspaceSnapshots(snaps.store_dir, ws).snapshot())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(out) == 4 and len(set(out)) == 1
    git(snaps.store_dir, "fsck", "--strict", "--no-dangling")


def test_empty_workspace_and_restore_to_empty(snaps: WorkspaceSnapshots, ws: Path,
                                              tmp_path: Path) -> None:
    empty_ws = tmp_path / "empty"
    empty_ws.mkdir()
    empty = WorkspaceSnapshots(tmp_path / "e.git", empty_ws).snapshot()
    assert empty == snap.EMPTY_TREE
    snaps.snapshot()
    report = snaps.restore(snap.EMPTY_TREE)
    assert manifest(ws) == {}
    assert "src" in report.dirs_removed and "src/pkg" in report.dirs_removed


def test_file_vanishing_mid_snapshot_is_a_clear_error(snaps: WorkspaceSnapshots, ws: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    real_walk = snaps._walk

    def walk_then_delete() -> list[tuple[str, os.stat_result]]:
        found = real_walk()
        (ws / "README.md").unlink()  # removed between the walk and the hashing
        return found

    monkeypatch.setattr(snaps, "_walk", walk_then_delete)
    with pytest.raises(SnapshotError, match="changed during the snapshot") as info:
        snaps.snapshot()
    assert info.value.error_class == "transient"


def test_bench_runs_at_tiny_size(tmp_path: Path) -> None:
    bench = Path(__file__).resolve().parent.parent / "bench" / "snapshot_cost.py"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.run(
        [sys.executable, str(bench), "--files", "12", "--big-mb", "1", "--repeat", "1",
         "--settle", "0", "--sparse", "20", "--unbounded-sample-mb", "4"],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"^branch switch \(5 files\) +[\d.]+ ms +target < 500 ms: (PASS|MISS)$",
                     proc.stdout, re.M), proc.stdout
    assert re.search(r"^1 MB binary: first snapshot", proc.stdout, re.M), proc.stdout
    assert re.search(r"^sparse bomb: 20 x 1 GiB sparse files .* skipped and named 20 +"
                     r"target < 2 s: PASS$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^  baseline \(no budget\): 4 MiB sparse file", proc.stdout, re.M)
    assert list(tmp.iterdir()) == []  # cleaned up after itself


def test_unchanged_workspace_is_not_hashed_again(snaps: WorkspaceSnapshots, ws: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snap, "RACY_NS", 0)  # as if the files were older than the racy window
    t1 = snaps.snapshot()
    calls: list[str] = []
    real_run = snap._Git.run

    def spy(self: snap._Git, *args: str, **kwargs: Any) -> Any:
        calls.append(args[0])
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(snap._Git, "run", spy)
    other = WorkspaceSnapshots(snaps.store_dir, ws)  # the stat cache is on disk, not in memory
    assert other.snapshot() == t1
    assert "hash-object" not in calls
    (ws / "README.md").write_text("# edited\n")
    assert other.snapshot() != t1
    assert calls.count("hash-object") == 1


def test_non_utf8_file_names_round_trip(snaps: WorkspaceSnapshots, ws: Path) -> None:
    raw = os.path.join(os.fsencode(ws), b"latin1-\xe9t\xe9.txt")
    with open(raw, "wb") as fh:
        fh.write(b"caf\xe9\n")
    t1 = snaps.snapshot()
    before = manifest(ws)
    os.unlink(raw)
    snaps.restore(t1)
    assert manifest(ws) == before
    assert Path(os.fsdecode(raw)).read_bytes() == b"caf\xe9\n"
