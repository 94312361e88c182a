"""The REST API's interrupts as LangGraph Platform has them, through the real ``langgraph-sdk``
client: ``rollback`` of a thread's first run, a waiting question in ``GET …/state``,
``interrupt_before`` / ``interrupt_after`` breakpoints (never deciding a tool call), and the
precise refusal of ``command.update`` / ``command.goto``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from api_helpers import (
    collect,
    custom_types,
    http_post,
    serve,
    write_file_script,
    write_script,
)
from langgraph_sdk.errors import UnprocessableEntityError
from openai_server import OpenAITestServer
from test_research_graph import (  # noqa: F401 (no_web_search: an autouse fixture)
    DOCS,
    _asking,
    no_web_search,
    responder,
)

from openmanus_tui.config import load_settings
from openmanus_tui.runtime import api
from openmanus_tui.runtime.session import Runtime


def _cfg(model: str, **extra: str) -> dict:
    return {"configurable": {"model": model, **extra}}


def _workspace(thread: dict) -> Path:
    return Path(thread["metadata"]["workspace"])


async def _run_inputs(thread_id: str) -> list[str | None]:
    """The inputs of the runs on the thread's branch, as the CLI and the workbench show it
    (the session API's transcript, read from the database by another runtime)."""
    async with await Runtime.open(load_settings({})) as runtime:
        session = await runtime.open_session(thread_id)
        events = await api.branch_events(session)
    return [e.input for e in events if e.type == "run_started"]  # type: ignore[attr-defined]


def _write_then_slow(tmp_path: Path) -> str:
    """A first step writing a.txt (yolo: no approval), then a long slow answer (a run to cut
    off once its file is written)."""
    return write_script(
        tmp_path / "write_slow.json",
        [{"text": "Writing.", "tool_calls": [
            {"name": "file_write", "args": {"path": "a.txt", "content": "first"}}]}],
        final=" ".join(["word"] * 3000), token_delay=0.01,
    )


async def _until_written(client: Any, tid: str) -> None:
    state = await client.threads.get_state(tid)
    while not any(m["type"] == "tool" for m in state["values"].get("messages", [])):
        state = await client.threads.get_state(tid)


# ---- rollback of a thread's first run ----------------------------------------------------
async def test_rollback_of_a_first_run_starts_the_new_run_from_an_empty_thread(
    tmp_path: Path,
) -> None:
    first_model = _write_then_slow(tmp_path)
    quick = write_script(tmp_path / "quick.json", [], final="quick answer")
    with serve() as srv:
        client = srv.client()
        thread = await client.threads.create()
        tid = thread["thread_id"]
        first = await client.runs.create(tid, "manus", input={"input": "go"},
                                         config=_cfg(first_model, approval="yolo"))
        await _until_written(client, tid)
        assert (_workspace(thread) / "a.txt").read_text() == "first"
        done = await client.runs.wait(tid, "manus", input={"input": "instead"},
                                      multitask_strategy="rollback", config=_cfg(quick))
        assert done["final_answer"] == "quick answer"
        assert (await client.runs.get(tid, first["run_id"]))["status"] == "interrupted"
        # The first run's steps are not the thread's: not in its values, not in its branch.
        assert [m["content"] for m in done["messages"] if m["type"] == "human"] == ["instead"]
        assert not any(m["type"] == "tool" for m in done["messages"])
        assert not (_workspace(thread) / "a.txt").exists()  # its file is undone too
        state = await client.threads.get_state(tid)
        parents = {h["checkpoint"]["checkpoint_id"]: (h["parent_checkpoint"] or {}).get(
            "checkpoint_id") for h in await client.threads.get_history(tid, limit=100)}
        line, cursor = [], state["checkpoint"]["checkpoint_id"]
        while cursor is not None:
            line.append(cursor)
            cursor = parents[cursor]
        assert len(line) < len(parents)  # the rolled-back steps are another branch
    assert await _run_inputs(tid) == ["instead"]


async def test_cancel_with_rollback_leaves_a_first_run_thread_empty(tmp_path: Path) -> None:
    first_model = _write_then_slow(tmp_path)
    quick = write_script(tmp_path / "quick.json", [], final="quick answer")
    with serve() as srv:
        client = srv.client()
        thread = await client.threads.create()
        tid = thread["thread_id"]
        first = await client.runs.create(tid, "manus", input={"input": "go"},
                                         config=_cfg(first_model, approval="yolo"))
        await _until_written(client, tid)
        await client.runs.cancel(tid, first["run_id"], wait=True, action="rollback")
        state = await client.threads.get_state(tid)
        assert (state["values"], state["next"], state["tasks"]) == ({}, [], [])
        assert state["checkpoint"]["checkpoint_id"] is None
        got = await client.threads.get(tid)
        assert (got["values"], got["status"]) == ({}, "idle")
        assert not (_workspace(thread) / "a.txt").exists()
        # Nothing of the rolled-back run runs again: a run with no input has nothing to do.
        assert await client.runs.wait(tid, "manus", config=_cfg(quick)) == {}
        done = await client.runs.wait(tid, "manus", input={"input": "fresh"},
                                      config=_cfg(quick))
        assert [m["content"] for m in done["messages"] if m["type"] == "human"] == ["fresh"]
        assert not (_workspace(thread) / "a.txt").exists()
    assert await _run_inputs(tid) == ["fresh"]


# ---- a waiting question in the state -----------------------------------------------------
async def test_a_waiting_question_is_in_the_state_as_an_approval_is(tmp_path: Path) -> None:
    ask = write_script(tmp_path / "ask.json", [
        {"text": "I need to know.", "tool_calls": [
            {"name": "ask_human", "args": {"question": "Which colour?"}}]},
    ], final="you said: {last_result}")
    with serve() as srv:
        client = srv.client()
        # The approval: the state shows the interrupt the run ended with.
        approving = (await client.threads.create())["thread_id"]
        ended = await client.runs.wait(approving, "manus", input={"input": "write"},
                                       config=_cfg(write_file_script(tmp_path), approval="ask"))
        state = await client.threads.get_state(approving)
        assert state["interrupts"] == ended["__interrupt__"] and state["next"] == ["approve"]
        assert [t["interrupts"] for t in state["tasks"]] == [ended["__interrupt__"]]
        # The question: the same shape, the waiting node named.
        asking = (await client.threads.create())["thread_id"]
        ended = await client.runs.wait(asking, "manus", input={"input": "pick"},
                                       config=_cfg(ask, approval="ask"))
        interrupt = ended["__interrupt__"][0]
        assert interrupt["value"] == {"type": "ask_human", "question": "Which colour?"}
        state = await client.threads.get_state(asking)
        assert state["interrupts"] == [interrupt] and state["next"] == ["call_tool"]
        assert [(t["name"], t["interrupts"]) for t in state["tasks"]] == [
            ("call_tool", [interrupt])]
        assert (await client.threads.get(asking))["interrupts"] == {interrupt["id"]: [interrupt]}
        done = await client.runs.wait(asking, "manus", command={"resume": "green"},
                                      config=_cfg(ask, approval="ask"))
        assert done["final_answer"] == "you said: green"
        state = await client.threads.get_state(asking)
        assert (state["interrupts"], state["next"]) == ([], [])


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    return folder


async def test_the_research_question_is_in_the_state_and_a_resume_answers_it(
    docs: Path,
) -> None:
    with OpenAITestServer(_asking) as model, serve({
        "approval": {"mode": "yolo"},
        "model": {"base_url": model.base_url, "api_key": "sk-test", "name": "test-model"},
    }) as srv:
        client = srv.client()
        tid = (await client.threads.create(metadata={"workspace": str(docs)}))["thread_id"]
        ended = await client.runs.wait(tid, "research", input={"input": "When did it open?"})
        interrupt = ended["__interrupt__"][0]
        assert interrupt["value"] == {"type": "ask_human", "question": "Which bridge?"}
        state = await client.threads.get_state(tid)
        assert state["next"] == ["clarify"] and state["interrupts"] == [interrupt]
        assert [(t["name"], t["interrupts"]) for t in state["tasks"]] == [
            ("clarify", [interrupt])]
        assert (await client.threads.get(tid))["interrupts"] == {interrupt["id"]: [interrupt]}
        # Its run cut off (a cancel, a restart): the graph's own record of it is what waits,
        # and a resume with the answer still continues.
        asker = (await client.runs.list(tid))[0]["run_id"]
        await client.runs.cancel(tid, asker, wait=True)
        stored = (await client.threads.get_state(tid))["interrupts"]
        assert [i["value"]["question"] for i in stored] == ["Which bridge?"]
        done = await client.runs.wait(tid, "research",
                                      command={"resume": "the harbour bridge"})
        assert "1932" in done["final_answer"]
        plans = [r.body["messages"][-1]["content"] for r in model.records
                 if "answered" in r.body["messages"][-1]["content"]]
        assert plans and "the harbour bridge" in plans[-1]


# ---- breakpoints ---------------------------------------------------------------------------
async def test_interrupt_before_call_tool_pauses_and_a_resume_still_asks(
    tmp_path: Path,
) -> None:
    model = write_file_script(tmp_path)
    with serve() as srv:
        client = srv.client()
        thread = await client.threads.create()
        tid, path = thread["thread_id"], _workspace(thread) / "a.txt"
        # yolo decides the call at once; the breakpoint stops the run before it runs.
        first = await collect(client.runs.stream(
            tid, "manus", input={"input": "write a"}, interrupt_before=["call_tool"],
            stream_mode=["values", "custom"], config=_cfg(model, approval="yolo"),
        ))
        assert (await client.runs.get(tid, first[0][1]["run_id"]))["status"] == "interrupted"
        state = await client.threads.get_state(tid)
        assert state["next"] == ["call_tool"] and state["interrupts"] == []
        assert (await client.threads.get(tid))["status"] == "interrupted"
        assert not path.exists() and "tool_started" not in custom_types(first)
        # Continued in ask mode: the call the yolo policy decided is asked for again.
        asked = await client.runs.wait(tid, "manus", command={"resume": None},
                                       config=_cfg(model, approval="ask"))
        calls = asked["__interrupt__"][0]["value"]["calls"]
        assert [c["tool"] for c in calls] == ["file_write"] and not path.exists()
        state = await client.threads.get_state(tid)
        assert state["next"] == ["approve"]
        done = await collect(client.runs.stream(
            tid, "manus", command={"resume": {"decision": "approve"}},
            stream_mode=["values", "custom"], config=_cfg(model, approval="ask"),
        ))
        assert custom_types(done).count("tool_started") == 1  # exactly once
        assert path.read_text() == "hi"
        assert [d for e, d in done if e == "values"][-1]["final_answer"].startswith("done:")
        assert (await client.threads.get(tid))["status"] == "idle"


async def test_research_paused_after_web_approval_asks_again_in_ask_mode(docs: Path) -> None:
    from openmanus_tui.research.prompts import stage_of

    def stages(model: OpenAITestServer) -> list[str]:
        return [stage_of(r.body["messages"][0]["content"]) for r in model.records]

    with OpenAITestServer(responder) as model, serve({
        "approval": {"mode": "yolo"},
        "model": {"base_url": model.base_url, "api_key": "sk-test", "name": "test-model"},
    }) as srv:
        client = srv.client()
        tid = (await client.threads.create(metadata={"workspace": str(docs)}))["thread_id"]
        await client.runs.wait(tid, "research", input={"input": "When did it open?"},
                               interrupt_after=["approve_web"])
        state = await client.threads.get_state(tid)
        assert set(state["next"]) == {"researcher"} and state["values"]["web_allowed"]
        assert stages(model) == ["plan"]  # no researcher ran
        asked = await client.runs.wait(tid, "research", config={"configurable": {
            "approval": "ask"}})
        calls = asked["__interrupt__"][0]["value"]["calls"]
        assert [c["tool"] for c in calls] == ["web_fetch"] and stages(model) == ["plan"]
        done = await client.runs.wait(tid, "research",
                                      command={"resume": {"decision": "deny"}})
        assert "1932" in done["final_answer"] and done["web_allowed"] is False


async def test_a_call_cut_off_is_neither_asked_for_nor_run_again_in_a_stricter_mode(
    tmp_path: Path,
) -> None:
    """The re-asking above stops where exactly once begins: a call that started (its run
    cancelled while it ran) is reported as interrupted, never approved or run a second time."""
    model = write_script(tmp_path / "slow_tool.json", [{
        "text": "Noting.", "tool_calls": [
            {"name": "shell_exec", "args": {"command": "sleep 1; echo ran >> log.txt"}}],
    }], final="noted")
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        stream = client.runs.stream(tid, "manus", input={"input": "go"}, stream_mode=["custom"],
                                    config=_cfg(model, approval="yolo"))
        run_id = ""
        async for part in stream:
            if part.event == "metadata":
                run_id = part.data["run_id"]
            elif part.event == "custom" and part.data["type"] == "tool_started":
                break
        await stream.aclose()
        await client.runs.cancel(tid, run_id, wait=True)
        assert (await client.threads.get_state(tid))["next"] == ["call_tool"]
        again = await collect(client.runs.stream(tid, "manus", stream_mode=["values", "custom"],
                                                 config=_cfg(model, approval="ask")))
        final = [d for e, d in again if e == "values"][-1]
        assert "__interrupt__" not in final and final["final_answer"] == "noted"
        assert "tool_started" not in custom_types(again)
        tool = next(m for m in final["messages"] if m["type"] == "tool")
        assert "program stopped before it finished" in tool["content"]


async def test_interrupt_after_call_llm_and_before_approve(tmp_path: Path) -> None:
    model = write_file_script(tmp_path)
    with serve() as srv:
        client = srv.client()
        thread = await client.threads.create()
        tid, path = thread["thread_id"], _workspace(thread) / "a.txt"
        cfg = _cfg(model, approval="ask")
        paused = await client.runs.wait(tid, "manus", input={"input": "write a"},
                                        interrupt_after=["call_llm"], config=cfg)
        assert "__interrupt__" not in paused and paused["messages"][-1]["type"] == "ai"
        assert (await client.threads.get_state(tid))["next"] == ["approve"]
        # A run with no input continues; it stops again before the approval step.
        await client.runs.wait(tid, "manus", interrupt_before=["approve"], config=cfg)
        assert (await client.threads.get_state(tid))["next"] == ["approve"]
        asked = await client.runs.wait(tid, "manus", config=cfg)
        assert asked["__interrupt__"][0]["value"]["calls"][0]["tool"] == "file_write"
        assert not path.exists()
        done = await client.runs.wait(tid, "manus", command={"resume": {"decision": "approve"}},
                                      interrupt_after=["call_tool"], config=cfg)
        assert path.read_text() == "hi" and done.get("final_answer") is None
        assert (await client.threads.get_state(tid))["next"] == ["call_llm"]
        done = await client.runs.wait(tid, "manus", config=cfg)
        assert done["final_answer"].startswith("done:")


async def test_bad_breakpoints_update_and_goto_are_refused_precisely(tmp_path: Path) -> None:
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        body = {"assistant_id": "manus", "input": {"input": "hi"}}

        def refused(extra: dict[str, Any]) -> str:
            r = http_post(f"{srv.url}/threads/{tid}/runs", json={**body, **extra})
            assert r.status_code == 422, r.text
            return str(json.loads(r.text)["detail"])

        detail = refused({"interrupt_before": ["tools"]})
        assert "no node 'tools'" in detail and "call_llm, approve, call_tool, finalize" in detail
        assert "no node 'clarify'" in refused({"interrupt_after": ["clarify"]})
        for command in ({"update": {"decisions": {}}}, {"goto": "call_tool"},
                        {"resume": "x", "goto": "call_tool"}):
            detail = refused({"command": command, "input": None})
            assert "bypass the approval step" in detail
        with pytest.raises(UnprocessableEntityError, match="bypass the approval step"):
            await client.runs.create(tid, "manus", command={"goto": "call_tool"})
        assert await client.runs.list(tid) == []  # nothing was started
