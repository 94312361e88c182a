"""``openmanus serve --web``: serve the workbench to a browser through textual-serve. Each
browser tab gets its own workbench process (the same ``openmanus`` command, with the same
config and data folder); ``serve_web`` makes sure none outlives its tab or the server."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from openmanus_tui.cli.common import EXIT_OK, handles
from openmanus_tui.errors import ConfigError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def add_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="serve the workbench to a browser (textual-serve)")
    serve.add_argument("--web", action="store_true", required=True,
                       help="serve the workbench over HTTP (the only mode)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, metavar="N", help="port (8000)")
    # Its own loop (the server's), outside the CLI's event loop.
    handles(serve, handle, needs="args")


def handle(args: argparse.Namespace) -> int:
    from openmanus_tui.config import load_settings

    load_settings()  # a broken config is reported here, not inside every browser tab
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
