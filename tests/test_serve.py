"""``openmanus serve --web``: the real command in a subprocess on 127.0.0.1 and a free port.

GET / must return textual-serve's HTML page pointing at this server's websocket; a websocket
client (what the page's JavaScript does) then gets the workbench itself, rendered by a child
``openmanus`` process. Every wait is bounded; the server is stopped with SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("textual_serve")
aiohttp = pytest.importorskip("aiohttp")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, deadline: float, proc: subprocess.Popen[str]) -> str:
    """GET ``url`` until it answers (the server takes a moment to start) or the deadline."""
    while True:
        assert proc.poll() is None, f"serve exited early: {proc.communicate()[1][-2000:]}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.status == 200
                return response.read().decode()
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, "the server did not answer in time"
            time.sleep(0.2)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


async def first_frame(url: str, wanted: bytes, timeout: float) -> bytes:
    """Open the app's websocket like the page does and collect output until ``wanted``."""
    seen = b""
    # One bound over all of it, connecting and closing included: a receive timeout alone once
    # let this wait for six minutes.
    async with asyncio.timeout(timeout + 15), aiohttp.ClientSession() as http, \
            http.ws_connect(url) as ws:
        await ws.send_json(["resize", {"width": 120, "height": 40}])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while wanted not in seen:
            left = deadline - loop.time()
            assert left > 0, f"no frame with {wanted!r} in {len(seen)} bytes"
            msg = await ws.receive(timeout=left)
            if msg.type == aiohttp.WSMsgType.BINARY:
                seen += msg.data
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                raise AssertionError(f"the app closed the websocket: {seen[-2000:]!r}")
    return seen


def test_serve_web_serves_the_page_and_the_app(isolated_env: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "openmanus_tui", "serve", "--web", "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    try:
        page = get(f"http://127.0.0.1:{port}/", time.monotonic() + 60, proc)
        assert "<html" in page.lower()
        assert f"ws://127.0.0.1:{port}/ws" in page
        assert "OpenManus" in page
        frame = asyncio.run(first_frame(f"ws://127.0.0.1:{port}/ws", b"Sessions", 60))
        assert b"Sessions" in frame
    finally:
        stop(proc)
    assert proc.returncode is not None


def test_serve_needs_web_and_a_valid_port(isolated_env: Path) -> None:
    no_web = subprocess.run([sys.executable, "-m", "openmanus_tui", "serve"],
                            capture_output=True, text=True, timeout=60)
    assert no_web.returncode == 2 and "--web" in no_web.stderr
    bad_port = subprocess.run(
        [sys.executable, "-m", "openmanus_tui", "serve", "--web", "--port", "70000"],
        capture_output=True, text=True, timeout=60,
    )
    assert bad_port.returncode == 2
    assert "--port must be between 1 and 65535" in bad_port.stderr
    assert "Traceback" not in bad_port.stderr
