"""Compaction: older turns are summarised by the model into one rolling summary.

``select_turns`` picks the oldest uncovered turns (never pinned turns, never the latest user
request, never the newest ``keep_recent`` turns) until the rest fits ``target`` of the budget.
``summary_request`` renders them, the previous summary and the task into a summarisation
prompt marked with ``SUMMARY_MARKER`` (which is how the offline scripted model recognises it).
The new summary covers the previous summary's turns plus the selected ones and replaces it in
the prompt; the raw turns stay in the checkpoint history, so nothing is lost and branching
still works.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from openmanus_tui.agent.context import Turn
from openmanus_tui.memory.tokens import TokenCounter, content_text

SUMMARY_MARKER = "[openmanus:summarise]"
RESULT_CHARS = 1500  # of each tool result, in the transcript given to the summariser

INSTRUCTIONS = f"""{SUMMARY_MARKER}
You compact an agent's working memory. Summarise the conversation turns you are given so the
agent can continue its task without them. Write plain text with these sections:
Done: what was done (tools called and their effect).
Found: facts, values, results and decisions found, quoted exactly where they matter.
Open: open questions and what remains to do.
Files: file paths and handles (obs_…) that were read or written.
Keep every fact from the previous summary that may still matter. At most {{words}} words."""


@dataclass
class CompactionPreview:
    """What a compaction would do; ``apply`` stores exactly this."""

    summary: dict[str, Any]  # the state record: see ``summary_record``
    turns: list[dict[str, Any]]  # the turns it takes out of the prompt: {ids, kind, label, tokens}
    tokens_before: int
    tokens_after: int
    usage: dict[str, int] = field(default_factory=dict)
    focus: str = ""
    base: str = ""  # fingerprint of the state it was computed from

    @property
    def text(self) -> str:
        return str(self.summary["text"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "turns": self.turns,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "usage": self.usage,
            "focus": self.focus,
        }


def select_turns(
    turns: Sequence[Turn],
    *,
    fixed_tokens: int,
    budget: int,
    target: float,
    keep_recent: int,
    ratio: float = 1.0,
    force: bool = False,
) -> list[Turn]:
    """The oldest uncovered turns to summarise so that the rest fill at most ``target`` of the
    room the budget leaves for turns (after the system prompt, tools, summary, pins, request).

    ``force`` (a person's /compact) takes every candidate but the newest ``keep_recent``.
    """
    candidates = [t for t in turns if not (t.covered or t.pinned or t.is_request)]
    movable = candidates[: max(0, len(candidates) - keep_recent)]
    if force:
        return list(movable)
    room = max(0, budget - fixed_tokens)
    remaining = int(sum(t.tokens for t in candidates) * ratio)
    chosen: list[Turn] = []
    for t in movable:
        if remaining <= target * room:
            break
        chosen.append(t)
        remaining -= int(t.tokens * ratio)
    return chosen


def render_turn(turn: Turn, result_chars: int = RESULT_CHARS) -> str:
    lines: list[str] = []
    for msg in turn.messages:
        text = content_text(msg.content).strip()
        if isinstance(msg, HumanMessage):
            lines.append(f"[user] {text}")
        elif isinstance(msg, AIMessage):
            if text:
                lines.append(f"[assistant] {text}")
            for call in msg.tool_calls:
                lines.append(
                    f"[call {call['name']}] {json.dumps(call['args'], ensure_ascii=False)}"
                )
            for bad in msg.invalid_tool_calls:
                lines.append(f"[invalid call {bad.get('name')}] {bad.get('args')}")
        elif isinstance(msg, ToolMessage):
            if len(text) > result_chars:
                text = text[:result_chars] + f" […{len(text) - result_chars} more characters]"
            lines.append(f"[result {msg.name or ''}] {text}")
    return "\n".join(lines)


def summary_request(
    turns: Sequence[Turn],
    *,
    previous: str | None,
    task: str | None,
    focus: str = "",
    words: int = 300,
) -> list[BaseMessage]:
    """The summarisation prompt: instructions (+ previous summary), the task, the turns."""
    system = INSTRUCTIONS.format(words=words)
    if focus:
        system += f"\nThe person asked to focus on: {focus}"
    if previous:
        system += f"\n\n<previous_summary>\n{previous}\n</previous_summary>"
    transcript = "\n\n".join(render_turn(t) for t in turns)
    messages: list[BaseMessage] = [SystemMessage(content=system)]
    if task:
        # The task as its own message, verbatim: the summary is judged by what it means for it.
        messages.append(HumanMessage(content=task))
    messages.append(
        HumanMessage(
            content=f"Turns to summarise:\n<turns>\n{transcript}\n</turns>\nWrite the summary now."
        )
    )
    return messages


def summary_id(previous: str | None, covers: Sequence[str], text: str) -> str:
    seed = "\n".join([previous or "", *covers]) + "\0" + text
    return "sum_" + hashlib.sha1(seed.encode()).hexdigest()[:12]


def fit_summary(text: str, max_tokens: int, counter: TokenCounter) -> str:
    """A summary longer than its limit is cut: the limit is what keeps compaction converging."""
    text = text.strip()
    if counter.text(text) <= max_tokens:
        return text
    words = text.split(" ")
    lo, hi = 0, len(words)
    while lo < hi:  # the longest word prefix that fits
        mid = (lo + hi + 1) // 2
        if counter.text(" ".join(words[:mid])) + 3 <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo]) + " […]"


def summary_record(
    *,
    previous: dict[str, Any] | None,
    turns: Sequence[Turn],
    text: str,
    tokens: int,
    tokens_before: int,
    tokens_after: int,
    focus: str,
    auto: bool,
) -> dict[str, Any]:
    """The state record of one compaction. ``covers`` lists the first message id of each turn
    it newly covers (the turns of earlier records stay covered: the channel keeps deltas, and
    the newest record's text is the rolling summary of all of them)."""
    covers = [t.messages[0].id or "" for t in turns]
    previous_id = (previous or {}).get("id")
    return {
        "id": summary_id(previous_id, covers, text),
        "covers": covers,
        "text": text,
        "tokens": tokens,
        "tokens_before": tokens_before,
        "tokens_after": tokens_after,
        "focus": focus,
        "auto": auto,
        "replaces": previous_id,
    }


def describe_turns(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    return [{"ids": t.ids, "kind": t.kind, "label": t.label(), "tokens": t.tokens} for t in turns]
