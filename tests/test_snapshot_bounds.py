"""Bounded workspace snapshots (issue 12, defect 1): excludes, sparse and huge files, budgets,
a time limit, restore leaving uncaptured files alone, the user notice, and store GC."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec, assistant_turns_since_user

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.store import snapshots as snapshots_mod
from openmanus_tui.store.retention import sweep_orphan_stores
from openmanus_tui.store.snapshot_budget import SnapshotBudget
from openmanus_tui.store.snapshots import RestoreConflict, WorkspaceSnapshots

MiB = 1024 * 1024


def sparse(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size)


def store(tmp_path: Path, **budget: Any) -> WorkspaceSnapshots:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    return WorkspaceSnapshots(tmp_path / "store.git", ws, SnapshotBudget(**budget))


def paths_of(snaps: WorkspaceSnapshots, tree: str) -> set[str]:
    return set(snaps._read_tree(tree))


def test_excluded_names_are_not_captured_nor_touched_by_restore(tmp_path: Path) -> None:
    snaps = store(tmp_path, exclude=(".venv", "node_modules", "__pycache__", "*.log", "out/tmp"))
    ws = snaps.workspace
    for rel in (
        "node_modules/a/index.js",
        ".venv/bin/python",
        "pkg/__pycache__/m.pyc",
        "run.log",
        "out/tmp/x",
        "out/keep.txt",
        "src/main.py",
    ):
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(rel)
    tree = snaps.snapshot()
    assert paths_of(snaps, tree) == {"out/keep.txt", "src/main.py"}
    assert snaps.last.excluded == 5 and snaps.last.skipped == []

    # a snapshot that did capture node_modules (an older, unbounded store) is restored
    # without touching node_modules now that it is excluded
    full = WorkspaceSnapshots(tmp_path / "store.git", ws, SnapshotBudget(exclude=()))
    old = full.snapshot()
    (ws / "node_modules/a/index.js").write_text("installed later")
    (ws / "src/main.py").write_text("edited")
    report = snaps.restore(old)
    assert (ws / "node_modules/a/index.js").read_text() == "installed later"
    assert (ws / "src/main.py").read_text() == "src/main.py"
    assert "node_modules/a/index.js" in report.left_alone


def test_sparse_and_huge_files_are_skipped_and_named(tmp_path: Path) -> None:
    snaps = store(tmp_path, max_file_bytes=2 * MiB)
    ws = snaps.workspace
    sparse(ws / "disk.img", 512 * MiB)
    (ws / "big.bin").write_bytes(os.urandom(3 * MiB))
    (ws / "ok.bin").write_bytes(os.urandom(MiB))
    start = time.perf_counter()
    tree = snaps.snapshot()
    assert time.perf_counter() - start < 2
    assert paths_of(snaps, tree) == {"ok.bin"}
    assert [(s.path, s.reason) for s in snaps.last.skipped] == [
        ("big.bin", "too_large"),
        ("disk.img", "sparse"),
    ]
    notice = snaps.last.notice()
    assert "skipped 2 file(s)" in notice
    assert "disk.img (sparse file: 512.0 MiB, 0 B on disk)" in notice
    assert "big.bin (over the per-file limit, 3.0 MiB)" in notice


def test_file_count_budget(tmp_path: Path) -> None:
    snaps = store(tmp_path, max_files=5)
    for i in range(8):
        (snaps.workspace / f"f{i}.txt").write_text(str(i))
    tree = snaps.snapshot()
    assert paths_of(snaps, tree) == {f"f{i}.txt" for i in range(5)}
    assert {s.path: s.reason for s in snaps.last.skipped} == {
        f"f{i}.txt": "file_budget" for i in (5, 6, 7)
    }


def test_byte_budget_is_per_snapshot(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(snapshots_mod, "RACY_NS", 0)  # trust the stat cache at once
    snaps = store(tmp_path, max_bytes=200 * 1024)
    for i in range(8):
        (snaps.workspace / f"f{i}.txt").write_bytes(b"%d" % i * 60 * 1024)
    tree = snaps.snapshot()
    # 60 KiB each: three fit the 200 KiB of new content this snapshot may read
    assert paths_of(snaps, tree) == {"f0.txt", "f1.txt", "f2.txt"}
    assert {s.reason for s in snaps.last.skipped} == {"byte_budget"}
    assert len(snaps.last.skipped) == 5
    # unchanged files cost nothing, so the next snapshot takes three more
    tree = snaps.snapshot()
    assert paths_of(snaps, tree) == {f"f{i}.txt" for i in range(6)}


class _SoonDeadline:
    """Time runs out after the walk: every file still to hash is skipped for the time limit."""

    calls = 0

    def __init__(self, seconds: float) -> None:
        pass

    def passed(self) -> bool:
        _SoonDeadline.calls += 1
        return _SoonDeadline.calls > 1


def test_time_limit_skips_what_was_not_read(tmp_path: Path, monkeypatch) -> None:
    snaps = store(tmp_path)
    for i in range(3):
        (snaps.workspace / f"f{i}").write_text(str(i))
    monkeypatch.setattr(snapshots_mod, "Deadline", _SoonDeadline)
    tree = snaps.snapshot()
    assert paths_of(snaps, tree) == set()
    assert {s.reason for s in snaps.last.skipped} == {"time_limit"}
    assert "snapshot time limit reached" in snaps.last.notice()


def test_walk_out_of_time_refuses_restore(tmp_path: Path) -> None:
    snaps = store(tmp_path)
    (snaps.workspace / "a").write_text("a")
    tree = snaps.snapshot()
    slow = WorkspaceSnapshots(snaps.store_dir, snaps.workspace, SnapshotBudget(time_limit_s=0))
    slow.snapshot()
    assert slow.last.incomplete and "partial" in slow.last.notice()
    with pytest.raises(RestoreConflict, match="time limit"):
        slow.restore(tree)


def test_restore_leaves_skipped_files_alone(tmp_path: Path) -> None:
    snaps = store(tmp_path)
    ws = snaps.workspace
    (ws / "data.bin").write_text("small at first")
    (ws / "a.txt").write_text("one")
    first = snaps.snapshot()
    # later: data.bin becomes a sparse 1 GiB file, a new sparse file appears, a.txt changes
    sparse(ws / "data.bin", 1 << 30)
    sparse(ws / "new/disk.img", 1 << 30)
    (ws / "a.txt").write_text("two")
    assert {c.path for c in snaps.changed_since(first)} == {"a.txt"}
    report = snaps.restore(first)
    assert (ws / "a.txt").read_text() == "one"
    assert os.stat(ws / "data.bin").st_size == 1 << 30  # not overwritten
    assert os.stat(ws / "new/disk.img").st_size == 1 << 30  # not deleted
    assert report.left_alone == ["data.bin"]
    assert report.deleted == [] and report.written == ["a.txt"]
    # and undoing the restore brings a.txt back without touching them either
    snaps.restore(report.before)
    assert (ws / "a.txt").read_text() == "two"
    assert os.stat(ws / "data.bin").st_size == 1 << 30


SPARSE_CMD = "truncate -s 600M huge.img && echo made > note.txt"


def responder(body: dict[str, Any]) -> Reply:
    if assistant_turns_since_user(body["messages"]) == 0:
        return Reply(tool_calls=[ToolCallSpec("shell_exec", {"command": SPARSE_CMD})])
    return Reply(text="done")


async def test_skipped_files_reach_the_user_as_a_stored_notice(
    llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_server(monkeypatch, llm_server)
    llm_server.set_responder(responder)
    settings = load_settings({"approval": {"mode": "yolo"}, "sandbox": {"max_file_mb": 1024}})
    runtime = await Runtime.open(settings)
    try:
        session = await runtime.create_session()
        seen: list[ev.Event] = []
        outcome = await session.run("make a sparse file", on_event=seen.append)
        assert outcome.final_answer == "done"
        notices = [e.text for e in seen if isinstance(e, ev.Notice)]
        assert any("huge.img (sparse file: 600.0 MiB" in t for t in notices), notices
        assert sum("huge.img" in t for t in notices) == 1  # told once, not at every step
        stored = [e for e in await runtime.db.events(session.id) if isinstance(e, ev.Notice)]
        assert any("huge.img" in e.text for e in stored)
    finally:
        await runtime.close()


async def test_removed_sessions_lose_their_store_and_orphans_are_swept(
    llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_server(monkeypatch, llm_server)
    llm_server.set_responder(responder)
    settings = load_settings({"approval": {"mode": "yolo"}, "sandbox": {"max_file_mb": 1024}})
    runtime = await Runtime.open(settings)
    snapshots_dir = settings.resolved_data_dir / "snapshots"
    try:
        keep = await runtime.create_session()
        gone = await runtime.create_session()
        for session in (keep, gone):
            await session.run("make a sparse file")
        assert (snapshots_dir / f"{gone.id}.git").is_dir()
        await runtime.delete_session(gone.id)
        assert not (snapshots_dir / f"{gone.id}.git").exists()
        assert (snapshots_dir / f"{keep.id}.git").is_dir()

        # a store left by an older version (session removed, store kept)
        orphan = snapshots_dir / "sess-orphan.git"
        (tmp_path / "ows").mkdir()
        WorkspaceSnapshots(orphan, tmp_path / "ows").snapshot()
        assert await sweep_orphan_stores(runtime.db, snapshots_dir) == []  # too recent
        old = time.time() - 7200
        os.utime(orphan, (old, old))
        os.utime(snapshots_dir / f"{keep.id}.git", (old, old))
        assert await sweep_orphan_stores(runtime.db, snapshots_dir) == ["sess-orphan"]
        assert not orphan.exists() and (snapshots_dir / f"{keep.id}.git").is_dir()
    finally:
        await runtime.close()


def test_sessions_rm_removes_the_store(tmp_path: Path) -> None:
    data = Path(os.environ["OPENMANUS_DATA_DIR"])
    res = run_cli("run", "--json", "--approval", "yolo", "write a file")  # no terminal here
    assert res.returncode == 0, res.stderr
    sid = next(iter(p.stem for p in (data / "snapshots").glob("*.git")), None)
    assert sid is not None
    res = run_cli("sessions", "rm", sid)
    assert res.returncode == 0, res.stderr
    assert not (data / "snapshots" / f"{sid}.git").exists()
