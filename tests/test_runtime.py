"""The agent runtime end to end through the real ChatOpenAI client and the loopback server:
multi-step runs, approvals, invalid calls, guards, and the context window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import check_tool_pairing, use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec, script_responder

from openmanus_tui import events as ev
from openmanus_tui.agent.approval import Decision
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import Runtime


async def open_runtime(**overrides: Any) -> Runtime:
    return await Runtime.open(load_settings(overrides))


def tool_messages(body: dict[str, Any]) -> dict[str, str]:
    return {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}


@pytest.fixture
def server(llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> OpenAITestServer:
    use_server(monkeypatch, llm_server)
    return llm_server


async def test_multi_step_run_with_tools(server: OpenAITestServer) -> None:
    server.set_responder(
        script_responder(
            [
                Reply(
                    text="I'll write the note.",
                    tool_calls=[
                        ToolCallSpec(
                            "file_write", {"path": "notes/a.txt", "content": "hello from the agent"}
                        )
                    ],
                ),
                Reply(tool_calls=[ToolCallSpec("file_read", {"path": "notes/a.txt"})]),
                Reply(text="The note says hello from the agent."),
            ]
        )
    )
    runtime = await open_runtime(approval={"mode": "yolo"})
    seen: list[ev.Event] = []
    try:
        session = await runtime.create_session()
        outcome = await session.run("write a note and read it", on_event=seen.append)
        stored = await runtime.db.events(session.id)
    finally:
        await runtime.close()

    assert outcome.status == "completed"
    assert outcome.final_answer == "The note says hello from the agent."
    assert (session.workspace / "notes" / "a.txt").read_text() == "hello from the agent"
    assert server.request_count == 3
    for record in server.records:
        assert record.streamed and record.include_usage
        offered = {t["function"]["name"] for t in record.tools}
        assert {"file_read", "file_write", "shell_exec", "code_exec", "search_info"} <= offered
        check_tool_pairing(record.body["messages"])
    last = server.requests[-1]["messages"]
    assert last[0]["role"] == "system" and "isolation level" in last[0]["content"]
    assert any("hello from the agent" in c for c in tool_messages(server.requests[-1]).values())

    types = [e.type for e in seen]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert "thought_delta" in types  # streamed tokens reached the listener
    assert [e.tool for e in seen if isinstance(e, ev.ToolFinished)] == ["file_write", "file_read"]
    usage = [e for e in seen if isinstance(e, ev.Usage)]
    assert len(usage) == 3 and all(u.tokens_in > 0 and u.tokens_out > 0 for u in usage)
    assert usage[-1].total_tokens_in == sum(u.tokens_in for u in usage)
    # Everything but token deltas is stored, in order, with increasing seq.
    assert [e.model_dump() for e in stored] == [e.model_dump() for e in seen if not e.ephemeral]
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    assert all(e.checkpoint_id for e in stored if e.type not in ("run_started", "notice"))


async def test_approve_edit_and_deny_in_one_step(server: OpenAITestServer) -> None:
    server.set_responder(
        script_responder(
            [
                Reply(
                    text="Three things at once.",
                    tool_calls=[
                        ToolCallSpec("file_write", {"path": "a.txt", "content": "A"}),
                        ToolCallSpec("file_write", {"path": "b.txt", "content": "original"}),
                        ToolCallSpec("shell_exec", {"command": "touch c.txt"}),
                    ],
                ),
                Reply(text="OK."),
            ]
        )
    )
    requests: list[ev.ApprovalRequested] = []

    async def approver(request: ev.ApprovalRequested) -> dict[str, Decision]:
        requests.append(request)
        a, b, c = request.calls
        return {
            a.call_id: Decision(decision="approve"),
            b.call_id: Decision(decision="edit", args={"path": "b.txt", "content": "edited"}),
            c.call_id: Decision(decision="deny", reason="no shell today, use file tools"),
        }

    runtime = await open_runtime(approval={"mode": "ask"})
    seen: list[ev.Event] = []
    try:
        session = await runtime.create_session()
        outcome = await session.run("do three things", approver=approver, on_event=seen.append)
    finally:
        await runtime.close()

    assert outcome.status == "completed"
    assert len(requests) == 1 and [c.tool for c in requests[0].calls] == [
        "file_write",
        "file_write",
        "shell_exec",
    ]
    ws = session.workspace
    assert (ws / "a.txt").read_text() == "A"
    assert (ws / "b.txt").read_text() == "edited"
    assert not (ws / "c.txt").exists()
    # The very next model call (same step) carries the reason, and the history shows the
    # arguments that really ran.
    assert server.request_count == 2
    second = server.requests[1]
    check_tool_pairing(second["messages"])
    results = tool_messages(second)
    denied_id = requests[0].calls[2].call_id
    assert "no shell today, use file tools" in results[denied_id]
    assistant = next(m for m in second["messages"] if m["role"] == "assistant")
    sent = {c["id"]: c["function"]["arguments"] for c in assistant["tool_calls"]}
    assert '"edited"' in sent[requests[0].calls[1].call_id]
    decided = {e.call_id: e for e in seen if isinstance(e, ev.ApprovalDecided)}
    assert decided[denied_id].decision == "deny" and decided[denied_id].by == "user"
    finished = {e.call_id: e.status for e in seen if isinstance(e, ev.ToolFinished)}
    assert finished[denied_id] == "denied"


async def test_auto_mode_runs_reads_and_asks_for_writes(server: OpenAITestServer) -> None:
    server.set_responder(
        script_responder(
            [
                Reply(
                    tool_calls=[
                        ToolCallSpec("list_files", {"path": "."}),
                        ToolCallSpec("file_write", {"path": "x.txt", "content": "x"}),
                    ]
                ),
                Reply(text="done"),
            ]
        )
    )
    asked: list[str] = []

    async def approver(request: ev.ApprovalRequested) -> dict[str, Decision]:
        asked.extend(c.tool for c in request.calls)
        return {c.call_id: Decision(decision="approve") for c in request.calls}

    runtime = await open_runtime()
    try:
        session = await runtime.create_session()
        outcome = await session.run("go", approver=approver)
    finally:
        await runtime.close()
    assert outcome.status == "completed" and asked == ["file_write"]


async def test_new_input_while_approval_pending(server: OpenAITestServer) -> None:
    def responder(body: dict[str, Any]) -> Reply:
        last_user = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        if last_user == "make a file":
            return Reply(
                tool_calls=[ToolCallSpec("shell_exec", {"command": "touch should-not-exist"})]
            )
        return Reply(text="Fine, I will not.")

    server.set_responder(responder)
    runtime = await open_runtime(approval={"mode": "ask"})
    try:
        session = await runtime.create_session()
        first = await session.run("make a file")
        assert first.status == "awaiting_approval"
        assert await session.pending() == (True, True)
        second = await session.run("never mind, don't")
        events = await runtime.db.events(session.id)
    finally:
        await runtime.close()
    assert second.status == "completed"
    assert not (session.workspace / "should-not-exist").exists()
    last = server.requests[-1]
    check_tool_pairing(last["messages"])
    assert any("Cancelled" in c for c in tool_messages(last).values())
    assert [m["content"] for m in last["messages"] if m["role"] == "user"] == [
        "make a file",
        "never mind, don't",
    ]
    cancelled = [e for e in events if isinstance(e, ev.ToolFinished) and e.status == "denied"]
    assert len(cancelled) == 1 and not any(isinstance(e, ev.ToolStarted) for e in events)


async def test_invalid_and_unknown_tool_calls_go_back_to_the_model(
    server: OpenAITestServer,
) -> None:
    server.set_responder(
        script_responder(
            [
                Reply(
                    tool_calls=[
                        ToolCallSpec("does_not_exist", {"x": 1}),
                        ToolCallSpec("file_read", "not json at all"),
                        ToolCallSpec("file_read", {"wrong_arg": "a.txt"}),
                    ]
                ),
                Reply(text="Sorry, recovered."),
            ]
        )
    )
    runtime = await open_runtime(approval={"mode": "yolo"})
    seen: list[ev.Event] = []
    try:
        session = await runtime.create_session()
        outcome = await session.run("try", on_event=seen.append)
    finally:
        await runtime.close()
    assert outcome.status == "completed" and outcome.final_answer == "Sorry, recovered."
    second = server.requests[1]
    check_tool_pairing(second["messages"])
    contents = list(tool_messages(second).values())
    assert len(contents) == 3
    assert sum("unknown tool 'does_not_exist'" in c for c in contents) == 1
    assert sum("not valid JSON" in c for c in contents) == 1
    assert sum("invalid arguments for file_read: path" in c for c in contents) == 1
    invalid = [e for e in seen if isinstance(e, ev.ToolCall) and e.invalid]
    assert len(invalid) == 2
    assert [e.status for e in seen if isinstance(e, ev.ToolFinished)] == ["error"] * 3


async def test_loop_guard_stops_repeated_identical_calls(server: OpenAITestServer) -> None:
    server.set_responder(lambda body: Reply(tool_calls=[ToolCallSpec("list_files", {"path": "."})]))
    runtime = await open_runtime(approval={"mode": "yolo"})
    try:
        session = await runtime.create_session()
        outcome = await session.run("loop forever")
        state = await runtime.graph.aget_state(session.config)
    finally:
        await runtime.close()
    assert outcome.status == "stopped"
    assert "list_files was called 3 times with the same arguments" in outcome.reason
    assert server.request_count == 3
    # The stopped call got a closing result, so the history stays valid for the next run.
    from langchain_openai.chat_models.base import _convert_message_to_dict

    check_tool_pairing([_convert_message_to_dict(m) for m in state.values["messages"]])


async def test_max_steps_and_token_budget(server: OpenAITestServer) -> None:
    counter = {"n": 0}

    def responder(body: dict[str, Any]) -> Reply:
        counter["n"] += 1
        return Reply(
            tool_calls=[ToolCallSpec("list_files", {"path": f"d{counter['n']}"})], usage=(1000, 50)
        )

    server.set_responder(responder)
    runtime = await open_runtime(approval={"mode": "yolo"}, agent={"max_steps": 4})
    try:
        session = await runtime.create_session()
        outcome = await session.run("walk")
    finally:
        await runtime.close()
    assert outcome.status == "stopped" and "agent.max_steps" in outcome.reason
    assert server.request_count == 4

    counter["n"] = 0
    runtime = await open_runtime(approval={"mode": "yolo"}, agent={"token_budget": 2500})
    try:
        session = await runtime.create_session()
        outcome = await session.run("walk")
    finally:
        await runtime.close()
    assert outcome.status == "stopped" and "agent.token_budget" in outcome.reason
    assert counter["n"] == 3  # 1050 + 1050 + 1050 tokens crosses 2500 after the third call


async def test_context_is_trimmed_in_whole_turns(server: OpenAITestServer) -> None:
    counter = {"n": 0}

    def responder(body: dict[str, Any]) -> Reply:
        counter["n"] += 1
        if counter["n"] > 25:
            return Reply(text="finished")
        return Reply(
            text="x" * 400,
            tool_calls=[
                ToolCallSpec("file_write", {"path": f"f{counter['n']}.txt", "content": "y" * 800})
            ],
        )

    server.set_responder(responder)
    runtime = await open_runtime(
        approval={"mode": "yolo"},
        agent={"max_steps": 40},
        model={"context_window": 6000},
    )
    try:
        session = await runtime.create_session()
        outcome = await session.run("write many files")
    finally:
        await runtime.close()
    assert outcome.status == "completed"
    sizes = []
    for body in server.requests:
        check_tool_pairing(body["messages"])
        assert body["messages"][1] == {"role": "user", "content": "write many files"}
        sizes.append(
            sum(
                len(str(m.get("content") or "")) + len(str(m.get("tool_calls") or ""))
                for m in body["messages"]
            )
        )
    # Later requests stop growing once the window is full (about 4 chars a token).
    assert max(sizes) < 6000 * 4
    assert len(server.requests[-1]["messages"]) < 2 * 25


async def test_session_records_and_listing(server: OpenAITestServer, tmp_path: Path) -> None:
    server.set_responder(script_responder([Reply(text="hi there")]))
    runtime = await open_runtime(sandbox={"workspace": str(tmp_path / "ws")})
    try:
        session = await runtime.create_session()
        await session.run("say hi, please, in a friendly way")
        records = await runtime.db.list_sessions()
        again = await runtime.open_session(session.id[:12])
    finally:
        await runtime.close()
    assert [r.id for r in records] == [session.id]
    assert records[0].status == "completed" and records[0].title.startswith("say hi")
    assert records[0].model == "openai:test-model"
    assert Path(records[0].workspace) == tmp_path / "ws"
    assert again.id == session.id
