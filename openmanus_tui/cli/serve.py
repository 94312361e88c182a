"""``openmanus serve --web``: serve the workbench to a browser through textual-serve. Each
browser tab gets its own workbench process (the same ``openmanus`` command, with the same
config and data folder); ``serve_web`` makes sure none outlives its tab or the server.
``openmanus serve --api`` is ``serve_api.py``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from openmanus_tui.cli.common import EXIT_OK, handles
from openmanus_tui.errors import ConfigError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def add_parser(sub: Any) -> None:
    serve = sub.add_parser(
        "serve", help="serve the workbench to a browser (--web) or the REST API (--api)"
    )
    mode = serve.add_mutually_exclusive_group(required=True)
    mode.add_argument("--web", action="store_true",
                      help="serve the workbench over HTTP (textual-serve)")
    mode.add_argument("--api", action="store_true",
                      help="serve the REST API that langgraph-sdk drives (README: API)")
    serve.add_argument("--host", default=None,
                       help="address to listen on (127.0.0.1; --api: service.host)")
    serve.add_argument("--port", type=int, default=None, metavar="N",
                       help="port (--web: 8000; --api: service.port, 2024)")
    # Its own loop (the server's), outside the CLI's event loop.
    handles(serve, handle, needs="args")


def handle(args: argparse.Namespace) -> int:
    from openmanus_tui.config import load_settings

    if args.api:
        from openmanus_tui.cli.serve_api import handle as serve_api

        return serve_api(args)
    load_settings()  # a broken config is reported here, not inside every browser tab
    args.host = args.host or "127.0.0.1"
    args.port = 8000 if args.port is None else args.port
    if not 0 < args.port < 65536:
        raise ConfigError(f"serve: --port must be between 1 and 65535, not {args.port}")
    try:
        from openmanus_tui.serve_web import WorkbenchServer
    except ImportError:
        raise ConfigError(
            "serve: textual-serve is not installed", hint="pip install textual-serve"
        ) from None
    if args.host not in LOOPBACK:
        print(f"openmanus: warning: serving on {args.host}: anyone who can reach this port "
              "can drive the agent and its tools on this machine", file=sys.stderr)
    argv = [sys.executable, "-m", "openmanus_tui"]
    try:
        WorkbenchServer(argv, host=args.host, port=args.port, title="OpenManus").serve()
    except OSError as exc:
        raise ConfigError(
            f"serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    return EXIT_OK
