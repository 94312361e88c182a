"""``observation_read`` is scoped to the session (issue 12, defect 14): one session cannot read
another's stored tool output by its handle, even knowing it; its own stays readable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec, assistant_turns_since_user

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import Runtime

SECRET = "".join(f"secret line {i:05d} " + "x" * 40 + "\n" for i in range(400))


@pytest.fixture
def server(llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> OpenAITestServer:
    use_server(monkeypatch, llm_server)
    return llm_server


async def test_another_sessions_observation_is_not_readable(server, tmp_path: Path) -> None:
    box: dict[str, str] = {}

    def responder(body: dict[str, Any]) -> Reply:
        task = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        k = assistant_turns_since_user(body["messages"])
        if task == "read it" and k == 0:
            return Reply(tool_calls=[ToolCallSpec("file_read", {"path": "big.txt"})])
        if task == "read it" and k == 1:
            tool = next(m for m in body["messages"] if m["role"] == "tool")
            box["handle"] = tool["content"].split("stored as ")[1].split(":")[0]
            return Reply(tool_calls=[ToolCallSpec(
                "observation_read", {"handle": box["handle"], "offset": 100, "length": 50})])
        if task == "steal it" and k == 0:
            return Reply(tool_calls=[ToolCallSpec(
                "observation_read", {"handle": box["handle"], "offset": 0, "length": 4000})])
        return Reply(text="done")

    server.set_responder(responder)
    seen_a: list[ev.Event] = []
    seen_b: list[ev.Event] = []
    async with await Runtime.open(load_settings({"approval": {"mode": "yolo"}})) as runtime:
        ws_a, ws_b = tmp_path / "a", tmp_path / "b"
        ws_a.mkdir()
        ws_b.mkdir()
        (ws_a / "big.txt").write_text(SECRET)
        a = await runtime.create_session(workspace=ws_a)
        assert (await a.run("read it", on_event=seen_a.append)).status == "completed"
        b = await runtime.create_session(workspace=ws_b)
        assert (await b.run("steal it", on_event=seen_b.append)).status == "completed"

    own = [e for e in seen_a if isinstance(e, ev.ToolFinished) and e.tool == "observation_read"]
    assert own[0].status == "ok" and "secret line" in own[0].result
    (stolen,) = [e for e in seen_b if isinstance(e, ev.ToolFinished)]
    assert stolen.status == "error" and "no stored observation" in stolen.result
    assert "secret line" not in stolen.result
