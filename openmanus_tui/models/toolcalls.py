"""Strict tool calls: a model's tool-call arguments are used only when they are complete JSON.

langchain-core merges streamed ``tool_call_chunks`` and parses their arguments with
``parse_partial_json``, which *repairs* cut-off text: ``{"command": "rm -rf ./`` becomes
``{"command": "rm -rf ./"}`` and ``{not json`` becomes ``{}``. A repaired call looks valid and
would run. Here every call's raw argument text is parsed again with the strict ``json.loads``;
text that does not parse into a JSON object (or, for the non-streamed path, what langchain-openai
already put into ``invalid_tool_calls``) becomes an invalid call that is answered with an error
and never runs. Empty text means "no arguments" (``{}``), as OpenAI sends for argument-less tools.

Duplicate call ids (a model that repeats ``call_1`` twice in a reply, or reuses an id from an
earlier turn) are made unique here too, so that each call gets its own result in the history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.utils import message_chunk_to_message


def strict_args(raw: Any) -> tuple[dict[str, Any] | None, str]:
    """The arguments as a dict, or None and why not. ``raw`` is the text the model sent."""
    if isinstance(raw, dict):
        return raw, ""
    if isinstance(raw, list):
        return None, "the arguments are JSON list, not an object"
    if raw is None:
        return {}, ""
    if not isinstance(raw, str):
        return None, f"arguments of type {type(raw).__name__}, not a JSON object"
    if not raw.strip():
        return {}, ""
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return None, f"the arguments are not valid JSON ({exc}); they may have been cut off"
    if not isinstance(value, dict):
        return None, f"the arguments are JSON {type(value).__name__}, not an object"
    return value, ""


def strict_message(full: BaseMessage) -> AIMessage:
    """The final AI message of a reply, with tool calls whose arguments parse strictly.

    ``full`` is the merged stream (an ``AIMessageChunk``) or a non-streamed ``AIMessage``.
    """
    message = message_chunk_to_message(full) if isinstance(full, AIMessageChunk) else full
    if not isinstance(message, AIMessage):
        return message  # type: ignore[return-value]
    chunks = list(getattr(full, "tool_call_chunks", None) or [])
    if not chunks:
        # Non-streamed: langchain-openai used json.loads, but keeps any JSON value (a list).
        chunks = [
            {"id": tc.get("id"), "name": tc.get("name"), "args": tc.get("args")}
            for tc in message.tool_calls
        ]
        if all(isinstance(c["args"], dict) for c in chunks):
            return message
        kept = list(message.invalid_tool_calls)
    else:
        kept = []
    calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = kept
    for chunk in chunks:
        raw = chunk.get("args")
        args, error = strict_args(raw)
        if args is None:
            invalid.append(
                {
                    "type": "invalid_tool_call",
                    "id": chunk.get("id"),
                    "name": chunk.get("name"),
                    "args": raw if isinstance(raw, str) else json.dumps(raw, default=str),
                    "error": error,
                }
            )
        else:
            calls.append(
                {"type": "tool_call", "id": chunk.get("id"), "name": chunk.get("name") or "",
                 "args": args}
            )
    return message.model_copy(update={"tool_calls": calls, "invalid_tool_calls": invalid})


def unique_call_ids(message: AIMessage, taken: Iterable[str]) -> AIMessage:
    """``message`` with every tool-call id unique among its calls and ``taken`` (the ids already
    in the history). A repeated id gets a ``_2``, ``_3``… suffix; the first one keeps it."""
    used = set(taken)
    changed = False

    def fresh(call_id: str | None) -> str | None:
        nonlocal changed
        if not call_id:
            return call_id  # the graph gives id-less calls a new id
        new, n = call_id, 1
        while new in used:
            n += 1
            new = f"{call_id}_{n}"
        used.add(new)
        changed = changed or new != call_id
        return new

    calls = [{**tc, "id": fresh(tc.get("id"))} for tc in message.tool_calls]
    invalid = [{**tc, "id": fresh(tc.get("id"))} for tc in message.invalid_tool_calls]
    if not changed:
        return message
    return message.model_copy(update={"tool_calls": calls, "invalid_tool_calls": invalid})
