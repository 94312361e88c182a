"""``search_info`` through ``run_tool``: a loopback SearXNG-style stand-in server, real workspace
files, the offline case (closed 127.0.0.1 ports, for both backends), and ``ddgs``'s result mapping
with a fake ``DDGS`` class. Nothing here leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import ddgs
import pytest
from ddgs.exceptions import DDGSException, TimeoutException

from openmanus_tui.errors import ConfigError
from openmanus_tui.tools import search_backends
from openmanus_tui.tools.base import Risk, ToolContext, ToolResult, run_tool
from openmanus_tui.tools.search import OUTPUT_CAP_CHARS, SEARCH_INFO, search_tools
from openmanus_tui.tools.search_backends import (
    ENV_BACKEND,
    ENV_BASE_URL,
    ENV_PROXY,
    DdgsBackend,
    SearchUnavailable,
    SearxngBackend,
    WorkspaceSearch,
    backend_from_env,
    make_backend,
)

# --- the loopback stand-in -----------------------------------------------------------------


@dataclass
class StandIn:
    """A SearXNG-like server on 127.0.0.1; ``script`` holds canned answers used first."""

    base_url: str = ""
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    script: list[tuple[int, str]] = field(default_factory=list)  # (status, body)
    count: int = 8  # results in the default answer
    pad: int = 0  # pad titles and snippets to this length (for the output cap test)
    delay: float = 0.0


def _default_answer(server: StandIn, query: str) -> str:
    results = []
    for i in range(1, server.count + 1):
        row: dict[str, Any] = {
            "title": f"Result {i} about {query}".ljust(server.pad, "x"),
            "url": f"https://example.test/{i}",
            "content": f"Snippet {i}\n  with   extra whitespace".ljust(server.pad, "y"),
            "engine": "standin",
        }
        if i % 2:  # odd results carry a date, even ones do not
            row["publishedDate"] = f"2024-01-0{i % 10}T00:00:00"
        results.append(row)
    results.insert(1, {"title": "no url here"})  # must be skipped, not crash
    return json.dumps({"query": query, "results": results})


@pytest.fixture
def standin() -> Iterator[StandIn]:
    state = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = parse_qs(parts.query)
            state.requests.append(params)
            if state.delay:
                time.sleep(state.delay)
            if parts.path != "/search":
                status, body = 404, "not found"
            elif state.script:
                status, body = state.script.pop(0)
            else:
                status, body = 200, _default_answer(state, params.get("q", [""])[0])
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except BrokenPipeError:
                pass  # the client gave up (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV_BACKEND, ENV_BASE_URL, ENV_PROXY, "DDGS_PROXY"):
        monkeypatch.delenv(name, raising=False)


def use_searxng(monkeypatch: pytest.MonkeyPatch, base_url: str) -> None:
    monkeypatch.setenv(ENV_BACKEND, "searxng")
    monkeypatch.setenv(ENV_BASE_URL, base_url)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


async def search(ws: Path, **args: Any) -> ToolResult:
    return await run_tool(SEARCH_INFO, ToolContext(workspace=ws, retry_backoff=0.05), args)


# --- the spec ------------------------------------------------------------------------------


def test_spec() -> None:
    assert search_tools() == [SEARCH_INFO]
    assert SEARCH_INFO.name == "search_info"
    assert list(SEARCH_INFO.args_model.model_fields) == ["query", "max_results", "source"]
    assert SEARCH_INFO.risk is Risk.NETWORK
    assert SEARCH_INFO.retries == 1
    assert 0 < SEARCH_INFO.timeout <= 20
    params = SEARCH_INFO.openai_schema()["function"]["parameters"]
    assert params["required"] == ["query"]
    assert params["properties"]["source"]["enum"] == ["auto", "web", "workspace"]


# --- web through the stand-in --------------------------------------------------------------


async def test_web_hits_are_parsed_and_listed(
    monkeypatch: pytest.MonkeyPatch, standin: StandIn, ws: Path
) -> None:
    use_searxng(monkeypatch, standin.base_url + "/")  # trailing slash tolerated
    result = await search(ws, query="  tide tables  ", max_results=3, source="web")
    assert result.status == "ok", result.content
    assert standin.requests == [{"q": ["tide tables"], "format": ["json"]}]
    hits = result.data["hits"]
    assert [h["url"] for h in hits] == [f"https://example.test/{i}" for i in (1, 2, 3)]
    assert hits[0] == {
        "title": "Result 1 about tide tables",
        "url": "https://example.test/1",
        "snippet": "Snippet 1 with extra whitespace",
        "date": "2024-01-01T00:00:00",
        "source": "searxng",
    }
    assert hits[1]["date"] is None
    assert result.data["backend"] == "searxng"
    lines = result.content.splitlines()
    assert lines[0] == "Results for 'tide tables':"
    assert lines[1] == "Web (searxng):"
    assert lines[2] == (
        "1. Result 1 about tide tables — https://example.test/1 (2024-01-01T00:00:00)"
    )
    assert lines[3] == "   Snippet 1 with extra whitespace"
    assert lines[4] == "2. Result 2 about tide tables — https://example.test/2"
    assert "4." not in result.content


@pytest.mark.parametrize("wanted", [1, 5, 8])
async def test_max_results_is_honoured(
    monkeypatch: pytest.MonkeyPatch, standin: StandIn, ws: Path, wanted: int
) -> None:
    use_searxng(monkeypatch, standin.base_url)
    standin.count = 8
    result = await search(ws, query="x", max_results=wanted, source="web")
    assert len(result.data["hits"]) == wanted
    assert f"{wanted}. " in result.content and f"{wanted + 1}. " not in result.content


async def test_auto_lists_web_then_workspace(
    monkeypatch: pytest.MonkeyPatch, standin: StandIn, ws: Path
) -> None:
    use_searxng(monkeypatch, standin.base_url)
    (ws / "notes.md").write_text("intro\nthe Tide comes in twice a day\n")
    result = await search(ws, query="tide", max_results=2)
    assert result.status == "ok", result.content
    assert [h["source"] for h in result.data["hits"]] == ["searxng", "searxng", "workspace"]
    assert "Workspace:\n3. notes.md (1 match) — notes.md:2" in result.content
    assert "   the Tide comes in twice a day" in result.content


async def test_transient_failure_is_retried_once(
    monkeypatch: pytest.MonkeyPatch, standin: StandIn, ws: Path
) -> None:
    use_searxng(monkeypatch, standin.base_url)
    standin.script = [(503, "busy")]
    result = await search(ws, query="q", source="web")
    assert result.status == "ok", result.content
    assert len(standin.requests) == 2

    standin.requests.clear()
    standin.script = [(503, "busy"), (502, "busy"), (500, "never reached")]
    result = await search(ws, query="q", source="web")
    assert result.status == "error"
    assert "web search is unavailable" in result.content.lower()
    assert "HTTP 502" in result.content
    assert len(standin.requests) == 2


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (403, "forbidden", "add 'json' to search.formats"),
        (200, "<html>not json</html>", "did not answer with JSON"),
        (200, '{"answers": []}', "without a 'results' list"),
        (404, "gone", "HTTP 404"),
    ],
)
async def test_bad_answers_give_clear_errors(
    monkeypatch: pytest.MonkeyPatch,
    standin: StandIn,
    ws: Path,
    status: int,
    body: str,
    expected: str,
) -> None:
    use_searxng(monkeypatch, standin.base_url)
    standin.script = [(status, body)]
    result = await search(ws, query="q", source="web")
    assert result.status == "error"
    assert result.content.startswith("Error: web search is unavailable: ")
    assert expected in result.content
    assert len(standin.requests) == 1  # permanent failures are not retried


async def test_slow_server_times_out(standin: StandIn) -> None:
    standin.delay = 1.0
    backend = SearxngBackend(standin.base_url, timeout=0.3)
    with pytest.raises(SearchUnavailable) as info:
        await backend.search("q", 3)
    assert info.value.transient
    assert "did not answer" in str(info.value)


async def test_output_is_capped(
    monkeypatch: pytest.MonkeyPatch, standin: StandIn, ws: Path
) -> None:
    use_searxng(monkeypatch, standin.base_url)
    standin.count = 20
    standin.pad = 400
    result = await search(ws, query="q", max_results=20, source="web")
    assert result.status == "ok"
    assert result.truncated
    assert len(result.content) <= OUTPUT_CAP_CHARS + 100
    assert "more results not shown" in result.content
    assert len(result.data["hits"]) == 20  # data keeps everything


# --- offline -------------------------------------------------------------------------------


async def test_offline_web_only_is_an_error(monkeypatch: pytest.MonkeyPatch, ws: Path) -> None:
    port = closed_port()
    use_searxng(monkeypatch, f"http://127.0.0.1:{port}")
    result = await search(ws, query="tide", source="web")
    assert result.status == "error"
    assert result.content.startswith("Error: web search is unavailable: cannot connect to ")
    assert f"127.0.0.1:{port}" in result.content
    assert "Traceback" not in result.content
    assert result.data["web_error"]


async def test_offline_auto_falls_back_to_the_workspace(
    monkeypatch: pytest.MonkeyPatch, ws: Path
) -> None:
    use_searxng(monkeypatch, f"http://127.0.0.1:{closed_port()}")
    (ws / "tides.txt").write_text("High tide at noon.\n")
    result = await search(ws, query="tide")
    assert result.status == "ok", result.content
    assert result.content.startswith("Note: web search is unavailable: cannot connect to ")
    assert "results below are from the workspace only" in result.content
    assert [h["url"] for h in result.data["hits"]] == ["tides.txt:1"]

    result = await search(ws, query="no-such-word-anywhere")
    assert result.status == "error"
    assert result.content.startswith("Error: web search is unavailable: cannot connect to ")
    assert "No results for 'no-such-word-anywhere' in the workspace." in result.content


async def test_offline_with_the_real_ddgs_library(
    monkeypatch: pytest.MonkeyPatch, ws: Path
) -> None:
    # ddgs sends every request through the proxy, so a closed loopback proxy is "no network".
    monkeypatch.setenv(ENV_PROXY, f"http://127.0.0.1:{closed_port()}")
    result = await search(ws, query="python", source="web")
    assert result.status == "error"
    assert "Error: web search is unavailable: ddgs: ConnectError: " in result.content
    assert "refused" in result.content.lower()


# --- ddgs mapping (fake DDGS class) --------------------------------------------------------


class FakeDDGS:
    instances: ClassVar[list[FakeDDGS]] = []
    rows: ClassVar[list[dict[str, Any]]] = []
    raises: ClassVar[list[Exception]] = []

    def __init__(self, proxy: str | None = None, timeout: int | None = 5, **kw: Any) -> None:
        self.proxy, self.timeout, self.calls = proxy, timeout, []
        FakeDDGS.instances.append(self)

    def __enter__(self) -> FakeDDGS:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def text(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
        self.calls.append((query, kwargs))
        if FakeDDGS.raises:
            raise FakeDDGS.raises.pop(0)
        return FakeDDGS.rows[: kwargs.get("max_results") or None]


@pytest.fixture
def fake_ddgs(monkeypatch: pytest.MonkeyPatch) -> type[FakeDDGS]:
    FakeDDGS.instances, FakeDDGS.rows, FakeDDGS.raises = [], [], []
    monkeypatch.setattr(ddgs, "DDGS", FakeDDGS)
    return FakeDDGS


async def test_ddgs_rows_are_mapped(
    monkeypatch: pytest.MonkeyPatch, fake_ddgs: type[FakeDDGS], ws: Path
) -> None:
    monkeypatch.setenv(ENV_PROXY, "socks5://127.0.0.1:9")
    fake_ddgs.rows = [
        {"title": "Python", "href": "https://python.org/", "body": "The  language\n home"},
        {"title": "", "href": "https://no-title.test/", "body": ""},
        {"title": "no link", "href": "", "body": "skipped"},
        {  # news-shaped
            "date": "2025-03-01T10:00:00+00:00",
            "title": "Release",
            "body": "3.14 is out",
            "url": "https://news.test/1",
            "image": "",
            "source": "News",
        },
    ]
    result = await search(ws, query="python", max_results=4, source="web")
    assert result.status == "ok", result.content
    assert result.data["backend"] == "ddgs"
    assert result.data["hits"] == [
        {"title": "Python", "url": "https://python.org/", "snippet": "The language home",
         "date": None, "source": "ddgs"},
        {"title": "https://no-title.test/", "url": "https://no-title.test/", "snippet": "",
         "date": None, "source": "ddgs"},
        {"title": "Release", "url": "https://news.test/1", "snippet": "3.14 is out",
         "date": "2025-03-01T10:00:00+00:00", "source": "ddgs"},
    ]  # fmt: skip
    (inst,) = fake_ddgs.instances
    assert inst.proxy == "socks5://127.0.0.1:9"
    assert inst.calls[0][0] == "python"
    assert inst.calls[0][1]["max_results"] == 4
    assert "3. Release — https://news.test/1 (2025-03-01T10:00:00+00:00)" in result.content


async def test_ddgs_errors(fake_ddgs: type[FakeDDGS], ws: Path) -> None:
    fake_ddgs.raises = [DDGSException("No results found.")]
    result = await search(ws, query="zzz", source="web")
    assert result.status == "ok"
    assert result.content == "No results for 'zzz' in the web."

    fake_ddgs.raises = [TimeoutException("timed out"), TimeoutException("timed out again")]
    result = await search(ws, query="zzz", source="web")
    assert result.status == "error"
    assert "timed out again" in result.content
    assert len(fake_ddgs.instances) == 3  # one call above, then two attempts

    fake_ddgs.raises = [TimeoutException("timed out")]
    fake_ddgs.rows = [{"title": "T", "href": "https://t.test/", "body": "b"}]
    result = await search(ws, query="zzz", source="web")
    assert result.status == "ok" and result.data["hits"][0]["url"] == "https://t.test/"

    fake_ddgs.raises = [ValueError("engine parser broke")]
    result = await search(ws, query="zzz", source="web")
    assert result.status == "error"
    assert "ddgs failed: ValueError: engine parser broke" in result.content


# --- workspace -----------------------------------------------------------------------------


async def test_workspace_search_ranks_and_skips(ws: Path, tmp_path: Path) -> None:
    (ws / "src").mkdir()
    (ws / "src" / "tide.py").write_text("# Tide tools\ndef tide_height(): ...\nx = 1\n")
    (ws / "README.md").write_text("About the moon.\nThe MOON pulls the tide.\n")
    (ws / "other.txt").write_text("tide\n")
    (ws / "nothing.txt").write_text("unrelated\n")
    (ws / ".git").mkdir()
    (ws / ".git" / "config").write_text("tide moon tide moon\n")
    (ws / "node_modules").mkdir()
    (ws / "node_modules" / "x.js").write_text("tide moon\n")
    (ws / "blob.bin").write_bytes(b"tide moon\x00\x01\x02")
    (ws / "big.log").write_text("tide moon\n" * 200_000)  # > 1 MiB
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("tide moon secret\n")
    os.symlink(outside, ws / "link")
    os.symlink(outside / "secret.txt", ws / "secret-link.txt")

    result = await search(ws, query="Moon TIDE", max_results=10, source="workspace")
    assert result.status == "ok", result.content
    hits = result.data["hits"]
    # Both terms beat one term; then more hits first; then path order.
    assert [h["url"] for h in hits] == ["README.md:2", "src/tide.py:1", "other.txt:1"]
    assert hits[0]["title"] == "README.md (3 matches)"
    assert hits[0]["snippet"] == "The MOON pulls the tide."
    assert hits[0]["source"] == "workspace"
    assert len(hits[0]["date"]) == 10 and hits[0]["date"][4] == "-"  # YYYY-MM-DD of mtime
    assert "secret" not in result.content
    assert result.data["backend"] is None  # the web was not consulted

    result = await search(ws, query="moon tide", max_results=1, source="workspace")
    assert [h["url"] for h in result.data["hits"]] == ["README.md:2"]


async def test_workspace_search_is_bounded(ws: Path) -> None:
    for i in range(30):
        (ws / f"f{i:02}.txt").write_text("needle\n")
    searcher = WorkspaceSearch(ws, max_files=10)
    hits = await searcher.search("needle", 50)
    assert len(hits) == 10
    assert searcher.stopped_early

    searcher = WorkspaceSearch(ws)
    assert len(await searcher.search("needle", 50)) == 30
    assert not searcher.stopped_early


async def test_workspace_no_match(ws: Path) -> None:
    (ws / "a.txt").write_text("hello\n")
    result = await search(ws, query="absent", source="workspace")
    assert result.status == "ok"
    assert result.content == "No results for 'absent' in the workspace."
    assert result.data["hits"] == []


# --- arguments and configuration -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"query": "   "}, "query is empty"),
        ({"query": ""}, "query is empty"),
        ({}, "query: Field required"),
        ({"query": "x", "max_results": 0}, "max_results"),
        ({"query": "x", "max_results": 500}, "max_results"),
        ({"query": "x", "source": "intranet"}, "source"),
    ],
)
async def test_bad_arguments(ws: Path, args: dict[str, Any], expected: str) -> None:
    result = await search(ws, **args)
    assert result.status == "error"
    assert result.content.startswith("Error: invalid arguments for search_info: ")
    assert expected in result.content
    assert "\n" not in result.content


async def test_misconfiguration_is_reported(monkeypatch: pytest.MonkeyPatch, ws: Path) -> None:
    monkeypatch.setenv(ENV_BACKEND, "altavista")
    result = await search(ws, query="q", source="web")
    assert result.status == "error"
    assert "search is misconfigured: unknown search backend 'altavista'" in result.content

    monkeypatch.setenv(ENV_BACKEND, "searxng")
    result = await search(ws, query="q", source="web")
    assert ENV_BASE_URL in result.content and result.status == "error"

    # The workspace still answers when the web part is misconfigured.
    (ws / "a.txt").write_text("q marks the spot\n")
    result = await search(ws, query="q")
    assert result.status == "ok"
    assert result.data["hits"][0]["url"] == "a.txt:1"


def test_backend_from_env() -> None:
    assert isinstance(backend_from_env({}), DdgsBackend)
    backend = backend_from_env(
        {ENV_BACKEND: " SearXNG ", ENV_BASE_URL: "http://127.0.0.1:1/", ENV_PROXY: "http://p:3"}
    )
    assert isinstance(backend, SearxngBackend)
    assert (backend.base_url, backend.proxy) == ("http://127.0.0.1:1", "http://p:3")
    with pytest.raises(ConfigError, match="must start with http"):
        make_backend("searxng", base_url="127.0.0.1:8888")


async def test_registered_backend_is_used_and_its_crash_contained(
    monkeypatch: pytest.MonkeyPatch, ws: Path
) -> None:
    class Broken:
        name = "broken"

        async def search(self, query: str, max_results: int) -> list[Any]:
            raise RuntimeError("bug in plugin")

    monkeypatch.setitem(search_backends.WEB_BACKENDS, "broken", lambda **kw: Broken())
    monkeypatch.setenv(ENV_BACKEND, "broken")
    (ws / "a.txt").write_text("plugin notes\n")
    result = await search(ws, query="plugin")
    assert result.status == "ok"
    assert result.content.startswith(
        "Note: web search is unavailable: broken failed: RuntimeError: bug in plugin;"
    )
    assert result.data["hits"][0]["url"] == "a.txt:1"


async def test_a_failing_backend_opens_its_breaker(
    monkeypatch: pytest.MonkeyPatch, standin: StandIn, ws: Path
) -> None:
    from openmanus_tui.resilience.breakers import BreakerBoard

    use_searxng(monkeypatch, standin.base_url)
    board = BreakerBoard(failure_threshold=2, recovery_timeout=60)
    ctx = ToolContext(workspace=ws, retry_backoff=0.01, breakers=board)
    standin.script = [(503, "busy")] * 5
    result = await run_tool(SEARCH_INFO, ctx, {"query": "q", "source": "web"})
    assert result.status == "error" and len(standin.requests) == 2  # the call and its retry
    assert board.is_open("search searxng")
    result = await run_tool(SEARCH_INFO, ctx, {"query": "q", "source": "web"})
    assert len(standin.requests) == 2  # not called while open, and not retried either
    assert "search searxng is not called: its circuit breaker is open" in result.content
