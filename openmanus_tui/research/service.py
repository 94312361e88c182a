"""One object for everything about sources: fetch through the policy, extract, store, register,
score. ``web_fetch``, ``search_info``, ``openmanus fetch`` and the research graph all use it.

:meth:`SourceService.fetch` is the pipeline of one URL: normalise → page cache (TTL) → policy
and HTTP (every hop) → extraction → content-addressed storage → the session's registry (when a
session is given) with credibility and freshness. :meth:`SourceService.read_file` does the same
for a workspace file (the user's reading list). :meth:`SourceService.screen_hits` applies the
policy to search results before the model sees them and registers the ones kept.

Built from the settings by :meth:`SourceService.from_settings`; tests pass ``resolver`` (no real
DNS) and ``transport`` (route the checked connections to a loopback fixture server).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from openmanus_tui.errors import CircuitOpen
from openmanus_tui.research.documents import (
    Document,
    DocumentStore,
    ExtractError,
    domain_of,
    extract,
    normalize_url,
)
from openmanus_tui.research.fetch import FetchError, RawPage, http_get
from openmanus_tui.research.policy import NetworkPolicy, PolicyRefusal, Resolver, static_resolver
from openmanus_tui.research.registry import Scorer, SourceRecord, SourceRegistry
from openmanus_tui.research.scoring import domain_classes
from openmanus_tui.store.db import Database

if TYPE_CHECKING:
    from openmanus_tui.resilience.breakers import BreakerBoard

MAX_FILE_BYTES = 20 * 1024 * 1024


class HostFailing(FetchError):
    """The host's circuit breaker is open: no request was made. ``str()`` is one line for the
    model: which host, why, and when it will be tried again."""

    def __init__(self, host: str, breaker: str, retry_in: float, last_error: str) -> None:
        why = f" (last: {last_error[:160]})" if last_error else ""
        wait = max(0.0, retry_in)
        when = f"in {wait:.0f} s" if wait >= 1 else "on the next call"
        super().__init__(
            f"{host} is failing repeatedly{why}; not requested now, its circuit breaker "
            f"tries it again {when}",
            transient=True,
        )
        self.host = host
        self.breaker = breaker
        self.retry_in = wait


def breaker_name(url: str) -> str:
    """The circuit breaker of the host ``url`` asks first (with its port when one is given)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"fetch {host}:{port}" if port else f"fetch {host}"


def _host_failed(exc: BaseException) -> bool:
    return isinstance(exc, FetchError) and exc.host_failure


@dataclass
class Fetched:
    """A fetched (or read) document and its source record. ``record.number`` is 0 and nothing
    was registered when no session was given."""

    document: Document
    record: SourceRecord


class SourceService:
    def __init__(
        self,
        db: Database,
        *,
        policy: NetworkPolicy | None = None,
        scorer: Scorer | None = None,
        timeout: float = 15.0,
        max_bytes: int = 5 * 1024 * 1024,
        max_redirects: int = 5,
        cache_ttl: float = 24 * 3600.0,
        transport: httpx.AsyncBaseTransport | None = None,
        breakers: BreakerBoard | None = None,
    ) -> None:
        self.db = db
        self.policy = policy or NetworkPolicy()
        self.scorer = scorer or Scorer()
        self.documents = DocumentStore(db)
        self.registry = SourceRegistry(db, self.scorer)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.cache_ttl = cache_ttl
        self.transport = transport
        self.breakers = breakers  # None: no circuit breakers (a one-off ``openmanus fetch``)
        self._inflight: dict[str, asyncio.Future[Document]] = {}

    @classmethod
    def from_settings(
        cls,
        db: Database,
        settings: Any,
        *,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        breakers: BreakerBoard | None = None,
    ) -> SourceService:
        """From the ``[network]`` and ``[sources]`` sections (``ConfigError`` for a broken
        domain list)."""
        net, src = settings.network, settings.sources
        if resolver is None and net.hosts:
            resolver = static_resolver(dict(net.hosts), fallback=True)
        return cls(
            db,
            policy=NetworkPolicy.from_settings(net, resolver=resolver),
            scorer=Scorer(domain_classes(src.domains_file), src.half_life_days),
            timeout=net.fetch_timeout,
            max_bytes=int(net.fetch_max_mb * 1024 * 1024),
            max_redirects=net.max_redirects,
            cache_ttl=net.cache_ttl_hours * 3600,
            transport=transport,
            breakers=breakers,
        )

    # ---- the web ------------------------------------------------------------------------
    async def fetch(
        self,
        url: str,
        *,
        session_id: str | None = None,
        refresh: bool = False,
        half_life_days: float | None = None,
    ) -> Fetched:
        """Fetch ``url`` (see the module docstring). Raises ``PolicyRefusal`` (refused by the
        policy), ``FetchError`` (network, HTTP status, size) or ``ExtractError`` (unreadable)."""
        self.policy.check_url(url)  # refuse before looking anything up, even in the cache
        key = normalize_url(url)
        doc = None if refresh else await self.documents.cached(key, self.cache_ttl)
        if doc is not None and not self._cache_allowed(doc):
            doc = None  # fetched again, so the policy as it is now decides
        if doc is None:
            doc = await self._fetch_once(key, url)
        return await self._register(doc, session_id, "web", half_life_days)

    def _cache_allowed(self, doc: Document) -> bool:
        """A cached page passes the policy as it is now: its final URL too (a domain blocked
        since), and not a page read through a private address when those are now refused."""
        if doc.via_private and not self.policy.allow_private_addresses:
            return False
        try:
            self.policy.check_url(doc.final_url)
        except PolicyRefusal:
            return False
        return True

    async def _fetch_once(self, key: str, url: str) -> Document:
        # Two calls for the same page at once (parallel researchers) make one request.
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Document] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            raw = await self._get(url)
            # Keyed by where the page really is; the asked URL is an alias (http → https,
            # a moved page), so either spelling finds it in the cache and the registry.
            doc = await asyncio.to_thread(
                extract, raw.body, url=normalize_url(raw.final_url), final_url=raw.final_url,
                content_type=raw.content_type, charset=raw.charset, truncated=raw.truncated,
            )  # fmt: skip
            doc.aliases = [key] if key != doc.url else []
            doc.via_private = raw.via_private
            await self.documents.put(doc)
            future.set_result(doc)
            return doc
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._inflight.pop(key, None)

    async def _get(self, url: str) -> RawPage:
        """The HTTP fetch, through the breaker of the host asked (a redirect's failure counts
        against the host that sent there)."""

        def get() -> Awaitable[RawPage]:
            return http_get(
                url, self.policy, timeout=self.timeout, max_bytes=self.max_bytes,
                max_redirects=self.max_redirects, transport=self.transport,
            )  # fmt: skip

        board = self.breakers
        if board is None:
            return await get()
        name = breaker_name(url)
        try:
            return await board.call(name, get, counts=_host_failed)
        except CircuitOpen as exc:
            last = next((b.last_error for b in board.states() if b.name == name), "")
            raise HostFailing(name.removeprefix("fetch "), name, exc.retry_in, last) from None
        finally:
            # One breaker per host ever fetched would grow without bound (memory, metrics
            # labels, doctor's list): a host that answered goes, a failing one stays.
            await board.forget_if_healthy(name)

    async def _register(
        self, doc: Document, session_id: str | None, kind: str, half_life_days: float | None
    ) -> Fetched:
        if session_id:
            record = await self.registry.add_document(
                session_id, doc, kind=kind, half_life_days=half_life_days
            )
        else:
            record = self.preview(doc, kind=kind, half_life_days=half_life_days)
        return Fetched(doc, record)

    def preview(
        self, doc: Document, *, kind: str = "web", half_life_days: float | None = None
    ) -> SourceRecord:
        """The record ``doc`` would get, scored, without registering it anywhere."""
        inputs = self.scorer.inputs_for(
            url=doc.final_url, domain=doc.domain, kind=kind, author=bool(doc.author),
            dated=bool(doc.published or doc.modified), doi=doc.signals.doi,
            data=doc.signals.data, methods=doc.signals.methods,
        )  # fmt: skip
        return SourceRecord(
            id=0, session_id="", number=0, key=doc.url, kind=kind, url=doc.final_url,
            title=doc.title, author=doc.author, site=doc.site, domain=doc.domain,
            published=doc.published, modified=doc.modified, fetched=doc.fetched,
            content_hash=doc.content_hash, chars=len(doc.text), score_inputs=inputs.as_dict(),
            credibility=self.scorer.credibility(inputs),
            freshness=self.scorer.freshness(doc.published, doc.modified, half_life_days),
            created=doc.fetched, updated=doc.fetched,
        )  # fmt: skip

    # ---- workspace files ----------------------------------------------------------------
    async def read_file(
        self,
        workspace: Path,
        path: str,
        *,
        session_id: str | None = None,
        half_life_days: float | None = None,
    ) -> Fetched:
        """Read a workspace file as a source (key ``file:<relative path>``); it never leaves
        the workspace (``safe_fs``). ``ExtractError`` when it cannot be read as a document."""
        from openmanus_tui.tools.safe_fs import Workspace, WorkspacePathError

        ws = Workspace(workspace)
        rel = path
        if Path(path).is_absolute():  # an absolute path is taken only inside the workspace
            rel = os.path.relpath(path, Path(workspace).resolve())
        try:
            body = await asyncio.to_thread(ws.read_bytes, rel, MAX_FILE_BYTES + 1)
        except (WorkspacePathError, OSError) as exc:
            raise ExtractError(f"cannot read {path}: {exc}") from None
        if len(body) > MAX_FILE_BYTES:
            raise ExtractError(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
        rel_text = "/".join(p for p in str(rel).split("/") if p not in ("", "."))
        # No date from the file's mtime: that is when it was copied, not when it was written.
        doc = await asyncio.to_thread(
            extract, body, url=f"file:{rel_text}", final_url=rel_text, name=rel_text.lower(),
        )  # fmt: skip
        doc.domain = "workspace"
        await self.documents.put(doc)
        return await self._register(doc, session_id, "file", half_life_days)

    # ---- search results -----------------------------------------------------------------
    async def screen_hits(
        self, hits: list[dict[str, Any]], *, session_id: str | None = None, query: str = ""
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The web hits the policy lets through (workspace hits pass untouched) and the
        reasons for the others; kept web hits are registered as sources of ``session_id``
        and get ``source_number``."""
        kept: list[dict[str, Any]] = []
        refused: list[str] = []
        for hit in hits:
            if hit.get("source") == "workspace":
                kept.append(hit)
                continue
            url = str(hit.get("url") or "")
            try:
                self.policy.check_url(url)
            except PolicyRefusal as exc:
                refused.append(str(exc))
                continue
            if session_id:
                record = await self.registry.add_snippet(
                    session_id, key=normalize_url(url), url=url,
                    title=str(hit.get("title") or url), domain=domain_of(url),
                    snippet=str(hit.get("snippet") or ""), query=query, date=hit.get("date"),
                    backend=str(hit.get("source") or ""),
                )  # fmt: skip
                hit = {**hit, "source_number": record.number}
            kept.append(hit)
        return kept, refused

    async def text(self, record: SourceRecord) -> str | None:
        """The stored text of a source (None when it was only seen in search results)."""
        if not record.content_hash:
            return None
        return await self.documents.text(record.content_hash)

    async def sources(self, session_id: str) -> list[SourceRecord]:
        return await self.registry.list(session_id)

    async def delete_session(self, session_id: str) -> int:
        return await self.registry.delete_session(session_id)
