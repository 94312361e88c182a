"""Search backends for ``search_info``: the hit type, the backend protocol, the web backends and
their registry, and the workspace text search.

A backend is anything with a ``name`` and ``async search(query, max_results) -> list[SearchHit]``
that raises ``SearchUnavailable`` (never anything else) when it cannot search. Web backends are
registered by name in ``WEB_BACKENDS``; third parties can add one with ``register_backend``.

* ``ddgs`` (default): the ``ddgs`` metasearch library (``DDGS().text``), which queries several
  public engines itself. It has no base URL; it can be sent through an HTTP / SOCKS proxy.
* ``searxng``: any server answering ``GET {base_url}/search?q=...&format=json`` with SearXNG's
  JSON shape (``{"results": [{"title", "url", "content", "publishedDate"?, "engine"?}]}``), such
  as a self-hosted SearXNG with ``json`` in ``search.formats``.

Configuration is read from the environment by ``backend_from_env`` (the one place that reads it):

* ``OPENMANUS_SEARCH__BACKEND``  — ``ddgs`` (default) or ``searxng`` (or a registered name).
* ``OPENMANUS_SEARCH__BASE_URL`` — the server for ``searxng`` (required there), e.g.
  ``http://127.0.0.1:8888``; ignored by ``ddgs``.
* ``OPENMANUS_SEARCH__PROXY``    — optional proxy URL (``http://``, ``https://``, ``socks5://``)
  for either backend; ``ddgs`` also honours its own ``DDGS_PROXY``.

``WorkspaceSearch`` searches the text files of a workspace through ``safe_fs.Workspace`` (so it
never leaves the workspace or follows symlinks out of it): case-insensitive term matching, files
ranked by how many query terms they contain and then by hit count, one hit per file pointing at
its best line. It skips ``.git`` and similar trees, symlinks, binary and large files, and stops
after a bounded number of files and bytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat as stat_mod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from openmanus_tui.errors import ConfigError, ErrorClass, OpenManusError
from openmanus_tui.tools.safe_fs import Workspace, WorkspacePathError

ENV_BACKEND = "OPENMANUS_SEARCH__BACKEND"
ENV_BASE_URL = "OPENMANUS_SEARCH__BASE_URL"
ENV_PROXY = "OPENMANUS_SEARCH__PROXY"
DEFAULT_BACKEND = "ddgs"

WEB_TIMEOUT = 8.0  # seconds per web attempt, all included (connect, read, ddgs's engine fan-out)


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: str
    date: str | None
    source: str  # which backend produced it: "ddgs", "searxng", "workspace", ...

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SearchUnavailable(OpenManusError):
    """A backend could not search; ``str()`` is a one-line reason fit for the model.

    ``error_class`` is ``"transient"`` when a retry may help (timeouts, rate limits, 5xx) and
    ``"permanent"`` otherwise (no network, DNS failure, connection refused, bad answers).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        klass: ErrorClass = "transient" if transient else "permanent"
        super().__init__(message, error_class=klass)

    @property
    def transient(self) -> bool:
        return self.error_class == "transient"


@runtime_checkable
class SearchBackend(Protocol):
    name: str

    async def search(self, query: str, max_results: int) -> list[SearchHit]: ...


_SPACE = re.compile(r"\s+")


def clean_text(value: object, limit: int = 500) -> str:
    """One line of text: whitespace collapsed, cut at ``limit`` characters."""
    text = _SPACE.sub(" ", str(value or "")).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_REPR_WRAPPED = re.compile(r"^(\w+): \1\((['\"])(.*)\2\)$")


def _error_text(exc: BaseException) -> str:
    """``str(exc)`` without ddgs's ``Name: Name('...')`` doubling."""
    text = clean_text(exc, 300)
    found = _REPR_WRAPPED.match(text)
    return f"{found.group(1)}: {found.group(3)}" if found else text


def _date(value: object) -> str | None:
    text = clean_text(value, 64)
    return text or None


# --- ddgs ----------------------------------------------------------------------------------


class DdgsBackend:
    """Web search through ``ddgs.DDGS().text`` (blocking, so it runs in a worker thread)."""

    name = "ddgs"

    def __init__(
        self,
        *,
        proxy: str | None = None,
        timeout: float = WEB_TIMEOUT,
        engines: str = "auto",
        region: str = "us-en",
    ) -> None:
        self.proxy = proxy
        self.timeout = timeout
        self.engines = engines
        self.region = region

    def _search_sync(self, query: str, max_results: int) -> list[dict[str, Any]]:
        import ddgs  # imported here: its engines load lazily, and tests swap ``ddgs.DDGS``
        from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

        # Per-request timeout below the overall one, so engines time out before we give up.
        per_request = max(1, int(self.timeout // 2))
        try:
            with ddgs.DDGS(proxy=self.proxy, timeout=per_request) as client:
                return client.text(
                    query, max_results=max_results, backend=self.engines, region=self.region
                )
        except (TimeoutException, RatelimitException) as exc:
            raise SearchUnavailable(f"ddgs: {_error_text(exc)}", transient=True) from None
        except DDGSException as exc:
            message = _error_text(exc)
            if message == "No results found.":  # ddgs's wording when every engine answered
                return []
            raise SearchUnavailable(f"ddgs: {message or type(exc).__name__}") from None
        except Exception as exc:  # a parser bug in one engine must not escape as a traceback
            detail = f"{type(exc).__name__}: {clean_text(exc, 200)}"
            raise SearchUnavailable(f"ddgs failed: {detail}") from None

    async def search(self, query: str, max_results: int) -> list[SearchHit]:
        try:
            rows = await asyncio.wait_for(
                asyncio.to_thread(self._search_sync, query, max_results), self.timeout
            )
        except TimeoutError:
            # The worker thread ends on its own request timeouts; we do not wait for it.
            raise SearchUnavailable(
                f"ddgs: no answer within {self.timeout:.0f} s", transient=True
            ) from None
        hits = []
        for row in rows[:max_results]:
            if not isinstance(row, dict):
                continue
            url = clean_text(row.get("href") or row.get("url"), 2000)
            if not url:
                continue
            hits.append(
                SearchHit(
                    title=clean_text(row.get("title"), 300) or url,
                    url=url,
                    snippet=clean_text(row.get("body") or row.get("snippet"), 1000),
                    date=_date(row.get("date")),  # only news-type results carry one
                    source=self.name,
                )
            )
        return hits


# --- searxng-style JSON --------------------------------------------------------------------


def _describe_http_error(exc: httpx.HTTPError, base_url: str) -> SearchUnavailable:
    detail = clean_text(exc, 200) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return SearchUnavailable(f"{base_url} did not answer in time ({detail})", transient=True)
    if isinstance(exc, httpx.ConnectError):
        # Connection refused, DNS failure, no route: the typical offline case; no retry.
        return SearchUnavailable(f"cannot connect to {base_url} ({detail})")
    return SearchUnavailable(f"request to {base_url} failed ({detail})")


class SearxngBackend:
    """``GET {base_url}/search?q=...&format=json`` on a SearXNG (or compatible) server."""

    name = "searxng"

    def __init__(
        self,
        base_url: str,
        *,
        proxy: str | None = None,
        timeout: float = WEB_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"search base URL must start with http:// or https://: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.proxy = proxy
        self.timeout = timeout
        self.transport = transport

    async def search(self, query: str, max_results: int) -> list[SearchHit]:
        url = f"{self.base_url}/search"
        try:
            async with httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
                proxy=self.proxy,
                transport=self.transport,
                follow_redirects=True,
                headers={"Accept": "application/json"},
            ) as client:
                resp = await asyncio.wait_for(
                    client.get(url, params={"q": query, "format": "json"}), self.timeout
                )
        except TimeoutError:
            raise SearchUnavailable(
                f"{self.base_url} did not answer within {self.timeout:.0f} s", transient=True
            ) from None
        except httpx.HTTPError as exc:
            raise _describe_http_error(exc, self.base_url) from None
        if resp.status_code == 403:
            raise SearchUnavailable(
                f"{url} refused the request (HTTP 403); on SearXNG, add 'json' to "
                "search.formats in settings.yml"
            )
        if resp.status_code == 429 or resp.status_code >= 500:
            raise SearchUnavailable(f"{url} answered HTTP {resp.status_code}", transient=True)
        if resp.status_code != 200:
            raise SearchUnavailable(f"{url} answered HTTP {resp.status_code}")
        try:
            payload = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SearchUnavailable(f"{url} did not answer with JSON") from None
        rows = payload.get("results") if isinstance(payload, dict) else None
        if not isinstance(rows, list):
            raise SearchUnavailable(f"{url} answered JSON without a 'results' list")
        hits: list[SearchHit] = []
        for row in rows:
            if len(hits) >= max_results:
                break
            if not isinstance(row, dict) or not row.get("url"):
                continue
            url_text = clean_text(row["url"], 2000)
            hits.append(
                SearchHit(
                    title=clean_text(row.get("title"), 300) or url_text,
                    url=url_text,
                    snippet=clean_text(row.get("content"), 1000),
                    date=_date(row.get("publishedDate") or row.get("published_date")),
                    source=self.name,
                )
            )
        return hits


# --- registry ------------------------------------------------------------------------------

BackendFactory = Callable[..., SearchBackend]
"""``factory(base_url=str | None, proxy=str | None) -> SearchBackend``; may raise ConfigError."""


def _make_ddgs(*, base_url: str | None = None, proxy: str | None = None) -> SearchBackend:
    return DdgsBackend(proxy=proxy)  # ddgs picks its engines itself; a base URL has no meaning


def _make_searxng(*, base_url: str | None = None, proxy: str | None = None) -> SearchBackend:
    if not base_url:
        raise ConfigError(f"the searxng search backend needs a server URL in {ENV_BASE_URL}")
    return SearxngBackend(base_url, proxy=proxy)


WEB_BACKENDS: dict[str, BackendFactory] = {"ddgs": _make_ddgs, "searxng": _make_searxng}


def register_backend(name: str, factory: BackendFactory) -> None:
    WEB_BACKENDS[name.lower()] = factory


def make_backend(
    name: str = DEFAULT_BACKEND, *, base_url: str | None = None, proxy: str | None = None
) -> SearchBackend:
    factory = WEB_BACKENDS.get(name.strip().lower())
    if factory is None:
        known = ", ".join(sorted(WEB_BACKENDS))
        raise ConfigError(f"unknown search backend {name!r} (known: {known})")
    return factory(base_url=base_url, proxy=proxy)


def backend_from_env(env: Mapping[str, str] | None = None) -> SearchBackend:
    """The configured web backend (see the module docstring); ConfigError if it is wrong."""
    env = os.environ if env is None else env
    return make_backend(
        env.get(ENV_BACKEND, "").strip() or DEFAULT_BACKEND,
        base_url=env.get(ENV_BASE_URL, "").strip() or None,
        proxy=env.get(ENV_PROXY, "").strip() or None,
    )


# --- workspace -----------------------------------------------------------------------------

SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".mypy_cache",
     ".pytest_cache", ".ruff_cache", ".tox", ".cache"}
)  # fmt: skip
MAX_FILE_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 32 * 1024 * 1024
MAX_FILES = 5000  # files looked at, matching or not
MAX_DEPTH = 16
MAX_LINE_CHARS = 300
SNIFF_BYTES = 8192


def query_terms(query: str) -> list[str]:
    """Lower-case search terms, de-duplicated, in order; surrounding quotes and commas dropped."""
    terms: list[str] = []
    for word in query.lower().split():
        word = word.strip("\"'`,;")
        if word and word not in terms:
            terms.append(word)
    return terms


@dataclass
class _FileMatch:
    path: str
    terms_found: int
    hits: int
    best_line: int
    best_text: str
    mtime: float


class WorkspaceSearch:
    """Ranked term search over a workspace's text files (see the module docstring)."""

    name = "workspace"

    def __init__(self, root: Path | str, *, max_files: int = MAX_FILES) -> None:
        self.root = Path(root)
        self.max_files = max_files
        self.stopped_early = False  # set when a bound ended the last search before the end

    async def search(self, query: str, max_results: int) -> list[SearchHit]:
        try:
            return await asyncio.to_thread(self.search_sync, query, max_results)
        except (WorkspacePathError, OSError) as exc:
            raise SearchUnavailable(f"cannot search the workspace: {exc}") from None

    def search_sync(self, query: str, max_results: int) -> list[SearchHit]:
        terms = query_terms(query)
        if not terms:
            return []
        ws = Workspace(self.root)
        matches: list[_FileMatch] = []
        budget = {"files": self.max_files, "bytes": MAX_TOTAL_BYTES}
        stack: list[tuple[str, int]] = [("", 0)]
        cut = False
        while stack and budget["files"] > 0 and budget["bytes"] > 0:
            rel_dir, depth = stack.pop()
            try:
                listing = ws.list_dir(rel_dir or ".")
            except WorkspacePathError:
                continue  # removed or unreadable meanwhile
            subdirs = []
            for entry in listing.entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                # Symlinks are not followed: they could loop or duplicate files.
                if entry.kind == "dir":
                    if entry.name not in SKIPPED_DIRS and depth < MAX_DEPTH:
                        subdirs.append((rel, depth + 1))
                elif entry.kind == "file" and 0 < entry.size <= MAX_FILE_BYTES:
                    if budget["files"] <= 0 or budget["bytes"] <= 0:
                        cut = True
                        break
                    budget["files"] -= 1
                    budget["bytes"] -= entry.size
                    found = _match_file(ws, rel, terms)
                    if found is not None:
                        matches.append(found)
            stack.extend(reversed(subdirs))  # depth-first, in name order
        self.stopped_early = cut or bool(stack)
        matches.sort(key=lambda m: (-m.terms_found, -m.hits, m.path))
        return [
            SearchHit(
                title=f"{m.path} ({m.hits} match{'es' if m.hits != 1 else ''})",
                url=f"{m.path}:{m.best_line}",
                snippet=m.best_text,
                date=datetime.fromtimestamp(m.mtime, UTC).strftime("%Y-%m-%d"),
                source=self.name,
            )
            for m in matches[:max_results]
        ]


def _match_file(ws: Workspace, rel: str, terms: list[str]) -> _FileMatch | None:
    try:
        with ws.open_read(rel) as fh:
            st = os.fstat(fh.fileno())
            if not stat_mod.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
                return None  # changed since it was listed
            data = fh.read(MAX_FILE_BYTES + 1)
    except (WorkspacePathError, OSError):
        return None  # hard-linked, vanished, unreadable: not worth failing the search
    if b"\x00" in data[:SNIFF_BYTES]:
        return None  # binary
    text = data.decode("utf-8", errors="replace")
    if text[:SNIFF_BYTES].count("\ufffd") > 8:
        return None  # not UTF-8 text to speak of
    seen: set[str] = set()
    total = 0
    best: tuple[tuple[int, int], int, str] | None = None  # (rank key, line number, line)
    for lineno, line in enumerate(text.splitlines(), start=1):
        lower = line.lower()
        counts = [lower.count(t) for t in terms]
        hits = sum(counts)
        if not hits:
            continue
        total += hits
        seen.update(t for t, c in zip(terms, counts, strict=True) if c)
        key = (sum(1 for c in counts if c), hits)  # distinct terms on the line, then hits
        if best is None or key > best[0]:
            best = (key, lineno, line)
    if best is None:
        return None
    _, lineno, line = best
    return _FileMatch(rel, len(seen), total, lineno, clean_text(line, MAX_LINE_CHARS), st.st_mtime)
