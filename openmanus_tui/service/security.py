"""Who may call the API and how much they may send.

- Loopback by default. Bound to any other address, the server requires a bearer token
  (``service.token``, or one generated on first use into ``<data folder>/api_token`` with mode
  0600); with a token configured it is required on loopback too. Every endpoint but ``/ok``
  checks it: ``Authorization: Bearer TOKEN`` or ``x-api-key: TOKEN`` (what ``langgraph-sdk``
  sends when ``LANGGRAPH_API_KEY`` is set).
- Request bodies are bounded (``service.max_body_kb``: 413 beyond it), counted as they arrive
  (a missing or false ``Content-Length`` does not get around it).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import secrets
from pathlib import Path
from typing import Any

OPEN_PATHS = frozenset({"/ok"})
TOKEN_FILE = "api_token"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_or_create_token(data_dir: Path) -> str:
    """The token in ``data_dir/api_token``, made (mode 0600) when there is none."""
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def required_token(settings: Any, host: str) -> str | None:
    """The token this server requires, or None (loopback with no token configured)."""
    configured = settings.service.token
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()  # type: ignore[no-any-return]
    if is_loopback(host):
        return None
    return load_or_create_token(settings.resolved_data_dir)


async def _reply(send: Any, status: int, detail: str, headers: list[Any] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Pure ASGI (streams pass through untouched): the token, then the body's size."""

    def __init__(self, app: Any, *, token: str | None, max_body: int) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body = max_body

    def _authorised(self, scope: Any) -> bool:
        if self.token is None or scope.get("path") in OPEN_PATHS:
            return True
        if scope.get("method") == "OPTIONS":
            return True  # a CORS preflight carries no credentials (and changes nothing)
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-api-key", b"")
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        return bool(given) and hmac.compare_digest(given, self.token)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._authorised(scope):
            await _reply(send, 401, "a bearer token is required",
                         [(b"www-authenticate", b"Bearer")])
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_body
            except ValueError:
                await _reply(send, 400, "bad Content-Length")
                return
            if too_big:
                await _reply(send, 413, f"request body over {self.max_body} bytes")
                return
        seen = 0
        started = False

        async def counting_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _reply(send, 413, f"request body over {self.max_body} bytes")


class _TooLarge(Exception):
    pass
