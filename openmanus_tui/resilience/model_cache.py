"""The model-response cache (opt-in: ``cache.model = true``), table ``model_cache``.

A request is looked up by an exact match on its normalised form: the model and the server it
goes to, the messages as the OpenAI API receives them (without local ids), the tool schemas and
the temperature. Only temperature 0 is cached unless ``cache.model_any_temperature`` is set: a
sampled answer is not "the" answer to its request. A hit costs no request and no money; the
step says it was answered from the cache. Replays and tests use it to make reruns cheap.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    convert_to_openai_messages,
    message_to_dict,
    messages_from_dict,
)

from openmanus_tui.resilience.ttl_table import CacheStats, TtlTable

if TYPE_CHECKING:
    from openmanus_tui.config import CacheSettings
    from openmanus_tui.store.db import Database

TABLE = "model_cache"


def request_key(
    endpoint: str, messages: list[BaseMessage], tools: list[dict[str, Any]] | None,
    temperature: float | None,
) -> str:
    """The hash of the normalised request."""
    body = {
        "endpoint": endpoint,
        "messages": convert_to_openai_messages(messages),
        "tools": tools or [],
        "temperature": temperature,
    }
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


class ModelCache:
    def __init__(self, db: Database, settings: CacheSettings, temperature: float | None) -> None:
        self.table = TtlTable(
            db, TABLE, ttl=settings.model_ttl, max_bytes=settings.model_max_mb * 1024 * 1024
        )
        self.temperature = temperature
        # Sampled replies are not cached unless asked for.
        self.enabled = settings.model and (
            settings.model_any_temperature or not temperature
        )

    def key(self, endpoint: str, messages: list[BaseMessage], tools: Any) -> str:
        return request_key(endpoint, messages, tools, self.temperature)

    async def lookup(self, keys: list[tuple[str, str]]) -> tuple[int, AIMessage] | None:
        """The first of ``keys`` ((key, model label), the chain's models in order) that the
        cache holds, as (its index, the reply); one lookup in the hit rates either way."""
        for index, (key, label) in enumerate(keys):
            found = await self.get(key, label, count=False)
            if found is not None:
                await self.table.count_lookup(label, True)
                return index, found
        if keys:
            await self.table.count_lookup(keys[0][1], False)
        return None

    async def get(self, key: str, label: str, *, count: bool = True) -> AIMessage | None:
        text = await self.table.get(key, label, count=count)
        if text is None:
            return None
        try:
            (message,) = messages_from_dict([json.loads(text)])
        except (ValueError, KeyError, TypeError):
            return None  # written by an incompatible version: a miss
        return message if isinstance(message, AIMessage) else None

    async def put(self, key: str, label: str, message: AIMessage, session_id: str) -> None:
        text = json.dumps(message_to_dict(message), ensure_ascii=False, default=str)
        await self.table.put(key, label, text, session_id=session_id)

    async def stats(self) -> CacheStats:
        return await self.table.stats()
