"""The research graph over the web: the loopback fixture web server and its corpus
(tests/web_fixture.py) through the real sources service (network policy, extraction, store,
registry), a search backend that returns corpus pages, and the real langchain-openai client
against the loopback model server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAITestServer, Reply
from web_fixture import WebFixture

from openmanus_tui import events as ev
from openmanus_tui.agent.approval import Decision
from openmanus_tui.config import load_settings
from openmanus_tui.research.prompts import stage_of
from openmanus_tui.research.store import ResearchResults
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.tools import search_backends
from openmanus_tui.tools.search_backends import SearchHit

QUOTES = {
    "energy-agency.gov": "Global installed solar photovoltaic capacity grew by 24% in 2023",
    "dailyclarion.com": "Solar capacity around the world grew by 32% in 2023",
    "solar-tips-hub.com": "Solar capacity grew by like 50% last year",
}


def responder(body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    stage = stage_of(messages[0]["content"])
    user = messages[-1]["content"]
    if stage == "plan":
        return Reply(text=json.dumps({"sub_questions": ["How much did solar capacity grow?"]}))
    if stage == "queries":
        return Reply(text=json.dumps({"queries": ["solar capacity growth 2023"]}))
    if stage == "extract":
        location = re.search(r"^Source: .* \((\S+)\)$", user, re.M).group(1)  # type: ignore[union-attr]
        found = [{"claim": q + ".", "quote": q, "relevance": 0.9}
                 for domain, q in QUOTES.items() if domain in location]
        return Reply(text=json.dumps({"findings": found}))
    if stage == "report":
        n = {d: int(m.group(1)) for d in QUOTES
             if (m := re.search(rf"^\[(\d+)\] .* — https://[\w.-]*{re.escape(d)}/", user, re.M))}
        agency = n["energy-agency.gov"]
        text = f"Global installed solar photovoltaic capacity grew by 24% in 2023 [{agency}]."
        if "dailyclarion.com" in n:
            text += (f" A newspaper said solar capacity around the world grew by 32% in 2023 "
                     f"[{n['dailyclarion.com']}].")
        return Reply(text=text)
    return Reply(text="{}")


@pytest.fixture
def fixture_search(web: WebFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    class Backend:
        name = "fixture"

        async def search(self, query: str, max_results: int) -> list[SearchHit]:
            pages = [("news.dailyclarion.com", "/solar-boom.html"),
                     ("solar-tips-hub.com", "/best-solar-facts.html"),
                     ("redirector.example.net", "/to-loopback")]
            return [SearchHit(title=host, url=web.url(host, path), snippet="", date=None,
                              source="fixture") for host, path in pages][:max_results]

    search_backends.register_backend("fixture", lambda **_: Backend())
    monkeypatch.setenv("OPENMANUS_SEARCH__BACKEND", "fixture")


async def _run(web: WebFixture, tmp_path: Path, mode: str, approver: Any = None) -> Any:
    with OpenAITestServer(responder) as server:
        settings = load_settings({
            "approval": {"mode": mode},
            "model": {"base_url": server.base_url, "api_key": "sk-test", "name": "test-model"},
        })
        events: list[ev.Event] = []
        async with await Runtime.open(settings) as runtime:
            runtime.sources = web.service(runtime.db)
            session = await runtime.create_session(workspace=tmp_path, profile="research")
            agency = web.url("stats.energy-agency.gov", "/report-2024.html")
            outcome = await session.run(
                "How much did solar capacity grow in 2023?", approver=approver,
                on_event=events.append, research={"reading_list": [agency], "depth": "quick"},
            )
            result = await ResearchResults(runtime.db).latest(session.id)
            registry = await runtime.sources.sources(session.id)
    return outcome, result, events, registry


async def test_web_research_cites_checked_sources_and_shows_the_contradiction(
    web: WebFixture, tmp_path: Path, fixture_search: None
) -> None:
    outcome, result, _, registry = await _run(web, tmp_path, "yolo")
    assert outcome.status == "completed", outcome.reason
    assert result.verification["ok"] and result.verification["citations"] == 2
    first = result.sources[0]
    assert first.from_reading_list and first.domain == "energy-agency.gov"
    assert first.published == "2024-03-05" and first.credibility and first.freshness is not None
    # The redirect to a private address was refused before anything was read from it.
    assert any("redirector.example.net" in s["id"] for s in result.metadata["skipped"])
    assert not any("127.0.0.1" in (r.url or "") for r in registry)
    # 24% (the agency) vs 32% (the newspaper): listed as a contradiction in the report.
    contradicted = [c for c in result.cross_references if c.status == "contradicted"]
    assert contradicted and set(contradicted[0].domains) >= {"energy-agency.gov",
                                                             "dailyclarion.com"}
    assert "## Contradictions" in outcome.final_answer and "32%" in outcome.final_answer
    cited = {r.domain for r in registry if r.cited_by}
    assert cited == {"energy-agency.gov", "dailyclarion.com"}
    # Each report number maps to the source's number in the session's registry.
    by_number = {r.number: r for r in registry}
    for source in result.sources:
        assert by_number[source.registry_number].key == source.location
    assert by_number[first.registry_number].cited_by == ["report [1]"]


async def test_web_access_asks_once_and_a_denial_keeps_to_the_reading_list(
    web: WebFixture, tmp_path: Path, fixture_search: None
) -> None:
    asked: list[ev.ApprovalRequested] = []

    async def deny(request: ev.ApprovalRequested) -> dict[str, Decision]:
        asked.append(request)
        return {c.call_id: Decision(decision="deny", reason="no web") for c in request.calls}

    outcome, result, events, _ = await _run(web, tmp_path, "auto", approver=deny)
    assert outcome.status == "completed", outcome.reason
    assert len(asked) == 1 and asked[0].calls[0].tool == "web_fetch"
    assert any(isinstance(e, ev.ApprovalDecided) and e.decision == "deny" for e in events)
    assert asked[0].calls[0].risk == "network"
    # Only the page the person named was read: no search hit was fetched.
    assert [s.domain for s in result.sources] == ["energy-agency.gov"]
    assert result.metadata["web_allowed"] is False
    assert not any("dailyclarion" in host for host, _ in web.requests)
