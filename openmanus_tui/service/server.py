"""``openmanus serve --api``: uvicorn serving ``create_app`` until SIGINT or SIGTERM.

uvicorn handles both signals: it stops accepting connections and runs the app's shutdown,
which drains the run pool (``RunManager.drain``: running steps finish and checkpoint, for at
most ``service.drain_timeout`` s) before the database is closed.
"""

from __future__ import annotations

from typing import Any

import uvicorn

from openmanus_tui.service.app import create_app
from openmanus_tui.service.security import is_loopback, required_token


def describe_start(settings: Any, host: str, port: int) -> list[str]:
    lines = [f"OpenManus API on http://{host}:{port}  (OpenAPI: /openapi.json, docs: /docs)"]
    token = required_token(settings, host)
    if token is not None:
        where = (
            "service.token" if settings.service.token is not None
            else str(settings.resolved_data_dir / "api_token")
        )
        lines.append(f"every endpoint but /ok needs 'Authorization: Bearer <token>' ({where})")
    if not is_loopback(host):
        lines.append(f"listening on {host}: reachable from other machines")
    return lines


def serve(settings: Any, host: str, port: int) -> None:
    app = create_app(settings, host=host)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=int(settings.service.drain_timeout) + 5,
        server_header=False,
    )
    uvicorn.Server(config).run()


def serve_from_cli(settings: Any, host: str | None, port: int | None) -> int:
    """``openmanus serve --api [--host H] [--port N]``: a bad port, an address in use or one
    that cannot be bound is one line (exit 2)."""
    import socket
    import sys

    from openmanus_tui.errors import ConfigError

    host = host or settings.service.host
    port = settings.service.port if port is None else port
    if not 0 < port < 65536:
        raise ConfigError(f"serve: --port must be between 1 and 65535, not {port}")
    try:  # what uvicorn would only log: checked first, to say it in one line
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise ConfigError(
            f"serve: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    for line in describe_start(settings, host, port):
        print(line, file=sys.stderr)
    serve(settings, host, port)
    return 0
