"""The memory manager end to end through the real ChatOpenAI client and the loopback server:
a 200-step session in a 4k window, pins, compaction preview and apply, and large observations."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from conftest import check_tool_pairing, use_server
from langchain_core.messages import AIMessage, ToolMessage
from openai_server import OpenAITestServer, Reply, ToolCallSpec, assistant_turns_since_user

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.memory.compaction import SUMMARY_MARKER
from openmanus_tui.models.scripted import scripted_summary
from openmanus_tui.runtime.api import delete_session
from openmanus_tui.runtime.session import Runtime

WINDOW = 4096


@functools.cache
def o200k() -> Any:
    """bpe-openai's own tiktoken-style encoding: an independent count of what was sent (the
    app uses only its Rust core). Imported when needed: the import alone takes 2 s."""
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


def wire_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens of a request as sent: contents, tool calls and tool definitions (o200k)."""
    enc = o200k()
    n = 3
    for m in body["messages"]:
        n += 4 + len(enc.encode_ordinary(str(m.get("content") or "")))
        for call in m.get("tool_calls") or []:
            fn = call["function"]
            n += 8 + len(enc.encode_ordinary(fn["name"] + fn["arguments"]))
    if body.get("tools"):
        n += len(enc.encode_ordinary(json.dumps(body["tools"])))
    return n


def server_tokens(body: dict[str, Any]) -> int:
    """What the loopback server reports as prompt tokens (its own estimate)."""
    return max(1, len(json.dumps(body.get("messages") or [])) // 4)


def is_summary(body: dict[str, Any]) -> bool:
    return SUMMARY_MARKER in str(body["messages"][0].get("content"))


def summarise(body: dict[str, Any]) -> Reply:
    msgs = body["messages"]
    return Reply(text=scripted_summary(msgs[0]["content"], msgs[-1]["content"]))


async def observation_rows(runtime: Runtime, session_id: str) -> int:
    async with runtime.db.conn.execute(
        "SELECT count(*) FROM memory_observations WHERE session_id = ?", (session_id,)
    ) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def open_runtime(**overrides: Any) -> Runtime:
    return await Runtime.open(load_settings(overrides))


@pytest.fixture
def server(llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> OpenAITestServer:
    use_server(monkeypatch, llm_server)
    return llm_server


async def test_two_hundred_steps_in_a_4k_window(server: OpenAITestServer) -> None:
    steps = {"n": 0}

    def responder(body: dict[str, Any]) -> Reply:
        if is_summary(body):
            return summarise(body)
        users = [m["content"] for m in body["messages"] if m["role"] == "user"]
        if users[-1].startswith("Note"):
            if assistant_turns_since_user(body["messages"]) == 0:
                return Reply(
                    tool_calls=[
                        ToolCallSpec(
                            "file_write", {"path": "pin.txt", "content": "the pin word is OCELOT"}
                        )
                    ]
                )
            return Reply(text="Noted.")
        steps["n"] += 1
        n = steps["n"]
        if n == 1:
            args = {"path": "facts.txt", "content": "The launch code is ZEBRA-4417."}
            return Reply(text="Recording the fact.", tool_calls=[ToolCallSpec("file_write", args)])
        if n == 2:
            return Reply(tool_calls=[ToolCallSpec("file_read", {"path": "facts.txt"})])
        if n <= 200:
            content = f"step {n}: " + "lorem ipsum dolor sit amet " * 8
            return Reply(
                text=f"Step {n}.",
                tool_calls=[
                    ToolCallSpec("file_write", {"path": f"notes/{n}.txt", "content": content})
                ],
            )
        return Reply(text="All 200 steps are done.")

    server.set_responder(responder)
    runtime = await open_runtime(
        approval={"mode": "yolo"},
        agent={"max_steps": 230},
        model={"context_window": WINDOW},
    )
    seen: list[ev.Event] = []
    try:
        session = await runtime.create_session()
        first = await session.run("Note the pin word, please.")
        assert first.status == "completed"
        state = (await runtime.graph.aget_state(session.config)).values
        pinned = next(m for m in state["messages"] if isinstance(m, AIMessage) and m.tool_calls)
        await session.pin(pinned.id)
        start = server.request_count
        outcome = await session.run("Work through the 200 steps.", on_event=seen.append)
        state = (await runtime.graph.aget_state(session.config)).values
        view = await session.context_parts()
    finally:
        await runtime.close()

    assert outcome.status == "completed", outcome.reason
    assert outcome.final_answer == "All 200 steps are done."
    assert steps["n"] == 201
    bodies = server.requests[start:]
    agent_bodies = [b for b in bodies if not is_summary(b)]
    summary_bodies = [b for b in bodies if is_summary(b)]
    assert len(agent_bodies) == 201 and summary_bodies
    for body in bodies:
        # Never over the window: by the tokenizer's count and by the server's own.
        assert wire_tokens(body) <= WINDOW
        assert server_tokens(body) <= WINDOW
        check_tool_pairing(body["messages"])
    for body in agent_bodies:
        users = [m["content"] for m in body["messages"] if m["role"] == "user"]
        assert users[-1] == "Work through the 200 steps."  # the request is always there
        assert any("OCELOT" in c for c in map(json.dumps, body["messages"]))  # the pin too
    # Compaction happened, was announced, and the summaries kept the early facts.
    compacted = [e for e in seen if isinstance(e, ev.Memory) and e.action == "compacted"]
    assert len(compacted) == len(state["summaries"]) >= 1
    assert all(e.data["tokens_after"] < e.data["tokens_before"] for e in compacted)
    latest = state["summaries"][-1]["text"]
    assert "ZEBRA-4417" in latest and "facts.txt" in latest
    assert "ZEBRA-4417" in agent_bodies[-1]["messages"][0]["content"]
    covered = {i for s in state["summaries"] for i in s["covers"]}
    assert pinned.id not in covered
    # The raw turns all stay in the checkpoint history.
    assert sum(isinstance(m, ToolMessage) for m in state["messages"]) >= 201
    assert view.tokens <= view.budget and any(p.kind == "summary" for p in view.parts)
    assert any(p.pinned and pinned.id in p.message_ids for p in view.parts)


async def test_compaction_preview_is_what_compact_applies(server: OpenAITestServer) -> None:
    def responder(body: dict[str, Any]) -> Reply:
        if is_summary(body):
            return summarise(body)
        k = assistant_turns_since_user(body["messages"])
        if k < 8:
            path = f"data/part{k}.csv"
            return Reply(
                tool_calls=[ToolCallSpec("file_write", {"path": path, "content": f"row,{k}\n"})]
            )
        return Reply(text="Wrote eight parts.")

    server.set_responder(responder)
    runtime = await open_runtime(approval={"mode": "yolo"})
    seen: list[ev.Event] = []
    try:
        session = await runtime.create_session()
        written = await session.run("Write the eight parts.")
        assert written.status == "completed", written.reason
        before = await session.context_parts()
        assert not any(p.kind == "summary" for p in before.parts)  # a big window: no need yet
        requests = server.request_count
        preview = await session.compaction_preview("the csv parts")
        assert preview is not None and server.request_count == requests + 1
        applied = await session.compact("the csv parts")
        assert server.request_count == requests + 1  # applying did not ask the model again
        state = (await runtime.graph.aget_state(session.config)).values
        after = await session.context_parts()
        await session.run("And now?", on_event=seen.append)
        again = await session.compaction_preview("")
    finally:
        await runtime.close()

    assert applied is not None and applied.summary == preview.summary
    assert state["summaries"][-1] == preview.summary
    assert "data/part0.csv" in preview.text and "the csv parts" in preview.summary["focus"]
    assert len(preview.turns) == 7  # every turn but the request and the newest two
    assert preview.tokens_after < preview.tokens_before
    # The pane shows the summary instead of the compacted turns.
    turn_parts = [p for p in after.parts if p.kind in ("tool_call", "assistant")]
    assert len(turn_parts) == 2 and any(p.kind == "summary" for p in after.parts)
    assert after.tokens < before.tokens
    # The next run sends the summary, not the compacted turns, and pairing still holds.
    last = next(b for b in server.requests if not is_summary(b) and "And now?" in json.dumps(b))
    check_tool_pairing(last["messages"])
    assert "data/part0.csv" in last["messages"][0]["content"]
    sent_paths = json.dumps([m for m in last["messages"][1:]])
    assert "part0.csv" not in sent_paths and "part7.csv" in sent_paths
    assert again is None or again.summary["replaces"] == preview.summary["id"]


async def test_large_observation_costs_later_prompts_only_its_excerpt(
    server: OpenAITestServer,
) -> None:
    big = "".join(f"line {i:05d} " + "data " * 10 + "\n" for i in range(900))
    assert len(big) > 50_000
    handle_box: dict[str, str] = {}

    def responder(body: dict[str, Any]) -> Reply:
        k = assistant_turns_since_user(body["messages"])
        if k == 0:
            return Reply(tool_calls=[ToolCallSpec("file_read", {"path": "big.txt"})])
        if k == 1:
            tool = next(m for m in body["messages"] if m["role"] == "tool")
            handle = tool["content"].split("stored as ")[1].split(":")[0]
            handle_box["handle"] = handle
            return Reply(
                tool_calls=[
                    ToolCallSpec(
                        "observation_read", {"handle": handle, "offset": 30_000, "length": 200}
                    )
                ]
            )
        if k < 5:
            return Reply(tool_calls=[ToolCallSpec("list_files", {"path": f"d{k}"})])
        return Reply(text="done")

    server.set_responder(responder)
    runtime = await open_runtime(approval={"mode": "yolo"})
    seen: list[ev.Event] = []
    try:
        session = await runtime.create_session()
        session.workspace.mkdir(parents=True, exist_ok=True)
        (session.workspace / "big.txt").write_text(big)
        outcome = await session.run("Read big.txt", on_event=seen.append)
        state = (await runtime.graph.aget_state(session.config)).values
        stored_rows = await observation_rows(runtime, session.id)
        await delete_session(runtime, session.id)  # the stored result goes with the session
        left_rows = await observation_rows(runtime, session.id)
    finally:
        await runtime.close()

    assert outcome.status == "completed"
    full = next(
        m for m in state["messages"] if isinstance(m, ToolMessage) and m.name == "file_read"
    )
    assert len(full.content) > 50_000  # the checkpoint keeps the whole result
    handle = handle_box["handle"]
    sizes = [len(json.dumps(b["messages"])) for b in server.requests[1:]]
    assert len(sizes) == 5 and max(sizes) < 8_000  # each later prompt: the excerpt only
    for body in server.requests[1:]:
        check_tool_pairing(body["messages"])
        assert sum(handle in str(m.get("content")) for m in body["messages"]) >= 1
    read = next(
        m for m in state["messages"] if isinstance(m, ToolMessage) and m.name == "observation_read"
    )
    assert str(full.content)[30_000:30_200] in str(read.content)
    stored = [e for e in seen if isinstance(e, ev.Memory) and e.action == "observation_stored"]
    assert [e.data["handle"] for e in stored] == [handle]
    assert stored_rows == 1 and left_rows == 0
