"""Generated documents kept in the ``writing_documents`` table: what was asked, where the file
went, the quality score and the whole ``GeneratedContent`` as JSON — so a document can be found,
re-scored and exported later. A row belongs to a session when it was written from one
(``--from-session``, the Writing profile); deleting the session deletes its rows."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from openmanus_tui.store.db import Database
from openmanus_tui.writing.requirements import GeneratedContent

SCHEMA = """
CREATE TABLE IF NOT EXISTS writing_documents (
    id TEXT PRIMARY KEY,
    session_id TEXT,
    created REAL NOT NULL,
    brief TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL DEFAULT '',
    format TEXT NOT NULL DEFAULT 'md',
    quality_score REAL NOT NULL DEFAULT 0,
    generated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS writing_documents_by_session ON writing_documents(session_id);
"""


@dataclass(frozen=True)
class DocumentRow:
    id: str
    session_id: str | None
    created: float
    brief: str
    path: str
    format: str
    quality_score: float

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class WritingRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def setup(self) -> None:
        async with self.db.saver.lock:
            await self.db.conn.executescript(SCHEMA)
            await self.db.conn.commit()

    async def add(self, generated: GeneratedContent, *, brief: str, path: str, fmt: str,
                  session_id: str | None = None) -> str:
        doc_id = "doc_" + uuid.uuid4().hex[:12]
        async with self.db.saver.lock:
            await self.db.conn.execute(
                "INSERT INTO writing_documents (id, session_id, created, brief, path, format, "
                "quality_score, generated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (doc_id, session_id, time.time(), brief, path, fmt, generated.quality_score,
                 generated.model_dump_json()))
            await self.db.conn.commit()
        return doc_id

    async def list(self, session_id: str | None = None) -> list[DocumentRow]:
        query = ("SELECT id, session_id, created, brief, path, format, quality_score "
                 "FROM writing_documents")
        args: tuple[Any, ...] = ()
        if session_id is not None:
            query += " WHERE session_id = ?"
            args = (session_id,)
        async with self.db.conn.execute(query + " ORDER BY created DESC", args) as cur:
            return [DocumentRow(*row) for row in await cur.fetchall()]

    async def get(self, doc_id: str) -> GeneratedContent | None:
        async with self.db.conn.execute(
                "SELECT generated FROM writing_documents WHERE id = ?", (doc_id,)) as cur:
            row = await cur.fetchone()
        return GeneratedContent(**json.loads(row[0])) if row else None

    async def delete_session(self, session_id: str) -> int:
        async with self.db.saver.lock:
            cur = await self.db.conn.execute(
                "DELETE FROM writing_documents WHERE session_id = ?", (session_id,))
            await self.db.conn.commit()
        return cur.rowcount or 0
