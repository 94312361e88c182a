"""Every tier of tools driven by the agent (the scripted model issues the calls), running in
the real sandbox: files, shell with a tier-2 utility, code with artifacts, search, MCP."""

from __future__ import annotations

import json
import shutil
import sys
import wave
from pathlib import Path
from typing import Any

import pytest

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import Runtime

ECHO_SERVER = str(Path(__file__).with_name("mcp_echo_server.py"))


def script(tmp: Path, steps: list[dict[str, Any]], final: str = "{last_result}") -> str:
    path = tmp / "script.json"
    path.write_text(json.dumps({"steps": steps, "final": final}))
    return f"scripted:{path}"


async def run_script(
    tmp: Path, steps: list[dict[str, Any]], **overrides: Any
) -> tuple[list[ev.Event], Any, Path]:
    settings = load_settings({"approval": {"mode": "yolo"}, **overrides})
    runtime = await Runtime.open(settings)
    seen: list[ev.Event] = []
    try:
        session = await runtime.create_session(model=script(tmp, steps))
        outcome = await session.run("go", on_event=seen.append)
    finally:
        await runtime.close()
    return seen, outcome, session.workspace


def finished(seen: list[ev.Event]) -> list[ev.ToolFinished]:
    return [e for e in seen if isinstance(e, ev.ToolFinished)]


async def test_markdown_to_pdf_through_shell(tmp_path: Path) -> None:
    markdown = (
        "# Quarterly report\n\n| item | value |\n| --- | --- |\n| apples | 42 |\n\n```\ncode\n```\n"
    )
    steps = [
        {"tool_calls": [{"name": "file_write", "args": {"path": "r.md", "content": markdown}}]},
        {
            "tool_calls": [
                {
                    "name": "shell_exec",
                    "args": {"command": "manus-md-to-pdf r.md r.pdf && ls r.pdf"},
                }
            ]
        },
    ]
    seen, outcome, ws = await run_script(tmp_path, steps)
    assert outcome.status == "completed"
    assert [e.status for e in finished(seen)] == ["ok", "ok"], finished(seen)[-1].result
    pdf = ws / "r.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "Quarterly report" in text and "apples" in text and "42" in text


async def test_code_exec_reports_artifacts(tmp_path: Path) -> None:
    code = (
        "import pandas as pd, matplotlib.pyplot as plt\n"
        "df = pd.DataFrame({'x': [1, 2, 3], 'y': [2, 4, 9]})\n"
        "df.to_csv('data.csv', index=False)\n"
        "df.plot(x='x', y='y'); plt.savefig('plot.png')\n"
        "print('rows', len(df))\n"
    )
    seen, outcome, ws = await run_script(
        tmp_path, [{"tool_calls": [{"name": "code_exec", "args": {"code": code, "timeout": 120}}]}]
    )
    result = finished(seen)[0]
    assert result.status == "ok", result.result
    assert "rows 3" in result.result
    assert sorted(result.artifacts) == ["data.csv", "plot.png"]
    assert (ws / "plot.png").read_bytes().startswith(b"\x89PNG")
    assert outcome.status == "completed"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
async def test_speech_to_text_through_shell(tmp_path: Path) -> None:
    import subprocess

    ws = tmp_path / "ws"
    ws.mkdir()
    subprocess.run(["espeak-ng", "-w", str(ws / "n.wav"), "two three four five"], check=True)
    with wave.open(str(ws / "n.wav")) as w:
        assert w.getnframes() > 0
    steps = [
        {
            "tool_calls": [
                {
                    "name": "shell_exec",
                    "args": {"command": "manus-speech-to-text n.wav", "timeout": 120},
                }
            ]
        }
    ]
    seen, _, _ = await run_script(tmp_path, steps, sandbox={"workspace": str(ws)})
    result = finished(seen)[0]
    assert result.status == "ok", result.result
    heard = result.result.lower()
    assert sum(word in heard for word in ("two", "three", "four", "five")) >= 3


async def test_mcp_tools_become_agent_tools(tmp_path: Path) -> None:
    from openmanus_tui.tools.mcp_trust import TrustStore
    from openmanus_tui.utilities.mcp_config import parse_mcp_config

    # stdio servers run in the sandbox (issue 12): the server script lives in the workspace
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(ECHO_SERVER, ws / "mcp_echo_server.py")
    servers = {
        "echo": {"command": sys.executable, "args": ["mcp_echo_server.py"]},
        "broken": {"command": str(tmp_path / "no-such-binary")},
    }
    store = TrustStore(load_settings().resolved_data_dir)
    for cfg in parse_mcp_config({"mcpServers": servers}).values():
        store.trust(cfg)
    steps = [
        {
            "tool_calls": [
                {"name": "mcp__echo__echo", "args": {"text": "hello over MCP"}},
                {"name": "mcp__echo__add", "args": {"a": 2, "b": 40}},
            ]
        }
    ]
    seen, outcome, _ = await run_script(
        tmp_path, steps, mcp={"servers": servers}, sandbox={"workspace": str(ws)}
    )
    assert outcome.status == "completed"
    results = finished(seen)
    assert [r.status for r in results] == ["ok", "ok"], [r.result for r in results]
    assert results[0].result == "hello over MCP" and "42" in results[1].result
    notices = [e.text for e in seen if isinstance(e, ev.Notice)]
    assert any("MCP server 'broken' failed to start" in n for n in notices)
    calls = [e for e in seen if isinstance(e, ev.ToolCall)]
    assert calls[0].risk == "execute"  # a local MCP server runs code: it asks in auto mode


async def test_search_info_fails_clearly_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OPENMANUS_SEARCH__BACKEND", "searxng")
    monkeypatch.setenv("OPENMANUS_SEARCH__BASE_URL", f"http://127.0.0.1:{port}")
    steps = [
        {"tool_calls": [{"name": "search_info", "args": {"query": "langgraph", "max_results": 3}}]}
    ]
    seen, outcome, _ = await run_script(tmp_path, steps)
    result = finished(seen)[0]
    assert "web search is unavailable" in result.result
    assert outcome.status == "completed"


async def test_min_isolation_refuses_to_run_below_it(tmp_path: Path) -> None:
    steps = [{"tool_calls": [{"name": "shell_exec", "args": {"command": "touch made-it"}}]}]
    seen, outcome, ws = await run_script(
        tmp_path, steps, sandbox={"level": "L0", "min_isolation": "L2"}
    )
    result = finished(seen)[0]
    assert result.status == "error"
    assert "below the required minimum L2" in result.result
    assert not (ws / "made-it").exists()
    assert outcome.status == "completed"


async def test_min_isolation_ask_asks_for_every_command_even_in_yolo(tmp_path: Path) -> None:
    from openmanus_tui.agent.approval import Decision

    settings = load_settings(
        {
            "approval": {"mode": "yolo"},
            "sandbox": {"level": "L0", "min_isolation": "L2", "below_min": "ask"},
        }
    )
    steps = [
        {
            "tool_calls": [
                {"name": "list_files", "args": {"path": "."}},
                {"name": "shell_exec", "args": {"command": "echo ran-at-L0"}},
            ]
        }
    ]
    asked: list[str] = []

    async def approver(request: ev.ApprovalRequested) -> dict[str, Decision]:
        asked.extend(c.tool for c in request.calls)
        return {c.call_id: Decision(decision="approve") for c in request.calls}

    runtime = await Runtime.open(settings)
    seen: list[ev.Event] = []
    try:
        session = await runtime.create_session(model=script(tmp_path, steps))
        await session.run("go", approver=approver, on_event=seen.append)
    finally:
        await runtime.close()
    assert asked == ["shell_exec"]
    shell = finished(seen)[1]
    assert shell.status == "ok" and shell.isolation == "L0" and "ran-at-L0" in shell.result


async def test_registry_records_stats_and_loads_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    from openmanus_tui.tools import base, builtin

    class FakeEntryPoint:
        def __init__(self, name: str, obj: Any) -> None:
            self.name, self.obj = name, obj

        def load(self) -> Any:
            if isinstance(self.obj, Exception):
                raise self.obj
            return self.obj

    plugin = base.ToolSpec(
        name="hello_plugin",
        description="say hello",
        args_model=builtin.AskHumanArgs,
        func=lambda ctx, args: _hello(args.question),
    )
    monkeypatch.setattr(
        base,
        "entry_points",
        lambda group: [
            FakeEntryPoint("good", lambda: [plugin]),
            FakeEntryPoint("bad", ImportError("boom")),
        ],
    )
    registry = builtin.build_registry()
    assert registry.get("hello_plugin") is plugin and plugin.source == "plugin:good"
    assert registry.load_errors == ["tool plugin 'bad': boom"]
    ctx = base.ToolContext(workspace=Path("."))
    result = await base.run_tool(plugin, ctx, {"question": "world"})
    assert result.content == "hello world"
    registry.record("hello_plugin", result.duration_ms, True)
    registry.record("hello_plugin", 10.0, False)
    stats = registry.stats["hello_plugin"]
    assert (stats.calls, stats.failures) == (2, 1) and stats.mean_ms >= 5.0


async def _hello(name: str) -> str:
    return f"hello {name}"


async def test_manus_mcp_cli_inside_the_sandbox(tmp_path: Path) -> None:
    """The agent writes a stdio MCP server and its config into the workspace, then calls it
    with ``manus-mcp-cli`` through ``shell_exec``: the server runs inside the sandbox too."""
    server_code = Path(ECHO_SERVER).read_text()
    config = {"mcpServers": {"echo": {"command": "python3", "args": ["echo_server.py"]}}}
    steps = [
        {
            "tool_calls": [
                {"name": "file_write", "args": {"path": "echo_server.py", "content": server_code}},
                {"name": "file_write", "args": {"path": "mcp.json", "content": json.dumps(config)}},
            ]
        },
        {
            "tool_calls": [
                {
                    "name": "shell_exec",
                    "args": {
                        "command": "manus-mcp-cli --config mcp.json tools echo && "
                        'manus-mcp-cli --config mcp.json call echo add \'{"a": 20, "b": 22}\'',
                        "timeout": 120,
                    },
                }
            ]
        },
    ]
    seen, outcome, _ = await run_script(tmp_path, steps)
    shell = finished(seen)[-1]
    assert shell.status == "ok", shell.result
    assert "echo" in shell.result and "add" in shell.result  # the tool listing
    assert "42" in shell.result
    assert outcome.status == "completed"
