"""MCP server configuration and connections, shared by ``manus-mcp-cli`` and ``McpManager``.

The file uses the common ``mcpServers`` shape (Claude Desktop / Claude Code / Cursor)::

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "server-files", "."], "env": {"K": "v"}},
        "remote": {"url": "http://127.0.0.1:8000/mcp",
                   "headers": {"Authorization": "Bearer ${TOKEN}"}},
        "legacy": {"type": "sse", "url": "http://127.0.0.1:8001/sse"}
    }}

A server with ``command`` is stdio; one with ``url`` is streamable HTTP unless ``type`` is
``"sse"``. ``${VAR}`` and ``${VAR:-default}`` in ``command``, ``args``, ``env``, ``cwd``,
``url`` and ``headers`` are expanded from the environment (as Claude Code does); an unset
variable without a default is a configuration error. Extra keys of ours: ``disabled``
(skip the server), ``timeout`` (seconds per tool call, default 60), ``risk`` (the
approval class of its tools: read / write / execute / network, see ``mcp_tools``), and for
stdio servers ``sandbox`` (default true: run inside the sandbox) and ``network`` (default
false: no network inside it); see ``tools/mcp_trust.py`` for trust and sandboxing.

The file is named by ``--config`` or by the ``OPENMANUS_MCP_CONFIG`` environment variable.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from openmanus_tui.errors import ConfigError

if TYPE_CHECKING:
    from mcp import Client

CONFIG_ENV_VAR = "OPENMANUS_MCP_CONFIG"
DEFAULT_CALL_TIMEOUT = 60.0

Transport = Literal["stdio", "http", "sse"]
_TYPE_ALIASES: dict[str, Transport] = {
    "stdio": "stdio",
    "http": "http",
    "streamable-http": "http",
    "streamable_http": "http",
    "streamablehttp": "http",
    "sse": "sse",
}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SERVER_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class McpServerConfig(BaseModel):
    """One entry of ``mcpServers``; ``name`` is its key."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str
    type: str | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    disabled: bool = False
    timeout: float = Field(default=DEFAULT_CALL_TIMEOUT, gt=0)
    risk: Literal["read", "write", "execute", "network"] | None = None
    # A stdio server runs in the sandbox unless it says sandbox = false (shown by doctor);
    # inside, its network is off unless it says network = true.
    sandbox: bool = True
    network: bool = False

    @model_validator(mode="after")
    def _check_shape(self) -> McpServerConfig:
        if self.type is not None and self.type.lower() not in _TYPE_ALIASES:
            raise ValueError(f"unknown type {self.type!r} (use stdio, http or sse)")
        if self.type is None and not self.command and not self.url:
            raise ValueError("needs 'command' (a stdio server) or 'url' (an HTTP/SSE server)")
        if self.transport == "stdio":
            if not self.command:
                raise ValueError("a stdio server needs 'command'")
        elif not self.url:
            raise ValueError(f"a {self.transport} server needs 'url'")
        elif not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {self.url!r}")
        return self

    @property
    def transport(self) -> Transport:
        if self.type is not None and self.type.lower() in _TYPE_ALIASES:
            return _TYPE_ALIASES[self.type.lower()]
        return "stdio" if self.command else "http"

    @property
    def target(self) -> str:
        """A short human description: the command line or the URL."""
        if self.transport == "stdio":
            return " ".join([self.command or "", *self.args]).strip()
        return self.url or ""


def _expand(value: str, env: Mapping[str, str], where: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set")

    return _VAR.sub(sub, value)


def _expand_entry(name: str, raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    out = dict(raw)
    where = f"MCP server {name!r}"
    for key in ("command", "cwd", "url"):
        if isinstance(out.get(key), str):
            out[key] = _expand(out[key], env, where)
    if isinstance(out.get("args"), list):
        out["args"] = [_expand(a, env, where) if isinstance(a, str) else a for a in out["args"]]
    for key in ("env", "headers"):
        if isinstance(out.get(key), dict):
            out[key] = {
                k: _expand(v, env, where) if isinstance(v, str) else v for k, v in out[key].items()
            }
    return out


def parse_mcp_config(
    data: Any, *, source: str = "MCP config", env: Mapping[str, str] | None = None
) -> dict[str, McpServerConfig]:
    """Validate an already-parsed config document; returns enabled servers by name."""
    env = os.environ if env is None else env
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object with an 'mcpServers' key")
    servers = data.get("mcpServers", data.get("servers"))
    if servers is None:
        raise ConfigError(f"{source}: no 'mcpServers' object")
    if not isinstance(servers, dict):
        raise ConfigError(f"{source}: 'mcpServers' must be an object of name -> server")
    result: dict[str, McpServerConfig] = {}
    for name, raw in servers.items():
        if not _SERVER_NAME.match(name):
            raise ConfigError(
                f"{source}: server name {name!r} may only use letters, digits, '_', '-' and '.'"
            )
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: server {name!r} must be an object")
        try:
            cfg = McpServerConfig.model_validate({**_expand_entry(name, raw, env), "name": name})
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first.get("loc", ()))
            msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
            where = f"{loc}: " if loc else ""
            raise ConfigError(f"{source}: server {name!r}: {where}{msg}") from None
        if not cfg.disabled:
            result[name] = cfg
    return result


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to use: ``explicit`` if given, else ``$OPENMANUS_MCP_CONFIG``, else None."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV_VAR)
    return Path(from_env) if from_env else None


def load_mcp_config(
    path: str | os.PathLike[str] | None = None, *, required: bool = False
) -> dict[str, McpServerConfig]:
    """Read and validate the config file (see ``config_path``).

    With no file configured, returns ``{}`` (or raises ``ConfigError`` if ``required``).
    Every problem is a ``ConfigError`` with a single-line message.
    """
    resolved = config_path(path)
    if resolved is None:
        if required:
            raise ConfigError(
                f"no MCP config: pass --config FILE or set {CONFIG_ENV_VAR} to a JSON file"
            )
        return {}
    try:
        text = resolved.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"MCP config file not found: {resolved}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read MCP config {resolved}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"MCP config {resolved} is not valid JSON: "
            f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    return parse_mcp_config(data, source=str(resolved))


def open_client(
    server: McpServerConfig,
    *,
    errlog: IO[str] | None = None,
    read_timeout: float | None = None,
) -> AbstractAsyncContextManager[Client]:
    """An unopened ``mcp.Client`` for ``server``: ``async with open_client(cfg) as client``.

    ``errlog`` receives a stdio server's stderr (it must have a real file descriptor).
    """
    import sys

    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    if server.transport == "stdio":
        env = server.env or None
        if os.environ.get("OPENMANUS_SANDBOX_LEVEL"):
            # Inside the sandbox the environment is already scrubbed, and the interpreter
            # needs its variables (PYTHONPATH, LD_LIBRARY_PATH…), which the SDK would drop
            # by passing only a few defaults: hand the server all of it.
            env = {**os.environ, **(server.env or {})}
        params = StdioServerParameters(
            command=server.command or "",
            args=server.args,
            env=env,
            cwd=server.cwd,
        )
        transport: Any = stdio_client(params, errlog=errlog or sys.stderr)
    elif server.transport == "sse":
        from mcp.client.sse import sse_client

        transport = sse_client(server.url or "", headers=server.headers or None)
    elif server.headers:
        transport = _http_with_headers(server.url or "", server.headers)
    else:
        from mcp.client.streamable_http import streamable_http_client

        transport = streamable_http_client(server.url or "")
    return Client(transport, read_timeout_seconds=read_timeout)


def _http_with_headers(url: str, headers: dict[str, str]) -> AbstractAsyncContextManager[Any]:
    """Streamable HTTP with extra headers: the SDK takes them only through an HTTP client of
    ours, which it then does not close, so tie that client's lifetime to the transport."""
    from contextlib import asynccontextmanager

    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    @asynccontextmanager
    async def transport() -> AsyncIterator[Any]:
        # Same timeouts as the SDK's own client: a server may hold a response stream open.
        timeout = httpx2.Timeout(30.0, read=300.0)
        async with (
            httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
            streamable_http_client(url, http_client=http) as streams,
        ):
            yield streams

    return transport()
