"""``openmanus serve --web`` must not leave workbench processes behind (issue 11).

The real command runs in a subprocess on 127.0.0.1 and a free port; a websocket client does
what the page's JavaScript does (connect, send the size, read frames). Each browser tab gets a
child ``openmanus`` process; these tests close the tab or stop the server at awkward moments
(during the child's start-up, when the agent stack is still being imported in a thread) and
watch the children with psutil: they must be gone within seconds, not minutes, and not spin.

Every wait is bounded, and a finalizer kills whatever is left, so a failure never leaks a
process into the rest of the suite.
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
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("textual_serve")
aiohttp = pytest.importorskip("aiohttp")
psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.slow

# A child told to go (tab closed, SIGTERM) must be gone within this. The fix promises < 2 s;
# the margin is for a loaded machine. Before the fix a child closed during start-up lived on
# until the agent stack's import (in a thread) had finished: 1.5 s on an idle machine, 4-6 s
# at 30-70% CPU on a busy one.
GONE_WITHIN = 2.5
# The busy machine, made reproducible: a ``sitecustomize`` on the children's PYTHONPATH makes
# that import take this much longer (a sleep, in the importing thread), so that a tab closed
# during it is closed during start-up on any machine.
SLOW_IMPORT_S = 8.0
SLOW_SITECUSTOMIZE = """
import os, sys, time

class SlowRuntimeImport:
    def find_spec(self, name, path=None, target=None):
        if name == "openmanus_tui.runtime.session":
            time.sleep(float(os.environ["OPENMANUS_TEST_SLOW_IMPORT"]))
        return None

sys.meta_path.insert(0, SlowRuntimeImport())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A running ``openmanus serve --web`` and every process it started, for the finalizer."""

    def __init__(self, tmp_path: Path, slow_import: bool = False) -> None:
        self.port = free_port()
        self.log = (tmp_path / "serve.log").open("w+")
        env = dict(os.environ)
        if slow_import:
            site = tmp_path / "slow-import"
            site.mkdir()
            (site / "sitecustomize.py").write_text(SLOW_SITECUSTOMIZE)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
            env["OPENMANUS_TEST_SLOW_IMPORT"] = str(SLOW_IMPORT_S)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "openmanus_tui", "serve", "--web", "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        self.seen: dict[int, psutil.Process] = {}
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, f"serve exited early: {self.output()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5) as r:
                    assert r.status == 200
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "the server did not answer in time"
                time.sleep(0.2)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def children(self) -> list[psutil.Process]:
        """The server's ``openmanus`` descendants (a shell wrapper counts too), remembered."""
        try:
            found = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            found = []
        for child in found:
            try:
                if "openmanus_tui" in " ".join(child.cmdline()):
                    self.seen[child.pid] = child
            except psutil.Error:
                pass
        return [c for c in found if c.pid in self.seen]

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for child in self.seen.values():
            try:
                child.kill()
            except psutil.Error:
                pass
        self.log.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def served_slowly(tmp_path: Path) -> Iterator[Served]:
    """A server whose children take SLOW_IMPORT_S longer to import the agent stack."""
    server = Served(tmp_path, slow_import=True)
    try:
        yield server
    finally:
        server.cleanup()


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                living.append(p)
        except psutil.NoSuchProcess:
            pass
    return living


def wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has exited; the ones still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while (living := alive(processes)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return living


def describe(processes: list[psutil.Process]) -> str:
    out = []
    for p in processes:
        try:
            out.append(f"pid {p.pid} {p.name()} cpu {p.cpu_percent(0.3):.0f}%")
        except psutil.Error:
            out.append(f"pid {p.pid} (gone meanwhile)")
    return ", ".join(out)


# Start-up as the browser sees it: the first frame (the sidebar's "Sessions") comes within a
# second or two; then the settings are read and the status line shows them ("approval ...");
# then the agent stack is imported in a thread, for seconds, before the status says "idle".
FIRST_FRAME = b"Sessions"
IMPORTING = b"approval"


async def open_tab(
    port: int, until: bytes = FIRST_FRAME
) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    """Connect like the page's JavaScript does and read frames until ``until`` shows."""
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(f"ws://127.0.0.1:{port}/ws?width=120&height=40")
    await ws.send_json(["resize", {"width": 120, "height": 40}])
    seen = b""
    deadline = asyncio.get_running_loop().time() + 60
    while until not in seen:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"no {until!r} in {len(seen)} bytes"
        msg = await ws.receive(timeout=left)
        assert msg.type == aiohttp.WSMsgType.BINARY, f"unexpected {msg.type}: {seen[-500:]!r}"
        seen += msg.data
    return http, ws


async def close_tab(http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
    await asyncio.wait_for(ws.close(), timeout=10)
    await http.close()


def wait_idle(processes: list[psutil.Process], timeout: float = 60) -> None:
    """Wait until the children stop using CPU: their start-up is over."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(p.cpu_percent(0.5) for p in alive(processes)) < 5:
            return
    raise AssertionError(f"the child never settled: {describe(processes)}")


def tab_closed_at(server: Served, until: bytes) -> None:
    async def scenario() -> list[psutil.Process]:
        http, ws = await open_tab(server.port, until)
        children = server.children()
        assert alive(children), "no openmanus child for the tab"
        await close_tab(http, ws)
        return children

    children = asyncio.run(scenario())
    left = wait_gone(children, GONE_WITHIN)
    assert not left, f"still running {GONE_WITHIN}s after the tab closed: {describe(left)}"
    assert server.proc.poll() is None  # the server itself keeps serving


def test_a_tab_closed_at_the_first_frame_ends_its_child(served: Served) -> None:
    tab_closed_at(served, FIRST_FRAME)


def test_a_tab_closed_during_startup_ends_its_child(served_slowly: Served) -> None:
    """Closed while the agent stack is being imported (in a thread): the bug's case."""
    tab_closed_at(served_slowly, IMPORTING)


def test_sigterm_ends_a_starting_child(served_slowly: Served) -> None:
    served = served_slowly

    async def scenario() -> list[psutil.Process]:
        http, ws = await open_tab(served.port, IMPORTING)
        children = served.children()
        for child in children:
            if "python" in child.name():
                child.terminate()
        left = wait_gone(children, GONE_WITHIN)
        await close_tab(http, ws)
        return left

    left = asyncio.run(scenario())
    assert not left, f"SIGTERM ignored for {GONE_WITHIN}s: {describe(left)}"


def test_a_tab_closed_after_startup_ends_its_child(served: Served) -> None:
    async def scenario() -> list[psutil.Process]:
        http, ws = await open_tab(served.port)
        children = served.children()
        await asyncio.to_thread(wait_idle, children)
        await close_tab(http, ws)
        return children

    children = asyncio.run(scenario())
    left = wait_gone(children, GONE_WITHIN)
    assert not left, f"still running {GONE_WITHIN}s after the tab closed: {describe(left)}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl+C"])
def test_stopping_the_server_leaves_no_child(served: Served, sig: signal.Signals) -> None:
    """The tab stays open (a browser left running) while the server is stopped."""

    async def scenario() -> list[psutil.Process]:
        http, _ws = await open_tab(served.port)
        children = served.children()
        served.proc.send_signal(sig)
        try:
            await asyncio.to_thread(served.proc.wait, 10)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the server ignored {sig.name} for 10 s with a tab open: "
                                 f"{served.output()}") from None
        finally:
            await http.close()
        return children

    children = asyncio.run(scenario())
    left = wait_gone(children, 1.0)  # the server waits for them before it exits
    assert not left, f"the server exited and left {describe(left)}"
    assert "Traceback" not in served.output()


def test_a_killed_server_leaves_no_child(served: Served) -> None:
    """SIGKILL gives the server no chance to clean up: each child sees its input end and
    goes, rather than running on as an orphan."""

    async def scenario() -> list[psutil.Process]:
        http, _ws = await open_tab(served.port)
        children = served.children()
        served.proc.kill()
        await asyncio.to_thread(served.proc.wait, 10)
        await http.close()
        return children

    children = asyncio.run(scenario())
    left = wait_gone(children, GONE_WITHIN + 1)
    assert not left, f"orphans after the server was killed: {describe(left)}"
