"""The source registry: one record per normalised URL or workspace file per session (table
``sources``).

A search hit and a fetch of the same URL are one record: the hit adds its snippet (and the
query that found it), the fetch adds the title, author, site, dates, the content hash of the
stored text and the scores. Each record has a ``number``, 1, 2, 3 … in the order the session
met its sources, which never changes (the Sources tab and ``openmanus fetch`` show it; a report
renumbers its own citations). ``cited_by`` lists where a source was cited (free text given by
the citer, e.g. ``"report:run_3 [2]"``), ``corroboration`` how many other independent domains
support its findings (set by the research graph; the credibility score is recomputed with it).

Deleting a session deletes its records (``runtime.api.delete_session`` calls
:meth:`SourceRegistry.delete_session`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from openmanus_tui.research.documents import Document, _iso
from openmanus_tui.research.scoring import (
    CredibilityInputs,
    DomainClasses,
    Score,
    credibility,
    domain_classes,
    freshness,
)
from openmanus_tui.store.db import Database
from openmanus_tui.store.tables import TableStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('web', 'file')),
    url TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    author TEXT,
    site TEXT,
    domain TEXT NOT NULL DEFAULT '',
    published TEXT,
    modified TEXT,
    fetched REAL,
    content_hash TEXT,
    chars INTEGER,
    snippets TEXT NOT NULL DEFAULT '[]',
    cited_by TEXT NOT NULL DEFAULT '[]',
    score_inputs TEXT NOT NULL DEFAULT '{}',
    credibility REAL,
    credibility_factors TEXT NOT NULL DEFAULT '[]',
    freshness REAL,
    freshness_factors TEXT NOT NULL DEFAULT '[]',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (session_id, key),
    UNIQUE (session_id, number)
);
"""
_COLUMNS = (
    "id", "session_id", "number", "key", "kind", "url", "title", "author", "site", "domain",
    "published", "modified", "fetched", "content_hash", "chars", "snippets", "cited_by",
    "score_inputs", "credibility", "credibility_factors", "freshness", "freshness_factors",
    "created", "updated",
)  # fmt: skip
MAX_SNIPPETS = 10
T = TypeVar("T")


@dataclass
class SourceRecord:
    id: int
    session_id: str
    number: int
    key: str  # the normalised URL, or "file:<workspace-relative path>"
    kind: str  # "web" or "file"
    url: str  # the URL last fetched (after redirects), or the file's path
    title: str
    author: str | None
    site: str | None
    domain: str
    published: str | None
    modified: str | None
    fetched: float | None  # None: only seen in search results so far
    content_hash: str | None  # of the stored text (DocumentStore.text)
    chars: int | None
    snippets: list[dict[str, Any]] = field(default_factory=list)
    cited_by: list[str] = field(default_factory=list)
    score_inputs: dict[str, Any] = field(default_factory=dict)
    credibility: Score = field(default_factory=lambda: Score(None))
    freshness: Score = field(default_factory=lambda: Score(None))
    created: float = 0.0
    updated: float = 0.0

    @property
    def date(self) -> str | None:
        """The date a reader sees: published, else modified."""
        return self.published or self.modified

    @property
    def corroboration(self) -> int | None:
        return self.score_inputs.get("corroboration")

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``openmanus fetch --json``, exports, the writing engineer's CSL items)."""

        def iso(ts: float | None) -> str | None:
            return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None

        return {
            "number": self.number,
            "session_id": self.session_id,
            "key": self.key,
            "kind": self.kind,
            "url": self.url,
            "title": self.title,
            "author": self.author,
            "site": self.site,
            "domain": self.domain,
            "published": self.published,
            "modified": self.modified,
            "fetched": iso(self.fetched),
            "content_hash": self.content_hash,
            "chars": self.chars,
            "snippets": self.snippets,
            "cited_by": self.cited_by,
            "credibility": self.credibility.as_dict(),
            "freshness": self.freshness.as_dict(),
            "corroboration": self.corroboration,
        }


def _factors(raw: str) -> list[Any]:
    from openmanus_tui.research.scoring import Factor

    return [Factor(**f) for f in json.loads(raw or "[]")]


def _record(row: Sequence[Any]) -> SourceRecord:
    r = dict(zip(_COLUMNS, row, strict=True))
    return SourceRecord(
        id=r["id"],
        session_id=r["session_id"],
        number=r["number"],
        key=r["key"],
        kind=r["kind"],
        url=r["url"],
        title=r["title"],
        author=r["author"],
        site=r["site"],
        domain=r["domain"],
        published=r["published"],
        modified=r["modified"],
        fetched=r["fetched"],
        content_hash=r["content_hash"],
        chars=r["chars"],
        snippets=json.loads(r["snippets"]),
        cited_by=json.loads(r["cited_by"]),
        score_inputs=json.loads(r["score_inputs"]),
        credibility=Score(r["credibility"], _factors(r["credibility_factors"])),
        freshness=Score(r["freshness"], _factors(r["freshness_factors"])),
        created=r["created"],
        updated=r["updated"],
    )


@dataclass
class Scorer:
    """What the registry scores with: the domain classes and the freshness half-life."""

    classes: DomainClasses = field(default_factory=domain_classes)
    half_life_days: float = 365.0
    now: Callable[[], datetime] | None = None  # the clock freshness is measured against

    def inputs_for(
        self, *, url: str, domain: str, kind: str, author: bool, dated: bool,
        doi: str | None = None, data: bool = False, methods: bool = False,
        corroboration: int | None = None, fetched: bool = True,
    ) -> CredibilityInputs:  # fmt: skip
        from openmanus_tui.research.policy import host_of

        if kind == "file":
            return CredibilityInputs(
                host="", domain_class="workspace", author=author, dated=dated, doi=doi,
                data=data, methods=methods, corroboration=corroboration,
            )  # fmt: skip
        host = host_of(url) or domain
        klass, matched = self.classes.classify(host)
        return CredibilityInputs(
            host=host, domain_class=klass, matched=matched,
            https=url.lower().startswith("https://"), author=author, dated=dated, doi=doi,
            data=data, methods=methods, corroboration=corroboration, fetched=fetched,
        )  # fmt: skip

    def credibility(self, inputs: CredibilityInputs) -> Score:
        return credibility(inputs, self.classes)

    def freshness(
        self, published: str | None, modified: str | None, half_life_days: float | None = None
    ) -> Score:
        return freshness(
            published, modified, half_life_days=half_life_days or self.half_life_days,
            now=self.now() if self.now else None,
        )  # fmt: skip


def _merged(func: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Run a read-merge-write method under the registry's merge lock."""

    @functools.wraps(func)
    async def wrapper(self: SourceRegistry, *args: Any, **kwargs: Any) -> T:
        async with self._merging:
            return await func(self, *args, **kwargs)

    return wrapper


class SourceRegistry(TableStore):
    """The ``sources`` table on the process's shared connection."""

    SCHEMA = SCHEMA

    def __init__(self, db: Database, scorer: Scorer | None = None) -> None:
        super().__init__(db)
        self.scorer = scorer or Scorer()

    @property
    def _merging(self) -> asyncio.Lock:
        """One lock per database for read-merge-write: parallel researchers registering the
        same URL at once make one record, not a unique-constraint error."""
        lock = getattr(self.db, "_sources_merge_lock", None)
        if lock is None:
            lock = asyncio.Lock()
            self.db._sources_merge_lock = lock  # type: ignore[attr-defined]
        return lock

    # ---- reading ------------------------------------------------------------------------
    async def list(self, session_id: str) -> list[SourceRecord]:
        """The session's sources by number."""
        await self.setup()
        async with self.db.conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM sources WHERE session_id = ? ORDER BY number",
            (session_id,),
        ) as cur:
            return [_record(r) for r in await cur.fetchall()]

    async def get(self, session_id: str, number: int) -> SourceRecord | None:
        return await self._one("number = ?", (session_id, number))

    async def by_key(self, session_id: str, key: str) -> SourceRecord | None:
        return await self._one("key = ?", (session_id, key))

    async def _one(self, where: str, params: tuple[Any, ...]) -> SourceRecord | None:
        await self.setup()
        async with self.db.conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM sources WHERE session_id = ? AND {where}", params
        ) as cur:
            row = await cur.fetchone()
        return _record(row) if row else None

    # ---- writing ------------------------------------------------------------------------
    @_merged
    async def add_snippet(
        self,
        session_id: str,
        *,
        key: str,
        url: str,
        title: str,
        domain: str,
        snippet: str,
        query: str,
        date: str | None = None,
        backend: str = "",
    ) -> SourceRecord:
        """Record a search hit: a new source, or one more snippet on a known one."""
        entry = {"query": query, "snippet": snippet, "date": date, "backend": backend}
        existing = await self.by_key(session_id, key)
        if existing is not None:
            snippets = existing.snippets
            if entry not in snippets:
                snippets = [*snippets, entry][-MAX_SNIPPETS:]
            published = existing.published or (
                _iso(date) if existing.fetched is None else existing.published
            )
            updates: dict[str, Any] = {"snippets": json.dumps(snippets)}
            if existing.fetched is None:  # a fetched record knows better than a search engine
                updates["title"] = existing.title or title
                if published != existing.published:
                    updates.update(self._scores_for_snippet(url, domain, published))
                    updates["published"] = published
            return await self._update(existing.id, updates)
        published = _iso(date)
        row = {
            "key": key, "kind": "web", "url": url, "title": title, "domain": domain,
            "published": published, "snippets": json.dumps([entry]),
            **self._scores_for_snippet(url, domain, published),
        }  # fmt: skip
        return await self._insert(session_id, row)

    def _scores_for_snippet(self, url: str, domain: str, published: str | None) -> dict[str, Any]:
        inputs = self.scorer.inputs_for(
            url=url, domain=domain, kind="web", author=False, dated=published is not None,
            fetched=False,
        )  # fmt: skip
        return self._score_columns(inputs, published, None)

    def _score_columns(
        self,
        inputs: CredibilityInputs,
        published: str | None,
        modified: str | None,
        half_life_days: float | None = None,
    ) -> dict[str, Any]:
        cred = self.scorer.credibility(inputs)
        fresh = self.scorer.freshness(published, modified, half_life_days)
        return {
            "score_inputs": json.dumps(inputs.as_dict()),
            "credibility": cred.value,
            "credibility_factors": json.dumps([f.as_dict() for f in cred.factors]),
            "freshness": fresh.value,
            "freshness_factors": json.dumps([f.as_dict() for f in fresh.factors]),
        }

    @_merged
    async def add_document(
        self,
        session_id: str,
        doc: Document,
        *,
        kind: str = "web",
        half_life_days: float | None = None,
    ) -> SourceRecord:
        """Record a fetched page or a read workspace file (merging with its search hits)."""
        existing = await self.by_key(session_id, doc.url)
        for alias in doc.aliases:  # a search hit under the URL that redirected here
            existing = existing or await self.by_key(session_id, alias)
        corroboration = existing.corroboration if existing else None
        inputs = self.scorer.inputs_for(
            url=doc.final_url, domain=doc.domain, kind=kind, author=bool(doc.author),
            dated=bool(doc.published or doc.modified), doi=doc.signals.doi,
            data=doc.signals.data, methods=doc.signals.methods, corroboration=corroboration,
        )  # fmt: skip
        row: dict[str, Any] = {
            "kind": kind, "url": doc.final_url, "title": doc.title, "author": doc.author,
            "site": doc.site, "domain": doc.domain, "published": doc.published,
            "modified": doc.modified, "fetched": doc.fetched, "content_hash": doc.content_hash,
            "chars": len(doc.text),
            **self._score_columns(inputs, doc.published, doc.modified, half_life_days),
        }  # fmt: skip
        if existing is not None:
            return await self._update(existing.id, row)
        return await self._insert(session_id, {"key": doc.url, **row})

    @_merged
    async def cite(self, session_id: str, number: int, where: str) -> SourceRecord | None:
        """Note that source ``number`` was cited at ``where``; None if there is no such source."""
        record = await self.get(session_id, number)
        if record is None:
            return None
        if where in record.cited_by:
            return record
        return await self._update(record.id, {"cited_by": json.dumps([*record.cited_by, where])})

    @_merged
    async def set_corroboration(
        self, session_id: str, number: int, count: int, *, model_rating: float | None = None
    ) -> SourceRecord | None:
        """How many other independent domains support the source's findings (and optionally a
        model's rating); the credibility score is recomputed with them."""
        record = await self.get(session_id, number)
        if record is None:
            return None
        inputs = CredibilityInputs(**record.score_inputs)
        inputs.corroboration = max(0, int(count))
        if model_rating is not None:
            inputs.model_rating = model_rating
        cred = self.scorer.credibility(inputs)
        return await self._update(
            record.id,
            {
                "score_inputs": json.dumps(inputs.as_dict()),
                "credibility": cred.value,
                "credibility_factors": json.dumps([f.as_dict() for f in cred.factors]),
            },
        )

    async def copy_session(self, source_id: str, target_id: str) -> int:
        """Give ``target_id`` (a copy of a session) the sources of ``source_id``, numbers and
        all; returns how many. Sources are per session, not per branch: all of them go."""
        await self.setup()
        names = [c for c in _COLUMNS if c not in ("id", "session_id")]
        async with self.db.saver.lock:
            cur = await self.db.conn.execute(
                f"INSERT OR IGNORE INTO sources (session_id, {', '.join(names)}) "
                f"SELECT ?, {', '.join(names)} FROM sources WHERE session_id = ?",
                (target_id, source_id),
            )
            await self.db.conn.commit()
        return cur.rowcount or 0

    async def delete_session(self, session_id: str) -> int:
        """Delete a session's sources; returns how many there were."""
        await self.setup()
        async with self.db.saver.lock:
            cur = await self.db.conn.execute(
                "DELETE FROM sources WHERE session_id = ?", (session_id,)
            )
            await self.db.conn.commit()
        return cur.rowcount or 0

    async def _insert(self, session_id: str, row: dict[str, Any]) -> SourceRecord:
        await self.setup()
        now = time.time()
        async with self.db.saver.lock:
            # The number is taken inside the writer's lock: two writers never get the same one.
            async with self.db.conn.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM sources WHERE session_id = ?",
                (session_id,),
            ) as cur:
                found = await cur.fetchone()
            number = int(found[0]) if found else 1
            values = {**row, "session_id": session_id, "number": number, "created": now,
                      "updated": now}  # fmt: skip
            names = list(values)
            await self.db.conn.execute(
                f"INSERT INTO sources ({', '.join(names)}) VALUES "
                f"({', '.join('?' for _ in names)})",
                [values[n] for n in names],
            )
            await self.db.conn.commit()
        record = await self.get(session_id, number)
        assert record is not None
        return record

    async def _update(self, source_id: int, values: dict[str, Any]) -> SourceRecord:
        values = {**values, "updated": time.time()}
        names = list(values)
        async with self.db.saver.lock:
            await self.db.conn.execute(
                f"UPDATE sources SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?",
                [*(values[n] for n in names), source_id],
            )
            await self.db.conn.commit()
        async with self.db.conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM sources WHERE id = ?", (source_id,)
        ) as cur:
            row = await cur.fetchone()
        assert row is not None
        return _record(row)
