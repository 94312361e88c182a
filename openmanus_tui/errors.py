"""Error classes shared by every layer, each with a class (for retries) and a hint for people."""

from __future__ import annotations

from typing import Literal

ErrorClass = Literal["transient", "permanent", "resource", "security", "user"]


class OpenManusError(Exception):
    """Base error: ``error_class`` says whether a retry can help; ``hint`` says what to do."""

    error_class: ErrorClass = "permanent"

    def __init__(self, message: str, *, hint: str = "", error_class: ErrorClass | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if error_class is not None:
            self.error_class = error_class

    def __str__(self) -> str:
        return self.message


class ConfigError(OpenManusError):
    """A configuration file, variable or flag is wrong. Always a single printable line."""

    error_class: ErrorClass = "user"


class ModelError(OpenManusError):
    """The model endpoint failed (after retries where the failure was transient)."""

    # False when retrying cannot help even though the failure is transient (an open breaker:
    # the fallback model, not a retry, is the answer).
    retryable: bool = True


class CircuitOpen(OpenManusError):
    """A circuit breaker is open: the endpoint failed too often and is not called until its
    recovery timeout has passed (``resilience/breakers.py``)."""

    error_class: ErrorClass = "transient"

    def __init__(self, name: str, retry_in: float) -> None:
        super().__init__(
            f"{name} is not called: its circuit breaker is open after repeated failures "
            f"(next probe in {max(0.0, retry_in):.0f} s)",
            hint="Wait for the probe, or check the endpoint (openmanus doctor shows breakers).",
        )
        self.name = name
        self.retry_in = retry_in


class SessionNotFound(OpenManusError):
    error_class: ErrorClass = "user"


class SandboxError(OpenManusError):
    """The sandbox could not run a command (not: the command failed)."""

    error_class: ErrorClass = "security"
