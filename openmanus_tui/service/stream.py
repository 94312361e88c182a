"""The parts of a run's SSE stream, made from the typed event stream.

Per requested ``stream_mode``:
- ``custom``: every event of ours (``events.py``) as its JSON, token deltas included;
- ``values``: the thread's values after each checkpoint; at an approval, ``{"__interrupt__":
  [...]}`` as LangGraph sends it;
- ``updates``: ``{node: {changed keys}}`` per checkpoint, ``{"__interrupt__": [...]}``;
- ``messages-tuple`` (and ``messages``): ``[message chunk, metadata]`` for each streamed token
  and each tool result;
- ``checkpoints``: the ThreadState of each checkpoint.
A failure is ``error {error, message}``. The metadata event comes first (``app.py``).
"""

from __future__ import annotations

from typing import Any

from openmanus_tui import events as ev
from openmanus_tui.service import wire

Part = tuple[str, Any]
STATE_MODES = frozenset({"values", "updates", "checkpoints"})


class PartMaker:
    def __init__(self, session: Any, modes: list[str], run_id: str) -> None:
        self.session = session
        self.modes = set(modes)
        if "messages" in self.modes:
            self.modes.add("messages-tuple")
        self.run_id = run_id
        self.thread_id = session.id
        self._seen: dict[str, Any] = {}  # message id -> message, as of the last checkpoint

    def _meta(self, node: str) -> dict[str, Any]:
        return {"langgraph_node": node, "run_id": self.run_id, "thread_id": self.thread_id}

    async def on_event(self, event: ev.Event) -> list[Part]:
        parts: list[Part] = []
        if "custom" in self.modes:
            parts.append(("custom", event.model_dump(mode="json")))
        if "messages-tuple" in self.modes:
            if isinstance(event, ev.ThoughtDelta):
                chunk = {"type": "AIMessageChunk", "content": event.text, "id": event.message_id,
                         "tool_calls": [], "tool_call_chunks": []}
                parts.append(("messages", [chunk, self._meta("call_llm")]))
            elif isinstance(event, ev.ToolFinished):
                message = {"type": "tool", "content": event.result, "tool_call_id": event.call_id,
                           "name": event.tool, "id": f"result_{event.call_id}",
                           "status": "success" if event.status == "ok" else "error"}
                parts.append(("messages", [message, self._meta("call_tool")]))
        if isinstance(event, ev.Checkpoint) and self.modes & STATE_MODES and event.checkpoint_id:
            parts.extend(await self._state_parts(event))
        return parts

    async def _state_parts(self, event: ev.Checkpoint) -> list[Part]:
        graph = self.session.runtime.graph
        snapshot = await graph.aget_state(self.session.history.at(event.checkpoint_id))
        values = wire.values(snapshot)
        parts: list[Part] = []
        if "values" in self.modes:
            parts.append(("values", values))
        if "updates" in self.modes and event.nodes:
            node = event.nodes[-1]
            update = {k: values[k] for k in event.changed if k in values}
            if "messages" in update:  # what the node wrote, not the whole history
                update["messages"] = [
                    m for m in update["messages"] if self._seen.get(m.get("id")) != m
                ]
            parts.append(("updates", {node: update}))
        self._seen = {m.get("id"): m for m in values.get("messages", []) if isinstance(m, dict)}
        if "checkpoints" in self.modes:
            parts.append(("checkpoints", wire.thread_state(self.thread_id, snapshot)))
        return parts

    def closing(self, interrupts: list[dict[str, Any]], error: dict[str, Any] | None) -> list[Part]:
        parts: list[Part] = []
        if interrupts:
            for mode in ("values", "updates"):
                if mode in self.modes:
                    parts.append((mode, {"__interrupt__": interrupts}))
        if error is not None:
            parts.append(("error", error))
        return parts
