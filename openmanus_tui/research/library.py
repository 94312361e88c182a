"""What the research graph reads through: search, read a source, and its stored text again.

The graph never fetches or registers anything itself; it calls a :class:`Library`. The
session's library (``research/session_library.py``) goes through the network policy, the
document store and the session's source registry; tests may pass their own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass
class ReadSource:
    """One source as the graph sees it after reading it."""

    location: str  # the normalised URL, or "file:<workspace path>"
    title: str
    domain: str
    text: str
    published: str | None = None
    credibility: float | None = None
    freshness: float | None = None
    factors: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""

    def meta(self) -> dict[str, Any]:
        """Everything but the text: what the graph's state keeps."""
        out = asdict(self)
        out.pop("text")
        out["id"] = self.location
        out["excerpt"] = " ".join(self.text.split())[:300]
        return out


@dataclass
class Hit:
    location: str
    title: str = ""
    snippet: str = ""


class Library(Protocol):
    async def search(self, query: str, max_results: int, *, web: bool) -> list[Hit]:
        """Candidate sources for ``query``: the workspace's files, and the web when ``web``.
        Never raises for an unreachable backend: returns what it has."""
        ...

    async def read(self, location: str) -> ReadSource:
        """Read (or take from the store) one source; raises ``OpenManusError`` with a one-line
        reason when it is refused (network policy) or cannot be read."""
        ...

    async def text(self, location: str) -> str | None:
        """The stored text of a source read before (in this or an earlier process)."""
        ...

    async def cited(self, location: str, where: str) -> None:
        """Record that the report cites the source (for the registry's "cited by")."""
        ...

    async def corroborated(self, location: str, count: int) -> dict[str, Any] | None:
        """Record how many other independent domains support the source's findings; returns
        the source's new credibility (``{"value", "factors"}``) or None."""
        ...
