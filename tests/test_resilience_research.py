"""The research graph's model calls take the agent's path (issue 16): the model chain with its
circuit breakers and fallbacks. The real ``langchain-openai`` client against two loopback
servers, the primary answering 500 to everything, the real SQLite file and research graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAITestServer
from test_research_graph import DOCS, responder

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.research.store import ResearchResults
from openmanus_tui.runtime import api
from openmanus_tui.runtime.session import Runtime


class _NoWeb:
    """A web search backend that finds nothing (the default one would try the internet)."""

    name = "none"

    async def search(self, query: str, max_results: int) -> list[Any]:
        return []


@pytest.fixture(autouse=True)
def no_web_search(monkeypatch: pytest.MonkeyPatch) -> None:
    from openmanus_tui.tools import search_backends

    search_backends.register_backend("none", lambda **_: _NoWeb())
    monkeypatch.setenv("OPENMANUS_SEARCH__BACKEND", "none")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    for name, text in DOCS.items():
        (ws / name).write_text(text)
    return ws


@pytest.fixture
def servers():
    """(primary, fallback): the primary fails every request with HTTP 500."""
    with OpenAITestServer(responder) as primary, OpenAITestServer(
        responder, models=("fallback-model",)
    ) as fallback:
        primary.inject("status", status=500, times=10**6)
        yield primary, fallback


def _settings(primary: OpenAITestServer, fallback: OpenAITestServer, threshold: int = 5) -> Any:
    return load_settings({
        "approval": {"mode": "yolo"},
        "model": {"base_url": primary.base_url, "api_key": "sk-test", "name": "test-model",
                  "fallbacks": [{"model": "openai:fallback-model",
                                 "base_url": fallback.base_url, "api_key": "sk-fallback"}]},
        "resilience": {"failure_threshold": threshold, "recovery_timeout": 600},
    })


async def _research(runtime: Runtime, workspace: Path) -> tuple[Any, Any, list[ev.Event]]:
    events: list[ev.Event] = []
    session = await runtime.create_session(workspace=workspace, profile="research")
    outcome = await session.run("When did the harbour bridge open?", on_event=events.append,
                                research={"depth": "quick"})
    return outcome, await ResearchResults(runtime.db).latest(session.id), events


async def test_research_falls_back_when_the_primary_fails(workspace: Path, servers) -> None:
    primary, fallback = servers
    async with await Runtime.open(_settings(primary, fallback)) as runtime:
        outcome, result, events = await _research(runtime, workspace)
        assert outcome.status == "completed", outcome.reason
        assert "1932" in outcome.final_answer
        # The first call: the try and 3 retries fail, then the fallback answers. The second:
        # the 5th failure opens the breaker, its retry finds it open. Then no request at all.
        assert primary.request_count == 5
        calls = fallback.request_count
        assert calls >= 4  # plan, queries, extract, report
        fallbacks = [e for e in events if isinstance(e, ev.Fallback)]
        assert len(fallbacks) == calls
        assert {(f.from_model, f.to_model) for f in fallbacks} == {
            ("openai:test-model", "openai:fallback-model")}
        assert "500" in fallbacks[0].reason and "open" in fallbacks[-1].reason
        assert len([e for e in events if isinstance(e, ev.Retry)]) == 4  # the first call's
        breakers = [e for e in events if isinstance(e, ev.Breaker)]
        assert [(b.state, b.previous) for b in breakers] == [("open", "closed")]
        assert breakers[0].name.startswith("model test-model@127.0.0.1:")
        # The fallback answered every call, and is named in the result.
        assert result.metadata["answered_by"] == {"openai:fallback-model": calls}
        status = api.resilience_status(runtime)
        assert status["fallbacks"] == calls
        assert {b["name"]: b["state"] for b in status["breakers"]}[breakers[0].name] == "open"


async def test_research_skips_a_primary_whose_breaker_is_open(
    workspace: Path, servers, tmp_path: Path
) -> None:
    """An agent run found the primary dead; the research run that follows, in the same
    runtime, does not knock on it: the breakers are the runtime's, shared by both graphs."""
    primary, fallback = servers
    async with await Runtime.open(_settings(primary, fallback, threshold=4)) as runtime:
        chat = await runtime.create_session(workspace=tmp_path / "chat")
        first = await chat.run("hello")
        assert first.status == "completed", first.reason
        # One step: the try and its 3 retries fail, which opens the breaker; the fallback
        # answers.
        assert primary.request_count == 4
        (state,) = [b for b in api.resilience_status(runtime)["breakers"]
                    if b["name"].startswith("model test-model@")]
        assert state["state"] == "open"
        before = fallback.request_count

        outcome, result, events = await _research(runtime, workspace)
        assert outcome.status == "completed", outcome.reason
        assert primary.request_count == 4  # not one request to the open primary
        calls = fallback.request_count - before
        assert calls >= 4
        fallbacks = [e for e in events if isinstance(e, ev.Fallback)]
        assert len(fallbacks) == calls and all("open" in f.reason for f in fallbacks)
        assert not [e for e in events if isinstance(e, ev.Retry | ev.Breaker)]
        assert result.metadata["answered_by"] == {"openai:fallback-model": calls}
