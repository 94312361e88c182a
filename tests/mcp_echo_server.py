"""A tiny MCP server for tests (``echo``, ``add``, ``fail``, ``getenv``, ``sleep`` tools).

Run ``python tests/mcp_echo_server.py`` for stdio, ``--http PORT`` to serve streamable HTTP
at ``http://127.0.0.1:PORT/mcp``, or ``--sse PORT`` for SSE at ``http://127.0.0.1:PORT/sse``
(the tests start it on a free local port).
"""

from __future__ import annotations

import argparse
import os
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("echo", log_level="WARNING")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def fail(message: str = "boom") -> str:
    """Always fail with the given message (to test error results)."""
    raise ToolError(message)


@server.tool()
def getenv(name: str) -> str:
    """Return an environment variable of the server process ("" if unset)."""
    return os.environ.get(name, "")


@server.tool()
def sleep(seconds: float) -> str:
    """Sleep, then say so (to test call timeouts)."""
    time.sleep(seconds)
    return f"slept {seconds}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on PORT")
    parser.add_argument("--sse", type=int, metavar="PORT", help="serve SSE on PORT")
    args = parser.parse_args()
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    elif args.sse:
        server.run("sse", host="127.0.0.1", port=args.sse)
    else:
        server.run()


if __name__ == "__main__":
    main()
