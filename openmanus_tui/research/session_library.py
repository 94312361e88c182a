"""The library a session's research runs read through (``library.Library``), built on the
sources service (``research/service.py``: network policy, document store, source registry).

- A URL is fetched by ``SourceService.fetch`` (policy on every hop, page cache, the session's
  registry with credibility and freshness); a workspace file (``file:<path>`` or a path as
  typed) by ``SourceService.read_file`` (inside the workspace only; text, Markdown, HTML, PDF).
- Search: the workspace's text files always; the web backend of ``search_info`` when the run
  may use the web, its hits screened by the policy (``screen_hits``) before anyone reads them.
  (The offline demo model never asks for the web: ``ResearchContext.web_search``.)
- ``text`` gives back the stored text (the store is content-addressed, so a resumed run in a
  new process verifies against the very text its findings were extracted from).
- ``cited`` records "cited by" in the registry.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from openmanus_tui.errors import OpenManusError
from openmanus_tui.research.documents import normalize_url
from openmanus_tui.research.library import Hit, ReadSource
from openmanus_tui.research.service import Fetched, SourceService
from openmanus_tui.tools.search_backends import (
    SearchBackend,
    SearchUnavailable,
    WorkspaceSearch,
    backend_from_env,
)

TEXT_SUFFIXES = {".md", ".txt", ".markdown", ".rst", ".csv", ".json", ".html", ".htm", ".org"}


def is_url(location: str) -> bool:
    return bool(re.match(r"^https?://", location.strip(), re.I))


def file_path(location: str) -> str:
    """The workspace path of ``file:<path>``, ``file:<path>:<line>`` (a search hit) or a path."""
    rel = location.strip().removeprefix("file:")
    return re.sub(r":\d+$", "", rel)


def _source(fetched: Fetched) -> ReadSource:
    doc, record = fetched.document, fetched.record
    return ReadSource(
        location=doc.url,
        title=doc.title or record.title or doc.url,
        domain=doc.domain,
        text=doc.text,
        published=doc.published or doc.modified,
        credibility=record.credibility.value,
        freshness=record.freshness.value,
        factors={
            "registry_number": record.number,
            "credibility": record.credibility.as_dict(),
            "freshness": record.freshness.as_dict(),
        },
        content_hash=doc.content_hash,
    )


class SessionLibrary:
    def __init__(
        self,
        service: SourceService,
        session_id: str,
        workspace: Path,
        *,
        web_backend: SearchBackend | None = None,
    ) -> None:
        self.service = service
        self.session_id = session_id
        self.workspace = Path(workspace)
        self._web_backend = web_backend

    async def read(self, location: str) -> ReadSource:
        try:
            if is_url(location):
                fetched = await self.service.fetch(location, session_id=self.session_id)
            else:
                fetched = await self.service.read_file(
                    self.workspace, file_path(location), session_id=self.session_id
                )
        except OpenManusError:
            raise
        except (OSError, ValueError) as exc:  # anything the extractors let through
            raise OpenManusError(f"{location}: {exc}", error_class="permanent") from None
        return _source(fetched)

    async def _record(self, location: str) -> Any:
        key = location if location.startswith("file:") else normalize_url(location)
        return await self.service.registry.by_key(self.session_id, key)

    async def text(self, location: str) -> str | None:
        record = await self._record(location)
        if record is not None:
            text = await self.service.text(record)
            if text is not None:
                return text
        try:
            return (await self.read(location)).text
        except OpenManusError:
            return None

    async def cited(self, location: str, where: str) -> None:
        record = await self._record(location)
        if record is not None:
            await self.service.registry.cite(self.session_id, record.number, where)

    async def corroborated(self, location: str, count: int) -> dict[str, Any] | None:
        """Independent domains that support this source's findings (a credibility factor)."""
        record = await self._record(location)
        if record is None:
            return None
        updated = await self.service.registry.set_corroboration(
            self.session_id, record.number, count
        )
        return updated.credibility.as_dict() if updated is not None else None

    async def search(self, query: str, max_results: int, *, web: bool) -> list[Hit]:
        hits: list[Hit] = []
        try:
            found = await WorkspaceSearch(self.workspace).search(query, max_results)
        except SearchUnavailable:
            found = []
        for h in found:
            path = file_path(h.url)
            if Path(path).suffix.lower() in TEXT_SUFFIXES | {".pdf"}:
                hits.append(Hit(f"file:{path}", h.title, h.snippet))
        if web:
            hits.extend(await self._web(query, max_results))
        unique: dict[str, Hit] = {}
        for h in hits:
            unique.setdefault(h.location, h)
        return list(unique.values())

    async def _web(self, query: str, max_results: int) -> list[Hit]:
        try:
            backend = self._web_backend or backend_from_env()
            found = await backend.search(query, max_results)
        except (SearchUnavailable, OpenManusError):
            return []  # unreachable or not configured: the workspace's hits stand
        kept, _ = await self.service.screen_hits(
            [h.as_dict() for h in found], session_id=self.session_id, query=query
        )
        return [Hit(normalize_url(str(h["url"])), str(h.get("title") or ""),
                    str(h.get("snippet") or "")) for h in kept if h.get("url")]
