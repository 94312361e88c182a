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
    import pymupdf

    with pymupdf.open(pdf) as doc:
        text = "".join(page.get_text() for page in doc)
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
    servers = {
        "echo": {"command": sys.executable, "args": [ECHO_SERVER]},
        "broken": {"command": str(tmp_path / "no-such-binary")},
    }
    steps = [
        {
            "tool_calls": [
                {"name": "mcp__echo__echo", "args": {"text": "hello over MCP"}},
                {"name": "mcp__echo__add", "args": {"a": 2, "b": 40}},
            ]
        }
    ]
    seen, outcome, _ = await run_script(tmp_path, steps, mcp={"servers": servers})
    assert outcome.status == "completed"
    results = finished(seen)
    assert [r.status for r in results] == ["ok", "ok"]
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
