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


class SessionNotFound(OpenManusError):
    error_class: ErrorClass = "user"


class SandboxError(OpenManusError):
    """The sandbox could not run a command (not: the command failed)."""

    error_class: ErrorClass = "security"
