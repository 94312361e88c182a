"""The ``research_results`` table: each research run's ``ResearchResult``, as JSON.

One row per (session, result id); the result id is derived from the question and the run's
start, so the verify node re-run on a resume overwrites its own row instead of adding one.
Deleting a session deletes its rows (``runtime/api.py: delete_session``).
"""

from __future__ import annotations

import hashlib
import json
import time

from openmanus_tui.research.models import ResearchResult
from openmanus_tui.store.tables import TableStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS research_results (
    id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    created REAL NOT NULL,
    query TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (session_id, id)
);
"""


class ResearchResults(TableStore):
    """Stored research results, per session."""

    SCHEMA = SCHEMA

    async def save(self, session_id: str, result: ResearchResult, started_at: float) -> str:
        await self.setup()
        rid = "rr_" + hashlib.sha1(f"{result.query}:{started_at}".encode()).hexdigest()[:12]
        async with self.db.saver.lock:
            await self.db.conn.execute(
                "INSERT OR REPLACE INTO research_results (id, session_id, created, query, result)"
                " VALUES (?, ?, ?, ?, ?)",
                (rid, session_id, time.time(), result.query, result.model_dump_json()),
            )
            await self.db.conn.commit()
        return rid

    async def latest(self, session_id: str) -> ResearchResult | None:
        await self.setup()
        async with self.db.conn.execute(
            "SELECT result FROM research_results WHERE session_id = ? "
            "ORDER BY created DESC LIMIT 1", (session_id,),
        ) as cur:
            row = await cur.fetchone()
        return ResearchResult.model_validate(json.loads(row[0])) if row else None

    async def copy_session(self, source_id: str, target_id: str) -> None:
        """A copied session (``sessions copy``) takes its research results along."""
        await self.setup()
        async with self.db.saver.lock:
            await self.db.conn.execute(
                "INSERT OR REPLACE INTO research_results (id, session_id, created, query, result)"
                " SELECT id, ?, created, query, result FROM research_results"
                " WHERE session_id = ?", (target_id, source_id),
            )
            await self.db.conn.commit()

    async def delete_session(self, session_id: str) -> None:
        await self.setup()
        async with self.db.saver.lock:
            await self.db.conn.execute(
                "DELETE FROM research_results WHERE session_id = ?", (session_id,)
            )
            await self.db.conn.commit()
