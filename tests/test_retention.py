"""Retention: pruning keeps every branch head's state and transcript, and shrinks the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import cli, json_events, run_cli

from openmanus_tui.config import load_settings
from openmanus_tui.errors import OpenManusError
from openmanus_tui.runtime.session import Runtime

STEPS = 120  # enough message updates for LangGraph to write a full snapshot (every 200)


def long_script(tmp: Path) -> str:
    steps = [
        {"text": f"step {i}", "tool_calls": [{"name": "list_files", "args": {"path": f"d{i}"}}]}
        for i in range(STEPS)
    ]
    path = tmp / "long.json"
    path.write_text(json.dumps({"steps": steps, "final": "walked"}))
    return f"scripted:{path}"


async def heads_and_states(runtime: Runtime, session: Any) -> dict[str, Any]:
    tree = await session.history.tree()
    out = {}
    for head in tree.heads:
        state = await runtime.graph.aget_state(session.history.at(head))
        out[head] = {
            "messages": [(m.type, m.content, m.id) for m in state.values["messages"]],
            "final": state.values.get("final_answer"),
            "events": [e.model_dump() for e in await session.history.recorded(head)],
        }
    return out


async def test_prune_keeps_heads_and_shrinks(isolated_env: Path) -> None:
    settings = load_settings(
        {
            "approval": {"mode": "yolo"},
            "agent": {"max_steps": STEPS + 5, "repeat_limit": 5},
        }
    )
    runtime = await Runtime.open(settings)
    try:
        session = await runtime.create_session(model=long_script(isolated_env))
        assert (await session.run("walk the tree")).final_answer == "walked"
        tree = await session.history.tree()
        answer = next(n for n in tree.nodes.values() if n.kind == "answer")
        await session.history.fork(answer.parent_id)  # retry the final reply
        assert (await session.resume()).status == "completed"
        late_call = [n for n in tree.nodes.values() if n.kind == "tool_call"][-3]
        await session.history.fork(late_call.checkpoint_id, message="walk the tree")
        assert (await session.run("walk the tree")).status == "completed"

        before = await heads_and_states(runtime, session)
        assert len(before) == 3
        total = len((await session.history.tree()).nodes)
        stats = await runtime.prune(keep_last=5)
    finally:
        await runtime.close()

    assert stats.checkpoints_deleted > total // 2
    assert stats.size_after < stats.size_before

    runtime = await Runtime.open(settings)  # a fresh process's view
    try:
        session = await runtime.open_session(session.id)
        after = await heads_and_states(runtime, session)
        assert after == before  # every head: same state, same transcript
        tree = await session.history.tree()
        assert sum(n.pruned for n in tree.nodes.values()) == stats.checkpoints_deleted
        pruned = next(n for n in tree.nodes.values() if n.pruned and n.kind == "tool_call")
        with pytest.raises(OpenManusError, match="removed by `sessions prune`"):
            await session.history.fork(pruned.checkpoint_id, call_args={})
        # A head can still be continued live.
        head = next(iter(after))
        await session.history.switch(head)
        outcome = await session.history.retry_live(head)
        assert outcome.status == "completed"
        again = await runtime.prune(keep_last=5)  # nothing left to do, and cheap
        assert again.checkpoints_deleted == 0
    finally:
        await runtime.close()


def test_prune_command(isolated_env: Path) -> None:
    assert cli("run", "demo", "--approval", "yolo").returncode == 0
    result = run_cli("sessions", "prune", "--keep-last", "2")
    assert result.returncode == 0, result.stderr
    assert "pruned" in result.stdout and "MB ->" in result.stdout
    session_id = json.loads(cli("sessions", "list", "--json").stdout.splitlines()[0])["id"]
    replay = run_cli("replay", session_id, "--json")
    assert [e["type"] for e in json_events(replay.stdout)].count("final_answer") == 1
    bad = cli("sessions", "prune", "--keep-last", "0")
    assert bad.returncode == 2 and "at least 1" in bad.stderr
