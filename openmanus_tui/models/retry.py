"""Classify model-call failures and retry the transient ones with backoff.

Transient: HTTP 429, 5xx, connection errors, timeouts and streams cut off mid-way. Permanent:
every other 4xx (bad request, bad key, unknown model) — retrying those only burns quota, which is
the "retry storm" OpenManus users complain about. Each failure becomes a ``ModelError`` whose
hint says what the user can do.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from openmanus_tui.errors import CircuitOpen, ModelError

T = TypeVar("T")

_HINTS = {
    400: "The server rejected the request; check the model name and its tool-calling support.",
    401: "Check the API key (OPENAI_API_KEY or model.api_key).",
    403: "The key is not allowed to use this model.",
    404: "Check the model name and model.base_url (it usually ends in /v1).",
    429: "Rate limited: wait a moment, or lower the request rate.",
}


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _is_connection_error(exc: BaseException) -> bool:
    """A dropped connection or a stream cut off mid-way, however the client wrapped it
    (langchain-openai re-raises them as its own ``OpenAIConnectionError``)."""
    import openai

    seen: BaseException | None = exc
    for _ in range(5):  # the exception and its causes
        if seen is None:
            return False
        if isinstance(seen, openai.APIConnectionError | httpx.TransportError):
            return True
        if getattr(seen, "is_retryable", False) or type(seen).__name__ in (
            "RemoteProtocolError", "ReadError", "ConnectError", "APIError",
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def classify(exc: BaseException) -> ModelError:
    """Turn any model-call exception into a ``ModelError`` with a class and a hint."""
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, CircuitOpen):
        error = ModelError(exc.message, hint=exc.hint, error_class="transient")
        error.retryable = False  # the next model in the chain, not a retry, is the answer
        return error
    status = _status(exc)
    name = type(exc).__name__
    if status is not None:
        transient = status == 429 or status >= 500 or status in (408, 409)
        message = f"model server answered HTTP {status}: {_short(exc)}"
        hint = _HINTS.get(status, "The model server failed; try again later." if transient else "")
        return ModelError(message, hint=hint, error_class="transient" if transient else "permanent")
    if isinstance(exc, httpx.TimeoutException) or "Timeout" in name:
        return ModelError(
            f"model request timed out ({name})",
            hint="Raise model.timeout or check that the server is responding.",
            error_class="transient",
        )
    if _is_connection_error(exc):
        return ModelError(
            f"connection to the model server failed ({name}): {_short(exc)}",
            hint="Check model.base_url and that the server is running.",
            error_class="transient",
        )
    return ModelError(f"model call failed ({name}): {_short(exc)}", error_class="permanent")


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    base_delay: float,
    on_retry: Callable[[int, float, ModelError], Awaitable[None]] | None = None,
) -> tuple[T, int]:
    """Run ``call``, retrying transient failures up to ``max_retries`` times.

    Returns the result and how many retries it took."""
    attempt = 0
    while True:
        try:
            return await call(), attempt
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = classify(exc)
            if error.error_class != "transient" or not error.retryable or attempt >= max_retries:
                if attempt:
                    error.message += f" (after {attempt} retries)"
                raise error from exc
            attempt += 1
            wait = retry_after(exc) or base_delay * (2 ** (attempt - 1))
            wait = min(wait * (1 + random.random() * 0.1), 60.0)
            if on_retry is not None:
                await on_retry(attempt, wait, error)
            await asyncio.sleep(wait)
