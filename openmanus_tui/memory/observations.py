"""Large observations: tool results over a threshold are stored once, in the
``memory_observations`` table, and the prompt carries a short excerpt plus a handle.

The checkpoint keeps the full tool message (the history is never rewritten); only what is sent to
the model is replaced. The agent reads a stored observation in pieces with ``observation_read``:
only its own session's, or those its own history refers to.
Handles are derived from the tool message id, so the same result always has the same handle, on
every step, after a restart and on every branch.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Collection
from dataclasses import dataclass

from openmanus_tui.store.db import Database
from openmanus_tui.store.tables import TableStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS memory_observations (
    handle TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    tool TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    chars INTEGER NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS memory_observations_by_session ON memory_observations(session_id);
"""

TAIL_SHARE = 0.25  # of the excerpt: the end of an output (errors, totals) matters too


def observation_handle(message_id: str) -> str:
    return "obs_" + hashlib.sha1(message_id.encode()).hexdigest()[:12]


def excerpt(content: str, handle: str, chars: int) -> str:
    """The head and tail of a large result, and how to read the rest."""
    tail = int(chars * TAIL_SHARE)
    head = chars - tail
    return (
        f"{content[:head]}\n"
        f"[… {len(content) - head - tail:,} characters omitted. The full result "
        f"({len(content):,} characters) is stored as {handle}: read any part with "
        f'observation_read(handle="{handle}", offset=…, length=…) …]\n'
        f"{content[len(content) - tail :]}"
    )


@dataclass
class Observation:
    handle: str
    message_id: str
    tool: str
    content: str


@dataclass
class ObservationPiece:
    handle: str
    text: str
    offset: int
    total_chars: int
    tool: str

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.text)
        return end if end < self.total_chars else None


class ObservationStore(TableStore):
    """The table of stored observations, on the process's shared connection."""

    SCHEMA = SCHEMA

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._known: set[str] = set()

    async def put_many(self, session_id: str, observations: list[Observation]) -> list[str]:
        """Store the observations not stored yet; returns the handles newly stored."""
        new = [o for o in observations if o.handle not in self._known]
        if not new:
            return []
        stored: list[str] = []
        async with self.db.saver.lock:
            for o in new:
                cur = await self.db.conn.execute(
                    "INSERT OR IGNORE INTO memory_observations "
                    "(handle, session_id, message_id, tool, created, chars, content) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        o.handle,
                        session_id,
                        o.message_id,
                        o.tool,
                        time.time(),
                        len(o.content),
                        o.content,
                    ),
                )
                if cur.rowcount:
                    stored.append(o.handle)
            await self.db.conn.commit()
        self._known.update(o.handle for o in new)
        return stored

    async def read(
        self,
        handle: str,
        offset: int = 0,
        length: int = 4000,
        *,
        session_id: str | None = None,
        referenced: Collection[str] = (),
    ) -> ObservationPiece | None:
        """A piece of a stored observation. With ``session_id``, only that session's own
        observations, or those its history refers to (``referenced``: a copied session's
        results were stored under the original's id), are readable: another session's handle
        reads as unknown, so its existence is not revealed either."""
        async with self.db.conn.execute(
            "SELECT substr(content, ?, ?), chars, tool, session_id FROM memory_observations "
            "WHERE handle = ?",
            (max(0, offset) + 1, max(0, length), handle.strip()),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        if session_id is not None and row[3] != session_id and handle.strip() not in referenced:
            return None
        return ObservationPiece(handle.strip(), row[0] or "", max(0, offset), row[1], row[2])

    async def delete_session(self, session_id: str) -> int:
        """Drop a deleted session's stored results. A copy of the session does not need them:
        its tool messages were rebuilt with ids of its own, so its results are stored anew
        under handles of its own when its prompts need them."""
        await self.setup()
        async with self.db.saver.lock:
            cur = await self.db.conn.execute(
                "DELETE FROM memory_observations WHERE session_id = ?", (session_id,)
            )
            await self.db.conn.commit()
        self._known.clear()
        return cur.rowcount or 0

    async def list(self, session_id: str) -> list[dict[str, object]]:
        async with self.db.conn.execute(
            "SELECT handle, message_id, tool, created, chars FROM memory_observations "
            "WHERE session_id = ? ORDER BY created",
            (session_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [
            {"handle": r[0], "message_id": r[1], "tool": r[2], "created": r[3], "chars": r[4]}
            for r in rows
        ]
