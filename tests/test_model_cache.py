"""The model-response cache (issue 16): opt-in, exact match on the normalised request,
temperature 0 only by default; a hit is an event, costs nothing and sends no request. Real
``langchain-openai`` client against the loopback server; a live replay is the rerun."""

from __future__ import annotations

from pathlib import Path

from conftest import use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime import api
from openmanus_tui.runtime.session import Runtime

SCRIPT = [
    Reply(tool_calls=[ToolCallSpec("file_write", {"path": "a.txt", "content": "one"})]),
    Reply(tool_calls=[ToolCallSpec("file_read", {"path": "a.txt"})]),
    Reply(text="all done"),
]


def _settings(**cache):
    return load_settings({
        "approval": {"mode": "yolo"},
        "model": {"temperature": 0, "price_in_per_1m": 1000, "price_out_per_1m": 1000},
        "cache": {"model": True, **cache},
    })


async def test_live_replay_is_answered_from_the_cache(
    llm_server: OpenAITestServer, monkeypatch, tmp_path: Path
):
    use_server(monkeypatch, llm_server)
    llm_server.set_responder(SCRIPT)
    async with await Runtime.open(_settings()) as runtime:
        session = await runtime.create_session(workspace=tmp_path / "ws")
        first: list[ev.Event] = []
        outcome = await session.run("write then read", on_event=first.append)
        assert outcome.final_answer == "all done"
        assert llm_server.request_count == 3
        paid = next(e for e in first if isinstance(e, ev.RunFinished))
        assert paid.cost > 0
        assert not [e for e in first if isinstance(e, ev.CacheHit)]

        start = await api.live_replay_start(session)
        again: list[ev.Event] = []
        outcome = await session.history.retry_live(start, on_event=again.append)
        assert outcome.final_answer == "all done"
        assert llm_server.request_count == 3  # not one request more
        hits = [e for e in again if isinstance(e, ev.CacheHit)]
        assert [(h.cache, h.label) for h in hits] == [("model", "openai:test-model")] * 3
        usages = [e for e in again if isinstance(e, ev.Usage)]
        assert [(u.cached, u.cost, u.tokens_in) for u in usages] == [(True, 0.0, 0)] * 3
        finished = next(e for e in again if isinstance(e, ev.RunFinished))
        assert finished.cost == 0.0 and finished.steps == 3
        # The tools really ran again (file_write is never cached), in a new branch.
        assert [e.tool for e in again if isinstance(e, ev.ToolFinished)] == [
            "file_write", "file_read"]
        stats = await api.cache_stats(runtime)
        assert (stats["model"]["hits"], stats["model"]["misses"]) == (3, 3)
        assert stats["model"]["entries"] == 3

        removed = await api.clear_cache(runtime, "model")
        assert removed == {"model": 3}
        assert (await api.cache_stats(runtime))["model"]["entries"] == 0


async def test_a_changed_request_is_a_miss(
    llm_server: OpenAITestServer, monkeypatch, tmp_path: Path
):
    use_server(monkeypatch, llm_server)
    llm_server.set_responder(SCRIPT)
    async with await Runtime.open(_settings()) as runtime:
        session = await runtime.create_session(workspace=tmp_path / "ws")
        await session.run("write then read")
        other = await runtime.create_session(workspace=tmp_path / "ws2")
        await other.run("write then read, please")
    assert llm_server.request_count == 6


async def test_sampled_replies_are_not_cached_unless_asked(
    llm_server: OpenAITestServer, monkeypatch, tmp_path: Path
):
    use_server(monkeypatch, llm_server)
    llm_server.set_responder(SCRIPT)
    settings = _settings()
    settings.model.temperature = 0.7
    async with await Runtime.open(settings) as runtime:
        for n in range(2):
            session = await runtime.create_session(workspace=tmp_path / f"ws{n}")
            await session.run("write then read")
        assert llm_server.request_count == 6
        stats = await api.cache_stats(runtime)
        assert stats["model"]["enabled"] is False and stats["model"]["entries"] == 0


async def test_off_by_default(llm_server: OpenAITestServer, monkeypatch, tmp_path: Path):
    use_server(monkeypatch, llm_server)
    llm_server.set_responder(SCRIPT)
    async with await Runtime.open(load_settings({"approval": {"mode": "yolo"},
                                                 "model": {"temperature": 0}})) as runtime:
        for n in range(2):
            session = await runtime.create_session(workspace=tmp_path / f"ws{n}")
            await session.run("write then read")
    assert llm_server.request_count == 6


async def test_deleting_a_session_deletes_its_cached_replies(
    llm_server: OpenAITestServer, monkeypatch, tmp_path: Path
):
    use_server(monkeypatch, llm_server)
    llm_server.set_responder(SCRIPT)
    async with await Runtime.open(_settings()) as runtime:
        session = await runtime.create_session(workspace=tmp_path / "ws")
        await session.run("write then read")
        assert (await api.cache_stats(runtime))["model"]["entries"] == 3
        await api.delete_session(runtime, session.id)
        assert (await api.cache_stats(runtime))["model"]["entries"] == 0


async def test_one_lookup_per_request_with_fallbacks(
    llm_server: OpenAITestServer, monkeypatch, tmp_path: Path
):
    """With a chain of models, each request counts once in the hit rates (not per model)."""
    use_server(monkeypatch, llm_server)
    llm_server.set_responder(SCRIPT)
    settings = _settings()
    settings.model.fallbacks = [{"model": "scripted:demo"}]
    async with await Runtime.open(settings) as runtime:
        for n in range(2):
            session = await runtime.create_session(workspace=tmp_path / f"ws{n}")
            await session.run("write then read")
        stats = await api.cache_stats(runtime)
    assert llm_server.request_count == 3
    assert stats["model"]["by_label"] == {"openai:test-model": {"hits": 3, "misses": 3}}


async def test_ttl_and_size_cap(tmp_path: Path, monkeypatch):
    import types

    from openmanus_tui.resilience import ttl_table
    from openmanus_tui.resilience.ttl_table import TtlTable
    from openmanus_tui.store.db import Database

    now = [1000.0]
    monkeypatch.setattr(ttl_table, "time", types.SimpleNamespace(time=lambda: now[0]))
    db = await Database.open(tmp_path / "t.db")
    try:
        table = TtlTable(db, "test_cache", ttl=60, max_bytes=1000)
        for key in "abc":
            now[0] += 1
            await table.put(key, "m", key * 400)  # the third put evicts the oldest, "a"
        assert await table.get("a", "m") is None
        now[0] += 1
        assert await table.get("b", "m") == "b" * 400  # used: "c" is now the least recent
        now[0] += 1
        await table.put("d", "m", "d" * 400)
        assert await table.get("c", "m") is None
        assert await table.get("b", "m") == "b" * 400
        assert await table.get("d", "m") == "d" * 400
        await table.put("huge", "m", "x" * 2000)  # larger than the whole cache: not kept
        assert await table.get("huge", "m") is None
        now[0] += 61  # past the TTL
        assert await table.get("b", "m") is None
        stats = await table.stats()
        assert (stats.entries, stats.hits) == (0, 3)  # "d" expired too (counted out, not deleted)
        assert await table.get("d", "m") is None
    finally:
        await db.close()
