"""The agent's state (seed 002) and the message channel that keeps checkpoints linear.

``messages`` is a ``DeltaChannel``: each checkpoint stores only the messages written in its step
(plus a full snapshot every ``SNAPSHOT_EVERY`` updates), instead of the whole history every time.
The stock channel made a 400-checkpoint session's database grow quadratically (LANGGRAPH.md).
The reducer upserts by message id; every message written by the graph carries an id, so the
reducer is deterministic and batching-invariant as ``DeltaChannel`` requires. Compaction records
(``summaries``) use the same kind of channel and an upsert by record id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, BaseMessage
from langgraph.channels.delta import DeltaChannel

SNAPSHOT_EVERY = 200


def merge_messages(current: list[BaseMessage] | None, writes: Sequence[Any]) -> list[BaseMessage]:
    """Append new messages; a message whose id is already present replaces it in place."""
    result = list(current or [])
    index = {m.id: i for i, m in enumerate(result) if m.id}
    for write in writes:
        batch = write if isinstance(write, list) else [write]
        for msg in batch:
            pos = index.get(msg.id) if msg.id else None
            if pos is None:
                if msg.id:
                    index[msg.id] = len(result)
                result.append(msg)
            else:
                result[pos] = msg
    return result


def merge_records(
    current: list[dict[str, Any]] | None, writes: Sequence[Any]
) -> list[dict[str, Any]]:
    """Append records (dicts with an ``id``); a record whose id is present replaces it."""
    result = list(current or [])
    index = {r["id"]: i for i, r in enumerate(result)}
    for write in writes:
        for record in write if isinstance(write, list) else [write]:
            pos = index.get(record["id"])
            if pos is None:
                index[record["id"]] = len(result)
                result.append(record)
            else:
                result[pos] = record
    return result


def active_summary(state: dict[str, Any]) -> tuple[dict[str, Any] | None, set[str]]:
    """(the newest summary record, the first message ids of every turn compacted so far)."""
    records = state.get("summaries") or []
    covered = {i for r in records for i in r.get("covers", [])}
    return (records[-1] if records else None), covered


class AgentState(TypedDict, total=False):
    input: str
    messages: Annotated[
        list[AnyMessage], DeltaChannel(merge_messages, snapshot_frequency=SNAPSHOT_EVERY)
    ]
    # The model's latest output: text, tool calls, finish reason, usage and latency.
    agent_outcome: dict[str, Any] | None
    # Calls proposed in the latest step: {id, name, args, raw_args, invalid}.
    tool_calls: list[dict[str, Any]]
    # call id -> {decision, args, reason, by, rule}, written by the approve node.
    decisions: dict[str, dict[str, Any]]
    # Results of the latest tool step: {call_id, tool, status, duration_ms, ...}.
    tool_results: list[dict[str, Any]]
    final_answer: str | None
    stop_reason: str | None
    steps: int
    run_tokens: int
    tokens_in: int
    tokens_out: int
    cost: float
    # Compaction records, oldest first (see memory/compaction.py); a delta channel too, so a
    # long session's checkpoints do not each repeat every summary.
    summaries: Annotated[
        list[dict[str, Any]], DeltaChannel(merge_records, snapshot_frequency=SNAPSHOT_EVERY)
    ]
    # Server-reported prompt tokens per locally counted token (memory/tokens.py: reconcile).
    token_ratio: float


def run_input(text: str, message: BaseMessage) -> dict[str, Any]:
    """The update that starts a new run: the user's message plus per-run counters reset."""
    return {
        "input": text,
        "messages": [message],
        "agent_outcome": None,
        "tool_calls": [],
        "decisions": {},
        "tool_results": [],
        "final_answer": None,
        "stop_reason": None,
        "steps": 0,
        "run_tokens": 0,
    }
