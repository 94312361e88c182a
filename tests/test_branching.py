"""Branching through the real runtime: a session with an edited user message, edited tool
arguments and a retry; the tree; switching branch restores files; recorded and live replay."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from conftest import check_tool_pairing, use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec, assistant_turns_since_user

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.history import WorkspaceChanged
from openmanus_tui.runtime.replay import Replayer
from openmanus_tui.runtime.session import AgentSession, Runtime
from openmanus_tui.store.tree import load_tree

MAKE_BIN = "open('b.bin', 'wb').write(bytes(range(256)) * 4)"
SCRIPTS = {
    "make files": [
        Reply(
            text="Shell first.",
            tool_calls=[ToolCallSpec("shell_exec", {"command": "printf one > a.txt"})],
        ),
        Reply(text="Now Python.", tool_calls=[ToolCallSpec("code_exec", {"code": MAKE_BIN})]),
        Reply(text="done A"),
    ],
    "make other files": [
        Reply(tool_calls=[ToolCallSpec("shell_exec", {"command": "printf two > a.txt"})]),
        Reply(text="done B"),
    ],
}


def responder(body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    user = [m["content"] for m in messages if m["role"] == "user"][-1]
    script = SCRIPTS[user]
    index = assistant_turns_since_user(messages)
    return script[min(index, len(script) - 1)]


def manifest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def server(llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> OpenAITestServer:
    use_server(monkeypatch, llm_server)
    llm_server.set_responder(responder)
    return llm_server


async def three_branches(runtime: Runtime) -> tuple[AgentSession, dict[str, Any]]:
    session = await runtime.create_session()
    out: dict[str, Any] = {}
    assert (await session.run("make files")).final_answer == "done A"
    tree = await session.history.tree()
    out["main"] = tree.current
    out["main_files"] = manifest(session.workspace)
    first_call = next(n for n in tree.nodes.values() if n.kind == "tool_call")
    answer = next(n for n in tree.nodes.values() if n.kind == "answer")
    thought = tree.nodes[answer.parent_id]  # the model's final reply, retried below

    # 1. Edit the user message.
    await session.history.fork(first_call.checkpoint_id, message="make other files")
    assert (await session.run("make other files")).final_answer == "done B"
    out["edited_message"] = (await session.history.tree()).current
    out["edited_message_files"] = manifest(session.workspace)

    # 2. Edit a tool call's arguments (on the main branch's first call).
    state = await runtime.graph.aget_state(session.history.at(first_call.checkpoint_id))
    call_id = state.values["tool_calls"][0]["id"]
    await session.history.fork(
        first_call.checkpoint_id, call_args={call_id: {"command": "printf three > a.txt"}}
    )
    assert (await session.resume()).final_answer == "done A"
    out["edited_args"] = (await session.history.tree()).current
    out["edited_args_files"] = manifest(session.workspace)

    # 3. Retry the final model call of the main branch.
    await session.history.fork(thought.checkpoint_id)
    assert (await session.resume()).status == "completed"
    out["retry"] = (await session.history.tree()).current
    out["first_call"] = first_call.checkpoint_id
    return session, out


async def test_three_branches_tree_and_files(server: OpenAITestServer) -> None:
    runtime = await Runtime.open(load_settings({"approval": {"mode": "yolo"}}))
    try:
        session, b = await three_branches(runtime)
        tree = await session.history.tree()

        heads = set(tree.heads)
        assert {b["main"], b["edited_message"], b["edited_args"], b["retry"]} == heads
        assert await session.history.head_count() == 4  # counted without building the tree
        assert len(tree.roots) == 1
        labels = [tree.nodes[c].label for c in tree.lineage(b["edited_message"])]
        assert labels[0] == "› make files" and "› make other files" in labels
        edited = [n for n in tree.nodes.values() if n.kind == "fork"]
        assert len(edited) == 1 and edited[0].parent_id == b["first_call"]
        assert edited[0].label == "✎ edited"
        assert tree.lineage(b["edited_args"])[: len(tree.lineage(edited[0].checkpoint_id))] == (
            tree.lineage(edited[0].checkpoint_id)
        )
        # The retry re-ran the last model call only: same lineage as main up to the step it
        # retried from, whose fresh copy (a sibling, "↻ retry") the new branch continues from.
        main_line, retry_line = tree.lineage(b["main"]), tree.lineage(b["retry"])
        assert retry_line[: len(main_line) - 3] == main_line[:-3]
        assert tree.nodes[retry_line[len(main_line) - 3]].parent_id == main_line[-4]
        assert [tree.nodes[c].label for c in retry_line[len(main_line) - 3 :]] == [
            "↻ retry",
            "… done A",
            "■ done A",
        ]

        # Files: each branch's own, restored byte for byte when switching.
        assert b["main_files"]["a.txt"] == hashlib.sha256(b"one").hexdigest()
        assert "b.bin" in b["main_files"]
        assert b["edited_message_files"] == {"a.txt": hashlib.sha256(b"two").hexdigest()}
        assert b["edited_args_files"]["a.txt"] == hashlib.sha256(b"three").hexdigest()
        for head, files in [
            (b["main"], b["main_files"]),
            (b["edited_message"], b["edited_message_files"]),
            (b["edited_args"], b["edited_args_files"]),
        ]:
            await session.history.switch(head)
            assert manifest(session.workspace) == files

        # Compare sees an edited tool call even though the message keeps its id.
        diff = await session.history.compare(b["main"], b["edited_args"])
        assert diff.only_a[0]["tool_calls"][0]["args"] == {"command": "printf one > a.txt"}
        assert diff.only_b[0]["tool_calls"][0]["args"] == {"command": "printf three > a.txt"}
        assert [f.path for f in diff.files] == ["a.txt"]

        # Continuing after a switch continues that branch, with a valid history.
        await session.history.switch(b["edited_message"])
        state = await runtime.graph.aget_state(session.config)
        assert state.values["final_answer"] == "done B"
    finally:
        await runtime.close()
    for body in server.requests:
        check_tool_pairing(body["messages"])


async def test_switch_asks_before_overwriting_outside_changes(server: OpenAITestServer) -> None:
    runtime = await Runtime.open(load_settings({"approval": {"mode": "yolo"}}))
    try:
        session, b = await three_branches(runtime)
        await session.history.switch(b["main"])
        (session.workspace / "a.txt").write_text("changed by a person")
        with pytest.raises(WorkspaceChanged) as info:
            await session.history.switch(b["edited_message"])
        assert "a.txt" in str(info.value)
        assert (session.workspace / "a.txt").read_text() == "changed by a person"
        await session.history.switch(b["edited_message"], force=True)
        assert (session.workspace / "a.txt").read_text() == "two"
    finally:
        await runtime.close()


async def test_recorded_replay_makes_no_calls_and_live_replay_branches(
    server: OpenAITestServer,
) -> None:
    runtime = await Runtime.open(load_settings({"approval": {"mode": "yolo"}}))
    try:
        session, b = await three_branches(runtime)
        await session.history.switch(b["main"])
        before_requests = server.request_count
        before_files = manifest(session.workspace)
        tool_calls_before = {n: s.calls for n, s in runtime.registry.stats.items()}

        stored = await session.history.recorded(b["edited_message"])
        replayed: list[ev.Event] = []
        count = await Replayer(stored, speed=0).play(replayed.append)
        assert count == len(stored) and replayed == stored
        types = [e.type for e in stored]
        assert types.count("final_answer") == 1
        finals = [e.text for e in stored if isinstance(e, ev.FinalAnswer)]
        assert finals == ["done B"]  # only this branch's events, not main's
        inputs = [e.input for e in stored if isinstance(e, ev.RunStarted)]
        assert inputs == ["make other files"]  # the replaced message is not part of it
        assert server.request_count == before_requests
        assert manifest(session.workspace) == before_files
        assert {n: s.calls for n, s in runtime.registry.stats.items()} == tool_calls_before

        # Step-through and breakpoints.
        stepper = Replayer(stored, speed=0, breakpoints=["shell_exec"])
        seen: list[ev.Event] = []
        import asyncio

        task = asyncio.create_task(stepper.play(seen.append))
        await asyncio.sleep(0.05)
        assert stepper.paused and isinstance(stepper.paused_at, ev.ToolCall)
        n = len(seen)
        stepper.step()
        await asyncio.sleep(0.05)
        assert len(seen) == n + 1 and stepper.paused
        stepper.resume()
        await asyncio.wait_for(task, 5)
        assert seen == stored

        # Live replay re-executes from a checkpoint into a new branch.
        heads_before = set((await session.history.tree()).heads)
        outcome = await session.history.retry_live(b["first_call"])
        assert outcome.status == "completed"
        heads_after = set((await session.history.tree()).heads)
        assert len(heads_after - heads_before) == 1
        assert server.request_count > before_requests
    finally:
        await runtime.close()


async def test_tree_is_read_from_events_alone(server: OpenAITestServer) -> None:
    runtime = await Runtime.open(load_settings({"approval": {"mode": "yolo"}}))
    try:
        session, _ = await three_branches(runtime)
        tree = await load_tree(runtime.db, session.id)
        from openmanus_tui.store.tree import lineage_sql

        for head in tree.heads:  # our lineage agrees with LangGraph's own parent links
            assert tree.lineage(head) == await lineage_sql(runtime.db, session.id, head)
    finally:
        await runtime.close()


async def test_save_a_branch_as_a_new_session(server: OpenAITestServer) -> None:
    runtime = await Runtime.open(load_settings({"approval": {"mode": "yolo"}}))
    try:
        session, b = await three_branches(runtime)
        copy = await session.history.save_as_new_session(b["edited_message"])
        assert copy.record.parent_session == session.id
        assert copy.record.parent_checkpoint == b["edited_message"]
        assert manifest(copy.workspace) == b["edited_message_files"]
        tree = await copy.history.tree()
        assert len(tree.heads) == 1 == await copy.history.head_count()
        labels = [tree.nodes[c].label for c in tree.lineage(tree.current)]
        assert labels[0] == "› make other files" and labels[-1] == "■ done B"
        original = [
            e
            for e in await session.history.recorded(b["edited_message"])
            if not isinstance(e, ev.Checkpoint)
        ]
        copied = [
            e for e in await copy.history.recorded(tree.current) if not isinstance(e, ev.Checkpoint)
        ]
        keep = {"session_id", "seq", "checkpoint_id"}
        assert [e.model_dump(exclude=keep) for e in copied] == [
            e.model_dump(exclude=keep) for e in original
        ]
        # The copy is a live session: it takes a new task on top of the copied branch.
        before = server.request_count
        assert (await copy.run("make files")).final_answer == "done A"
        assert server.request_count == before + 3
    finally:
        await runtime.close()
