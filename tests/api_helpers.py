"""Helpers for the REST API tests: the real server (uvicorn) on a free loopback port in a
thread, scripted models written for a test, and the real ``langgraph-sdk`` client."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from openmanus_tui.config import load_settings
from openmanus_tui.service.app import create_app


class RunningServer:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread, app: Any) -> None:
        self.server = server
        self.thread = thread
        self.app = app
        sock = server.servers[0].sockets[0]
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> Any:
        return self.app.state.om

    def client(self, **kwargs: Any) -> Any:
        from langgraph_sdk import get_client

        kwargs.setdefault("api_key", None)
        return get_client(url=self.url, **kwargs)


@contextlib.contextmanager
def serve(overrides: dict[str, Any] | None = None, *, host: str = "127.0.0.1") -> Iterator[
    RunningServer
]:
    """The API server for ``load_settings(overrides)``; ``host`` is the address the app is
    told it serves (it listens on 127.0.0.1 whatever it is told)."""
    settings = load_settings(overrides or {})
    app = create_app(settings, host=host)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    # Waiting for the server thread to report that it listens (no fixed sleep).
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.005)
    try:
        yield RunningServer(server, thread, app)
    finally:
        server.should_exit = True
        thread.join(60)


def write_script(path: Path, steps: list[dict[str, Any]], final: str = "done: {last_result}",
                 token_delay: float = 0.0) -> str:
    """A scripted model (``models/scripted.py``) for one test; returns its spec."""
    path.write_text(json.dumps({"steps": steps, "final": final, "token_delay": token_delay}))
    return f"scripted:{path}"


def write_file_script(tmp_path: Path, name: str = "a.txt", content: str = "hi") -> str:
    return write_script(
        tmp_path / "write.json",
        [{"text": "I'll write the file.",
          "tool_calls": [{"name": "file_write", "args": {"path": name, "content": content}}]}],
    )


def slow_script(tmp_path: Path, words: int = 3000, delay: float = 0.01) -> str:
    """A model that streams ``words`` tokens ``delay`` s apart (a run to cancel)."""
    return write_script(
        tmp_path / "slow.json", [], final=" ".join(["word"] * words), token_delay=delay
    )


async def collect(stream: Any) -> list[tuple[str, Any]]:
    return [(part.event, part.data) async for part in stream]


def custom_types(parts: list[tuple[str, Any]]) -> list[str]:
    return [data["type"] for event, data in parts if event == "custom"]


# httpx's default timeout is 5 s: on a loaded 2-core machine the first /health (it probes the
# model endpoint, in the same process as the test) has taken longer. Not what a test is about.
HTTP_TIMEOUT = 60.0


def http_get(url: str, **kwargs: Any) -> Any:
    import httpx

    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    return httpx.get(url, **kwargs)


def http_post(url: str, **kwargs: Any) -> Any:
    import httpx

    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    return httpx.post(url, **kwargs)
