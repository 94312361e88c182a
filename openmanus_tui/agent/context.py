"""Fit the chat history into the model's context window, in whole turns.

A turn is a user message, a plain assistant reply, or an assistant message with tool calls
together with all of its tool results. Trimming drops whole turns from the oldest end, so a tool
call is never separated from its results (the HTTP 400 OpenManus users hit). Any call still
missing a result (a crash between steps) gets a placeholder result before it is sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)


def estimate_tokens(message: BaseMessage) -> int:
    """A cheap offline estimate (~4 characters a token) used only to plan the window."""
    size = len(message.content) if isinstance(message.content, str) else len(str(message.content))
    if isinstance(message, AIMessage) and message.tool_calls:
        size += sum(len(c["name"]) + len(json.dumps(c["args"])) for c in message.tool_calls)
    return size // 4 + 4


def group_turns(messages: Sequence[BaseMessage]) -> list[list[BaseMessage]]:
    groups: list[list[BaseMessage]] = []
    for msg in messages:
        if isinstance(msg, ToolMessage) and groups and _expects_results(groups[-1]):
            groups[-1].append(msg)
        elif isinstance(msg, ToolMessage):
            continue  # an orphan result (its call was trimmed away earlier) would be rejected
        else:
            groups.append([msg])
    return groups


def _calls(message: BaseMessage) -> list[dict]:
    """Valid and invalid calls alike: the API receives both and wants a result for each."""
    if not isinstance(message, AIMessage):
        return []
    return [*message.tool_calls, *message.invalid_tool_calls]  # type: ignore[list-item]


def _expects_results(group: list[BaseMessage]) -> bool:
    return bool(_calls(group[0]))


def complete_tool_results(group: list[BaseMessage]) -> list[BaseMessage]:
    calls = _calls(group[0])
    if not calls:
        return group
    answered = {m.tool_call_id for m in group[1:] if isinstance(m, ToolMessage)}
    missing = [
        ToolMessage(
            content="No result was recorded for this call (the run was interrupted).",
            tool_call_id=c["id"],
            name=c.get("name") or "",
            status="error",
        )
        for c in calls
        if c["id"] not in answered
    ]
    return group + missing


def build_context(
    system_prompt: str, messages: Sequence[BaseMessage], budget_tokens: int
) -> tuple[list[BaseMessage], int, int]:
    """(messages to send, their estimated tokens, turns dropped) within ``budget_tokens``."""
    system = SystemMessage(content=system_prompt)
    used = estimate_tokens(system)
    groups = [complete_tool_results(g) for g in group_turns(messages)]
    costs = [sum(estimate_tokens(m) for m in g) for g in groups]
    # The current request is always sent, even if alone it is over budget: better an honest
    # error from the server than a silently missing question.
    last_user = max((i for i, g in enumerate(groups) if isinstance(g[0], HumanMessage)), default=-1)
    keep = {last_user} if last_user >= 0 else set()
    used += costs[last_user] if last_user >= 0 else 0
    for i in range(len(groups) - 1, -1, -1):
        if i == last_user:
            continue
        if used + costs[i] > budget_tokens:
            break  # keep the recent turns contiguous
        keep.add(i)
        used += costs[i]
    dropped = len(groups) - len(keep)
    return [system, *[m for i in sorted(keep) for m in groups[i]]], used, dropped
