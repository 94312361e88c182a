"""What the API sends: threads, thread states and values as the LangGraph API shapes them.

Plain data only (every ``data:`` of the SSE stream must be JSON): messages become LangChain's
message dicts (``type``, ``content``, ``id``, ``tool_calls``...), timestamps ISO 8601 strings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

# The session's status (runtime) -> the thread's (LangGraph API).
_THREAD_STATUS = {"error": "error", "awaiting_approval": "interrupted"}


def iso(ts: float | str | None) -> str:
    if isinstance(ts, str):
        return ts
    return datetime.fromtimestamp(ts or 0, tz=UTC).isoformat()


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data (messages as dicts; anything unknown as its text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump(mode="json"))
    if hasattr(value, "value") and hasattr(value, "id") and type(value).__name__ == "Interrupt":
        return {"value": jsonable(value.value), "id": value.id}
    return str(value)


def checkpoint(thread_id: str, checkpoint_id: str | None) -> dict[str, Any]:
    return {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}


def interrupts(snapshot: Any) -> list[dict[str, Any]]:
    return [jsonable(i) for i in getattr(snapshot, "interrupts", ()) or ()]


def is_question(interrupt: dict[str, Any]) -> bool:
    """An interrupt asking a person a question (the research graph's clarifying question, an
    ask_human), not an approval (whose value lists ``calls``)."""
    value = interrupt.get("value") if isinstance(interrupt, dict) else None
    return isinstance(value, dict) and "question" in value and "calls" not in value


def _with_question(found: list[dict[str, Any]], asking: dict[str, Any] | None) -> list[Any]:
    """``found`` with the question the run asks live (``asking``: the interrupt its stream
    ended with) in place of the graph's own record of it, so that the state shows what the
    stream showed, once."""
    if asking is None:
        return found
    return [i for i in found if not is_question(i)] + [asking]


def values(snapshot: Any) -> dict[str, Any]:
    return jsonable(dict(getattr(snapshot, "values", None) or {}))  # type: ignore[no-any-return]


def thread_state(
    thread_id: str, snapshot: Any, asking: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A LangGraph ``StateSnapshot`` as the API's ThreadState. ``asking``: the interrupt of a
    question that waits for its answer now; it is shown as LangGraph shows an interrupt, in the
    ``interrupts`` of the waiting node's task (``next`` names it) and at the top level: the
    research graph's ``clarify`` (whose own record of the question it replaces), or the step
    whose ``ask_human`` tool call asks it (``call_tool``)."""
    config = (snapshot.config or {}).get("configurable", {})
    parent = ((snapshot.parent_config or {}) or {}).get("configurable", {})
    tasks = [
        {
            "id": t.id,
            "name": t.name,
            "error": str(t.error) if t.error else None,
            "interrupts": [jsonable(i) for i in t.interrupts],
            "checkpoint": None,
            "state": None,
            "result": jsonable(t.result) if getattr(t, "result", None) is not None else None,
        }
        for t in snapshot.tasks or ()
    ]
    if asking is not None and tasks:
        waiting = next((t for t in tasks if any(is_question(i) for i in t["interrupts"])),
                       None)
        if waiting is None:
            waiting = next((t for t in tasks if t["name"] in (snapshot.next or ())), tasks[0])
        waiting["interrupts"] = _with_question(waiting["interrupts"], asking)
    return {
        "values": values(snapshot),
        "next": list(snapshot.next or ()),
        "checkpoint": checkpoint(thread_id, config.get("checkpoint_id")),
        "metadata": jsonable(dict(snapshot.metadata or {})),
        "created_at": snapshot.created_at,
        "parent_checkpoint": checkpoint(thread_id, parent["checkpoint_id"])
        if parent.get("checkpoint_id")
        else None,
        "tasks": tasks,
        "interrupts": _with_question(interrupts(snapshot), asking),
    }


def thread(
    record: Any, snapshot: Any | None, *, busy: bool, asking: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A session as the API's Thread (``asking``: the interrupt of an ask_human question that
    waits for its answer)."""
    pending = _with_question(interrupts(snapshot) if snapshot is not None else [], asking)
    meta = record.meta if isinstance(record.meta, dict) else {}
    paused = meta.get("paused_at")
    if busy:
        status = "busy"
    elif pending:
        status = "interrupted"
    elif paused and record.status == "cancelled" and snapshot is not None and (
        list(snapshot.next or ()) == paused
    ):
        status = "interrupted"  # stopped at a breakpoint (interrupt_before / _after)
    else:
        status = _THREAD_STATUS.get(record.status, "idle")
        if status == "interrupted":
            status = "idle"  # the interrupt was answered or dropped since
    return {
        "thread_id": record.id,
        "created_at": iso(record.created),
        "updated_at": iso(record.updated),
        "metadata": {
            **jsonable(meta.get("api_metadata") or {}),
            "title": record.title,
            "model": record.model,
            "profile": record.profile,
            "workspace": record.workspace,
            "session_status": record.status,
        },
        "status": status,
        "values": values(snapshot) if snapshot is not None else {},
        "interrupts": {i["id"]: [i] for i in pending},
    }
