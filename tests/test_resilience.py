"""Circuit breakers and fallback models through the real paths (issue 16): the real
``langchain-openai`` client against two loopback servers, the primary answering 500 to
everything; purgatory's clock is driven by the test, so the recovery timeout passes exactly
when the test says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.errors import ConfigError
from openmanus_tui.resilience.breakers import stored_states
from openmanus_tui.runtime import api
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.tui.transcript import Transcript
from openmanus_tui.tui.widgets.inspector import inspect_block

RECOVERY = 30.0


@pytest.fixture
def fallback_server():
    script = [
        Reply(tool_calls=[ToolCallSpec("file_write", {"path": "a.txt", "content": "one"})]),
        Reply(tool_calls=[ToolCallSpec("file_read", {"path": "a.txt"})]),
        Reply(text="done by the fallback"),
    ]
    with OpenAITestServer(script, models=("fallback-model",)) as server:
        yield server


def _settings(fallback: OpenAITestServer, **extra):
    return load_settings({
        "approval": {"mode": "yolo"},
        "model": {"fallbacks": [{"model": "openai:fallback-model", "base_url": fallback.base_url,
                                  "api_key": "sk-fallback"}]},
        "resilience": {"failure_threshold": 5, "recovery_timeout": RECOVERY},
        **extra,
    })


async def _run(runtime: Runtime, workspace: Path, task: str) -> tuple[str, list[ev.Event]]:
    session = await runtime.create_session(workspace=workspace)
    seen: list[ev.Event] = []
    outcome = await session.run(task, on_event=seen.append)
    return outcome.final_answer or outcome.reason, seen


async def test_breaker_opens_fallback_finishes_and_probe_closes(
    llm_server: OpenAITestServer, fallback_server: OpenAITestServer, monkeypatch, tmp_path, clock
):
    use_server(monkeypatch, llm_server)
    llm_server.inject("status", status=500, times=10**6)
    workspace = tmp_path / "ws"
    async with await Runtime.open(_settings(fallback_server)) as runtime:
        answer, seen = await _run(runtime, workspace, "write and read a file")
        assert answer == "done by the fallback"
        # Step 1: the first try and 3 retries fail (4 failures), then the fallback answers.
        # Step 2: the 5th failure opens the breaker; the retry finds it open: the fallback.
        # Step 3: open, so no request at all reaches the primary.
        assert llm_server.request_count == 5
        assert fallback_server.request_count == 3
        headers = {k.lower(): v for k, v in fallback_server.records[0].headers.items()}
        assert headers["authorization"] == "Bearer sk-fallback"
        opened = [e for e in seen if isinstance(e, ev.Breaker)]
        assert [(e.state, e.previous) for e in opened] == [("open", "closed")]
        assert opened[0].name.startswith("model test-model@127.0.0.1:")
        assert "500" in opened[0].error
        fallbacks = [e for e in seen if isinstance(e, ev.Fallback)]
        assert len(fallbacks) == 3
        assert {(f.from_model, f.to_model) for f in fallbacks} == {
            ("openai:test-model", "openai:fallback-model")}
        assert "open" in fallbacks[-1].reason
        usages = [e for e in seen if isinstance(e, ev.Usage)]
        assert [(u.model, u.fallback) for u in usages] == [("openai:fallback-model", True)] * 3
        # What /health, /metrics, the status line and doctor read.
        status = api.resilience_status(runtime)
        states = {b["name"]: b["state"] for b in status["breakers"]}
        assert states == {opened[0].name: "open",
                          f"model fallback-model@127.0.0.1:{fallback_server.port}": "closed"}
        assert status["answers"] == {"openai:fallback-model": 3}
        assert (status["fallbacks"], status["model_cache_hits"]) == (3, 0)
        (stored,) = stored_states(runtime.settings.db_path)
        assert stored.state == "open"
        # Which model answered is in the exports and the inspector.
        session = (await runtime.list_sessions())[0]
        doc = await api.export_document(await runtime.open_session(session.id))
        markdown = api.render_export(doc, "md")
        assert markdown.count("answered by the fallback openai:fallback-model") == 3
        assert f"circuit breaker {opened[0].name} opened after 5 failures" in markdown, markdown
        assert "fell back from openai:test-model to openai:fallback-model" in markdown
        assert "answered by the fallback openai:fallback-model" in api.render_export(doc, "html")
        transcript = Transcript()
        for event in seen:
            transcript.apply(event)
        block = next(b for b in transcript.blocks if b.call_id)
        call = inspect_block(transcript, block.key)["model_call"]
        assert (call["model"], call["fallback"], call["cached"]) == (
            "openai:fallback-model", True, False)

        # Still open: a new run goes straight to the fallback.
        clock.t += RECOVERY - 1
        answer, seen = await _run(runtime, tmp_path / "ws2", "again")
        assert answer == "done by the fallback"
        assert llm_server.request_count == 5
        assert not [e for e in seen if isinstance(e, ev.Breaker)]

        # The recovery timeout passes and the primary is back: the next call is a probe.
        clock.t += 2
        llm_server.clear_faults()
        llm_server.set_responder([Reply(text="the primary again")])
        answer, seen = await _run(runtime, tmp_path / "ws3", "third")
        assert answer == "the primary again"
        assert llm_server.request_count == 6
        changes = [(e.previous, e.state) for e in seen if isinstance(e, ev.Breaker)]
        assert changes == [("open", "half_open"), ("half_open", "closed")]
        usage = next(e for e in seen if isinstance(e, ev.Usage))
        assert (usage.model, usage.fallback) == ("openai:test-model", False)
        states = {b["name"]: b["state"] for b in api.resilience_status(runtime)["breakers"]}
        assert states[opened[0].name] == "closed"
    assert [s.state for s in stored_states(runtime.settings.db_path)] == ["closed"]


async def test_a_failed_probe_opens_the_breaker_again(
    llm_server: OpenAITestServer, fallback_server: OpenAITestServer, monkeypatch, tmp_path, clock
):
    use_server(monkeypatch, llm_server)
    llm_server.inject("status", status=503, times=10**6)
    async with await Runtime.open(_settings(
        fallback_server, resilience={"failure_threshold": 2, "recovery_timeout": RECOVERY},
    )) as runtime:
        await _run(runtime, tmp_path / "ws", "one")
        assert llm_server.request_count == 2  # the threshold, then open
        clock.t += RECOVERY + 1
        answer, seen = await _run(runtime, tmp_path / "ws2", "two")
        assert answer == "done by the fallback"
        assert llm_server.request_count == 3  # one probe, which failed
        changes = [(e.previous, e.state) for e in seen if isinstance(e, ev.Breaker)]
        assert changes == [("open", "half_open"), ("half_open", "open")]


async def test_open_breaker_survives_a_restart(
    llm_server: OpenAITestServer, fallback_server: OpenAITestServer, monkeypatch, tmp_path, clock
):
    """Another process (a new `openmanus run`) does not knock on the dead endpoint again."""
    use_server(monkeypatch, llm_server)
    llm_server.inject("status", status=500, times=10**6)
    settings = _settings(fallback_server)
    async with await Runtime.open(settings) as runtime:
        await _run(runtime, tmp_path / "ws", "one")
    count = llm_server.request_count
    async with await Runtime.open(settings) as runtime:
        answer, _ = await _run(runtime, tmp_path / "ws2", "two")
        assert answer == "done by the fallback"
        assert llm_server.request_count == count


@pytest.mark.parametrize("status", [401, 404])
async def test_permanent_errors_are_reported_not_fallen_back_from(
    llm_server: OpenAITestServer, fallback_server: OpenAITestServer, monkeypatch, tmp_path,
    status,
):
    use_server(monkeypatch, llm_server)
    llm_server.inject("status", status=status, times=10**6)
    async with await Runtime.open(_settings(fallback_server)) as runtime:
        _, seen = await _run(runtime, tmp_path / "ws", "one")
    assert fallback_server.request_count == 0
    assert llm_server.request_count == 1  # no retries either
    (error,) = [e for e in seen if isinstance(e, ev.Error)]
    assert error.error_class == "permanent" and str(status) in error.message
    assert not [e for e in seen if isinstance(e, ev.Fallback | ev.Breaker)]


def test_fallback_specs_are_validated_and_never_get_the_primary_key(monkeypatch):
    from openmanus_tui.models.factory import make_chain

    monkeypatch.setenv("OPENAI_API_KEY", "sk-primary")
    monkeypatch.setenv("GEMINI_KEY", "sk-gemini")
    settings = load_settings({"model": {"fallbacks": [
        "openai:gpt-4.1-nano",
        "openai:gemini-2.5-flash@https://generativelanguage.googleapis.com/v1beta/openai/",
        {"model": "openai:gemini-2.5-pro", "base_url": "https://example.invalid/v1",
         "api_key_env": "GEMINI_KEY"},
    ]}})
    chain = make_chain(settings)
    assert [e.spec for e in chain] == [
        "openai:gpt-4.1-mini", "openai:gpt-4.1-nano", "openai:gemini-2.5-flash",
        "openai:gemini-2.5-pro",
    ]
    keys = [e.model.openai_api_key.get_secret_value() for e in chain]
    assert keys == ["sk-primary", "sk-primary", "not-needed", "sk-gemini"]
    assert chain[2].info.context_window == 1_048_576  # its own limits, not the primary's
    with pytest.raises(ConfigError, match=r"model\.fallbacks.*not a model spec"):
        load_settings({"model": {"fallbacks": ["gpt-4.1-nano"]}})


async def test_new_limits_apply_to_existing_breakers(tmp_path, clock):
    from openmanus_tui.errors import CircuitOpen

    settings = load_settings({"resilience": {"failure_threshold": 3}})
    async with await Runtime.open(settings) as runtime:
        async def boom():
            raise ConnectionError("down")

        for _ in range(2):
            with pytest.raises(ConnectionError):
                await runtime.breakers.call("svc", boom)
        runtime.settings.resilience.failure_threshold = 2
        runtime.settings.resilience.recovery_timeout = 5
        api.apply_resilience_settings(runtime)
        with pytest.raises(ConnectionError):
            await runtime.breakers.call("svc", boom)  # the 3rd failure: over the new threshold
        with pytest.raises(CircuitOpen, match="next probe in 5 s"):
            await runtime.breakers.call("svc", boom)


async def test_one_probe_at_a_time(clock):
    import asyncio

    from openmanus_tui.errors import CircuitOpen
    from openmanus_tui.resilience.breakers import BreakerBoard

    board = BreakerBoard(failure_threshold=1, recovery_timeout=10)

    async def boom():
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await board.call("svc", boom)
    assert board.is_open("svc")
    clock.t += 11
    release = asyncio.Event()
    probed: list[str] = []

    async def slow_ok():
        probed.append("probe")
        await release.wait()
        return "up"

    probe = asyncio.create_task(board.call("svc", slow_ok))
    while not probed:
        await asyncio.sleep(0)
    with pytest.raises(CircuitOpen):
        await board.call("svc", slow_ok)  # refused while the probe runs
    release.set()
    assert await probe == "up"
    assert probed == ["probe"]
    assert await board.call("svc", slow_ok) == "up"  # closed again
    assert [s.state for s in board.states()] == ["closed"]
