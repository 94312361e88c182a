"""Workspace snapshots of a run: taken while the next model call runs (the next tool step and
the end of the run wait for them), and not taken after a step of read tools only, whose
checkpoint then restores the same files through its ancestor's snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec, script_responder

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import Runtime


@pytest.fixture
def server(llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> OpenAITestServer:
    use_server(monkeypatch, llm_server)
    return llm_server


def files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


async def test_read_steps_need_no_snapshot_and_restore_through_the_ancestor(
    server: OpenAITestServer,
) -> None:
    server.set_responder(script_responder([
        Reply(tool_calls=[ToolCallSpec("file_write", {"path": "a.txt", "content": "one"})]),
        Reply(tool_calls=[ToolCallSpec("file_read", {"path": "a.txt"})]),
        Reply(tool_calls=[ToolCallSpec("file_write", {"path": "a.txt", "content": "two"})]),
        Reply(text="Done."),
    ]))
    runtime = await Runtime.open(load_settings({"approval": {"mode": "yolo"}}))
    seen: list[ev.Event] = []
    try:
        session = await runtime.create_session()
        outcome = await session.run("write, read, write", on_event=seen.append)
        assert outcome.status == "completed"
        tool_steps = [e.checkpoint_id for e in seen
                      if isinstance(e, ev.Checkpoint) and "call_tool" in e.nodes]
        inputs = [e.checkpoint_id for e in seen
                  if isinstance(e, ev.Checkpoint) and e.source == "input"]
        assert len(tool_steps) == 3 and len(inputs) == 1
        async with runtime.db.conn.execute(
            "SELECT checkpoint_id FROM snapshots WHERE session_id = ?", (session.id,)
        ) as cur:
            recorded = {row[0] for row in await cur.fetchall()}
        # The input and both writing steps, the last one before run() returned; not the read.
        assert recorded == {inputs[0], tool_steps[0], tool_steps[2]}

        ws = session.workspace
        assert files(ws) == {"a.txt": "two"}
        await session.history.restore(tool_steps[1], force=True)  # the read step
        assert files(ws) == {"a.txt": "one"}
        await session.history.restore(tool_steps[2], force=True)
        assert files(ws) == {"a.txt": "two"}
        await session.history.restore(inputs[0], force=True)
        assert files(ws) == {}
    finally:
        await runtime.close()
