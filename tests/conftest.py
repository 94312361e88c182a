"""Shared fixtures: an isolated config and data folder per test, the loopback model server, and
helpers to build a runtime or run the ``openmanus`` command the way a user would."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from openai_server import OpenAITestServer
from web_fixture import WebFixture

_SCRUB_PREFIXES = ("OPENAI_", "OPENMANUS_")

# Under pytest-xdist each worker's sandboxed commands run as a uid of their own. As root, an L0/L1
# sandbox kills every leftover process of its uid after a command (sandbox/core.py ``_sweep``),
# which would also kill the commands another worker is running at that moment.
# Test runs started side by side on one machine (several checkouts) keep apart the same way:
# OPENMANUS_TEST_UID_SLOT=N moves a run's ids 40 further down per slot.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_SLOT = int(os.environ.get("OPENMANUS_TEST_UID_SLOT", "0") or 0)
_OFFSET = 40 * _SLOT
if _WORKER.startswith("gw") and _WORKER[2:].isdigit():
    # two ids a worker: its commands and, one below, its sandboxed MCP servers (probe.server_ids)
    _OFFSET += 2 * (1 + int(_WORKER[2:]))
# Named in the environment (isolated_env keeps it), so the CLI subprocesses a test starts use
# their worker's id too.
_SANDBOX_ID = str(59999 - _OFFSET)
os.environ["OPENMANUS_SANDBOX_ID"] = _SANDBOX_ID


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the user's config, data and keys out of every test."""
    for key in list(os.environ):
        if key.startswith(_SCRUB_PREFIXES):
            monkeypatch.delenv(key)
    config = tmp_path / "config.toml"
    config.write_text("")
    monkeypatch.setenv("OPENMANUS_CONFIG", str(config))
    monkeypatch.setenv("OPENMANUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OPENMANUS_MODEL__RETRY_BACKOFF", "0.01")
    monkeypatch.setenv("OPENMANUS_SANDBOX_ID", _SANDBOX_ID)
    return tmp_path


@pytest.fixture(autouse=True)
def forget_async_http_clients() -> Iterator[None]:
    """Each async test has an event loop of its own, and langchain-openai's cached client is
    bound to the first loop it ran in: a later test whose loopback server got the same port
    would get that client and fail ("Event loop is closed"; test_openai_server.py shows it)."""
    yield
    _forget_async_http_clients()


@pytest.fixture(autouse=True)
def record_notices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``App.notify`` of a workbench test is recorded on the app, for
    ``tui_helpers.notices`` (Textual forgets a notification once its toast times out)."""
    if "textual.app" not in sys.modules:
        return  # not a workbench test
    from types import SimpleNamespace

    from textual.app import App

    original = App.notify

    def notify(self: App, message: str, *args: Any, **kwargs: Any) -> None:
        self.__dict__.setdefault("_test_notices", []).append(
            SimpleNamespace(message=message, severity=kwargs.get("severity", "information")))
        original(self, message, *args, **kwargs)

    monkeypatch.setattr(App, "notify", notify)


@pytest.fixture(autouse=True)
def fixed_database_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshot tests show the sidebar's database size: pin it, it depends on the machine."""
    if "snap_compare" not in request.fixturenames:
        return
    from openmanus_tui.store.db import Database

    async def fixed_size(self: Database) -> int:
        return 300 * 1024

    monkeypatch.setattr(Database, "size_bytes", fixed_size)


@pytest.fixture
def llm_server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as server:
        yield server


@pytest.fixture
def web() -> Iterator[WebFixture]:
    """The loopback web server and its corpus (``tests/web_fixture.py``): ``web.service(db)``
    is a SourceService whose fetches reach only it."""
    with WebFixture() as server:
        yield server


def use_server(monkeypatch: pytest.MonkeyPatch, server: OpenAITestServer) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-key")
    monkeypatch.setenv("OPENMANUS_MODEL__NAME", "test-model")


@pytest.fixture
def tally_server(
    llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> OpenAITestServer:
    """The loopback model in use, and a fresh ``$TALLY_FILE`` for the ``tally`` tool
    (``tally_tool.py``); the test sets the responder."""
    use_server(monkeypatch, llm_server)
    monkeypatch.setenv("TALLY_FILE", str(tmp_path / "tally.txt"))
    return llm_server


def check_tool_pairing(messages: list[dict[str, Any]]) -> None:
    """What the OpenAI API enforces: every assistant tool call is answered by a tool message
    before the next non-tool message, and no tool message answers an unknown call."""
    pending: set[str] = set()
    for msg in messages:
        role = msg.get("role")
        if role == "tool":
            assert msg.get("tool_call_id") in pending, f"orphan tool result {msg}"
            pending.discard(msg["tool_call_id"])
            continue
        assert not pending, f"tool calls without results before a {role} message: {pending}"
        if role == "assistant":
            pending = {c["id"] for c in msg.get("tool_calls") or []}
    assert not pending, f"tool calls without results at the end: {pending}"


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``openmanus`` in a subprocess with the test's environment (no terminal)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "openmanus_tui", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        input=input_text if input_text is not None else "",
    )


def cli(
    *args: str,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the ``openmanus`` command line in this process: ``cli.main`` with its own standard
    input (never a terminal), output, error output and environment, and the same result as
    :func:`run_cli`.

    A subprocess pays 1-3 s of imports per command; here they are paid once per test session.
    Use it where the process boundary is not what the test is about; keep :func:`run_cli` (the
    real ``python -m openmanus_tui`` entry point) for exit codes of the real process, signals,
    kills, terminals and start-up. As in a real process, an uncaught exception becomes a
    traceback on standard error and exit status 1. The command runs its own event loop: called
    from an async test, it runs in a thread of its own while the test's loop waits for it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(cli, *args, env=env, input_text=input_text).result()
    from openmanus_tui.cli import main

    saved_env = os.environ.copy()
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    out, err = io.StringIO(), io.StringIO()
    # Standard input is a real file, as the subprocess's pipe is: a descriptor, no terminal.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stdin:
        stdin.write(input_text or "")
        stdin.seek(0)
        os.environ.update(env or {})
        sys.stdin, sys.stdout, sys.stderr = stdin, out, err
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's --version and --help
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=err)
                code = 1
        except Exception:
            traceback.print_exc(file=err)
            code = 1
        finally:
            _forget_async_http_clients()
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            # ``--config`` sets OPENMANUS_CONFIG for the rest of the process: undo it, and env.
            os.environ.clear()
            os.environ.update(saved_env)
    return subprocess.CompletedProcess(
        ["openmanus", *args], code, stdout=out.getvalue(), stderr=err.getvalue()
    )


def _forget_async_http_clients() -> None:
    """langchain-openai keeps one async httpx client per base URL for the whole process (an
    ``lru_cache``), and a client belongs to the event loop it first ran in: each command run
    here has its own loop (as each real process does), so the next one needs a new client."""
    utils = sys.modules.get("langchain_openai.chat_models._client_utils")
    cached = getattr(utils, "_cached_async_httpx_client", None)
    if cached is not None:
        cached.cache_clear()


def json_events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


class Clock:
    """The circuit breakers' clock (purgatory reads ``time.time``), moved by hand."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def time(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    import types

    from purgatory.domain import model as purgatory_model

    c = Clock()
    monkeypatch.setattr(purgatory_model, "time", types.SimpleNamespace(time=c.time))
    return c
