"""MCP: config loading, ``manus-mcp-cli`` (real subprocesses) and ``McpManager`` against the
real test server in ``tests/mcp_echo_server.py`` over stdio, streamable HTTP and SSE."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openmanus_tui.errors import ConfigError
from openmanus_tui.tools.base import Risk, ToolContext, ToolRegistry, run_tool
from openmanus_tui.tools.mcp_tools import McpManager, tool_name
from openmanus_tui.utilities.mcp_config import (
    CONFIG_ENV_VAR,
    load_mcp_config,
    parse_mcp_config,
)

ECHO_SERVER = str(Path(__file__).with_name("mcp_echo_server.py"))
CLI_TIMEOUT = 60  # seconds; a normal run takes about 2 s
TEST_TIMEOUT = 60


def _stdio(**extra: object) -> dict[str, object]:
    return {"command": sys.executable, "args": [ECHO_SERVER], **extra}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_http_server(flag: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, ECHO_SERVER, flag, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the MCP test server ({flag}) did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def http_server() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc, port = _start_http_server("--http")
    yield proc, f"http://127.0.0.1:{port}/mcp"
    _stop(proc)


@pytest.fixture
def sse_server() -> Iterator[str]:
    proc, port = _start_http_server("--sse")
    yield f"http://127.0.0.1:{port}/sse"
    _stop(proc)


def _write_config(path: Path, servers: dict[str, object]) -> Path:
    path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    return path


# --- config ---------------------------------------------------------------------------------


def test_config_shapes_env_expansion_and_disabled() -> None:
    servers = parse_mcp_config(
        {
            "mcpServers": {
                "local": {
                    "command": "srv",
                    "args": ["--root", "${ROOT}"],
                    "env": {"K": "${K:-dflt}"},
                },
                "remote": {"url": "http://127.0.0.1:1/mcp", "headers": {"A": "Bearer ${TOKEN}"}},
                "legacy": {"type": "sse", "url": "http://127.0.0.1:1/sse"},
                "explicit": {"type": "streamable-http", "url": "http://127.0.0.1:1/mcp"},
                "off": {"command": "x", "disabled": True},
            }
        },
        env={"ROOT": "/data", "TOKEN": "t0k"},
    )
    assert list(servers) == ["local", "remote", "legacy", "explicit"]
    assert servers["local"].transport == "stdio"
    assert servers["local"].args == ["--root", "/data"]
    assert servers["local"].env == {"K": "dflt"}
    assert servers["remote"].transport == "http"
    assert servers["remote"].headers == {"A": "Bearer t0k"}
    assert servers["legacy"].transport == "sse"
    assert servers["explicit"].transport == "http"


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"mcpServers": {"a": {"args": ["x"]}}}, "needs 'command'"),
        ({"mcpServers": {"a": {"type": "sse"}}}, "needs 'url'"),
        ({"mcpServers": {"a": {"url": "ftp://x"}}}, "must start with http"),
        ({"mcpServers": {"a": {"type": "carrier-pigeon", "url": "http://x"}}}, "unknown type"),
        ({"mcpServers": {"a": {"command": "x", "timeout": -1}}}, "timeout"),
        ({"mcpServers": {"a": {"command": "${NOPE_UNSET_VAR}"}}}, "NOPE_UNSET_VAR is not set"),
        ({"mcpServers": {"bad name!": {"command": "x"}}}, "may only use"),
        ({"mcpServers": ["a"]}, "must be an object"),
        ({"servers_typo": {}}, "no 'mcpServers'"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_config_errors_are_one_line(doc: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_mcp_config(doc, env={})
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_load_config_from_env_var_and_file_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    assert load_mcp_config() == {}
    with pytest.raises(ConfigError, match="no MCP config"):
        load_mcp_config(required=True)
    path = _write_config(tmp_path / "mcp.json", {"echo": _stdio()})
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    assert list(load_mcp_config()) == ["echo"]
    (tmp_path / "broken.json").write_text('{"mcpServers": {', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not valid JSON: .*line 1"):
        load_mcp_config(tmp_path / "broken.json")
    with pytest.raises(ConfigError, match="not found"):
        load_mcp_config(tmp_path / "missing.json")


def test_tool_names_are_safe_and_bounded() -> None:
    assert tool_name("echo", "add") == "mcp__echo__add"
    assert tool_name("my.server", "do it") == "mcp__my_server__do_it"
    long_a, long_b = tool_name("s", "x" * 80 + "a"), tool_name("s", "x" * 80 + "b")
    assert len(long_a) == len(long_b) == 64
    assert long_a != long_b


# --- CLI ------------------------------------------------------------------------------------


def _cli(*args: str, config: Path | None, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != CONFIG_ENV_VAR}
    if config is not None:
        env[CONFIG_ENV_VAR] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "openmanus_tui.utilities.mcp_cli", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env=env,
        input=stdin,
    )


@pytest.fixture
def cli_config(tmp_path: Path) -> Path:
    return _write_config(
        tmp_path / "mcp.json",
        {
            "echo": _stdio(env={"ECHO_MARKER": "marker-${HOME:-none}"}),
            "broken": {"command": "no-such-mcp-command-xyz"},
        },
    )


def test_cli_servers_and_tools(cli_config: Path) -> None:
    out = _cli("servers", config=cli_config)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["echo", "stdio"], ["broken", "stdio"]]

    listing = _cli("--config", str(cli_config), "servers", "--json", config=None)
    assert listing.returncode == 0
    assert [s["name"] for s in json.loads(listing.stdout)] == ["echo", "broken"]

    tools = _cli("tools", "echo", config=cli_config)
    assert tools.returncode == 0, tools.stderr
    assert "add(a: integer, b: integer)" in tools.stdout
    assert "echo(text: string)" in tools.stdout
    assert "fail([message: string])" in tools.stdout

    tools_json = json.loads(_cli("tools", "echo", "--json", config=cli_config).stdout)
    add = next(t for t in tools_json if t["name"] == "add")
    assert add["inputSchema"]["required"] == ["a", "b"]


def test_cli_call(cli_config: Path) -> None:
    out = _cli("call", "echo", "add", '{"a": 2, "b": 40}', config=cli_config)
    assert (out.returncode, out.stdout.strip()) == (0, "42")

    out = _cli("call", "echo", "echo", "-", "--json", config=cli_config, stdin='{"text": "héllo"}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "status": "ok",
        "content": "héllo",
        "structuredContent": {"result": "héllo"},
    }

    # The server process gets the configured (expanded) environment.
    out = _cli("call", "echo", "getenv", '{"name": "ECHO_MARKER"}', config=cli_config)
    assert out.stdout.strip() == f"marker-{os.environ.get('HOME', 'none')}"


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("call", "echo", "fail", '{"message": "kaputt"}'), 1, "fail failed: "),
        (("call", "echo", "add", '{"a": "x", "b": 1}'), 2, "'x' is not of type 'integer'"),
        (("call", "echo", "add", '{"a": '), 2, "not valid JSON"),
        (("call", "echo", "add", "[1]"), 2, "must be a JSON object"),
        (("call", "echo", "nope"), 2, "has no tool 'nope' (tools: add, echo, fail"),
        (("tools", "nope"), 2, "unknown MCP server 'nope' (configured: broken, echo)"),
        (("tools", "broken"), 1, "command not found: no-such-mcp-command-xyz"),
        (("frobnicate",), 2, "invalid choice"),
        (("--timeout", "0", "servers"), 2, "--timeout must be positive"),
    ],
)
def test_cli_errors_exit_codes_and_one_line(
    cli_config: Path, args: tuple[str, ...], code: int, fragment: str
) -> None:
    out = _cli(*args, config=cli_config)
    assert out.returncode == code, out.stderr
    assert fragment in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr
    if "kaputt" in args[-1]:
        assert "kaputt" in out.stderr


def test_cli_without_config_is_a_usage_error(tmp_path: Path) -> None:
    out = _cli("servers", config=None)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "manus-mcp-cli: error: no MCP config: pass --config FILE or set "
        f"{CONFIG_ENV_VAR} to a JSON file"
    )
    bad = tmp_path / "bad.json"
    bad.write_text("{nope", encoding="utf-8")
    out = _cli("--config", str(bad), "servers", config=None)
    assert out.returncode == 2
    assert "is not valid JSON" in out.stderr


# --- McpManager -----------------------------------------------------------------------------


async def test_manager_stdio_tools_results_and_failures(tmp_path: Path) -> None:
    servers = parse_mcp_config(
        {
            "mcpServers": {
                "echo": _stdio(),
                "ro": _stdio(risk="read"),
                "missing": {"command": "no-such-mcp-command-xyz"},
                "crashes": {
                    "command": sys.executable,
                    "args": [
                        "-c",
                        "import sys; sys.stderr.write('bad config key\\n'); sys.exit(3)",
                    ],
                },
            }
        }
    )
    ctx = ToolContext(workspace=tmp_path)
    async with asyncio.timeout(TEST_TIMEOUT):
        async with McpManager(servers, startup_timeout=30) as manager:
            status = {s.name: s for s in manager.statuses()}
            assert status["echo"].state == "running"
            assert status["echo"].tool_count == 5
            assert status["missing"].state == "failed"
            assert status["missing"].error == "command not found: no-such-mcp-command-xyz"
            assert status["crashes"].state == "failed"
            assert "bad config key" in (status["crashes"].error or "")

            registry = ToolRegistry()
            names = manager.register(registry)
            assert sorted(n for n in names if n.startswith("mcp__echo__")) == [
                "mcp__echo__add",
                "mcp__echo__echo",
                "mcp__echo__fail",
                "mcp__echo__getenv",
                "mcp__echo__sleep",
            ]
            assert not any("missing" in n or "crashes" in n for n in names)

            add = registry.get("mcp__echo__add")
            assert add is not None
            assert (add.tier, add.risk, add.source) == (1, Risk.EXECUTE, "mcp:echo")
            ro_add = registry.get("mcp__ro__add")
            assert ro_add is not None and ro_add.risk == Risk.READ
            params = add.openai_schema()["function"]["parameters"]
            assert params["properties"] == {"a": {"type": "integer"}, "b": {"type": "integer"}}
            assert params["required"] == ["a", "b"]

            result = await run_tool(add, ctx, {"a": 20, "b": 22})
            assert (result.status, result.content) == ("ok", "42")
            assert result.data == {
                "server": "echo",
                "tool": "add",
                "structured_content": {"result": 42},
            }

            fail = registry.get("mcp__echo__fail")
            assert fail is not None
            failed = await run_tool(fail, ctx, {"message": "disk on fire"})
            assert failed.status == "error"
            assert "disk on fire" in failed.content

            # Invalid arguments are refused against the tool's own JSON schema.
            invalid = await run_tool(add, ctx, {"a": "twenty"})
            assert invalid.status == "error"
            assert "'b' is a required property" in invalid.content
            assert "'twenty' is not of type 'integer'" in invalid.content

            down = await manager.call_tool("missing", "anything", {})
            assert down.status == "error"
            assert "is failed: command not found" in down.content
        assert manager.status("echo").state == "stopped"  # type: ignore[union-attr]


async def test_manager_call_timeout_keeps_the_session() -> None:
    servers = parse_mcp_config({"mcpServers": {"slow": _stdio(timeout=0.5)}})
    async with asyncio.timeout(TEST_TIMEOUT), McpManager(servers) as manager:
        timed_out = await manager.call_tool("slow", "sleep", {"seconds": 5})
        assert timed_out.status == "timeout"
        again = await manager.call_tool("slow", "echo", {"text": "still here"})
        assert (again.status, again.content) == ("ok", "still here")


async def test_manager_startup_timeout_is_reported_and_process_stopped(tmp_path: Path) -> None:
    marker = tmp_path / "alive"
    # A "server" that never answers the handshake; it records its pid so we can check it died.
    script = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    servers = parse_mcp_config(
        {"mcpServers": {"mute": {"command": sys.executable, "args": ["-c", script]}}}
    )
    async with asyncio.timeout(TEST_TIMEOUT):
        async with McpManager(servers, startup_timeout=1.5) as manager:
            status = manager.status("mute")
            assert status is not None
            assert (status.state, status.error) == ("failed", "did not start within 1.5s")
            assert manager.tool_specs() == []
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_manager_http_and_sse(
    http_server: tuple[subprocess.Popen[bytes], str], sse_server: str, tmp_path: Path
) -> None:
    proc, url = http_server
    servers = parse_mcp_config(
        {
            "mcpServers": {
                "web": {"url": url},
                "webh": {"url": url, "headers": {"X-Test": "1"}},
                "legacy": {"type": "sse", "url": sse_server},
                "refused": {"url": f"http://127.0.0.1:{_free_port()}/mcp"},
            }
        }
    )
    ctx = ToolContext(workspace=tmp_path)
    async with asyncio.timeout(TEST_TIMEOUT), McpManager(servers) as manager:
        states = {s.name: (s.transport, s.state) for s in manager.statuses()}
        assert states == {
            "web": ("http", "running"),
            "webh": ("http", "running"),
            "legacy": ("sse", "running"),
            "refused": ("http", "failed"),
        }
        specs = {spec.name: spec for spec in manager.tool_specs()}
        assert specs["mcp__web__add"].risk == Risk.NETWORK
        assert specs["mcp__legacy__echo"].risk == Risk.NETWORK
        for name in ("mcp__web__add", "mcp__webh__add", "mcp__legacy__add"):
            result = await run_tool(specs[name], ctx, {"a": 1, "b": 2})
            assert (result.status, result.content) == ("ok", "3"), name

        # The server goes away mid-session: calls fail cleanly and the status says so.
        _stop(proc)
        lost = await run_tool(specs["mcp__web__echo"], ctx, {"text": "anyone?"})
        assert lost.status == "error"
        web = manager.status("web")
        assert web is not None and web.state == "failed"
        assert "connection lost" in (web.error or "")
        assert "mcp__web__add" not in {s.name for s in manager.tool_specs()}


async def test_manager_closes_from_another_task() -> None:
    """A UI starts the manager in one task and stops it in another."""
    manager = McpManager(parse_mcp_config({"mcpServers": {"echo": _stdio()}}))
    async with asyncio.timeout(TEST_TIMEOUT):
        await asyncio.create_task(manager.start())
        assert (await manager.call_tool("echo", "echo", {"text": "x"})).content == "x"
        await asyncio.create_task(manager.aclose())
    assert manager.status("echo").state == "stopped"  # type: ignore[union-attr]
    after = await manager.call_tool("echo", "echo", {"text": "x"})
    assert after.status == "error"
