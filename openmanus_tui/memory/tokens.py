"""Token accounting: offline BPE counts per text, message and prompt, and their reconciliation
with the usage the server reports.

``bpe-openai`` ships ``o200k_base`` and ``cl100k_base`` inside its wheel (``tiktoken`` downloads
its encodings at run time and fails offline). Models without a known encoding are counted with
``o200k_base``. Only its Rust tokenizer is used, loaded on first use and without the package's
``__init__``, which decodes all three vocabularies in Python when imported (2 s of CPU in every
process that counts a token; the Rust side builds one encoding in 0.1 s).

Local counts only plan the window; the server's reported usage is the truth, so the planner
multiplies its counts by a calibration ratio learned from that usage
(:func:`reconcile`), which never goes below 1 — undercounting is what overflows a window.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
from collections.abc import Iterable, Sequence
from functools import lru_cache
from types import ModuleType
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

DEFAULT_ENCODING = "o200k_base"
# Per-message framing (role, separators) as in OpenAI's counting guide, and per tool call.
MESSAGE_OVERHEAD = 4
CALL_OVERHEAD = 8
PROMPT_OVERHEAD = 3  # the reply's priming
_CACHE_LIMIT = 50_000
_PIECE = 200_000  # characters encoded at once (the tokenizer's own limit is ~1,000,000)
RATIO_MIN, RATIO_MAX = 1.0, 4.0


# bpe-openai's model table (``bpe_openai.compat``) for the encodings its Rust side has.
_MODEL_ENCODINGS = {
    **dict.fromkeys(("cl100k_base", "gpt-3.5", "gpt-3.5-turbo", "gpt-3.5-turbo-0301",
                     "gpt-3.5-turbo-0401", "gpt-3.5-turbo-0125", "gpt-35-turbo", "gpt-4",
                     "gpt-4-0314", "gpt-4-0613", "gpt-4-32k"), "cl100k_base"),
    **dict.fromkeys(("o200k_base", "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini",
                     "gpt-4o-128k", "gpt-4.1-128k"), "o200k_base"),
    **dict.fromkeys(("voyage3_base", "voyage-3"), "voyage3_base"),
}
_BINDINGS = "bpe_openai._bindings"


def _rust_bindings() -> ModuleType:
    """``bpe_openai._bindings`` (the compiled tokenizer), registered under its own name so that
    a later ``import bpe_openai`` uses this module instead of initialising it a second time."""
    loaded = sys.modules.get(_BINDINGS)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("bpe_openai")  # finds it; does not import it
    spec = None
    if package is not None and package.submodule_search_locations:
        spec = importlib.machinery.PathFinder.find_spec(
            _BINDINGS, list(package.submodule_search_locations)
        )
    if spec is None or spec.loader is None:  # an unusual install: the slow, ordinary way
        return importlib.import_module(_BINDINGS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_BINDINGS] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_BINDINGS]
        raise
    return module


@lru_cache(maxsize=8)
def _encoding(name: str) -> Any:
    """The Rust tokenizer of an encoding (``count(text)``: ordinary text, no special tokens)."""
    return _rust_bindings().tokenizer_for_encoding(name)


def encoding_name(model: str) -> str:
    """The encoding of a model name (``gpt-4o-mini``, ``openai:gpt-4.1``), else o200k_base."""
    name = model.split(":", 1)[-1].split("/")[-1]
    return _MODEL_ENCODINGS.get(name.lower(), DEFAULT_ENCODING)


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
        self._enc_loaded: Any = None
        self._cache: dict[tuple[Any, ...], int] = {}
        # Messages in a run's state are the same objects from step to step: counting them by
        # identity first skips building the content key (a JSON dump of every tool call's
        # arguments) for the whole history at every step. The entry keeps the object alive,
        # so its id cannot be reused while cached.
        self._by_object: dict[int, tuple[BaseMessage, int]] = {}
        # Per-turn analysis cache for agent/context.py, keyed the same way.
        self.turns: dict[tuple[Any, ...], Any] = {}

    @property
    def _enc(self) -> Any:
        if self._enc_loaded is None:
            self._enc_loaded = _encoding(self.encoding_name)
        return self._enc_loaded

    def _count_piece(self, text: str) -> int:
        try:
            return int(self._enc.count(text))
        except UnicodeEncodeError:  # lone surrogates: counted as the replacement character
            return int(self._enc.count(
                text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")))

    def text(self, text: str) -> int:
        if not text:
            return 0
        if len(text) <= _PIECE:
            return self._count_piece(text)
        # bpe-openai refuses inputs of about 1,000,000 characters ("Input too long to encode
        # safely"): count long text in pieces cut at whitespace, a count within a few tokens.
        total, start = 0, 0
        while start < len(text):
            end = min(len(text), start + _PIECE)
            if end < len(text):
                cut = max(text.rfind(" ", start + _PIECE // 2, end),
                          text.rfind("\n", start + _PIECE // 2, end))
                end = cut + 1 if cut > start else end
            total += self._count_piece(text[start:end])
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
