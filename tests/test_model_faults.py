"""Model endpoint faults through the real ``ChatOpenAI`` client and the loopback OpenAI server.

Transient failures (429, 5xx, cut streams, timeouts) are retried with a visible ``retry`` event
and, once retries run out, end the run with a transient ``error`` event and a session that a
later ``openmanus resume`` finishes. Permanent failures (400, 401) are not retried and tell the
user what to check. Malformed tool-call arguments from the model never crash a run: the model
gets an error result for that call and carries on.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import check_tool_pairing, cli, json_events, run_cli, use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import RunOutcome, Runtime
from openmanus_tui.store.db import Database, SessionRecord

TASK = "hello there"
ECHO = f"echo: {TASK}"  # what the server's default responder answers


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def server(llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> OpenAITestServer:
    use_server(monkeypatch, llm_server)
    return llm_server


async def _run(workspace: Path, text: str = TASK) -> tuple[RunOutcome, list[ev.Event]]:
    """One run through the runtime's Python API; returns its outcome and stored events."""
    stored: list[ev.Event] = []
    async with await Runtime.open(load_settings({"approval": {"mode": "yolo"}})) as runtime:
        session = await runtime.create_session(workspace=workspace)
        outcome = await session.run(
            text, on_event=lambda e: None if e.ephemeral else stored.append(e))
        assert [e.model_dump() for e in await runtime.db.events(session.id)] == [
            e.model_dump() for e in stored]
    return outcome, stored


def _of(events: list[ev.Event], kind: type[ev.Event]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


async def _stored_session() -> tuple[SessionRecord, list[ev.Event]]:
    """The only session in the database and its events, read as another process would."""
    db = await Database.open(Path(os.environ["OPENMANUS_DATA_DIR"]) / "openmanus.db")
    try:
        (record,) = await db.list_sessions()
        return record, await db.events(record.id)
    finally:
        await db.close()


def _sync(coro: Any) -> Any:
    return asyncio.run(coro)


def _flat(text: str) -> str:
    """Whitespace-normalised, since rich wraps long lines on a non-terminal stderr."""
    return " ".join(text.split())


# ---- transient faults, retried --------------------------------------------------------------
async def test_rate_limit_is_retried_then_completes(server, workspace):
    server.inject("status", status=429, retry_after=0.05)
    outcome, events = await _run(workspace)

    assert (outcome.status, outcome.final_answer) == ("completed", ECHO)
    assert server.request_count == 2
    assert server.requests[0] == server.requests[1]  # the same request, sent again
    (retry,) = _of(events, ev.Retry)
    assert retry.attempt == 1 and "429" in retry.error
    assert retry.wait_s >= 0.05  # the server's retry-after was honoured
    assert not _of(events, ev.Error)
    assert [u.retries for u in _of(events, ev.Usage)] == [1]


@pytest.mark.parametrize("kind", ["disconnect_mid_stream", "reset_mid_stream"])
async def test_stream_cut_off_is_retried_then_completes(server, workspace, kind):
    text = "a reply long enough to be cut off after a few of its words"
    server.set_responder(lambda body: Reply(text=text))
    server.inject(kind, after_chunks=3)  # role chunk + two words, then the connection ends
    outcome, events = await _run(workspace)

    # The half-received reply is discarded, not glued to the retried one.
    assert (outcome.status, outcome.final_answer) == ("completed", text)
    assert [t.text for t in _of(events, ev.Thought)] == [text]
    assert server.request_count == 2
    assert len(_of(events, ev.Retry)) == 1
    assert not _of(events, ev.Error)


async def test_slow_first_token_times_out_and_is_retried(server, workspace, monkeypatch):
    monkeypatch.setenv("OPENMANUS_MODEL__TIMEOUT", "1")
    server.inject("slow_first_token", delay_s=3)
    outcome, events = await _run(workspace)

    assert (outcome.status, outcome.final_answer) == ("completed", ECHO)
    assert server.request_count == 2
    (retry,) = _of(events, ev.Retry)
    assert "timed out" in retry.error


async def test_timeout_without_retries_is_a_transient_error(server, workspace, monkeypatch):
    monkeypatch.setenv("OPENMANUS_MODEL__TIMEOUT", "1")
    monkeypatch.setenv("OPENMANUS_MODEL__MAX_RETRIES", "0")
    server.inject("slow_first_token", delay_s=3)
    outcome, events = await _run(workspace)

    assert outcome.status == "error"
    assert server.request_count == 1
    (error,) = _of(events, ev.Error)
    assert error.error_class == "transient"
    assert "timed out" in error.message and error.hint
    assert _of(events, ev.RunFinished)[-1].status == "error"


# ---- through the command line: exit codes and messages ------------------------------------
def test_server_errors_past_max_retries_fail_cleanly_then_resume(server, workspace,
                                                                 monkeypatch):
    monkeypatch.setenv("OPENMANUS_MODEL__MAX_RETRIES", "2")
    server.inject("status", status=500, times=3)
    result = run_cli("run", TASK, "--approval", "yolo", "--workspace", str(workspace))

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert server.request_count == 3  # the first try and two retries
    record, events = _sync(_stored_session())
    (error,) = _of(events, ev.Error)
    assert error.error_class == "transient" and "500" in error.message
    assert len(_of(events, ev.Retry)) == 2
    assert _flat(error.message) in _flat(result.stderr)
    # How to continue is printed with the run's summary (stdout without --json).
    assert f"openmanus resume {record.id}" in _flat(result.stdout + result.stderr)
    assert record.status == "error"

    # The fault has cleared: the same session finishes where it failed.
    resumed = cli("resume", record.id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    answers = [e["text"] for e in json_events(resumed.stdout) if e["type"] == "final_answer"]
    assert answers == [ECHO]
    assert server.request_count == 4
    assert server.requests[-1]["messages"] == server.requests[0]["messages"]
    record, after = _sync(_stored_session())
    assert record.status == "completed"
    assert [e.model_dump() for e in after[: len(events)]] == [e.model_dump() for e in events]


@pytest.mark.parametrize(("status", "hint_word"), [(400, "model"), (401, "API key")])
def test_client_errors_are_not_retried(server, workspace, status, hint_word):
    server.inject("status", status=status, times=5)
    result = cli("run", TASK, "--approval", "yolo", "--workspace", str(workspace))

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert server.request_count == 1
    _, events = _sync(_stored_session())
    assert not _of(events, ev.Retry)
    (error,) = _of(events, ev.Error)
    assert error.error_class == "permanent"
    assert str(status) in error.message
    assert hint_word in error.hint
    assert _flat(error.message) in _flat(result.stderr)
    assert _flat(error.hint) in _flat(result.stderr)


# ---- malformed output from the model --------------------------------------------------------
@pytest.mark.parametrize("arguments", ["not json at all", '["a", "b"]'],
                         ids=["not-json", "json-array"])
async def test_malformed_tool_arguments_get_an_error_result(server, workspace, arguments):
    server.set_responder([
        Reply(tool_calls=[ToolCallSpec("list_files", arguments, id="call_bad")]),
        Reply(tool_calls=[ToolCallSpec("terminate", {"answer": "all done"})]),
    ])
    outcome, events = await _run(workspace)

    assert (outcome.status, outcome.final_answer) == ("completed", "all done")
    assert server.request_count == 2
    messages = server.requests[1]["messages"]
    check_tool_pairing(messages)
    (call,) = [c for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert call["id"] == "call_bad" and call["function"]["name"] == "list_files"
    (result,) = [m for m in messages if m["role"] == "tool"]
    assert result["tool_call_id"] == "call_bad"

    (proposed,) = [c for c in _of(events, ev.ToolCall) if c.call_id == "call_bad"]
    assert proposed.invalid
    (finished,) = [f for f in _of(events, ev.ToolFinished) if f.call_id == "call_bad"]
    assert finished.status == "error"
    assert result["content"] == finished.result
    assert "JSON" in result["content"]
    assert not _of(events, ev.ToolStarted)  # nothing ran with made-up arguments
