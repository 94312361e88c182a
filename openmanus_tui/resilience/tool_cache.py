"""The tool-result cache, table ``tool_cache``: results of read-only network tools
(``search_info`` on the web, ``web_fetch``) kept for ``cache.tool_ttl`` seconds.

Which tools: those whose spec says ``read_only`` and ``risk = network`` and whose
``cacheable(args)`` (when given) agrees; the runtime's tool runner applies it to every such
tool, so a new one (``web_fetch``) needs nothing but those declarations. The key is the tool
and its arguments as validated (defaults filled in, whitespace trimmed by the model), so two
spellings of one request share an entry. Only successful results are kept.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from openmanus_tui.resilience.ttl_table import CacheStats, TtlTable
from openmanus_tui.tools.base import ToolResult, ToolSpec

if TYPE_CHECKING:
    from openmanus_tui.config import CacheSettings
    from openmanus_tui.store.db import Database

TABLE = "tool_cache"


def call_key(spec: ToolSpec, args: dict[str, Any]) -> str | None:
    """The cache key of a call, or None when the call may not be cached."""
    if not spec.cache_eligible:
        return None
    try:
        normalised = spec.validate_args(args).model_dump(mode="json")
    except ValueError:
        return None  # invalid arguments: run_tool reports them
    if spec.cacheable is not None and not spec.cacheable(normalised):
        return None
    text = json.dumps([spec.name, normalised], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


class ToolCache:
    def __init__(self, db: Database, settings: CacheSettings) -> None:
        self.enabled = settings.tools
        self.table = TtlTable(
            db, TABLE, ttl=settings.tool_ttl, max_bytes=settings.tool_max_mb * 1024 * 1024
        )

    async def get(self, spec: ToolSpec, key: str) -> ToolResult | None:
        text = await self.table.get(key, spec.name)
        if text is None:
            return None
        try:
            saved = json.loads(text)
            return ToolResult(
                content=saved["content"], status="ok", truncated=bool(saved.get("truncated")),
                data=saved.get("data"), cached=True,
            )
        except (ValueError, KeyError, TypeError):
            return None

    async def put(self, spec: ToolSpec, key: str, result: ToolResult, session_id: str) -> None:
        if result.status != "ok":
            return
        value = {"content": result.content, "truncated": result.truncated, "data": result.data}
        text = json.dumps(value, ensure_ascii=False, default=str)
        await self.table.put(key, spec.name, text, session_id=session_id)

    async def stats(self) -> CacheStats:
        return await self.table.stats()
