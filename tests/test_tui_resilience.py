"""The workbench shows what the breakers do (issue 16): the status line names an open breaker,
the Tools tab lists it with the cache hit rates. Real app, real runtime, the real
``langchain-openai`` client against two loopback servers (the primary answers 500)."""

from __future__ import annotations

import pytest
from conftest import use_server
from openai_server import OpenAITestServer, Reply
from tui_helpers import make_app, send, wait_for

from openmanus_tui.runtime.session import AgentSession
from openmanus_tui.tui.widgets.status import StatusLine
from openmanus_tui.tui.widgets.stream import StreamView
from openmanus_tui.tui.widgets.tools_pane import ToolsTable


@pytest.fixture(autouse=True)
def _fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AgentSession, "isolation", lambda self: "L2")


async def test_status_line_and_tools_tab_show_an_open_breaker(
    llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_server(monkeypatch, llm_server)
    llm_server.inject("status", status=500, times=10**6)
    with OpenAITestServer([Reply(text="answered by the fallback")],
                          models=("fallback-model",)) as fallback:
        app = make_app(
            approval={"mode": "yolo"},
            model={"max_retries": 1, "fallbacks": [
                {"model": "openai:fallback-model", "base_url": fallback.base_url}]},
            resilience={"failure_threshold": 2},
        )
        async with app.run_test(size=(150, 40)) as pilot:
            await app.ready.wait()
            assert app.status.breakers == ""
            await send(pilot, "hello")
            await wait_for(pilot, lambda: not app.run_in_progress()
                           and app.status.state == "completed")
            assert llm_server.request_count == 2 and fallback.request_count == 1
            name = f"model test-model@127.0.0.1:{llm_server.port}"
            assert app.status.breakers == f"⚡ {name} OPEN"
            line = str(app.query_one(StatusLine).render())
            assert f"⚡ {name} OPEN" in line
            notices = [b.text for b in app.query_one(StreamView).transcript.blocks
                       if b.kind == "notice"]
            assert any(t.startswith(f"⚡ Circuit breaker {name} opened after 2 failures")
                       for t in notices)
            assert any("the step goes to openai:fallback-model" in t for t in notices)
            app.query_one("#panel").active = "tab-tools"
            await wait_for(pilot, lambda: bool(app.query(ToolsTable)) and
                           app.query_one(ToolsTable).row_count > 0)
            await wait_for(pilot, lambda: name in str(app.query_one("#breakers").render()))
            row = app.query_one(ToolsTable).get_row("search_info")
            assert row[6] == "0"  # cache hits: a read-only network tool, not called yet
            assert app.query_one(ToolsTable).get_row("file_write")[6] == "–"
