"""Assemble each model call within the context window, in whole turns.

A turn is a user message, a plain assistant reply, or an assistant message with tool calls
together with all of its tool results; a tool call is never separated from its results (the HTTP
400 OpenManus users hit). Any call still missing a result (a crash between steps) gets a
placeholder result before it is sent.

The prompt is built from, in order: the system prompt, extended with recalled long-term memories
and the summary of compacted turns; the tool definitions; then, in chronological order, pinned
turns, the latest user request (always kept) and as many recent turns as the budget allows.
Turns covered by the summary are not sent (they stay in the checkpoint history). Tool results
over a size threshold are sent as an excerpt plus a handle. ``plan_context`` also says how full
the prompt would be with every uncovered turn, which is what triggers compaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from openmanus_tui.memory.observations import Observation, excerpt, observation_handle
from openmanus_tui.memory.tokens import PROMPT_OVERHEAD, TokenCounter, content_text

_default_counter: TokenCounter | None = None

MEMORIES_HEADING = "## Long-term memories (recalled for this task; they may be out of date)"
SUMMARY_HEADING = (
    "## Summary of earlier turns (compacted; the full turns remain in the session history)"
)


def default_counter() -> TokenCounter:
    global _default_counter
    if _default_counter is None:
        _default_counter = TokenCounter()
    return _default_counter


def estimate_tokens(message: BaseMessage) -> int:
    """Tokens of one message (o200k_base, with the per-message framing)."""
    return default_counter().message(message)


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
            id=f"placeholder_{c['id']}",
            status="error",
        )
        for c in calls
        if c["id"] not in answered
    ]
    return group + missing


@dataclass
class Turn:
    """One whole turn, as it would be sent."""

    index: int
    messages: list[BaseMessage]
    tokens: int
    pinned: bool = False
    covered: bool = False
    is_request: bool = False
    handles: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.messages if m.id]

    @property
    def kind(self) -> str:
        head = self.messages[0]
        if isinstance(head, HumanMessage):
            return "user"
        return "tool_call" if _calls(head) else "assistant"

    def label(self, width: int = 160) -> str:
        head = self.messages[0]
        text = " ".join(content_text(head.content).split())
        names = [c.get("name") or "?" for c in _calls(head)]
        if names:
            text = (text + " " if text else "") + "→ " + ", ".join(names)
        return text if len(text) <= width else text[: width - 1] + "…"


@dataclass
class PromptPart:
    """One part of the next prompt with its token weight: what the Memory pane lists."""

    kind: str  # system | memories | summary | tools | pinned | request | turn
    label: str
    tokens: int
    message_ids: list[str] = field(default_factory=list)
    included: bool = True
    pinned: bool = False
    handles: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "tokens": self.tokens,
            "message_ids": self.message_ids,
            "included": self.included,
            "pinned": self.pinned,
            "handles": self.handles,
        }


@dataclass
class ContextPlan:
    messages: list[BaseMessage]
    turns: list[Turn]
    tokens: int  # local count of what is sent, tool definitions included
    planned_tokens: int  # the same, calibrated to the server's counting
    budget: int
    dropped: int  # uncovered turns left out for lack of room
    full_tokens: int  # calibrated size if every uncovered turn were sent
    fixed_tokens: int  # calibrated size of what is always sent
    ratio: float
    observations: list[Observation] = field(default_factory=list)
    kept: set[int] = field(default_factory=set)
    # (system tokens, memories, memory tokens, summary tokens, covered ids, tools, tool tokens)
    fixed_parts: tuple[Any, ...] = ()

    @cached_property
    def parts(self) -> list[PromptPart]:
        """The prompt's parts with their token weights (for the Memory pane). Built on
        demand: a model call needs only ``messages``, and labelling every turn of a long
        session at every step cost more than the call itself."""
        base, memories, mem_tokens, sum_tokens, covered, tools, tool_tokens = self.fixed_parts
        parts = [PromptPart("system", "system prompt", base)]
        if memories:
            parts.append(PromptPart("memories", f"{len(memories)} recalled memories", mem_tokens))
        if sum_tokens:
            parts.append(
                PromptPart("summary", "summary of earlier turns", sum_tokens, list(covered))
            )
        if tools:
            parts.append(PromptPart("tools", f"{len(tools)} tool definitions", tool_tokens))
        for t in self.turns:
            if t.covered:
                continue
            kind = "pinned" if t.pinned else "request" if t.is_request else "turn"
            parts.append(
                PromptPart(
                    kind if kind != "turn" else t.kind,
                    t.label(),
                    t.tokens,
                    t.ids,
                    included=t.index in self.kept,
                    pinned=t.pinned,
                    handles=t.handles,
                )
            )
        return parts

    @property
    def room(self) -> int:
        """What the budget leaves for turns after the parts that are always sent."""
        return max(0, self.budget - self.fixed_tokens)

    def over(self, share: float) -> bool:
        """Whether the uncovered turns fill more than ``share`` of their room."""
        return self.full_tokens - self.fixed_tokens > share * self.room


def analyse_turns(
    messages: Sequence[BaseMessage],
    counter: TokenCounter,
    *,
    pins: Collection[str] = (),
    covered: Collection[str] = (),
    observation_chars: int | None = None,
    excerpt_chars: int = 1200,
) -> tuple[list[Turn], list[Observation]]:
    """Group the history into turns, excerpt large results, mark pinned and covered turns."""
    turns: list[Turn] = []
    observations: list[Observation] = []
    pin_set, covered_set = set(pins), set(covered)
    last_user = -1
    for i, group in enumerate(group_turns(messages)):
        # A turn's analysis depends only on its messages: cached by their identity, so a long
        # session does not re-excerpt and re-count its whole history at every step. A turn
        # grows only at its end (results arrive after the call), hence first, last and size.
        key = (observation_chars, excerpt_chars, id(group[0]), id(group[-1]), len(group))
        cached = counter.turns.get(key)
        if cached is None or cached[0] is not group[0] or cached[1] is not group[-1]:
            sent: list[BaseMessage] = []
            handles: list[str] = []
            found: list[Observation] = []
            for msg in complete_tool_results(group):
                text = content_text(msg.content) if isinstance(msg, ToolMessage) else ""
                if observation_chars and msg.id and len(text) > observation_chars:
                    handle = observation_handle(msg.id)
                    handles.append(handle)
                    found.append(Observation(handle, msg.id, msg.name or "", text))
                    msg = msg.model_copy(update={"content": excerpt(text, handle, excerpt_chars)})
                sent.append(msg)
            ids = frozenset(m.id for m in group if m.id)
            cached = (group[0], group[-1], sent, handles, found, counter.messages(sent), ids)
            if len(counter.turns) >= 20_000:
                counter.turns.clear()
            counter.turns[key] = cached
        head, _, sent, handles, found, tokens, ids = cached
        if found:
            observations.extend(found)
        if isinstance(head, HumanMessage):
            last_user = i
        turns.append(
            Turn(
                index=i,
                messages=sent,
                tokens=tokens,
                pinned=bool(pin_set) and not ids.isdisjoint(pin_set),
                covered=bool(covered_set) and bool(head.id) and head.id in covered_set,
                handles=list(handles) if handles else [],
            )
        )
    if last_user >= 0:
        turns[last_user].is_request = True
        turns[last_user].covered = False
    for t in turns:
        if t.pinned:
            t.covered = False
    return turns, observations


def system_text(
    system_prompt: str, memories: Sequence[str] = (), summary: str | None = None
) -> str:
    text = system_prompt
    if memories:
        text += "\n\n" + MEMORIES_HEADING + "\n" + "\n".join(f"- {m}" for m in memories)
    if summary:
        text += "\n\n" + SUMMARY_HEADING + "\n" + summary
    return text


def plan_context(
    system_prompt: str,
    messages: Sequence[BaseMessage],
    budget_tokens: int,
    *,
    counter: TokenCounter | None = None,
    tools: Sequence[dict[str, Any]] = (),
    summary: str | None = None,
    covered: Collection[str] = (),
    pins: Collection[str] = (),
    memories: Sequence[str] = (),
    ratio: float = 1.0,
    observation_chars: int | None = None,
    excerpt_chars: int = 1200,
) -> ContextPlan:
    """The messages to send within ``budget_tokens`` (calibrated by ``ratio``) and their parts."""
    counter = counter or default_counter()
    turns, observations = analyse_turns(
        messages,
        counter,
        pins=pins,
        covered=covered,
        observation_chars=observation_chars,
        excerpt_chars=excerpt_chars,
    )
    base = counter.message(SystemMessage(content=system_prompt))
    mem_text = system_text("", memories) if memories else ""
    sum_text = system_text("", (), summary) if summary else ""
    mem_tokens = counter.text(mem_text)
    sum_tokens = counter.text(sum_text)
    tool_tokens = counter.tools(tools)
    fixed = PROMPT_OVERHEAD + base + mem_tokens + sum_tokens + tool_tokens
    fixed += sum(t.tokens for t in turns if t.pinned or t.is_request)

    def scaled(n: int) -> int:
        return int(n * ratio + 0.999)

    # The current request and pinned turns are always sent, even if over budget: better an
    # honest error from the server than a silently missing question.
    keep = {t.index for t in turns if t.pinned or t.is_request}
    used = fixed
    candidates = [t for t in turns if not (t.pinned or t.is_request or t.covered)]
    for t in reversed(candidates):
        if scaled(used + t.tokens) > budget_tokens:
            break  # keep the recent turns contiguous
        keep.add(t.index)
        used += t.tokens
    dropped = sum(1 for t in candidates if t.index not in keep)
    full = fixed + sum(t.tokens for t in candidates)

    system = SystemMessage(content=system_text(system_prompt, memories, summary))
    sent = [system, *[m for t in turns if t.index in keep for m in t.messages]]
    return ContextPlan(
        messages=sent,
        turns=turns,
        tokens=used,
        planned_tokens=scaled(used),
        budget=budget_tokens,
        dropped=dropped,
        full_tokens=scaled(full),
        fixed_tokens=scaled(fixed),
        ratio=ratio,
        observations=observations,
        kept=keep,
        fixed_parts=(
            base, list(memories), mem_tokens, sum_tokens if summary else 0, list(covered),
            list(tools), tool_tokens,
        ),
    )


def build_context(
    system_prompt: str, messages: Sequence[BaseMessage], budget_tokens: int
) -> tuple[list[BaseMessage], int, int]:
    """(messages to send, their tokens, turns dropped) within ``budget_tokens``."""
    plan = plan_context(system_prompt, messages, budget_tokens)
    return plan.messages, plan.tokens, plan.dropped
