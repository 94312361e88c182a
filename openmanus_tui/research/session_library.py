"""The library a session's research runs read through (``library.Library``).

- Workspace files (``file:<path>``, or a path as the user typed it) are read inside the
  workspace only (``safe_fs.Workspace``: no ``..``, no symlinks out).
- Web pages go through ``web`` (set when the web reader is available): the network policy,
  the document store and the session's source registry. Without it a URL is refused with a
  one-line reason.
- Search: the workspace's text files always; the web backend of ``search_info`` when the run
  may use the web.

Texts read in this process are kept by location, so the verifier checks the exact text the
findings were extracted from.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from openmanus_tui.errors import OpenManusError
from openmanus_tui.research.library import Hit, ReadSource
from openmanus_tui.tools.safe_fs import Workspace, WorkspacePathError
from openmanus_tui.tools.search_backends import SearchUnavailable, WorkspaceSearch

MAX_FILE_BYTES = 4 * 1024 * 1024
TEXT_SUFFIXES = {".md", ".txt", ".markdown", ".rst", ".csv", ".json", ".html", ".htm", ".org"}

WebRead = Callable[[str], Awaitable[ReadSource]]
WebSearch = Callable[[str, int], Awaitable[list[Hit]]]


def is_url(location: str) -> bool:
    return bool(re.match(r"^https?://", location.strip(), re.I))


def file_key(path: str) -> str:
    rel = path.strip().removeprefix("file:").lstrip("./") or path
    return f"file:{rel}"


class SessionLibrary:
    def __init__(
        self,
        workspace: Path,
        *,
        web_read: WebRead | None = None,
        web_search: WebSearch | None = None,
        on_cited: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.workspace = Path(workspace)
        self.web_read = web_read
        self.web_search = web_search
        self.on_cited = on_cited
        self.texts: dict[str, str] = {}

    # ---- reading ----------------------------------------------------------------------
    async def read(self, location: str) -> ReadSource:
        if is_url(location):
            if self.web_read is None:
                raise OpenManusError(
                    f"{location}: web pages cannot be read here (no web reader configured)",
                    error_class="user",
                )
            source = await self.web_read(location)
        else:
            source = await asyncio.to_thread(self._read_file, location)
        self.texts[source.location] = source.text
        self.texts.setdefault(location, source.text)
        return source

    def _read_file(self, location: str) -> ReadSource:
        key = file_key(location)
        rel = key.removeprefix("file:")
        rel = re.sub(r":\d+$", "", rel)  # a search hit points at a line
        key = f"file:{rel}"
        try:
            ws = Workspace(self.workspace)
            with ws.open_read(rel) as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except (WorkspacePathError, OSError) as exc:
            raise OpenManusError(f"{rel}: cannot read this workspace file: {exc}",
                                 error_class="user") from None
        if len(data) > MAX_FILE_BYTES:
            raise OpenManusError(f"{rel}: larger than {MAX_FILE_BYTES // 2**20} MB",
                                 error_class="user")
        if b"\x00" in data[:4096]:
            raise OpenManusError(f"{rel}: not a text file", error_class="user")
        text = data.decode("utf-8", errors="replace")
        heading = re.search(r"^#\s+(.+)$", text, re.M)
        title = heading.group(1).strip() if heading else Path(rel).name
        return ReadSource(
            location=key, title=title, domain="workspace", text=text,
            content_hash=hashlib.sha256(text.encode("utf-8", "replace")).hexdigest(),
            factors={"kind": "workspace file"},
        )

    async def text(self, location: str) -> str | None:
        if location in self.texts:
            return self.texts[location]
        try:
            return (await self.read(location)).text
        except OpenManusError:
            return None

    async def cited(self, location: str, where: str) -> None:
        if self.on_cited is not None:
            await self.on_cited(location, where)

    # ---- searching ----------------------------------------------------------------------
    async def search(self, query: str, max_results: int, *, web: bool) -> list[Hit]:
        hits: list[Hit] = []
        try:
            found = await WorkspaceSearch(self.workspace).search(query, max_results)
        except SearchUnavailable:
            found = []
        for h in found:
            path = re.sub(r":\d+$", "", h.url)
            if Path(path).suffix.lower() in TEXT_SUFFIXES or not Path(path).suffix:
                hits.append(Hit(file_key(path), h.title, h.snippet))
        if web and self.web_search is not None:
            try:
                hits.extend(await self.web_search(query, max_results))
            except OpenManusError:
                pass  # the web backend is unreachable: the workspace's hits stand
        unique: dict[str, Hit] = {}
        for h in hits:
            unique.setdefault(h.location, h)
        return list(unique.values())
