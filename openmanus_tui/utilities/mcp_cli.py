"""``manus-mcp-cli``: list configured MCP servers, list a server's tools, call a tool.

    manus-mcp-cli servers
    manus-mcp-cli tools SERVER
    manus-mcp-cli call SERVER TOOL '{"text": "hi"}'     (or '-' to read the JSON from stdin)

The config (``mcpServers`` JSON) comes from ``--config FILE`` or ``$OPENMANUS_MCP_CONFIG``;
see ``mcp_config``. Connections go through ``McpManager``, the same code the agent's MCP tools
use, so the CLI shows exactly what the agent would see.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from openmanus_tui.errors import ConfigError
from openmanus_tui.tools.base import describe_validation_error
from openmanus_tui.utilities._cli import (
    EXIT_CODES_HELP,
    EXIT_FAILURE,
    EXIT_OK,
    Failure,
    OneLineParser,
    UsageError,
    one_line,
    run_main,
)
from openmanus_tui.utilities.mcp_config import CONFIG_ENV_VAR, McpServerConfig, load_mcp_config

PROG = "manus-mcp-cli"


def _build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog=PROG,
        description="Talk to the configured MCP servers: list them, list tools, call a tool.",
        epilog=(
            "examples:\n"
            "  manus-mcp-cli servers\n"
            "  manus-mcp-cli tools SERVER\n"
            '  manus-mcp-cli call SERVER TOOL \'{"text": "hi"}\'\n'
            "  echo '{\"a\": 1}' | manus-mcp-cli call SERVER TOOL -\n\n"
            f"Config: --config FILE or ${CONFIG_ENV_VAR}, a JSON file with 'mcpServers'.\n"
            + EXIT_CODES_HELP
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help=f"MCP config file (default ${CONFIG_ENV_VAR})")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for a server to start and for a call (default 30 / config)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    servers = commands.add_parser("servers", help="list configured servers")
    servers.add_argument("--json", action="store_true", help="print JSON")
    tools = commands.add_parser("tools", help="list the tools of SERVER")
    tools.add_argument("server")
    tools.add_argument("--json", action="store_true", help="print JSON with input schemas")
    call = commands.add_parser("call", help="call TOOL on SERVER with JSON arguments")
    call.add_argument("server")
    call.add_argument("tool")
    call.add_argument(
        "arguments", nargs="?", default="{}", help="JSON object, or '-' for stdin (default {})"
    )
    call.add_argument("--json", action="store_true", help="print the result as JSON")
    for sub in (servers, tools, call):
        sub.error = parser.error  # type: ignore[method-assign]  # one-line errors everywhere
    return parser


def _signature(tool: Any) -> str:
    schema = tool.input_schema or {}
    required = set(schema.get("required", []))
    params = []
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type", "any") if isinstance(prop, dict) else "any"
        kind = "|".join(kind) if isinstance(kind, list) else kind
        params.append(f"{name}: {kind}" if name in required else f"[{name}: {kind}]")
    return f"{tool.name}({', '.join(params)})"


def _parse_arguments(raw: str) -> dict[str, Any]:
    text = sys.stdin.read() if raw == "-" else raw
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"arguments are not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(value, dict):
        raise UsageError('arguments must be a JSON object, e.g. \'{"text": "hi"}\'')
    return value


def _pick(servers: dict[str, McpServerConfig], name: str, timeout: float | None) -> McpServerConfig:
    cfg = servers.get(name)
    if cfg is None:
        known = ", ".join(sorted(servers)) or "none"
        raise UsageError(f"unknown MCP server {name!r} (configured: {known})")
    return cfg.model_copy(update={"timeout": timeout}) if timeout else cfg


async def _with_server(cfg: McpServerConfig, timeout: float | None, args: Any) -> int:
    from openmanus_tui.tools.mcp_tools import DEFAULT_STARTUP_TIMEOUT, McpManager, args_model_for

    manager = McpManager([cfg], startup_timeout=timeout or DEFAULT_STARTUP_TIMEOUT)
    async with manager:
        status = manager.statuses()[0]
        if status.state != "running":
            raise Failure(f"MCP server {cfg.name!r} failed to start: {status.error}")
        tools = manager.tools(cfg.name)
        if args.command == "tools":
            if args.json:
                listing = [
                    {"name": t.name, "description": t.description, "inputSchema": t.input_schema}
                    for t in tools
                ]
                print(json.dumps(listing, ensure_ascii=False, indent=2))
            else:
                for tool in tools:
                    summary = (tool.description or "").strip().splitlines()
                    print(f"{_signature(tool)}{'  - ' + summary[0] if summary else ''}")
            return EXIT_OK

        by_name = {t.name: t for t in tools}
        if args.tool not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise UsageError(f"server {cfg.name!r} has no tool {args.tool!r} (tools: {known})")
        arguments = args.parsed_arguments
        try:
            args_model_for(args.tool, by_name[args.tool].input_schema).model_validate(arguments)
        except ValidationError as exc:
            message = describe_validation_error(exc).removeprefix("arguments: Value error, ")
            raise UsageError(f"invalid arguments for {args.tool}: {message}") from None
        result = await manager.call_tool(cfg.name, args.tool, arguments)
    if args.json:
        payload = {"status": result.status, "content": result.content}
        if result.data and "structured_content" in result.data:
            payload["structuredContent"] = result.data["structured_content"]
        print(json.dumps(payload, ensure_ascii=False))
    elif result.status == "ok":
        print(result.content)
    if result.status != "ok":
        what = "timed out" if result.status == "timeout" else "failed"
        print(f"{PROG}: error: {args.tool} {what}: {one_line(result.content)}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _main(argv: Sequence[str] | None) -> int:
    args = _build_parser().parse_args(argv)
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    try:
        servers = load_mcp_config(args.config, required=True)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None

    if args.command == "servers":
        if args.json:
            listing = [
                {"name": c.name, "transport": c.transport, "target": c.target}
                for c in servers.values()
            ]
            print(json.dumps(listing, ensure_ascii=False, indent=2))
        else:
            for cfg in servers.values():
                print(f"{cfg.name}\t{cfg.transport}\t{cfg.target}")
        return EXIT_OK

    cfg = _pick(servers, args.server, args.timeout)
    if args.command == "call":  # before connecting: a typo should not cost a server start
        args.parsed_arguments = _parse_arguments(args.arguments)
    return asyncio.run(_with_server(cfg, args.timeout, args))


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
