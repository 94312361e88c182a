"""What a branch shows, decided once for every front end: pure functions over stored events.

The CLI (``sessions show``), the workbench (opening a session, the tree's switch and replay)
and exports read the same events; these rules turn them into what a reader is shown, so the
front ends cannot disagree:

- ``transcript_of``: the run state (a run whose ``run_started`` has no ``run_finished`` is
  ``running`` while it is live and ``interrupted`` once its process is gone) and the calls
  left started without a result (shown ``interrupted``, not ``running`` forever);
- ``add_usage``: token and cost totals from ``usage`` events;
- ``check_edited_args``: whether edited tool arguments are a JSON object the tool accepts.

Plain Python with lazy imports: the workbench folds events with these before pydantic is
imported (its first frame).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from openmanus_tui import events as ev

# A run cut off by its process ending (kill, crash, closed terminal) before it finished.
INTERRUPTED = "interrupted"


@dataclass
class UsageTotals:
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0


@dataclass
class BranchTranscript:
    """The transcript of one branch: its stored events in order and how to read them."""

    events: list[ev.Event]
    # idle (no run yet), running (live), interrupted, or the last run's outcome
    # (completed, stopped, error, cancelled, awaiting_approval).
    state: str = "idle"
    # Tool calls started but never finished, when nothing runs any more.
    interrupted_calls: list[str] = field(default_factory=list)
    head: str | None = None
    # Tokens and cost so far (``add_usage``): what the workbench's status line shows.
    totals: UsageTotals = field(default_factory=UsageTotals)

    @property
    def interrupted(self) -> bool:
        return self.state == INTERRUPTED


def transcript_of(
    events: list[ev.Event], *, live: bool = False, head: str | None = None
) -> BranchTranscript:
    """Read ``events`` (one branch, in order). ``live``: the last run may still be going (a
    run in this process, or a replay stopped part-way), so it stays ``running``."""
    state = "idle"
    open_calls: dict[str, None] = {}  # started, no result yet (insertion-ordered)
    totals = UsageTotals()
    for event in events:
        kind = event.type
        if kind == "usage":
            add_usage(totals, event)  # type: ignore[arg-type]
        elif kind == "run_started":
            state = "running"
        elif kind == "run_finished":
            state = event.status  # type: ignore[attr-defined]
        elif kind == "tool_started":
            open_calls[event.call_id] = None  # type: ignore[attr-defined]
        elif kind == "tool_finished":
            open_calls.pop(event.call_id, None)  # type: ignore[attr-defined]
    if live:
        return BranchTranscript(events, state, [], head, totals)
    # Nothing runs any more: a call still without a result will never get one here (a
    # resume reports it interrupted too, rather than running it twice).
    return BranchTranscript(
        events, INTERRUPTED if state == "running" else state, list(open_calls), head, totals
    )


class _Totals(Protocol):
    tokens_in: int
    tokens_out: int
    cost: float


def add_usage(totals: _Totals, usage: ev.Usage) -> None:
    """Fold one ``usage`` event into ``totals``. A usage event carries the branch's running
    totals (the graph state's counters, which fork with the branch and include compaction
    calls); older events without them are summed call by call."""
    totals.tokens_in = usage.total_tokens_in or totals.tokens_in + usage.tokens_in
    totals.tokens_out = usage.total_tokens_out or totals.tokens_out + usage.tokens_out
    totals.cost = usage.total_cost or totals.cost + usage.cost


def check_edited_args(
    edited: str | Any, tool: str, args_model: type | None
) -> tuple[dict[str, Any] | None, str]:
    """(arguments, "") when ``edited`` (JSON text, or already parsed) is a JSON object that
    ``tool``'s argument model accepts, else (None, the one line to show). Used by the CLI's
    approval prompt, the workbench's approval modal and its edit-arguments dialog."""
    if isinstance(edited, str):
        try:
            edited = json.loads(edited)
        except json.JSONDecodeError as exc:
            return None, f"Not valid JSON: {exc}"
    if not isinstance(edited, dict):
        return None, "The arguments must be a JSON object."
    if args_model is not None:
        from pydantic import ValidationError

        try:
            args_model.model_validate(edited)  # type: ignore[attr-defined]
        except ValidationError as exc:
            from openmanus_tui.tools.base import describe_validation_error

            return None, f"Rejected by {tool}'s schema: {describe_validation_error(exc)}"
    return edited, ""


def sandbox_level(settings: Any) -> str:
    """The isolation level a new session's sandbox will have (probes the machine: call it
    off the event loop)."""
    from openmanus_tui.errors import OpenManusError
    from openmanus_tui.sandbox import probe

    if settings.sandbox.level != "auto":
        return str(settings.sandbox.level)
    try:
        return str(probe().level)
    except OpenManusError:
        return "unavailable"
