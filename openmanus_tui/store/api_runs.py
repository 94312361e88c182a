"""Runs of the REST API (``openmanus serve --api``): the ``api_runs`` table.

A row per run a client started: which thread (session) and assistant, its status as the
LangGraph API names it (pending, running, success, error, timeout, interrupted), the request
it came with (so a run cut off by a restart can be continued), its metadata and timestamps.
The session's own checkpoints and events stay where they are; this table only says which
client request a run was. Rows go with their session (``delete_for_session``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openmanus_tui.store.tables import TableStore

if TYPE_CHECKING:
    pass

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_runs (
    run_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    assistant_id TEXT NOT NULL,
    status TEXT NOT NULL,
    multitask_strategy TEXT NOT NULL DEFAULT 'reject',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    request TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS api_runs_thread ON api_runs(thread_id, created_at);
"""
_COLUMNS = (
    "run_id, thread_id, assistant_id, status, multitask_strategy, created_at, updated_at, "
    "metadata, request"
)
UNFINISHED = ("pending", "running")


@dataclass
class ApiRun:
    run_id: str
    thread_id: str
    assistant_id: str
    status: str = "pending"
    multitask_strategy: str = "reject"
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    metadata: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)


def _row(row: Any) -> ApiRun:
    return ApiRun(
        run_id=row[0],
        thread_id=row[1],
        assistant_id=row[2],
        status=row[3],
        multitask_strategy=row[4],
        created_at=row[5],
        updated_at=row[6],
        metadata=json.loads(row[7] or "{}"),
        request=json.loads(row[8] or "{}"),
    )


class ApiRunStore(TableStore):
    """CRUD of ``api_runs`` on the shared connection (writes under the saver's lock)."""

    SCHEMA = SCHEMA
    # Rows of sessions deleted by a front end that did not know this table.
    CLEANUP = ("DELETE FROM api_runs WHERE thread_id NOT IN (SELECT id FROM sessions)",)

    async def add(self, run: ApiRun) -> ApiRun:
        await self.setup()
        async with self.db.saver.lock:
            await self.db.conn.execute(
                f"INSERT INTO api_runs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.thread_id,
                    run.assistant_id,
                    run.status,
                    run.multitask_strategy,
                    run.created_at,
                    run.updated_at,
                    json.dumps(run.metadata),
                    json.dumps(run.request),
                ),
            )
            await self.db.conn.commit()
        return run

    async def set_status(self, run_id: str, status: str) -> None:
        await self.setup()
        async with self.db.saver.lock:
            await self.db.conn.execute(
                "UPDATE api_runs SET status = ?, updated_at = ? WHERE run_id = ?",
                (status, time.time(), run_id),
            )
            await self.db.conn.commit()

    async def get(self, run_id: str) -> ApiRun | None:
        await self.setup()
        async with self.db.conn.execute(
            f"SELECT {_COLUMNS} FROM api_runs WHERE run_id = ?", (run_id,)
        ) as cur:
            row = await cur.fetchone()
        return _row(row) if row else None

    async def for_thread(self, thread_id: str, *, limit: int = 10, offset: int = 0) -> list[ApiRun]:
        await self.setup()
        async with self.db.conn.execute(
            f"SELECT {_COLUMNS} FROM api_runs WHERE thread_id = ? "
            "ORDER BY created_at DESC LIMIT ? OFFSET ?",
            (thread_id, limit, offset),
        ) as cur:
            return [_row(r) for r in await cur.fetchall()]

    async def unfinished(self) -> list[ApiRun]:
        """Runs a previous server left pending or running (it stopped or was killed)."""
        await self.setup()
        async with self.db.conn.execute(
            f"SELECT {_COLUMNS} FROM api_runs WHERE status IN (?, ?) ORDER BY created_at",
            UNFINISHED,
        ) as cur:
            return [_row(r) for r in await cur.fetchall()]

    async def delete(self, run_id: str) -> None:
        await self.setup()
        async with self.db.saver.lock:
            await self.db.conn.execute("DELETE FROM api_runs WHERE run_id = ?", (run_id,))
            await self.db.conn.commit()

    async def delete_for_session(self, session_id: str) -> None:
        await self.setup()
        async with self.db.saver.lock:
            await self.db.conn.execute("DELETE FROM api_runs WHERE thread_id = ?", (session_id,))
            await self.db.conn.commit()
