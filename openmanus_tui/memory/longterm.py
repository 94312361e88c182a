"""Long-term memory across sessions: facts, preferences and project notes in the same database.

Items live in LangGraph's store interface (``AsyncSqliteStore``), so the Postgres store can
replace it later, under namespaces ``("memory", "user")``, ``("memory", "project", <project>)``
and ``("memory", "session", <session id>)``. Each value carries its text, kind, the session that
saved it, and created / last-used times.

The store shares the process's one aiosqlite connection: its lock is replaced by the
checkpointer's lock, so its ``BEGIN … COMMIT`` blocks never interleave with a checkpoint write
(one writer per connection, see store/db.py). The SQLite store's own search has no full-text
ranking, and its vector index needs SQLite extension loading, which this Python's ``sqlite3``
lacks; so two side tables index it:

- ``memory_fts``: an FTS5 table (porter stemming); search ranks with BM25. The default.
- ``memory_vectors``: embeddings from an OpenAI-compatible endpoint (``memory.embeddings_model``),
  ranked by cosine similarity in numpy. Used when configured; items saved before are embedded
  on the next search. If the endpoint fails, search falls back to full text and says so.

Embedding calls never run while the database lock is held.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from langgraph.store.base import GetOp, PutOp
from langgraph.store.sqlite.aio import AsyncSqliteStore

from openmanus_tui.errors import OpenManusError
from openmanus_tui.store.db import Database

ROOT = "memory"
SCOPES = ("user", "project", "session")
SEMANTIC_MIN_SCORE = 0.3  # below this cosine an item is not "relevant" enough to recall
TOUCH_AFTER_S = 60.0  # last_used is refreshed at most this often per item

SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts USING fts5(
    text, prefix UNINDEXED, key UNINDEXED, tokenize = 'porter unicode61'
);
CREATE TABLE IF NOT EXISTS memory_vectors (
    prefix TEXT NOT NULL,
    key TEXT NOT NULL,
    model TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (prefix, key)
);
"""

_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "a an and are as at be but by do does for from has have how i in is it its me my of on "
        "or our please so that the their this to was we were what when where which who why will "
        "with you your can could should would about into then than them there these those",
    )
)


def project_label(project: str) -> str:
    """A namespace label for a project name or path (labels cannot contain dots)."""
    label = re.sub(r"[^A-Za-z0-9_-]+", "_", project.strip()).strip("_")
    return label[-80:] or "default"


def fts_query(text: str) -> str:
    """An FTS5 query matching any meaningful word of ``text`` (BM25 ranks the matches)."""
    words = []
    for word in re.findall(r"\w+", text.lower()):
        if len(word) > 1 and word not in _STOPWORDS and word not in words:
            words.append(word)
    return " OR ".join(f'"{w}"' for w in words[:32])


@dataclass
class MemoryRecord:
    scope: str
    namespace: tuple[str, ...]
    key: str
    text: str
    kind: str = "note"
    session_id: str = ""
    created: float = 0.0
    last_used: float = 0.0
    score: float = 0.0

    @property
    def ref(self) -> str:
        return f"{self.scope}/{self.key}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "namespace": list(self.namespace),
            "key": self.key,
            "text": self.text,
            "kind": self.kind,
            "session_id": self.session_id,
            "created": self.created,
            "last_used": self.last_used,
            "score": self.score,
        }


def _prefix(namespace: Sequence[str]) -> str:
    return ".".join(namespace)


def _scope_of(namespace: Sequence[str]) -> str:
    return namespace[1] if len(namespace) > 1 else "user"


class LongTermMemory:
    """One per database (per process): see :func:`for_database`."""

    def __init__(self, db: Database, embeddings: Any | None = None, embeddings_model: str = ""):
        self.db = db
        self.embeddings = embeddings
        self.embeddings_model = embeddings_model
        self.store: AsyncSqliteStore | None = None
        self._setup_lock = asyncio.Lock()

    async def setup(self) -> None:
        async with self._setup_lock:
            if self.store is None:
                await self._setup()

    async def _setup(self) -> None:
        store = AsyncSqliteStore(self.db.conn)
        store.lock = self.db.saver.lock  # one connection, one writer: see the module doc
        await store.setup()
        async with self.db.saver.lock:
            # The store's migrations leave their bookkeeping insert in an implicit transaction
            # on a connection that is not in autocommit mode; its next BEGIN would fail.
            await self.db.conn.commit()
            await self.db.conn.executescript(SCHEMA)
            await self.db.conn.commit()
        self.store = store
        await self._reindex_if_needed()

    async def _reindex_if_needed(self) -> None:
        """The FTS index follows the store; rebuild it if a crash left them apart."""
        conn = self.db.conn
        async with conn.execute(
            "SELECT COUNT(*) FROM store WHERE prefix = ? OR prefix LIKE ?", (ROOT, ROOT + ".%")
        ) as cur:
            items = (await cur.fetchone())[0]  # type: ignore[index]
        async with conn.execute("SELECT COUNT(*) FROM memory_fts") as cur:
            indexed = (await cur.fetchone())[0]  # type: ignore[index]
        if items == indexed:
            return
        async with conn.execute(
            "SELECT prefix, key, value FROM store WHERE prefix = ? OR prefix LIKE ?",
            (ROOT, ROOT + ".%"),
        ) as cur:
            rows = list(await cur.fetchall())

        async with self.db.saver.lock:
            await conn.execute("DELETE FROM memory_fts")
            for prefix, key, value in rows:
                text = json.loads(value).get("text", "") if isinstance(value, str) else ""
                await conn.execute(
                    "INSERT INTO memory_fts (text, prefix, key) VALUES (?, ?, ?)",
                    (text, prefix, key),
                )
            await conn.commit()

    # ---- writing ---------------------------------------------------------------------------
    async def save(
        self,
        text: str,
        namespace: tuple[str, ...],
        *,
        kind: str = "note",
        session_id: str = "",
        key: str | None = None,
    ) -> MemoryRecord:
        text = text.strip()
        if not text:
            raise OpenManusError("a memory needs some text", error_class="user")
        await self.setup()
        assert self.store is not None
        now = time.time()
        key = key or f"mem_{uuid.uuid4().hex[:12]}"
        value = {
            "text": text,
            "kind": kind,
            "session_id": session_id,
            "created": now,
            "last_used": now,
        }
        await self.store.abatch([PutOp(namespace, key, value, index=False)])
        prefix = _prefix(namespace)
        async with self.db.saver.lock:
            await self.db.conn.execute(
                "DELETE FROM memory_fts WHERE prefix = ? AND key = ?", (prefix, key)
            )
            await self.db.conn.execute(
                "INSERT INTO memory_fts (text, prefix, key) VALUES (?, ?, ?)", (text, prefix, key)
            )
            await self.db.conn.execute(
                "DELETE FROM memory_vectors WHERE prefix = ? AND key = ?", (prefix, key)
            )
            await self.db.conn.commit()
        record = MemoryRecord(
            _scope_of(namespace), namespace, key, text, kind, session_id, now, now
        )
        if self.embeddings is not None:
            try:
                await self._embed_missing([(prefix, key, text)])
            except Exception:
                pass
        return record

    async def delete(self, namespace: tuple[str, ...], key: str) -> bool:
        await self.setup()
        assert self.store is not None
        existing = await self.store.abatch([GetOp(namespace, key)])
        if existing[0] is None:
            return False
        await self.store.abatch([PutOp(namespace, key, None)])
        prefix = _prefix(namespace)
        async with self.db.saver.lock:
            await self.db.conn.execute(
                "DELETE FROM memory_fts WHERE prefix = ? AND key = ?", (prefix, key)
            )
            await self.db.conn.execute(
                "DELETE FROM memory_vectors WHERE prefix = ? AND key = ?", (prefix, key)
            )
            await self.db.conn.commit()
        return True

    # ---- reading ---------------------------------------------------------------------------
    async def list(self, namespaces: Sequence[tuple[str, ...]]) -> list[MemoryRecord]:
        await self.setup()
        found: list[tuple[str, str, float]] = []
        prefixes = [_prefix(ns) for ns in namespaces]
        marks = ", ".join("?" for _ in prefixes)
        async with self.db.conn.execute(
            f"SELECT prefix, key FROM memory_fts WHERE prefix IN ({marks})", prefixes
        ) as cur:
            found = [(r[0], r[1], 0.0) for r in await cur.fetchall()]
        records = await self._records(found)
        return sorted(records, key=lambda r: r.created)

    async def search(
        self,
        query: str,
        namespaces: Sequence[tuple[str, ...]],
        *,
        limit: int = 5,
        touch: bool = True,
        min_score: float | None = None,
    ) -> tuple[list[MemoryRecord], str]:
        """(the best items for ``query``, the mode used: "fts", "semantic" or a fallback note)."""
        await self.setup()
        prefixes = [_prefix(ns) for ns in namespaces]
        if not query.strip() or not prefixes or limit <= 0:
            return [], "fts"
        mode = "fts"
        ranked: list[tuple[str, str, float]] | None = None
        if self.embeddings is not None:
            try:
                ranked = await self._semantic(query, prefixes, limit, min_score)
                mode = "semantic"
            except Exception as exc:
                mode = f"fts (semantic search unavailable: {type(exc).__name__}: {exc})"[:200]
        if ranked is None:
            ranked = await self._fts(query, prefixes, limit)
        records = await self._records(ranked)
        if touch:
            await self._touch(records)
        return records, mode

    async def _fts(
        self, query: str, prefixes: list[str], limit: int
    ) -> list[tuple[str, str, float]]:
        match = fts_query(query)
        if not match:
            return []
        marks = ", ".join("?" for _ in prefixes)
        async with self.db.conn.execute(
            f"SELECT prefix, key, bm25(memory_fts) AS rank FROM memory_fts "
            f"WHERE memory_fts MATCH ? AND prefix IN ({marks}) ORDER BY rank LIMIT ?",
            [match, *prefixes, limit],
        ) as cur:
            return [(r[0], r[1], round(-float(r[2]), 4)) for r in await cur.fetchall()]

    async def _semantic(
        self, query: str, prefixes: list[str], limit: int, min_score: float | None
    ) -> list[tuple[str, str, float]]:
        marks = ", ".join("?" for _ in prefixes)
        async with self.db.conn.execute(
            "SELECT f.prefix, f.key, f.text, v.vector FROM memory_fts f "
            "LEFT JOIN memory_vectors v ON v.prefix = f.prefix AND v.key = f.key AND v.model = ? "
            f"WHERE f.prefix IN ({marks})",
            [self.embeddings_model, *prefixes],
        ) as cur:
            rows = list(await cur.fetchall())
        missing = [(r[0], r[1], r[2]) for r in rows if r[3] is None]
        vectors = {(r[0], r[1]): np.frombuffer(r[3], dtype=np.float32) for r in rows if r[3]}
        if missing:
            vectors.update(await self._embed_missing(missing))
        if not vectors:
            return []
        q = np.asarray(await self.embeddings.aembed_query(query), dtype=np.float32)  # type: ignore[union-attr]
        keys = list(vectors)
        matrix = np.stack([vectors[k] for k in keys])
        norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(q) or 1.0)
        scores = matrix @ q / np.where(norms == 0, 1.0, norms)
        order = np.argsort(-scores, kind="stable")[:limit]
        threshold = SEMANTIC_MIN_SCORE if min_score is None else min_score
        return [
            (keys[i][0], keys[i][1], round(float(scores[i]), 4))
            for i in order
            if scores[i] >= threshold
        ]

    async def _embed_missing(
        self, items: list[tuple[str, str, str]]
    ) -> dict[tuple[str, str], np.ndarray]:
        vectors = await self.embeddings.aembed_documents([t for _, _, t in items])  # type: ignore[union-attr]
        out: dict[tuple[str, str], np.ndarray] = {}
        async with self.db.saver.lock:
            for (prefix, key, _), vec in zip(items, vectors, strict=True):
                arr = np.asarray(vec, dtype=np.float32)
                out[(prefix, key)] = arr
                await self.db.conn.execute(
                    "INSERT OR REPLACE INTO memory_vectors (prefix, key, model, vector) "
                    "VALUES (?, ?, ?, ?)",
                    (prefix, key, self.embeddings_model, arr.tobytes()),
                )
            await self.db.conn.commit()
        return out

    async def _records(self, ranked: list[tuple[str, str, float]]) -> list[MemoryRecord]:
        if not ranked:
            return []
        assert self.store is not None
        items = await self.store.abatch(
            [GetOp(tuple(prefix.split(".")), key) for prefix, key, _ in ranked]
        )
        records = []
        for (prefix, key, score), item in zip(ranked, items, strict=True):
            if item is None:
                continue
            ns = tuple(prefix.split("."))
            v = item.value  # type: ignore[union-attr]
            records.append(
                MemoryRecord(
                    scope=_scope_of(ns),
                    namespace=ns,
                    key=key,
                    text=str(v.get("text", "")),
                    kind=str(v.get("kind", "note")),
                    session_id=str(v.get("session_id", "")),
                    created=float(v.get("created", 0.0)),
                    last_used=float(v.get("last_used", 0.0)),
                    score=score,
                )
            )
        return records

    async def _touch(self, records: list[MemoryRecord]) -> None:
        now = time.time()
        stale = [r for r in records if now - r.last_used > TOUCH_AFTER_S]
        if not stale:
            return
        assert self.store is not None
        ops = []
        for r in stale:
            r.last_used = now
            value = {
                "text": r.text,
                "kind": r.kind,
                "session_id": r.session_id,
                "created": r.created,
                "last_used": now,
            }
            ops.append(PutOp(r.namespace, r.key, value, index=False))
        await self.store.abatch(ops)


def make_embeddings(model: str, base_url: str | None, api_key: str | None, timeout: float) -> Any:
    from langchain_openai import OpenAIEmbeddings  # deferred: importing openai is slow

    return OpenAIEmbeddings(
        model=model,
        base_url=base_url,
        api_key=api_key or "not-needed",  # type: ignore[arg-type]
        # Without this the client tokenizes with tiktoken, which downloads its data.
        check_embedding_ctx_length=False,
        timeout=timeout,
        max_retries=1,
    )


_instances: weakref.WeakKeyDictionary[Database, LongTermMemory] = weakref.WeakKeyDictionary()


def for_database(db: Database, settings: Any) -> LongTermMemory:
    """The process's long-term memory on ``db``; embeddings per the settings' ``[memory]``."""
    found = _instances.get(db)
    if found is None:
        mem = settings.memory
        embeddings = None
        if mem.embeddings_model:
            secret = mem.embeddings_api_key or settings.model.api_key
            embeddings = make_embeddings(
                mem.embeddings_model,
                mem.embeddings_base_url or settings.model.base_url,
                secret.get_secret_value() if secret else None,
                mem.embeddings_timeout,
            )
        found = LongTermMemory(db, embeddings, mem.embeddings_model or "")
        _instances[db] = found
    return found
