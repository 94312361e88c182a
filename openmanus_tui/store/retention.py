"""Retention: keep branch heads and what they need, delete the other checkpoints, compact.

For each branch head the last ``keep_last`` checkpoints of its lineage are kept, plus what
LangGraph needs to rebuild them: messages are a ``DeltaChannel``, so a checkpoint's messages
are its ancestors' writes back to the nearest checkpoint holding a full snapshot of them (the
"seed"); that chain is kept too. The events table is never pruned — transcripts, the tree
and recorded replay keep working — and the tree marks steps whose checkpoint is gone. The
workspace snapshot of a kept step is re-keyed onto it when its original step is deleted, so
rewinding a kept step still restores its files; unreferenced snapshot objects are dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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
