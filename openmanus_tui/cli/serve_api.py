"""``openmanus serve --api [--host H] [--port N]``: the REST API (``openmanus_tui.service``)
that ``langgraph-sdk`` drives, on the same runtime, database and sandbox as the CLI.

A bad port, or an address that cannot be bound, is one line (exit 2); off loopback the
server requires a bearer token and says where it is.
"""

from __future__ import annotations

import argparse

from openmanus_tui.config import load_settings


def handle(args: argparse.Namespace) -> int:
    from openmanus_tui.service.server import serve_from_cli

    return serve_from_cli(load_settings(), args.host, args.port)
