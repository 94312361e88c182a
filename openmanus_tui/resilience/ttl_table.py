"""A key → text table in the database with a time to live, a size cap and hit counts: what the
model-response cache and the tool-result cache (each its own table) are built on.

Each cache's table is created the first time the cache is used (``CREATE TABLE IF NOT
EXISTS``). Hits and misses are counted per label (the model or tool name) in the
``cache_counters`` table, so ``openmanus cache stats`` in another process sees the hit rates.
Entries past their TTL are never returned and are deleted when met; past the size cap the
least recently used entries go first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openmanus_tui.store.db import Database

COUNTERS = """
CREATE TABLE IF NOT EXISTS cache_counters (
    cache TEXT NOT NULL,
    label TEXT NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    misses INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (cache, label)
);
"""


@dataclass
class CacheStats:
    cache: str
    entries: int = 0
    bytes: int = 0
    hits: int = 0
    misses: int = 0
    by_label: dict[str, tuple[int, int]] = field(default_factory=dict)  # label: (hits, misses)

    @property
    def hit_rate(self) -> float:
        looked = self.hits + self.misses
        return self.hits / looked if looked else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "cache": self.cache, "entries": self.entries, "bytes": self.bytes,
            "hits": self.hits, "misses": self.misses, "hit_rate": round(self.hit_rate, 4),
            "by_label": {k: {"hits": h, "misses": m} for k, (h, m) in self.by_label.items()},
        }


class TtlTable:
    def __init__(self, db: Database, table: str, *, ttl: float, max_bytes: int) -> None:
        if not table.isidentifier():
            raise ValueError(f"bad table name {table!r}")
        self.db = db
        self.table = table
        self.ttl = ttl
        self.max_bytes = max_bytes
        self._ready = False

    async def _setup(self) -> None:
        if self._ready:
            return
        async with self.db.saver.lock:
            await self.db.conn.executescript(
                f"""
                CREATE TABLE IF NOT EXISTS {self.table} (
                    key TEXT PRIMARY KEY,
                    label TEXT NOT NULL,
                    session_id TEXT NOT NULL DEFAULT '',
                    created REAL NOT NULL,
                    used REAL NOT NULL,
                    expires REAL NOT NULL,
                    bytes INTEGER NOT NULL,
                    hits INTEGER NOT NULL DEFAULT 0,
                    value TEXT NOT NULL
                );
                CREATE INDEX IF NOT EXISTS {self.table}_by_session ON {self.table}(session_id);
                {COUNTERS}
                """
            )
            await self.db.conn.commit()
        self._ready = True

    async def get(self, key: str, label: str, *, count: bool = True) -> str | None:
        """The value, or None (missing or expired). ``count=False``: a hit or miss is not
        counted here (the caller looks up several keys for one request: ``count_lookup``)."""
        await self._setup()
        now = time.time()
        async with self.db.conn.execute(
            f"SELECT value, expires FROM {self.table} WHERE key = ?", (key,)
        ) as cur:
            row = await cur.fetchone()
        hit = row is not None and row[1] > now
        async with self.db.saver.lock:
            if row is not None and not hit:
                await self.db.conn.execute(f"DELETE FROM {self.table} WHERE key = ?", (key,))
            if hit:
                await self.db.conn.execute(
                    f"UPDATE {self.table} SET hits = hits + 1, used = ? WHERE key = ?", (now, key)
                )
            if count:
                await self._count(label, hit)
            await self.db.conn.commit()
        return row[0] if hit and row is not None else None

    async def count_lookup(self, label: str, hit: bool) -> None:
        await self._setup()
        async with self.db.saver.lock:
            await self._count(label, hit)
            await self.db.conn.commit()

    async def _count(self, label: str, hit: bool) -> None:
        column = "hits" if hit else "misses"
        await self.db.conn.execute(
            "INSERT INTO cache_counters (cache, label, hits, misses) VALUES (?, ?, ?, ?) "
            f"ON CONFLICT (cache, label) DO UPDATE SET {column} = {column} + 1",
            (self.table, label, int(hit), int(not hit)),
        )

    async def put(self, key: str, label: str, value: str, *, session_id: str = "") -> None:
        await self._setup()
        size = len(value.encode("utf-8", "replace"))
        if size > self.max_bytes:
            return  # larger than the whole cache: not worth evicting everything for
        now = time.time()
        async with self.db.saver.lock:
            await self.db.conn.execute(
                f"INSERT OR REPLACE INTO {self.table} "
                "(key, label, session_id, created, used, expires, bytes, value) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, label, session_id, now, now, now + self.ttl, size, value),
            )
            await self._evict()
            await self.db.conn.commit()

    async def _evict(self) -> None:
        await self.db.conn.execute(f"DELETE FROM {self.table} WHERE expires <= ?", (time.time(),))
        async with self.db.conn.execute(f"SELECT COALESCE(SUM(bytes), 0) FROM {self.table}") as c:
            total = (await c.fetchone())[0]  # type: ignore[index]
        if total <= self.max_bytes:
            return
        # Least recently used first, until the rest fits.
        async with self.db.conn.execute(
            f"SELECT key, bytes FROM {self.table} ORDER BY used ASC"
        ) as cur:
            rows = await cur.fetchall()
        doomed = []
        for key, size in rows:
            if total <= self.max_bytes:
                break
            doomed.append((key,))
            total -= size
        await self.db.conn.executemany(f"DELETE FROM {self.table} WHERE key = ?", doomed)

    async def stats(self) -> CacheStats:
        await self._setup()
        stats = CacheStats(self.table)
        async with self.db.conn.execute(
            f"SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM {self.table} WHERE expires > ?",
            (time.time(),),
        ) as cur:
            stats.entries, stats.bytes = await cur.fetchone()  # type: ignore[misc]
        async with self.db.conn.execute(
            "SELECT label, hits, misses FROM cache_counters WHERE cache = ? ORDER BY label",
            (self.table,),
        ) as cur:
            for label, hits, misses in await cur.fetchall():
                stats.by_label[label] = (hits, misses)
                stats.hits += hits
                stats.misses += misses
        return stats

    async def clear(self) -> int:
        """Delete every entry and the counters; returns how many entries there were."""
        await self._setup()
        async with self.db.saver.lock:
            cur = await self.db.conn.execute(f"DELETE FROM {self.table}")
            await self.db.conn.execute("DELETE FROM cache_counters WHERE cache = ?", (self.table,))
            await self.db.conn.commit()
        return cur.rowcount or 0

    async def forget_session(self, session_id: str) -> None:
        """A deleted session's entries go with it (they hold its messages)."""
        await self._setup()
        async with self.db.saver.lock:
            await self.db.conn.execute(
                f"DELETE FROM {self.table} WHERE session_id = ?", (session_id,)
            )
            await self.db.conn.commit()
