"""Applied configurations: the ``config_versions`` table (one row per configuration applied).

A row holds when it was applied, by what (``start``: a process opened the runtime with it,
``reload``: a hot reload, ``rollback N``), a hash of the configuration and its content as JSON
with every secret already masked (``config_snapshot.py`` builds it; nothing here sees a secret).
A configuration applied again right after itself (the same hash as the newest row) is not
stored twice; one applied again later is, so the history reads in the order things happened.

Rows belong to no session: deleting a session leaves them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openmanus_tui.store.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS config_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    source TEXT NOT NULL,
    hash TEXT NOT NULL,
    content TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class ConfigVersion:
    id: int
    ts: float
    source: str
    hash: str
    content: dict[str, Any]


def _row(row: Any) -> ConfigVersion:
    return ConfigVersion(row[0], row[1], row[2], row[3], json.loads(row[4]))


class ConfigVersions:
    """The table on the process's shared connection (writes take the checkpointer's lock)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._ready = False

    async def _ensure(self) -> None:
        if self._ready:
            return
        if self.db.damaged is None:
            async with self.db.saver.lock:
                await self.db.conn.executescript(SCHEMA)
                await self.db.conn.commit()
        self._ready = True

    async def latest(self) -> ConfigVersion | None:
        await self._ensure()
        try:
            async with self.db.conn.execute(
                "SELECT id, ts, source, hash, content FROM config_versions "
                "ORDER BY id DESC LIMIT 1"
            ) as cur:
                row = await cur.fetchone()
        except Exception:  # a read-only damaged file without the table
            return None
        return _row(row) if row else None

    async def record(self, source: str, digest: str, content: dict[str, Any]) -> int:
        """Store a configuration as applied now; its version number (the newest row's when
        it is the same configuration)."""
        latest = await self.latest()
        if latest is not None and latest.hash == digest:
            return latest.id
        async with self.db.saver.lock:
            cur = await self.db.conn.execute(
                "INSERT INTO config_versions (ts, source, hash, content) VALUES (?, ?, ?, ?)",
                (time.time(), source, digest, json.dumps(content, sort_keys=True)),
            )
            await self.db.conn.commit()
        return int(cur.lastrowid or 0)

    async def list(self) -> list[ConfigVersion]:
        """Every stored version, oldest first."""
        await self._ensure()
        try:
            async with self.db.conn.execute(
                "SELECT id, ts, source, hash, content FROM config_versions ORDER BY id"
            ) as cur:
                return [_row(r) for r in await cur.fetchall()]
        except Exception:
            return []

    async def get(self, version: int) -> ConfigVersion | None:
        await self._ensure()
        try:
            async with self.db.conn.execute(
                "SELECT id, ts, source, hash, content FROM config_versions WHERE id = ?",
                (version,),
            ) as cur:
                row = await cur.fetchone()
        except Exception:
            return None
        return _row(row) if row else None
