"""Token accounting: offline BPE counts per text, message and prompt, and their reconciliation
with the usage the server reports.

``bpe-openai`` ships ``o200k_base`` and ``cl100k_base`` inside its wheel (``tiktoken`` downloads
its encodings at run time and fails offline). Models without a known encoding are counted with
``o200k_base``. Local counts only plan the window; the server's reported usage is the truth, so
the planner multiplies its counts by a calibration ratio learned from that usage
(:func:`reconcile`), which never goes below 1 — undercounting is what overflows a window.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import bpe_openai
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

DEFAULT_ENCODING = "o200k_base"
# Per-message framing (role, separators) as in OpenAI's counting guide, and per tool call.
MESSAGE_OVERHEAD = 4
CALL_OVERHEAD = 8
PROMPT_OVERHEAD = 3  # the reply's priming
_CACHE_LIMIT = 50_000
_PIECE = 200_000  # characters encoded at once (the tokenizer's own limit is ~1,000,000)
RATIO_MIN, RATIO_MAX = 1.0, 4.0


@lru_cache(maxsize=8)
def _encoding(name: str) -> Any:
    return bpe_openai.get_encoding(name)


def encoding_name(model: str) -> str:
    """The encoding of a model name (``gpt-4o-mini``, ``openai:gpt-4.1``), else o200k_base."""
    name = model.split(":", 1)[-1].split("/")[-1]
    try:
        return str(bpe_openai.encoding_name_for_model(name))
    except (KeyError, ValueError, bpe_openai.UnsupportedModelError):
        return DEFAULT_ENCODING


def content_text(content: Any) -> str:
    """The text of a message's content (a string, or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return str(content)


class TokenCounter:
    """Counts tokens with one encoding; message counts are cached by id and content."""

    def __init__(self, model: str = "") -> None:
        self.encoding_name = encoding_name(model)
        self._enc = _encoding(self.encoding_name)
        self._cache: dict[tuple[Any, ...], int] = {}
        # Messages in a run's state are the same objects from step to step: counting them by
        # identity first skips building the content key (a JSON dump of every tool call's
        # arguments) for the whole history at every step. The entry keeps the object alive,
        # so its id cannot be reused while cached.
        self._by_object: dict[int, tuple[BaseMessage, int]] = {}
        # Per-turn analysis cache for agent/context.py, keyed the same way.
        self.turns: dict[tuple[Any, ...], Any] = {}

    def text(self, text: str) -> int:
        if not text:
            return 0
        if len(text) <= _PIECE:
            return len(self._enc.encode_ordinary(text))
        # bpe-openai refuses inputs of about 1,000,000 characters ("Input too long to encode
        # safely"): count long text in pieces cut at whitespace, a count within a few tokens.
        total, start = 0, 0
        while start < len(text):
            end = min(len(text), start + _PIECE)
            if end < len(text):
                cut = max(text.rfind(" ", start + _PIECE // 2, end),
                          text.rfind("\n", start + _PIECE // 2, end))
                end = cut + 1 if cut > start else end
            total += len(self._enc.encode_ordinary(text[start:end]))
            start = end
        return total

    def message(self, message: BaseMessage) -> int:
        hit = self._by_object.get(id(message))
        if hit is not None and hit[0] is message:
            return hit[1]
        n = self._count(message)
        if len(self._by_object) >= _CACHE_LIMIT:
            self._by_object.clear()
        self._by_object[id(message)] = (message, n)
        return n

    def _count(self, message: BaseMessage) -> int:
        content = content_text(message.content)
        calls: tuple[Any, ...] = ()
        if isinstance(message, AIMessage):
            calls = tuple(
                (c.get("id"), c.get("name"), json.dumps(c.get("args"), sort_keys=True))
                for c in message.tool_calls
            ) + tuple(
                (c.get("id"), c.get("name"), str(c.get("args"))) for c in message.invalid_tool_calls
            )
        key = (message.type, message.id, content, calls)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        n = MESSAGE_OVERHEAD + self.text(content)
        for call_id, name, args in calls:
            n += CALL_OVERHEAD + self.text(name or "") + self.text(args or "")
            n += 1 if call_id else 0
        if isinstance(message, ToolMessage):
            n += 6  # the tool_call_id
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = n
        return n

    def messages(self, messages: Iterable[BaseMessage]) -> int:
        return sum(self.message(m) for m in messages)

    def tools(self, schemas: Sequence[dict[str, Any]]) -> int:
        """The tool definitions sent with every request count against the window too."""
        return self.text(json.dumps(list(schemas))) if schemas else 0

    def prompt(
        self, messages: Sequence[BaseMessage], schemas: Sequence[dict[str, Any]] = ()
    ) -> int:
        return PROMPT_OVERHEAD + self.messages(messages) + self.tools(schemas)


def reconcile(ratio: float, local_tokens: int, reported_tokens: int) -> float:
    """The next calibration ratio (server tokens per local token) after one model call.

    Rises at once when the server counted more than planned (that is what overflows a window),
    falls back slowly when it counted less; clamped to [1, 4].
    """
    if local_tokens <= 0 or reported_tokens <= 0:
        return ratio
    observed = reported_tokens / local_tokens
    new = observed if observed > ratio else 0.8 * ratio + 0.2 * observed
    return round(min(RATIO_MAX, max(RATIO_MIN, new)), 4)
