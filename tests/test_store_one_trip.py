"""Our checkpointer writes a checkpoint, a task's writes, and the events queued before them in
one trip to aiosqlite's thread and one transaction, and stores exactly the rows the stock
``AsyncSqliteSaver`` stores (a LangGraph upgrade that changes them fails here)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from openmanus_tui.events import Notice
from openmanus_tui.store.db import Database

CONFIG: dict[str, Any] = {"configurable": {"thread_id": "s1", "checkpoint_ns": ""}}
WRITES: list[list[tuple[str, Any]]] = [
    [("messages", ["hello"]), ("steps", 3)],
    [("__error__", "boom"), ("__interrupt__", {"why": "approval"})],  # the REPLACE kind
    [("messages", ["hello again"])],  # the same task again: IGNORE keeps the first rows
]


def checkpoint(n: int) -> Any:
    made = empty_checkpoint()
    made["id"] = f"1ef0000-0000-6000-8000-00000000000{n}"
    made["ts"] = "2026-01-01T00:00:00+00:00"  # both savers store the same bytes
    return made


async def write_all(saver: AsyncSqliteSaver) -> None:
    config = await saver.aput(CONFIG, checkpoint(1), {"source": "input", "step": -1}, {})
    config = await saver.aput(config, checkpoint(2), {"source": "loop", "step": 0}, {})
    for writes in WRITES:
        await saver.aput_writes(config, writes, "task-1", "path")


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4").fetchall()
            for table in ("checkpoints", "writes")
        }
    finally:
        conn.close()


async def test_our_rows_are_the_stock_savers_and_events_share_the_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "stock.db")) as stock:
        await write_all(stock)

    db = await Database.open(tmp_path / "ours.db")
    try:
        await db.saver.setup()
        trips: list[str] = []
        real = aiosqlite.Connection._execute

        async def counting(self: aiosqlite.Connection, fn: Any, *args: Any, **kw: Any) -> Any:
            trips.append(getattr(fn, "__name__", "?"))
            return await real(self, fn, *args, **kw)

        monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
        event = Notice(level="info", text="queued before the checkpoint")
        event.session_id, event.seq = "s1", 1
        await db.append_event(event, commit=False)  # queued: written with the next checkpoint
        await write_all(db.saver)
        assert len(trips) == 2 + len(WRITES)  # one trip per checkpoint and per task's writes
        monkeypatch.undo()
        # Committed, with the checkpoint: another connection sees the event.
        outside = sqlite3.connect(tmp_path / "ours.db")
        try:
            seen = outside.execute("SELECT type FROM events WHERE session_id = 's1'").fetchall()
        finally:
            outside.close()
        assert seen == [("notice",)]
    finally:
        await db.close()
    assert rows(tmp_path / "ours.db") == rows(tmp_path / "stock.db")
