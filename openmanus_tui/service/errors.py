"""The API's refusals: a status code and one line for the client (never a stack trace)."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
