"""The event stream: one typed schema that every client consumes.

The runtime produces these events in one place (``runtime/stream.py``) from LangGraph's output,
persists them in the ``events`` table as they happen, and hands them to the TUI, the headless CLI
(``run --json`` prints one JSON object per line), exports and replay. Nothing here imports
LangGraph or Textual.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_surrogate(v) for v in value)
    return False


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # A lone surrogate (a model's or MCP server's "\ud800") cannot be encoded as UTF-8:
        # the event could be neither stored nor printed. Replaced by U+FFFD on the way in.
        if isinstance(data, dict) and _has_surrogate(data):
            from openmanus_tui.limits import scrub_value

            return scrub_value(data)
        return data

    session_id: str = ""
    run_id: str = ""
    seq: int = 0
    ts: float = Field(default_factory=time.time)
    # The checkpoint this event follows (the newest checkpoint when it was produced): lets a
    # branch's transcript be read from the events table without deserialising checkpoints.
    checkpoint_id: str | None = None

    # Events that are only useful live (token deltas) are not stored.
    @property
    def ephemeral(self) -> bool:
        return False

    def to_json(self) -> str:
        return self.model_dump_json()


class RunStarted(_Event):
    type: Literal["run_started"] = "run_started"
    profile: str = "manus"
    model: str = ""
    input: str | None = None
    resumed: bool = False
    # The configuration version the run started with (`openmanus config history`).
    config_version: int | None = None


class RunFinished(_Event):
    type: Literal["run_finished"] = "run_finished"
    # completed: a final answer; stopped: a guard ended it (max steps, budget, loop);
    # awaiting_approval: paused for a decision nobody could give; error: see the error event.
    status: Literal["completed", "stopped", "awaiting_approval", "error", "cancelled"]
    reason: str = ""
    steps: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0


class ThoughtDelta(_Event):
    type: Literal["thought_delta"] = "thought_delta"
    message_id: str
    text: str

    @property
    def ephemeral(self) -> bool:
        return True


class Thought(_Event):
    type: Literal["thought"] = "thought"
    message_id: str
    text: str


class ToolCall(_Event):
    type: Literal["tool_call"] = "tool_call"
    call_id: str
    tool: str
    args: dict[str, Any] | None = None
    raw_args: str = ""
    tier: int | None = None
    risk: str | None = None
    message_id: str = ""
    # Set when the call cannot run as sent (unknown tool, invalid JSON, schema mismatch).
    invalid: str | None = None


class ApprovalCall(BaseModel):
    call_id: str
    tool: str
    args: dict[str, Any]
    risk: str
    tier: int | None = None
    rule: str | None = None
    reason: str = ""


class ApprovalRequested(_Event):
    type: Literal["approval_requested"] = "approval_requested"
    calls: list[ApprovalCall]


class ApprovalDecided(_Event):
    type: Literal["approval_decided"] = "approval_decided"
    call_id: str
    tool: str = ""
    decision: Literal["approve", "edit", "deny", "always"]
    args: dict[str, Any] | None = None
    reason: str = ""
    scope: str | None = None
    rule: str | None = None
    # Who decided: a person, the approval mode, or a stored rule.
    by: Literal["user", "policy", "rule", "system"] = "user"


class ToolStarted(_Event):
    type: Literal["tool_started"] = "tool_started"
    call_id: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    isolation: str | None = None


class ToolOutput(_Event):
    type: Literal["tool_output"] = "tool_output"
    call_id: str
    stream: Literal["stdout", "stderr"] = "stdout"
    text: str

    @property
    def ephemeral(self) -> bool:
        return True  # the tool_finished result carries the (capped) output


class ToolFinished(_Event):
    type: Literal["tool_finished"] = "tool_finished"
    call_id: str
    tool: str
    status: Literal["ok", "error", "denied", "timeout", "truncated", "interrupted"]
    result: str
    duration_ms: float = 0.0
    isolation: str | None = None
    truncated: bool = False
    artifacts: list[str] = Field(default_factory=list)
    replayed: bool = False
    cached: bool = False  # from the tool-result cache: nothing was fetched


class Usage(_Event):
    type: Literal["usage"] = "usage"
    message_id: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    context_tokens: int = 0
    context_window: int = 0
    latency_ms: float = 0.0
    retries: int = 0
    # The model that answered (a fallback's spec when the primary was down), and whether the
    # answer came from the model cache (then nothing was spent).
    model: str = ""
    fallback: bool = False
    cached: bool = False
    total_tokens_in: int = 0
    total_tokens_out: int = 0
    total_cost: float = 0.0


class Retry(_Event):
    type: Literal["retry"] = "retry"
    attempt: int
    wait_s: float
    error: str


class Breaker(_Event):
    """A circuit breaker changed state (``resilience/breakers.py``): ``open`` means the
    endpoint is not called until a probe after ``recovery_timeout``."""

    type: Literal["breaker"] = "breaker"
    name: str
    state: Literal["closed", "open", "half_open"]
    previous: Literal["closed", "open", "half_open"] = "closed"
    failures: int = 0
    error: str = ""


class Fallback(_Event):
    """A step left one model for the next of ``model.fallbacks``."""

    type: Literal["fallback"] = "fallback"
    from_model: str
    to_model: str
    reason: str = ""


class CacheHit(_Event):
    """An answer came from a cache: a model reply (no request, no cost) or a tool result."""

    type: Literal["cache_hit"] = "cache_hit"
    cache: Literal["model", "tool"]
    label: str  # the model spec or the tool name
    key: str = ""
    call_id: str = ""


class Memory(_Event):
    type: Literal["memory"] = "memory"
    action: str
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class Checkpoint(_Event):
    type: Literal["checkpoint"] = "checkpoint"
    parent_id: str | None = None
    step: int = 0
    source: str = ""
    nodes: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)


class FinalAnswer(_Event):
    type: Literal["final_answer"] = "final_answer"
    text: str


class Error(_Event):
    type: Literal["error"] = "error"
    error_class: Literal["transient", "permanent", "resource", "security", "user"]
    message: str
    hint: str = ""


class InjectionFlagged(_Event):
    """A tool result looks like a prompt injection (``tools/provenance.py``): shown to the
    person; the model sees the result inside untrusted delimiters either way."""

    type: Literal["injection_flagged"] = "injection_flagged"
    call_id: str
    tool: str
    patterns: list[str]
    excerpt: str = ""


class Notice(_Event):
    type: Literal["notice"] = "notice"
    level: Literal["info", "warning"] = "info"
    text: str


# ---- research (issue 13: research/graph.py) ---------------------------------------------------
class ResearchStep(_Event):
    """A step of the research graph: read, plan, search, extract, cross-reference, report,
    verify; ``data`` carries the step's numbers (findings kept, citations removed...)."""

    type: Literal["research_step"] = "research_step"
    stage: str
    text: str
    data: dict[str, Any] = Field(default_factory=dict)


class Clarification(_Event):
    """The research graph asks the person a clarifying question (an ``interrupt()``); the
    answer comes back on resume and is recorded with ``answer`` set."""

    type: Literal["clarification"] = "clarification"
    question: str
    answer: str | None = None


Event = Annotated[
    RunStarted
    | RunFinished
    | ThoughtDelta
    | Thought
    | ToolCall
    | ApprovalRequested
    | ApprovalDecided
    | ToolStarted
    | ToolOutput
    | ToolFinished
    | Usage
    | Retry
    | Breaker
    | Fallback
    | CacheHit
    | Memory
    | Checkpoint
    | FinalAnswer
    | Error
    | InjectionFlagged
    | Notice
    | ResearchStep
    | Clarification,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    """Parse one event from its JSON text or dict (as written by ``to_json``)."""
    if isinstance(data, dict):
        return EVENT_ADAPTER.validate_python(data)
    return EVENT_ADAPTER.validate_json(data)
