"""The ``web_fetch`` tool and ``search_info``'s policy screen, driven by the agent (the scripted
model issues the calls) in a real runtime whose source service reaches the fixture web server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from web_fixture import WebFixture

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime import api
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.tools.base import Risk, ToolContext, run_tool
from openmanus_tui.tools.web_fetch import WEB_FETCH


def script(tmp: Path, steps: list[dict[str, Any]]) -> str:
    path = tmp / "script.json"
    path.write_text(json.dumps({"steps": steps, "final": "{last_result}"}))
    return f"scripted:{path}"


async def run_calls(
    tmp: Path, web: WebFixture, calls: list[dict[str, Any]], **policy: Any
) -> tuple[list[ev.ToolFinished], Runtime, Any]:
    """Run one step per call; returns the finished tool events and the still-open runtime."""
    runtime = await Runtime.open(load_settings({"approval": {"mode": "yolo"}}))
    runtime.sources = web.service(runtime.db, policy=web.policy(**policy))
    seen: list[ev.Event] = []
    session = await runtime.create_session(
        model=script(tmp, [{"tool_calls": [c]} for c in calls])
    )
    await session.run("research solar", on_event=seen.append)
    return [e for e in seen if isinstance(e, ev.ToolFinished)], runtime, session


def test_spec() -> None:
    assert WEB_FETCH.risk is Risk.NETWORK and WEB_FETCH.tier == 1
    params = WEB_FETCH.openai_schema()["function"]["parameters"]
    assert params["required"] == ["url"]
    assert set(params["properties"]) == {"url", "max_chars", "offset"}


async def test_web_fetch_through_the_agent_registers_the_source(
    tmp_path: Path, web: WebFixture
) -> None:
    url = web.url("stats.energy-agency.gov", "/report-2024.html")
    calls = [
        {"name": "web_fetch", "args": {"url": url, "max_chars": 300}},
        {"name": "web_fetch", "args": {"url": url, "max_chars": 300, "offset": 300}},
    ]
    done, runtime, session = await run_calls(tmp_path, web, calls)
    try:
        first, second = done
        assert first.status == "ok" and first.truncated
        lines = first.result.splitlines()
        assert lines[0] == "[source 1] Renewables 2024: solar capacity statistics"
        assert lines[1] == f"URL: {url}"
        assert "author: Maria Okafor" in lines[2] and "published 2024-03-05" in lines[2]
        assert lines[3].startswith("Credibility: 1.00 (domain class: stats.energy-agency.gov")
        assert lines[4].startswith("Freshness: 0.") and "published 2024-03-05" in lines[4]
        assert "grew by 24%" in first.result
        assert f'web_fetch(url="{url}", offset=300)' in first.result
        assert "showing 300–600" in second.result
        assert web.requests.count(("stats.energy-agency.gov", "/report-2024.html")) == 1
        [record] = await api.session_sources(session)
        assert (record.number, record.title) == (1, lines[0].removeprefix("[source 1] "))
        excerpt = await api.source_excerpt(session, 1, chars=80)
        assert excerpt is not None and excerpt.endswith(" …") and len(excerpt) <= 82
        # a copy of the session takes its sources along
        copy = await api.copy_branch(session)
        assert [r.title for r in await api.session_sources(copy)] == [record.title]
        await runtime.delete_session(copy.id)
        # deleting the session deletes its sources and the page text nobody else uses
        other = await runtime.create_session(model="scripted:demo")
        news = await runtime.sources.fetch(
            web.url("news.dailyclarion.com", "/solar-boom.html"), session_id=other.id
        )
        await runtime.delete_session(session.id)
        assert await runtime.sources.sources(session.id) == []
        assert await runtime.sources.text(record) is None
        assert await runtime.sources.text(news.record) is not None  # still another's source
    finally:
        await runtime.close()


async def test_refused_fetches_reach_the_model_as_one_line(
    tmp_path: Path, web: WebFixture
) -> None:
    calls = [
        {"name": "web_fetch", "args": {"url": web.url("redirector.example.net", "/to-loopback")}},
        {"name": "web_fetch", "args": {"url": web.url("blocked.example.com", "/")}},
    ]
    done, runtime, session = await run_calls(
        tmp_path, web, calls, blocked_domains=["blocked.example.com"]
    )
    try:
        loopback, blocked = done
        assert loopback.status == "error" and blocked.status == "error"
        assert loopback.result.startswith("Error: refused http://127.0.0.1:")
        assert "loopback" in loopback.result and "SECRET" not in loopback.result
        assert blocked.result.startswith("Error: refused https://blocked.example.com/")
        assert "\n" not in loopback.result + blocked.result
        assert await api.session_sources(session) == []
    finally:
        await runtime.close()


async def test_search_info_hits_pass_the_policy_and_become_sources(
    tmp_path: Path, web: WebFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = [
        {"title": "Agency", "url": web.url("stats.energy-agency.gov", "/report-2024.html"),
         "content": "grew by 24%", "publishedDate": "2024-03-05T00:00:00"},
        {"title": "Blocked", "url": "https://ads.blocked.example.com/x", "content": "spam"},
        {"title": "Intranet", "url": "http://10.0.0.8/wiki", "content": "internal"},
        {"title": "News", "url": web.url("news.dailyclarion.com", "/solar-boom.html"),
         "content": "grew by 32%"},
    ]  # fmt: skip
    web.serve("127.0.0.1", "/search", json.dumps({"results": results}).encode(), "application/json")
    monkeypatch.setenv("OPENMANUS_SEARCH__BACKEND", "searxng")
    monkeypatch.setenv("OPENMANUS_SEARCH__BASE_URL", f"http://127.0.0.1:{web.port}")
    calls = [
        {"name": "search_info", "args": {"query": "solar growth", "source": "web"}},
        {"name": "web_fetch", "args": {"url": results[3]["url"]}},
    ]
    done, runtime, session = await run_calls(
        tmp_path, web, calls, blocked_domains=["blocked.example.com"]
    )
    try:
        search, fetch = done
        assert "Agency" in search.result and "News" in search.result
        assert "spam" not in search.result and "internal" not in search.result
        note = search.result.splitlines()[0]
        assert note.startswith("Note: 2 web results left out by the network policy (refused")
        assert fetch.result.startswith("[source 2] Solar boom")  # the search hit's number
        records = await api.session_sources(session)
        assert [(r.number, r.fetched is not None) for r in records] == [(1, False), (2, True)]
        assert records[1].snippets[0]["snippet"] == "grew by 32%"
    finally:
        await runtime.close()


async def test_search_info_without_a_source_service_still_applies_the_policy(
    tmp_path: Path, web: WebFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = [
        {"title": "Blocked", "url": "https://blocked.example.com/", "content": "spam"},
        {"title": "Fine", "url": "https://example.org/", "content": "fine"},
    ]
    web.serve("127.0.0.1", "/search", json.dumps({"results": results}).encode(), "application/json")
    monkeypatch.setenv("OPENMANUS_SEARCH__BACKEND", "searxng")
    monkeypatch.setenv("OPENMANUS_SEARCH__BASE_URL", f"http://127.0.0.1:{web.port}")
    monkeypatch.setenv("OPENMANUS_NETWORK__BLOCKED_DOMAINS", '["example.com"]')
    from openmanus_tui.tools.search import SEARCH_INFO

    result = await run_tool(
        SEARCH_INFO, ToolContext(workspace=tmp_path), {"query": "x", "source": "web"}
    )
    assert "Fine" in result.content
    assert "spam" not in result.content and len(result.data["refused"]) == 1


def test_an_always_rule_for_web_fetch_names_the_site() -> None:
    from openmanus_tui.runtime.api import RulePattern, suggest_pattern

    url = "https://docs.python.org/3/library/ssl.html"
    suggested = suggest_pattern("web_fetch", {"url": url})
    assert suggested == "web_fetch(https://docs.python.org/*)"
    pattern = RulePattern.parse(suggested)
    assert pattern.matches("web_fetch", {"url": "https://docs.python.org/3/whatsnew/"})
    assert not pattern.matches("web_fetch", {"url": "https://docs.python.org.evil.test/x"})
    assert not pattern.matches("web_fetch", {"url": "http://docs.python.org/3/"})
    assert suggest_pattern("web_fetch", {"url": "not a url"}) == "web_fetch"
