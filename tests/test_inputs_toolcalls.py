"""Tool calls that must never run as sent (issue 12, defects 5 and 9).

Through the real ``ChatOpenAI`` client and the loopback server, streamed and non-streamed:
cut-off or malformed argument JSON is answered as invalid and nothing executes (a ``file_write``
that would overwrite a file, a ``shell_exec`` that would leave a trace); a reply cut off at the
token limit runs none of its calls; a repeated call id gets a unique id so each call keeps its
own result in what the model sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import check_tool_pairing, use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import Runtime

ORIGINAL = "precious data\n"


@pytest.fixture(params=["streamed", "whole"])
def server(request, llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch):
    use_server(monkeypatch, llm_server)
    if request.param == "whole":
        monkeypatch.setenv("OPENMANUS_MODEL__STREAM", "false")
    return llm_server


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "victim.txt").write_text(ORIGINAL)
    return ws


async def _run(workspace: Path) -> tuple[str, list[ev.Event]]:
    seen: list[ev.Event] = []
    async with await Runtime.open(load_settings({"approval": {"mode": "yolo"}})) as runtime:
        session = await runtime.create_session(workspace=workspace)
        outcome = await session.run("do it", on_event=seen.append)
    return outcome.status, seen


CUT_OFF = {
    "shell-rm": ("shell_exec", '{"command": "touch TRACE && rm -rf ./'),
    "file-write": ("file_write", '{"path": "victim.txt", "content": "overwrit'),
    "not-json": ("shell_exec", "{not json"),
    "json-array": ("shell_exec", '["touch", "TRACE"]'),
}


@pytest.mark.parametrize("case", list(CUT_OFF), ids=list(CUT_OFF))
async def test_cut_off_arguments_never_run(server, workspace, case):
    tool, raw = CUT_OFF[case]
    server.set_responder([
        Reply(tool_calls=[ToolCallSpec(tool, raw, id="call_cut")]),
        Reply(text="gave up"),
    ])
    status, seen = await _run(workspace)

    if case == "json-array" and server.records[0].streamed is False:
        # langchain-openai itself rejects a non-object in a whole reply (pydantic error): the
        # run ends with an error event, and still nothing ran.
        assert status == "error" and not (workspace / "TRACE").exists()
        assert not [e for e in seen if isinstance(e, ev.ToolStarted)]
        return
    assert status == "completed", [e for e in seen if isinstance(e, ev.Error)]
    assert not (workspace / "TRACE").exists()
    assert (workspace / "victim.txt").read_text() == ORIGINAL
    assert not [e for e in seen if isinstance(e, ev.ToolStarted)]
    (call,) = [e for e in seen if isinstance(e, ev.ToolCall)]
    assert call.invalid and "Nothing was run" in call.invalid
    (done,) = [e for e in seen if isinstance(e, ev.ToolFinished)]
    assert done.status == "error" and "Nothing was run" in done.result
    # The model is told, in the call's own result.
    messages = server.requests[1]["messages"]
    check_tool_pairing(messages)
    (result,) = [m for m in messages if m["role"] == "tool"]
    assert result["tool_call_id"] == "call_cut" and "Nothing was run" in result["content"]
    # It sees its raw text back, not a repaired version.
    (sent,) = [c for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert sent["function"]["arguments"] == raw


async def test_reply_cut_at_the_token_limit_runs_nothing(server, workspace):
    server.set_responder([
        Reply(
            tool_calls=[
                ToolCallSpec("shell_exec", {"command": "touch TRACE"}),
                ToolCallSpec("file_write", '{"path": "victim.txt", "content": "x'),
            ],
            finish_reason="length",
        ),
        Reply(text="ok"),
    ])
    status, seen = await _run(workspace)
    assert status == "completed"
    assert not (workspace / "TRACE").exists()
    assert (workspace / "victim.txt").read_text() == ORIGINAL
    assert not [e for e in seen if isinstance(e, ev.ToolStarted)]
    assert len([e for e in seen if isinstance(e, ev.ToolCall) and e.invalid]) == 2
    check_tool_pairing(server.requests[1]["messages"])


async def test_empty_arguments_are_no_arguments(server, workspace):
    """An argument-less call sends "" — that is {} and runs, not an error."""
    server.set_responder([
        Reply(tool_calls=[ToolCallSpec("list_files", "", id="call_ls")]),
        Reply(text="listed"),
    ])
    status, seen = await _run(workspace)
    assert status == "completed"
    (done,) = [e for e in seen if isinstance(e, ev.ToolFinished)]
    assert done.status == "ok" and "victim.txt" in done.result


async def test_repeated_call_id_gets_its_own_result(server, workspace):
    server.set_responder([
        Reply(tool_calls=[
            ToolCallSpec("file_write", {"path": "a.txt", "content": "A"}, id="call_same"),
            ToolCallSpec("file_write", {"path": "b.txt", "content": "B"}, id="call_same"),
        ]),
        # The next turn reuses an id from the earlier turn.
        Reply(tool_calls=[ToolCallSpec("file_read", {"path": "a.txt"}, id="call_same")]),
        Reply(text="both written"),
    ])
    status, seen = await _run(workspace)
    assert status == "completed"
    assert (workspace / "a.txt").read_text() == "A" and (workspace / "b.txt").read_text() == "B"
    messages = server.requests[2]["messages"]
    check_tool_pairing(messages)
    ids = [c["id"] for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert len(ids) == 3 and len(set(ids)) == 3 and ids[0] == "call_same"
    results = [m for m in messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in results] == ids
    # The events use the same ids as the history.
    finished = [e.call_id for e in seen if isinstance(e, ev.ToolFinished)]
    assert finished == ids
