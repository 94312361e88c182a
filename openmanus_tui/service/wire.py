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


def values(snapshot: Any) -> dict[str, Any]:
    return jsonable(dict(getattr(snapshot, "values", None) or {}))  # type: ignore[no-any-return]


def thread_state(thread_id: str, snapshot: Any) -> dict[str, Any]:
    """A LangGraph ``StateSnapshot`` as the API's ThreadState."""
    config = (snapshot.config or {}).get("configurable", {})
    parent = ((snapshot.parent_config or {}) or {}).get("configurable", {})
    return {
        "values": values(snapshot),
        "next": list(snapshot.next or ()),
        "checkpoint": checkpoint(thread_id, config.get("checkpoint_id")),
        "metadata": jsonable(dict(snapshot.metadata or {})),
        "created_at": snapshot.created_at,
        "parent_checkpoint": checkpoint(thread_id, parent["checkpoint_id"])
        if parent.get("checkpoint_id")
        else None,
        "tasks": [
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
        ],
        "interrupts": interrupts(snapshot),
    }


def thread(
    record: Any, snapshot: Any | None, *, busy: bool, asking: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A session as the API's Thread (``asking``: the interrupt of an ask_human question that
    waits for its answer)."""
    pending = interrupts(snapshot) if snapshot is not None else []
    if asking is not None:
        pending.append(asking)
    if busy:
        status = "busy"
    elif pending:
        status = "interrupted"
    else:
        status = _THREAD_STATUS.get(record.status, "idle")
        if status == "interrupted":
            status = "idle"  # the interrupt was answered or dropped since
    meta = record.meta if isinstance(record.meta, dict) else {}
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
