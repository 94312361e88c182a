"""Retries of read-only tools, the tool-result cache, ``sandbox.timeout`` as the default
command timeout and ``tools.max_file_mb`` (issue 16), through ``run_tool`` and the runtime."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec
from pydantic import BaseModel

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime import api
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.tools.base import Risk, ToolContext, ToolResult, ToolSpec, run_tool
from openmanus_tui.tools.builtin import build_registry
from openmanus_tui.tools.exec_tools import SHELL_EXEC
from openmanus_tui.tools.file_tools import file_tools


class LookupArgs(BaseModel):
    topic: str
    depth: int = 1


def flaky_spec(*, read_only: bool, risk: Risk, failures: int, calls: list[str]) -> ToolSpec:
    async def func(ctx: ToolContext, args: LookupArgs) -> ToolResult:
        calls.append(args.topic)
        if len(calls) <= failures:
            return ToolResult("Error: upstream busy (HTTP 503)", status="error", transient=True)
        return ToolResult(f"facts about {args.topic} (call {len(calls)})")

    return ToolSpec(
        name="lookup", description="Look a topic up.", args_model=LookupArgs, func=func,
        risk=risk, retries=2, read_only=read_only,
    )


async def test_read_only_network_tool_is_retried_with_backoff(tmp_path: Path):
    calls: list[str] = []
    spec = flaky_spec(read_only=True, risk=Risk.NETWORK, failures=2, calls=calls)
    result = await run_tool(spec, ToolContext(workspace=tmp_path, retry_backoff=0.001),
                            {"topic": "tides"})
    assert result.status == "ok" and result.content == "facts about tides (call 3)"
    assert result.data == {"retries": 2}
    assert len(calls) == 3


async def test_retries_end_with_the_last_failure(tmp_path: Path):
    calls: list[str] = []
    spec = flaky_spec(read_only=True, risk=Risk.NETWORK, failures=10, calls=calls)
    result = await run_tool(spec, ToolContext(workspace=tmp_path, retry_backoff=0.001),
                            {"topic": "tides"})
    assert result.status == "error" and "503" in result.content
    assert len(calls) == 3  # the call and its 2 retries


@pytest.mark.parametrize("risk", [Risk.WRITE, Risk.EXECUTE, Risk.NETWORK])
async def test_tools_with_side_effects_are_never_retried(tmp_path: Path, risk: Risk):
    calls: list[str] = []
    spec = flaky_spec(read_only=False, risk=risk, failures=1, calls=calls)
    assert spec.retries == 2 and spec.retry_limit == 0
    result = await run_tool(spec, ToolContext(workspace=tmp_path, retry_backoff=0.001),
                            {"topic": "x"})
    assert result.status == "error"
    assert len(calls) == 1


async def test_a_permanent_failure_is_not_retried(tmp_path: Path):
    calls: list[str] = []

    async def func(ctx: ToolContext, args: LookupArgs) -> ToolResult:
        calls.append(args.topic)
        return ToolResult("Error: no such topic", status="error")

    spec = ToolSpec(name="lookup", description="d", args_model=LookupArgs, func=func,
                    risk=Risk.NETWORK, retries=3, read_only=True)
    await run_tool(spec, ToolContext(workspace=tmp_path, retry_backoff=0.001), {"topic": "x"})
    assert calls == ["x"]


async def test_read_only_network_results_are_cached_across_sessions(
    llm_server: OpenAITestServer, monkeypatch, tmp_path: Path
):
    calls: list[str] = []
    spec = flaky_spec(read_only=True, risk=Risk.NETWORK, failures=0, calls=calls)
    registry = build_registry(plugins=False)
    registry.register(spec)
    use_server(monkeypatch, llm_server)
    # The same request spelled two ways: the default filled in, or given.
    llm_server.set_responder([
        Reply(tool_calls=[ToolCallSpec("lookup", {"topic": "tides"}),
                          ToolCallSpec("lookup", {"topic": "tides", "depth": 1})]),
        Reply(text="done"),
    ])
    settings = load_settings({"approval": {"mode": "yolo"}})
    async with await Runtime.open(settings, registry=registry) as runtime:
        session = await runtime.create_session(workspace=tmp_path / "ws")
        seen: list[ev.Event] = []
        await session.run("look it up", on_event=seen.append)
        session2 = await runtime.create_session(workspace=tmp_path / "ws2")
        await session2.run("look it up again", on_event=seen.append)
        stats = await api.cache_stats(runtime)
    assert calls == ["tides"]  # one real call; three answers from the cache
    hits = [e for e in seen if isinstance(e, ev.CacheHit)]
    assert [(h.cache, h.label) for h in hits] == [("tool", "lookup")] * 3
    finished = [e for e in seen if isinstance(e, ev.ToolFinished) and e.tool == "lookup"]
    assert [f.cached for f in finished] == [False, True, True, True]
    assert {f.result for f in finished} == {"facts about tides (call 1)"}
    assert registry.stats["lookup"].cache_hits == 3 and registry.stats["lookup"].calls == 4
    assert stats["tool"]["hits"] == 3 and stats["tool"]["misses"] == 1
    assert stats["tool"]["entries"] == 1


async def test_tools_with_side_effects_are_never_cached(
    llm_server: OpenAITestServer, monkeypatch, tmp_path: Path
):
    use_server(monkeypatch, llm_server)
    llm_server.set_responder([
        Reply(tool_calls=[ToolCallSpec("file_write", {"path": "a.txt", "content": "x"}),
                          ToolCallSpec("file_write", {"path": "a.txt", "content": "x"})]),
        Reply(text="done"),
    ])
    async with await Runtime.open(load_settings({"approval": {"mode": "yolo"}})) as runtime:
        session = await runtime.create_session(workspace=tmp_path / "ws")
        seen: list[ev.Event] = []
        await session.run("write twice", on_event=seen.append)
    assert not [e for e in seen if isinstance(e, ev.CacheHit)]
    results = [e.result for e in seen if isinstance(e, ev.ToolFinished)]
    assert results[0].startswith("Created") and results[1].startswith("Overwrote")


async def test_sandbox_timeout_is_the_default_command_timeout(tmp_path: Path):
    (tmp_path / "ws").mkdir()
    ctx = ToolContext(workspace=tmp_path / "ws", command_timeout=0.5)
    result = await run_tool(SHELL_EXEC, ctx, {"command": "sleep 5"})
    assert result.status == "timeout", result.content
    assert "timed out after 0.5 s" in result.content
    # The model's own timeout still wins.
    result = await run_tool(SHELL_EXEC, ctx, {"command": "echo hi", "timeout": 5})
    assert result.status == "ok"


async def test_file_write_is_capped(tmp_path: Path):
    file_write = next(s for s in file_tools() if s.name == "file_write")
    ctx = ToolContext(workspace=tmp_path, max_write_bytes=1024)
    result = await run_tool(file_write, ctx, {"path": "big.txt", "content": "é" * 513})
    assert result.status == "error"
    assert "1,026 bytes, over the 1,024-byte limit" in result.content
    assert "tools.max_file_mb" in result.content
    assert not (tmp_path / "big.txt").exists()
    result = await run_tool(file_write, ctx, {"path": "ok.txt", "content": "é" * 512})
    assert result.status == "ok"


def test_settings_reach_the_tools(monkeypatch):
    monkeypatch.setenv("OPENMANUS_SANDBOX__TIMEOUT", "7")
    monkeypatch.setenv("OPENMANUS_TOOLS__MAX_FILE_MB", "0.5")
    settings = load_settings()
    assert settings.sandbox.timeout == 7 and settings.tools.max_file_mb == 0.5


async def test_mcp_server_breaker_opens_on_timeouts_not_on_tool_errors():
    import sys

    from openmanus_tui.resilience.breakers import BreakerBoard
    from openmanus_tui.tools.mcp_tools import McpManager
    from openmanus_tui.utilities.mcp_config import parse_mcp_config

    echo = str(Path(__file__).with_name("mcp_echo_server.py"))
    servers = parse_mcp_config({"mcpServers": {"slow": {
        "command": sys.executable, "args": [echo], "timeout": 0.3}}})
    board = BreakerBoard(failure_threshold=2, recovery_timeout=60)
    changes = []

    async def listen(change):
        changes.append((change.name, change.new))

    board.listeners.append(listen)
    async with McpManager(servers, breakers=board) as manager:
        for _ in range(3):  # a tool's own error says nothing about the server's health
            failed = await manager.call_tool("slow", "fail", {"message": "no"})
            assert failed.status == "error" and "no" in failed.content
        assert not board.is_open("mcp slow")
        for _ in range(2):
            timed_out = await manager.call_tool("slow", "sleep", {"seconds": 0.5})
            assert timed_out.status == "timeout"
        assert changes == [("mcp slow", "open")]
        refused = await manager.call_tool("slow", "echo", {"text": "hi"})
        assert refused.status == "error"
        assert "mcp slow is not called: its circuit breaker is open" in refused.content
