"""A circuit breaker per web host (issue 16): ``web_fetch`` driven by the agent (the scripted
model issues the calls) in a real runtime whose source service reaches the fixture web server,
which counts the requests it answers. purgatory's clock is driven by the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Clock
from web_fixture import WebFixture

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.research.service import HostFailing
from openmanus_tui.resilience.breakers import stored_states
from openmanus_tui.runtime import api
from openmanus_tui.runtime.session import Runtime

THRESHOLD = 3
RECOVERY = 120.0
HOST = "solar-tips-hub.com"
BREAKER = f"fetch {HOST}"


def _fetches(tmp: Path, name: str, urls: list[str]) -> str:
    path = tmp / f"{name}.json"
    steps = [{"tool_calls": [{"name": "web_fetch", "args": {"url": u, "max_chars": 300}}]}
             for u in urls]
    path.write_text(json.dumps({"steps": steps, "final": "done"}))
    return f"scripted:{path}"


async def _run(runtime: Runtime, tmp: Path, name: str, urls: list[str]) -> list[ev.Event]:
    session = await runtime.create_session(model=_fetches(tmp, name, urls))
    seen: list[ev.Event] = []
    await session.run("read these pages", on_event=seen.append)
    return seen


def _results(seen: list[ev.Event]) -> list[ev.ToolFinished]:
    return [e for e in seen if isinstance(e, ev.ToolFinished)]


def _hits(web: WebFixture, host: str) -> int:
    return sum(1 for h, _ in web.requests if h == host)


def _fetch_breakers(runtime: Runtime) -> dict[str, str]:
    return {b["name"]: b["state"] for b in api.resilience_status(runtime)["breakers"]
            if b["name"].startswith("fetch ")}


async def _runtime(web: WebFixture) -> Runtime:
    runtime = await Runtime.open(load_settings({
        "approval": {"mode": "yolo"},
        "resilience": {"failure_threshold": THRESHOLD, "recovery_timeout": RECOVERY},
    }))
    # The runtime's own service is wired to its breakers; this one reaches the fixture.
    assert runtime.sources.breakers is runtime.breakers
    runtime.sources = web.service(runtime.db, breakers=runtime.breakers)
    return runtime


async def test_a_failing_host_opens_its_breaker_and_is_not_asked_again(
    tmp_path: Path, web: WebFixture, clock: Clock
) -> None:
    web.fail(HOST, 503)
    pages = [web.url(HOST, f"/page-{i}.html") for i in range(THRESHOLD + 1)]
    runtime = await _runtime(web)
    try:
        seen = await _run(runtime, tmp_path, "one", pages)
        results = _results(seen)
        assert [r.status for r in results] == ["error"] * (THRESHOLD + 1)
        for r in results[:THRESHOLD]:
            assert "answered HTTP 503" in r.result
        # The breaker opened on the THRESHOLD-th failure: the next call made no request.
        assert _hits(web, HOST) == THRESHOLD
        last = results[-1].result
        assert "\n" not in last
        assert last.startswith(f"Error: {HOST} is failing repeatedly")
        assert f"tries it again in {RECOVERY:.0f} s" in last and "HTTP 503" in last
        opened = [e for e in seen if isinstance(e, ev.Breaker)]
        assert [(e.name, e.previous, e.state) for e in opened] == [(BREAKER, "closed", "open")]
        assert opened[0].failures == THRESHOLD
        # What /health, /metrics, the status line and doctor read.
        assert _fetch_breakers(runtime) == {BREAKER: "open"}
        assert [(s.name, s.state) for s in stored_states(runtime.settings.db_path)
                if s.name.startswith("fetch ")] == [(BREAKER, "open")]
        # The research graph reads through the same service: refused at once too.
        with pytest.raises(HostFailing):
            await runtime.sources.fetch(web.url(HOST, "/other.html"))
        assert _hits(web, HOST) == THRESHOLD
        # Other hosts are not affected.
        ok = web.url("stats.energy-agency.gov", "/report-2024.html")
        assert [r.status for r in _results(await _run(runtime, tmp_path, "two", [ok]))] == ["ok"]
        # ... and a host that answers leaves no breaker behind (one per host would pile up).
        assert _fetch_breakers(runtime) == {BREAKER: "open"}

        # The recovery timeout passes and the host is back: the next call is the probe.
        clock.t += RECOVERY + 1
        web.heal(HOST)
        page = web.url(HOST, "/best-solar-facts.html")
        seen = await _run(runtime, tmp_path, "three", [page])
        assert _hits(web, HOST) == THRESHOLD + 1
        assert _results(seen)[0].status == "ok"
        assert [(e.previous, e.state) for e in seen if isinstance(e, ev.Breaker)] == [
            ("open", "half_open"), ("half_open", "closed")]
        assert _fetch_breakers(runtime) == {}  # healthy again: forgotten, in the database too
        assert not [s for s in stored_states(runtime.settings.db_path)
                    if s.name.startswith("fetch ")]
    finally:
        await runtime.close()


async def test_only_host_failures_count_not_a_404_or_a_refusal(
    tmp_path: Path, web: WebFixture
) -> None:
    """Failures in a row open the breaker: a 404 between them (the host answers) starts the
    count again, and a page the policy refuses never reaches the host nor its breaker."""
    for i in range(1, 6):
        web.fail(HOST, 503, path=f"/bad-{i}.html")
    bad = [web.url(HOST, f"/bad-{i}.html") for i in range(1, 6)]
    missing = web.url(HOST, "/missing.html")
    refused = [web.url("blocked.example.com", f"/{i}") for i in range(3)]
    runtime = await _runtime(web)
    runtime.sources = web.service(runtime.db, breakers=runtime.breakers,
                                  policy=web.policy(blocked_domains=["blocked.example.com"]))
    try:
        urls = [bad[0], bad[1], missing, *refused, bad[2], bad[3]]
        seen = await _run(runtime, tmp_path, "mixed", urls)
        results = [r.result for r in _results(seen)]
        assert "answered HTTP 404" in results[2]
        assert all("blocked" in r for r in results[3:6])
        assert all("answered HTTP 503" in r for r in results[:2] + results[6:])
        assert _hits(web, HOST) == 5  # every one asked: never 3 failures in a row
        assert _hits(web, "blocked.example.com") == 0
        assert not [e for e in seen if isinstance(e, ev.Breaker)]
        # The third failure in a row opens it; the next call is not made.
        seen = await _run(runtime, tmp_path, "more", [bad[4], missing])
        assert _hits(web, HOST) == 6
        assert [(e.name, e.state) for e in seen if isinstance(e, ev.Breaker)] == [
            (BREAKER, "open")]
        assert "is failing repeatedly" in _results(seen)[-1].result
    finally:
        await runtime.close()
