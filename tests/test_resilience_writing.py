"""The writing graph's model calls take the agent's path (issue 16), as the research graph's
do: the model chain with its circuit breakers and fallbacks. The real ``langchain-openai``
client against two loopback servers, the primary answering 500 to everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAITestServer
from writing_model import WriterModel

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime import api
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.runtime.writing import WritingRequirements, write_from_brief
from openmanus_tui.writing.records import WritingRecords


@pytest.fixture
def servers():
    """(primary, fallback, the fallback's writer): the primary fails every request with 500."""
    writer = WriterModel()
    with OpenAITestServer() as primary, OpenAITestServer(
        writer, models=("fallback-model",)
    ) as fallback:
        primary.inject("status", status=500, times=10**6)
        yield primary, fallback, writer


def _settings(primary: OpenAITestServer, fallback: OpenAITestServer) -> Any:
    # Four failures open the breaker: the outline's try and its 3 retries. The drafts run in
    # parallel after it, so no later call can race the breaker to the primary.
    return load_settings({
        "approval": {"mode": "yolo"},
        "model": {"base_url": primary.base_url, "api_key": "sk-test", "name": "test-model",
                  "fallbacks": [{"model": "openai:fallback-model",
                                 "base_url": fallback.base_url, "api_key": "sk-fallback"}]},
        "resilience": {"failure_threshold": 4, "recovery_timeout": 600},
    })


async def test_a_writing_session_falls_back_when_the_primary_fails(
    tmp_path: Path, servers
) -> None:
    primary, fallback, writer = servers
    workspace = tmp_path / "ws"
    workspace.mkdir()
    async with await Runtime.open(_settings(primary, fallback)) as runtime:
        session = await runtime.create_session(workspace=workspace, profile="writing")
        events: list[ev.Event] = []
        outcome = await session.run("Why and how to write plainly", on_event=events.append)
        assert outcome.status == "completed", outcome.reason

        text = (workspace / "writing-plainly.md").read_text()
        assert text.startswith("# Writing Plainly\n") and "Readers finish documents" in text
        assert primary.request_count == 4  # the outline's try and retries, then never again
        calls = fallback.request_count
        assert writer.tasks[:1] == ["TASK: outline"] and calls == len(writer.tasks) >= 5
        fallbacks = [e for e in events if isinstance(e, ev.Fallback)]
        assert len(fallbacks) == calls
        assert {(f.from_model, f.to_model) for f in fallbacks} == {
            ("openai:test-model", "openai:fallback-model")}
        assert "500" in fallbacks[0].reason and "open" in fallbacks[-1].reason
        assert len([e for e in events if isinstance(e, ev.Retry)]) == 3  # the outline's
        breakers = [e for e in events if isinstance(e, ev.Breaker)]
        assert [(b.state, b.previous) for b in breakers] == [("open", "closed")]
        assert api.resilience_status(runtime)["fallbacks"] == calls
        rows = await WritingRecords(runtime.db).list(session.id)
        assert [Path(r.path) for r in rows] == [(workspace / "writing-plainly.md").resolve()]


async def test_openmanus_write_falls_back_too(tmp_path: Path, servers) -> None:
    """Outside a session (``openmanus write``): the configured fallbacks as well, the switch
    said in the progress lines."""
    primary, fallback, writer = servers
    settings = _settings(primary, fallback)
    progress: list[str] = []
    out = tmp_path / "plain.md"
    generated = await write_from_brief(
        settings, WritingRequirements(brief="Why and how to write plainly"), out,
        progress=progress.append)
    assert out.read_text() == generated.content
    assert primary.request_count == 4
    assert fallback.request_count == len(writer.tasks) >= 5
    switched = [p for p in progress if "using openai:fallback-model" in p]
    assert switched and switched[0].startswith("openai:test-model failed (")
