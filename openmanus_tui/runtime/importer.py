"""Bring an exported session (or the JSONL of ``run --json``) back as a live session.

The events are stored under a new session id, and the checkpoint tree is rebuilt from them:
each recorded step becomes a LangGraph checkpoint written with ``aupdate_state`` as the node
that produced it (the user message, the model's reply with its tool calls, the decisions, the
tool results, the answer). So an imported session can be inspected and replayed from its
events, and forked or continued from any step like a session recorded here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from openmanus_tui import events as ev
from openmanus_tui.agent.state import run_input
from openmanus_tui.runtime.session import new_session_id
from openmanus_tui.store.db import SessionRecord

if TYPE_CHECKING:
    from openmanus_tui.export import ExportDoc
    from openmanus_tui.runtime.session import AgentSession, Runtime

# The node each recorded step is written as, so that LangGraph computes the right next step.
AS_NODE = {
    "call_llm": "call_llm",
    "approve": "approve",
    "call_tool": "call_tool",
    "finalize": "finalize",
}


def _step_update(node: str, source: str, step: list[ev.Event]) -> tuple[str, dict[str, Any]] | None:
    """(as_node, state update) that reproduces one recorded step, or None to skip it."""
    if source == "input":
        started = next((e for e in step if isinstance(e, ev.RunStarted)), None)
        text = started.input if started and started.input else None
        if text is None:
            return None
        first = step[0].seq if step else 0
        return "call_tool", run_input(text, HumanMessage(content=text, id=f"user_imported_{first}"))
    if node == "call_llm":
        thought = next((e for e in step if isinstance(e, ev.Thought)), None)
        calls = [e for e in step if isinstance(e, ev.ToolCall)]
        message_id = (thought.message_id if thought else "") or (
            calls[0].message_id if calls else f"ai_imported_{step[0].seq if step else 0}"
        )
        valid = [
            {"name": c.tool, "args": c.args or {}, "id": c.call_id, "type": "tool_call"}
            for c in calls
            if not c.invalid
        ]
        invalid = [
            {
                "name": c.tool,
                "args": c.raw_args,
                "id": c.call_id,
                "error": c.invalid,
                "type": "invalid_tool_call",
            }
            for c in calls
            if c.invalid
        ]
        ai = AIMessage(
            content=thought.text if thought else "",
            id=message_id,
            tool_calls=valid,
            invalid_tool_calls=invalid,
        )
        tool_calls = [
            {"id": c.call_id, "name": c.tool, "args": c.args or {}, "invalid": c.invalid}
            for c in calls
        ]
        update: dict[str, Any] = {"messages": [ai], "tool_calls": tool_calls, "decisions": {}}
        if not calls:
            update["final_answer"] = ai.content
        return "call_llm", update
    if node == "approve":
        decisions = {
            e.call_id: {
                "decision": e.decision,
                "args": e.args,
                "reason": e.reason,
                "by": e.by,
                "tool": e.tool,
            }
            for e in step
            if isinstance(e, ev.ApprovalDecided)
        }
        return "approve", {"decisions": decisions}
    if node == "call_tool":
        results = [
            ToolMessage(
                content=e.result,
                tool_call_id=e.call_id,
                name=e.tool,
                id=f"result_imported_{e.call_id}",
                status="success" if e.status == "ok" else "error",
            )
            for e in step
            if isinstance(e, ev.ToolFinished)
        ]
        return "call_tool", {"messages": results, "tool_calls": [], "decisions": {}}
    if node == "finalize":
        answer = next((e.text for e in step if isinstance(e, ev.FinalAnswer)), None)
        return "finalize", {"final_answer": answer, "tool_calls": []}
    return None


async def import_session(
    runtime: Runtime, doc: ExportDoc, *, copied_from: str | None = None
) -> AgentSession:
    """A new session from ``doc``. With ``copied_from`` (a checkpoint id), it is a branch of
    another session saved as a session of its own, and records where it came from."""
    from openmanus_tui.runtime.session import AgentSession

    old = doc.session
    session_id = new_session_id()
    how = "branch copy" if copied_from else "imported"
    record = SessionRecord(
        id=session_id,
        title=f"{old.get('title') or 'untitled'} ({how})",
        model=old.get("model") or "scripted:demo",
        profile=old.get("profile") or "manus",
        workspace=str(runtime.settings.workspace_for(session_id)),
        status="copied" if copied_from else "imported",
        parent_session=old.get("id"),
        parent_checkpoint=copied_from,
        meta={
            f"{'copied' if copied_from else 'imported'}_at": time.time(),
            f"{'copied' if copied_from else 'imported'}_from": old.get("id"),
        },
    )
    await runtime.db.create_session(record)
    graph = runtime.graph
    # Pass 1: rebuild the checkpoint tree, each recorded step written as its node.
    mapping: dict[str | None, str | None] = {None: None}
    kept: set[int] = set()
    pending: dict[str | None, list[ev.Event]] = {}
    for event in doc.events:
        if not isinstance(event, ev.Checkpoint):
            pending.setdefault(event.checkpoint_id, []).append(event)
            continue
        step = pending.pop(event.parent_id, [])
        parent_new = mapping.get(event.parent_id)
        plan = _step_update((event.nodes or [""])[-1], event.source, step)
        if plan is None:  # a step with no state of its own (graph start, retry marker)
            mapping[event.checkpoint_id] = parent_new
            continue
        as_node, update = plan
        config: dict[str, Any] = {"configurable": {"thread_id": session_id, "checkpoint_ns": ""}}
        if parent_new:
            config["configurable"]["checkpoint_id"] = parent_new
        written = await graph.aupdate_state(config, update, as_node=AS_NODE[as_node])
        mapping[event.checkpoint_id] = written["configurable"]["checkpoint_id"]
        kept.add(event.seq)
    # The rebuild moved the head along whichever branch it wrote first; like before any
    # switch, the session continues from its newest checkpoint.
    await runtime.db.update_session(session_id, head=None)
    # Pass 2: store the events in their original order, pointing at the new checkpoints.
    seq = 0
    for event in doc.events:
        update: dict[str, Any] = {"session_id": session_id}
        if isinstance(event, ev.Checkpoint):
            if event.seq not in kept:
                continue
            update["parent_id"] = mapping.get(event.parent_id)
        update["checkpoint_id"] = mapping.get(event.checkpoint_id)
        seq += 1
        update["seq"] = seq
        await runtime.db.append_event(event.model_copy(update=update), commit=False)
    await runtime.db.flush_events(commit=True)
    return AgentSession(runtime, record)
