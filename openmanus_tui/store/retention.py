"""Retention: keep branch heads and what they need, delete the other checkpoints, compact.

For each branch head the last ``keep_last`` checkpoints of its lineage are kept, plus what
LangGraph needs to rebuild them: messages are a ``DeltaChannel``, so a checkpoint's messages
are its ancestors' writes back to the nearest checkpoint holding a full snapshot of them (the
"seed"); that chain is kept too. The events table is never pruned — transcripts, the tree
and recorded replay keep working — and the tree marks steps whose checkpoint is gone. The
workspace snapshot of a kept step is re-keyed onto it when its original step is deleted, so
rewinding a kept step still restores its files; unreferenced snapshot objects are dropped.
A removed session's snapshot store is deleted with it (``remove_store``), and stores whose
session no longer exists are swept on every prune (``sweep_orphan_stores``).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openmanus_tui.store.db import Database


@dataclass
class PruneStats:
    sessions: int = 0
    checkpoints_deleted: int = 0
    checkpoints_kept: int = 0
    size_before: int = 0
    size_after: int = 0
    per_session: dict[str, int] = field(default_factory=dict)
    stores_removed: list[str] = field(default_factory=list)


async def _lineage_rows(db: Database, session_id: str) -> dict[str, str | None]:
    async with db.conn.execute(
        "SELECT checkpoint_id, parent_checkpoint_id FROM checkpoints "
        "WHERE thread_id = ? AND checkpoint_ns = ''",
        (session_id,),
    ) as cur:
        return {row[0]: row[1] for row in await cur.fetchall()}


async def _has_seed(
    db: Database, session_id: str, checkpoint_id: str, cache: dict[str, bool]
) -> bool:
    """Does this checkpoint hold a full snapshot of the messages channel?"""
    if checkpoint_id not in cache:
        async with db.conn.execute(
            "SELECT type, checkpoint FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '' "
            "AND checkpoint_id = ?",
            (session_id, checkpoint_id),
        ) as cur:
            row = await cur.fetchone()
        values: dict[str, Any] = {}
        if row is not None:
            values = db.saver.serde.loads_typed((row[0], row[1])).get("channel_values") or {}
        cache[checkpoint_id] = "messages" in values
    return cache[checkpoint_id]


async def plan_session(db: Database, session_id: str, keep_last: int) -> tuple[set[str], set[str]]:
    """(checkpoints to keep, checkpoints to delete) for one session."""
    parents = await _lineage_rows(db, session_id)
    has_children = {p for p in parents.values() if p is not None}
    heads = [c for c in parents if c not in has_children]
    keep: set[str] = set()
    seeds: dict[str, bool] = {}
    for head in heads:
        lineage: list[str] = []
        cursor: str | None = head
        while cursor is not None and cursor in parents:
            lineage.append(cursor)
            cursor = parents[cursor]
        kept = lineage[:keep_last]
        keep.update(kept)
        # The oldest kept checkpoint needs its ancestors back to a messages seed.
        for ancestor in lineage[len(kept) :]:
            keep.add(ancestor)
            if await _has_seed(db, session_id, ancestor, seeds):
                break
    return keep, set(parents) - keep


async def prune(
    db: Database,
    *,
    keep_last: int,
    older_than_days: float | None = None,
    store_for: Any = None,
) -> PruneStats:
    """Prune every session (or those not updated for ``older_than_days``); VACUUM after.

    ``store_for(record)`` returns that session's workspace snapshot store, if any. A session
    already pruned since its last update is skipped, so an automatic policy stays cheap.
    """
    stats = PruneStats(size_before=await db.size_bytes())
    cutoff = time.time() - older_than_days * 86400 if older_than_days is not None else None
    for record in await db.list_sessions():
        if cutoff is not None and record.updated > cutoff:
            continue
        if record.meta.get("pruned_at", 0) >= record.updated:
            continue
        keep, delete = await plan_session(db, record.id, keep_last)
        stats.sessions += 1
        stats.checkpoints_kept += len(keep)
        meta = {**record.meta, "pruned_at": time.time()}
        await db.update_session(record.id, meta=meta, updated=record.updated)
        if not delete:
            continue
        # Kept steps whose snapshot lives on a step being deleted get it re-keyed.
        for checkpoint_id in keep:
            tree = await db.nearest_snapshot(record.id, checkpoint_id)
            if tree is not None:
                await db.add_snapshot(record.id, checkpoint_id, tree)
        ids = sorted(delete)
        async with db.saver.lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                for table in ("checkpoints", "writes"):
                    await db.conn.execute(
                        f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = '' "
                        f"AND checkpoint_id IN ({marks})",
                        (record.id, *chunk),
                    )
                await db.conn.execute(
                    f"DELETE FROM snapshots WHERE session_id = ? AND checkpoint_id IN ({marks})",
                    (record.id, *chunk),
                )
            await db.conn.commit()
        stats.checkpoints_deleted += len(delete)
        stats.per_session[record.id] = len(delete)
        store = store_for(record) if store_for is not None else None
        if store is not None:
            import asyncio

            await asyncio.to_thread(store.prune, await db.snapshot_trees(record.id))
    if stats.checkpoints_deleted:
        await db.vacuum()
    stats.size_after = await db.size_bytes()
    return stats


ORPHAN_IDLE_S = 3600.0
_STORE_RE = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]{0,127})\.git")


def remove_store(snapshots_dir: Path, session_id: str) -> bool:
    """Delete a session's snapshot store (when the session is removed); True if one existed."""
    match = _STORE_RE.fullmatch(f"{session_id}.git")
    path = Path(snapshots_dir) / f"{session_id}.git"
    if match is None or ".." in session_id or not path.is_dir() or path.is_symlink():
        return False
    shutil.rmtree(path, ignore_errors=True)
    return not path.exists()


async def sweep_orphan_stores(
    db: Database, snapshots_dir: Path, *, min_idle_s: float = ORPHAN_IDLE_S
) -> list[str]:
    """Delete snapshot stores whose session is gone (removed by an older version, or a crash).

    A store is only taken when its session is missing from two reads of the database, it has
    not been written for ``min_idle_s`` and no snapshot holds its lock: another process may be
    creating that session right now.
    """
    root = Path(snapshots_dir)
    if not root.is_dir():
        return []
    live = {r.id for r in await db.list_sessions()}
    candidates = []
    for entry in sorted(root.iterdir()):
        match = _STORE_RE.fullmatch(entry.name)
        if match is None or match.group(1) in live:
            continue
        try:
            idle = time.time() - entry.stat().st_mtime
        except OSError:
            continue
        if idle >= min_idle_s:
            candidates.append(match.group(1))
    if not candidates:
        return []
    live = {r.id for r in await db.list_sessions()}
    removed = []
    for session_id in candidates:
        if session_id in live or _store_busy(root / f"{session_id}.git"):
            continue
        if remove_store(root, session_id):
            removed.append(session_id)
    return removed


def _store_busy(path: Path) -> bool:
    """True when a snapshot operation holds the store's lock right now."""
    try:
        fd = os.open(path / "openmanus.lock", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)
