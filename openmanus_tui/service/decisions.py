"""A client's ``command.resume`` as the approval decisions the workbench would give.

Accepted shapes, for the calls of the pending approval interrupt:
- ``{"decision": "approve" | "deny" | "edit", "reason": ..., "args": {...}}`` for every call
  (an ``edit`` only when one call waits: arguments belong to one call);
- ``{call_id: decision, ...}`` (every pending call named);
- either of these keyed by the interrupt's id (LangGraph's ``{interrupt_id: value}``).
Edited arguments are checked against the tool's schema exactly as the workbench's editor checks
them (``check_edited_args``); a bad answer is a 400 naming the call, and nothing runs.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from openmanus_tui.runtime import api

DECISIONS = ("approve", "deny", "edit")


class ResumeError(ValueError):
    """The resume value does not answer the pending interrupt (one line for the client)."""


def pending_calls(interrupt_values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for item in interrupt_values:
        value = item.get("value") if isinstance(item, dict) else None
        if isinstance(value, dict):
            calls.extend(c for c in value.get("calls", []) if isinstance(c, dict))
    return calls


def _one(raw: Any, call: dict[str, Any], registry: Any) -> Any:
    if isinstance(raw, str) and raw in DECISIONS:
        raw = {"decision": raw}
    if not isinstance(raw, dict):
        raise ResumeError(f"call {call['call_id']}: a decision must be an object")
    if raw.get("decision") not in DECISIONS:
        raise ResumeError(
            f"call {call['call_id']}: decision must be one of approve, deny, edit"
        )
    try:
        decision = api.Decision.model_validate(
            {k: raw[k] for k in ("decision", "args", "reason") if raw.get(k) is not None}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ResumeError(f"call {call['call_id']}: {first['msg']}") from None
    if decision.decision == "edit":
        if decision.args is None:
            raise ResumeError(f"call {call['call_id']}: an edit needs args")
        spec = registry.get(call["tool"])
        args, problem = api.check_edited_args(
            decision.args, call["tool"], spec.args_model if spec else None
        )
        if args is None:
            raise ResumeError(f"call {call['call_id']}: {problem}")
        decision.args = args
    elif decision.decision == "deny" and not decision.reason:
        decision.reason = "denied through the API"
    else:
        decision.args = None
    return decision


def parse_resume(
    value: Any, interrupt_values: list[dict[str, Any]], registry: Any
) -> dict[str, Any]:
    """call id -> ``Decision`` for every pending call, or ``ResumeError``."""
    calls = pending_calls(interrupt_values)
    if not calls:
        raise ResumeError("the thread has no pending approval to resume")
    ids = {i.get("id") for i in interrupt_values if isinstance(i, dict)}
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ids:
        value = next(iter(value.values()))
    by_id = {c["call_id"]: c for c in calls}
    if isinstance(value, str) or (isinstance(value, dict) and "decision" in value):
        if len(calls) > 1 and isinstance(value, dict) and value.get("decision") == "edit":
            raise ResumeError(
                "several calls wait: give edited args as a mapping from call id to decision"
            )
        return {c["call_id"]: _one(value, c, registry) for c in calls}
    if not isinstance(value, dict):
        raise ResumeError(
            'resume with {"decision": "approve" | "deny" | "edit", ...} '
            "or a mapping from call id to such a decision"
        )
    unknown = sorted(set(value) - set(by_id))
    if unknown:
        raise ResumeError(f"no pending call {unknown[0]!r}")
    missing = sorted(set(by_id) - set(value))
    if missing:
        raise ResumeError(f"no decision for pending call {missing[0]!r}")
    return {cid: _one(value[cid], by_id[cid], registry) for cid in by_id}
