"""MCP servers as tools: ``McpManager`` keeps one session per configured server and turns
each server tool into a ``ToolSpec`` named ``mcp__<server>__<tool>``.

Built on the official ``mcp`` SDK (2.x ``mcp.Client``) rather than ``langchain-mcp-adapters``:
our tools are ``ToolSpec``s, not LangChain tools, and the adapters open a new session per call
by default, while we want one long-lived session per server and a per-server status for the UI.

Each server runs in its own asyncio task that enters the SDK client and waits for the stop
signal, so the SDK's cancel scopes are entered and left in the same task whichever task calls
``start()``, ``call_tool()`` or ``aclose()``. A server that fails to start (bad command,
refused connection, handshake error, ``startup_timeout`` exceeded) is reported in its
``McpServerStatus`` and contributes no tools; the others keep working.

Policy:

- tier 1 (atomic function calls the model sees directly);
- risk: MCP tools are opaque code, so a stdio server's tools are ``Risk.EXECUTE`` (a local
  program running with the user's rights) and an HTTP/SSE server's are ``Risk.NETWORK``; the
  ``risk`` key of a server's config overrides this. Tool annotations such as ``readOnlyHint``
  are hints from the server and are deliberately not trusted for approval;
- arguments: the tool's JSON schema is shown to the model unchanged and enforced with
  ``jsonschema`` (``McpArgs``), rather than translated into pydantic fields, which loses
  ``anyOf``, patterns and nested constraints;
- results: text content is joined with newlines, other content is summarised in brackets,
  ``structuredContent`` goes to ``ToolResult.data``; ``isError`` becomes status ``"error"``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, create_model, model_validator

from openmanus_tui.errors import CircuitOpen
from openmanus_tui.tools.base import Risk, ToolContext, ToolRegistry, ToolResult, ToolSpec
from openmanus_tui.utilities.mcp_config import (
    McpServerConfig,
    Transport,
    load_mcp_config,
    open_client,
)

if TYPE_CHECKING:
    from typing import IO

    import mcp_types
    from mcp import Client

    from openmanus_tui.resilience.breakers import BreakerBoard
    from openmanus_tui.tools.mcp_trust import LaunchPolicy

ServerState = Literal["starting", "running", "failed", "stopped", "untrusted"]

TOOL_PREFIX = "mcp__"
MAX_TOOL_NAME = 64  # the OpenAI function-name limit
DEFAULT_STARTUP_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0  # the SDK itself gives a stdio server ~6 s to exit before killing it
_MAX_TOOL_PAGES = 100
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


@dataclass
class McpServerStatus:
    """What the UI shows for one server."""

    name: str
    transport: Transport
    target: str
    state: ServerState = "starting"
    error: str | None = None
    tool_count: int = 0
    log_path: Path | None = None  # a stdio server's stderr
    where: str = ""  # "sandbox L3", "host (sandbox = false)", "remote" (with a launch policy)


# --- arguments -----------------------------------------------------------------------------


class McpArgs(BaseModel):
    """Arguments of one MCP tool: any JSON object valid against the tool's input schema.

    ``model_json_schema()`` returns the server's schema itself, so the model sees exactly
    what the server declared.
    """

    model_config = ConfigDict(extra="allow")

    input_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    _validator: ClassVar[Any] = None

    @model_validator(mode="before")
    @classmethod
    def _check_schema(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("arguments must be a JSON object")
        if cls._validator is not None:
            errors = sorted(cls._validator.iter_errors(data), key=lambda e: list(e.path))
            if errors:
                raise ValueError("; ".join(_describe_schema_error(e) for e in errors[:5]))
        return data

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return copy.deepcopy(cls.input_schema)

    def arguments(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _describe_schema_error(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else str(error.message)


def args_model_for(name: str, schema: dict[str, Any] | None) -> type[McpArgs]:
    """A ``McpArgs`` subclass enforcing ``schema`` (an MCP tool's ``inputSchema``)."""
    from jsonschema import Draft202012Validator, SchemaError
    from jsonschema.validators import validator_for

    schema = dict(schema or {})
    schema.setdefault("type", "object")
    # ``properties`` is required by some model providers even when empty.
    schema.setdefault("properties", {})
    model = create_model(_model_name(name), __base__=McpArgs)
    model.input_schema = schema
    try:
        validator_cls = validator_for(schema, default=Draft202012Validator)
        validator_cls.check_schema(schema)
        model._validator = validator_cls(schema)
    except SchemaError:
        # A broken schema from the server: let the server judge the arguments itself.
        model._validator = None
    return model


def _model_name(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part) + "Args"


# --- names ---------------------------------------------------------------------------------


def tool_name(server: str, tool: str) -> str:
    """``mcp__<server>__<tool>``, restricted to ``[A-Za-z0-9_-]`` and 64 characters."""
    safe_server, safe_tool = _UNSAFE_NAME_CHARS.sub("_", server), _UNSAFE_NAME_CHARS.sub("_", tool)
    name = f"{TOOL_PREFIX}{safe_server}__{safe_tool}"
    if len(name) <= MAX_TOOL_NAME:
        return name
    digest = hashlib.sha1(f"{server}/{tool}".encode()).hexdigest()[:8]
    return f"{name[: MAX_TOOL_NAME - 9]}_{digest}"


def default_risk(server: McpServerConfig) -> Risk:
    if server.risk:
        return Risk(server.risk)
    return Risk.EXECUTE if server.transport == "stdio" else Risk.NETWORK


# --- results -------------------------------------------------------------------------------


def _content_text(block: Any) -> str:
    kind = getattr(block, "type", "")
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        return f"[{kind} content: {block.mime_type}, {len(block.data) * 3 // 4} bytes]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        return text if text is not None else f"[binary resource: {resource.uri}]"
    if kind == "resource_link":
        return f"[resource link: {block.uri}]"
    return f"[{kind or 'unknown'} content]"


def result_from_mcp(result: mcp_types.CallToolResult, *, server: str, tool: str) -> ToolResult:
    """Convert an MCP ``CallToolResult`` into a ``ToolResult``."""
    parts = [_content_text(block) for block in result.content]
    text = "\n".join(p for p in parts if p)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    data: dict[str, Any] = {"server": server, "tool": tool}
    if result.structured_content is not None:
        data["structured_content"] = result.structured_content
    return ToolResult(
        content=text, status="error" if result.is_error else "ok", data=data, isolation="mcp"
    )


# --- errors --------------------------------------------------------------------------------


def _leaf(exc: BaseException) -> BaseException:
    # anyio task groups wrap the real failure in (nested) exception groups.
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    leaf = _leaf(exc)
    if isinstance(leaf, FileNotFoundError) and leaf.filename:
        return f"command not found: {leaf.filename}"
    if isinstance(leaf, PermissionError) and leaf.filename:
        return f"permission denied: {leaf.filename}"
    # httpx appends a documentation link to status errors; it is noise in a status line.
    text = " ".join(str(leaf).split()).split(" For more information check:")[0]
    return f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__


def _log_tail(path: Path | None, limit: int = 300) -> str:
    if path is None:
        return ""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][-limit:] if lines else ""


# --- the manager ---------------------------------------------------------------------------


@dataclass
class _Server:
    config: McpServerConfig
    status: McpServerStatus
    client: Client | None = None
    tools: list[mcp_types.Tool] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    errlog: IO[str] | None = None


class McpManager:
    """Start the configured MCP servers and expose their tools as ``ToolSpec``s.

    ``async with McpManager(servers) as mcp: registry_specs = mcp.tool_specs()``.
    """

    def __init__(
        self,
        servers: Mapping[str, McpServerConfig] | Iterable[McpServerConfig],
        *,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        log_dir: Path | None = None,
        policy: LaunchPolicy | None = None,
        breakers: BreakerBoard | None = None,
    ) -> None:
        # One circuit breaker per server (``mcp <name>``): a server that keeps timing out or
        # dropping its connection is not called until its probe (issue 16).
        self.breakers = breakers
        configs = list(servers.values()) if isinstance(servers, Mapping) else list(servers)
        # The runtime passes a policy: stdio servers must be trusted and run sandboxed
        # (``mcp_trust.py``). Without one (library use, ``manus-mcp-cli`` inside the sandbox)
        # servers start as configured.
        self.policy = policy
        self.startup_timeout = startup_timeout
        self._log_dir_arg = log_dir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._servers: dict[str, _Server] = {
            cfg.name: _Server(
                config=cfg,
                status=McpServerStatus(name=cfg.name, transport=cfg.transport, target=cfg.target),
            )
            for cfg in configs
        }
        self._started = False

    @classmethod
    def from_config(cls, path: str | Path | None = None, **kwargs: Any) -> McpManager:
        """Servers from ``path`` or ``$OPENMANUS_MCP_CONFIG`` (none configured: no servers)."""
        return cls(load_mcp_config(path), **kwargs)

    # lifecycle

    async def start(self) -> list[McpServerStatus]:
        """Start every server concurrently; never raises for a server that fails."""
        if self._started:
            return self.statuses()
        self._started = True
        for server in self._servers.values():
            if self.policy is not None and not self._admit(server):
                continue
            if server.config.transport == "stdio":
                path = self._log_dir() / f"{server.config.name}.stderr.log"
                # Append mode: the child shares this descriptor, and O_APPEND keeps its
                # writes at the end even when we read the file to report an error.
                server.errlog = path.open("a+", encoding="utf-8")
                server.status.log_path = path
            server.task = asyncio.create_task(
                self._run(server), name=f"mcp-server-{server.config.name}"
            )
        await asyncio.gather(
            *(self._await_ready(s) for s in self._servers.values() if s.task is not None)
        )
        return self.statuses()

    def _admit(self, server: _Server) -> bool:
        """Trusted? Then wrap the launch in the sandbox (unless the server opted out)."""
        assert self.policy is not None
        why = self.policy.check(server.config)
        if why is not None:
            server.status.state, server.status.error = "untrusted", why
            server.ready.set()
            return False
        try:
            server.config, server.status.where = self.policy.wrap(server.config)
        except Exception as exc:  # no sandbox here: the server is not started on the host
            server.status.state = "failed"
            server.status.error = f"cannot sandbox it: {exc} (or set sandbox = false)"
            server.ready.set()
            return False
        return True

    async def _await_ready(self, server: _Server) -> None:
        try:
            await asyncio.wait_for(server.ready.wait(), self.startup_timeout)
        except TimeoutError:
            await self._cancel(server)
            server.status.state = "failed"
            server.status.error = f"did not start within {self.startup_timeout:g}s"
            if tail := _log_tail(server.status.log_path):
                server.status.error += f" (stderr: {tail})"

    async def _run(self, server: _Server) -> None:
        cfg, status = server.config, server.status
        try:
            async with open_client(cfg, errlog=server.errlog, read_timeout=cfg.timeout) as client:
                server.tools = await _list_all_tools(client)
                server.client = client
                status.state, status.tool_count, status.error = "running", len(server.tools), None
                server.ready.set()
                await server.stop.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of one server is reported, never raised
            if status.state != "failed":  # keep the first cause, not the teardown noise
                status.state, status.tool_count = "failed", 0
                status.error = _describe(exc)
                if tail := _log_tail(status.log_path):
                    status.error += f" (stderr: {tail})"
        finally:
            server.client = None
            if status.state == "running":
                status.state = "stopped"
            server.ready.set()

    async def _cancel(self, server: _Server) -> None:
        if server.task is None or server.task.done():
            return
        server.task.cancel()
        # ``asyncio.wait`` neither raises the task's outcome nor cancels it on timeout.
        await asyncio.wait({server.task}, timeout=_STOP_TIMEOUT)

    async def aclose(self) -> None:
        """Stop every server (stdio processes are terminated by the SDK)."""
        for server in self._servers.values():
            server.stop.set()
        for server in self._servers.values():
            if server.task is not None and not server.task.done():
                _, pending = await asyncio.wait({server.task}, timeout=_STOP_TIMEOUT)
                if pending:
                    await self._cancel(server)
            if server.status.state in ("running", "starting"):
                server.status.state = "stopped"
            if server.errlog is not None:
                server.errlog.close()
                server.errlog = None
        if self.policy is not None:
            self.policy.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            for server in self._servers.values():
                server.status.log_path = None

    async def __aenter__(self) -> McpManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _log_dir(self) -> Path:
        if self._log_dir_arg is not None:
            self._log_dir_arg.mkdir(parents=True, exist_ok=True)
            return self._log_dir_arg
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="openmanus-mcp-")
        return Path(self._tmp.name)

    # queries

    def statuses(self) -> list[McpServerStatus]:
        return [s.status for s in self._servers.values()]

    def status(self, name: str) -> McpServerStatus | None:
        server = self._servers.get(name)
        return server.status if server else None

    def tools(self, server: str) -> list[mcp_types.Tool]:
        """The raw MCP tool list of a running server (empty otherwise)."""
        entry = self._servers.get(server)
        return list(entry.tools) if entry and entry.client else []

    def tool_specs(self) -> list[ToolSpec]:
        """One ``ToolSpec`` per tool of every running server."""
        specs: list[ToolSpec] = []
        seen: set[str] = set()
        for server in self._servers.values():
            if server.client is None:
                continue
            for tool in server.tools:
                name = tool_name(server.config.name, tool.name)
                if name in seen:  # two tools that differ only in unsafe characters
                    continue
                seen.add(name)
                specs.append(self._spec(server.config, tool, name))
        return specs

    def register(self, registry: ToolRegistry) -> list[str]:
        """Add every MCP tool to ``registry``; returns the names added."""
        specs = self.tool_specs()
        for spec in specs:
            registry.register(spec)
        return [spec.name for spec in specs]

    def _spec(self, cfg: McpServerConfig, tool: mcp_types.Tool, name: str) -> ToolSpec:
        server_name, mcp_name = cfg.name, tool.name

        async def run(ctx: ToolContext, args: McpArgs) -> ToolResult:
            return await self.call_tool(server_name, mcp_name, args.arguments())

        description = tool.description or tool.title or f"Tool {tool.name!r}"
        return ToolSpec(
            name=name,
            description=f"{description.strip()} (MCP server {server_name!r})",
            args_model=args_model_for(name, tool.input_schema),
            func=run,
            tier=1,
            risk=default_risk(cfg),
            timeout=cfg.timeout,
            source=f"mcp:{server_name}",
        )

    # calls

    async def call_tool(
        self, server: str, tool: str, arguments: dict[str, Any] | None = None
    ) -> ToolResult:
        """Call ``tool`` on ``server``; every failure is an error ``ToolResult``."""
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        entry = self._servers.get(server)
        if entry is None:
            return ToolResult(content=f"Error: unknown MCP server {server!r}", status="error")
        client = entry.client
        if client is None:
            why = f": {entry.status.error}" if entry.status.error else ""
            return ToolResult(
                content=f"Error: MCP server {server!r} is {entry.status.state}{why}",
                status="error",
            )
        def unhealthy(exc: BaseException) -> bool:
            if isinstance(exc, MCPError):
                return exc.code in (REQUEST_TIMEOUT, CONNECTION_CLOSED)
            return isinstance(exc, OSError | RuntimeError | TimeoutError)

        try:
            if self.breakers is not None:
                result = await self.breakers.call(
                    f"mcp {server}", lambda: client.call_tool(tool, arguments or {}),
                    counts=unhealthy,
                )
            else:
                result = await client.call_tool(tool, arguments or {})
        except CircuitOpen as exc:
            return ToolResult(content=f"Error: {exc}", status="error")
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                return ToolResult(
                    content=f"Error: MCP tool {tool!r} on {server!r} timed out: {exc}",
                    status="timeout",
                )
            if exc.code == CONNECTION_CLOSED:
                self._mark_lost(entry, str(exc))
            return ToolResult(content=f"Error: MCP server {server!r}: {exc}", status="error")
        except (OSError, RuntimeError, ValueError, TimeoutError) as exc:
            # Transport failures (the process died, the connection dropped) and malformed
            # replies: the session cannot be trusted any more.
            self._mark_lost(entry, _describe(exc))
            return ToolResult(
                content=f"Error: MCP server {server!r}: {_describe(exc)}", status="error"
            )
        return result_from_mcp(result, server=server, tool=tool)

    def _mark_lost(self, entry: _Server, error: str) -> None:
        entry.status.state, entry.status.tool_count = "failed", 0
        entry.status.error = f"connection lost: {error}"
        entry.client = None
        entry.stop.set()


async def _list_all_tools(client: Client) -> list[mcp_types.Tool]:
    if client.server_capabilities.tools is None:  # a resources/prompts-only server
        return []
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(_MAX_TOOL_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools
