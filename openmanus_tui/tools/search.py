"""The ``search_info`` tool: web search through a pluggable backend, plus workspace text search.

``search_info(query, max_results=5, source="auto")`` searches the web (``source="web"``), the
workspace's text files (``"workspace"``) or both (``"auto"``); ``max_results`` applies to each
source. The model sees a numbered list ``N. Title — URL (date)`` with an indented snippet, capped
in size; ``ToolResult.data["hits"]`` carries every hit as a dict (title, url, snippet, date,
source). Backends, their configuration (``OPENMANUS_SEARCH__BACKEND`` / ``__BASE_URL`` /
``__PROXY``) and the workspace search live in ``search_backends``.

Failures never raise: when the web backend cannot be reached (no network, DNS failure, refused
connection, misconfiguration) the result says ``web search is unavailable: <reason>`` and, when
the workspace was searched too, that the results come from the workspace only. The status is
``error`` only when no source could give anything. Web calls are bounded (``WEB_TIMEOUT`` per
attempt) and a transient failure (timeout, rate limit, HTTP 5xx) with nothing else to show is
retried once by ``run_tool`` (the tool is read-only; backoff with jitter); refused connections
and DNS failures are not retried, so an offline machine gets its answer at once. Each web
backend has a circuit breaker (``search <backend>``), and web-only searches are answered from
the tool-result cache within its TTL.

Network policy: the search runs in this (host) process, not in the sandbox, so ``ctx.network``
— the sandbox's network switch for code the model runs — does not apply. The tool's risk is
``Risk.NETWORK``, so every call goes through the approval policy, which is where web access is
allowed or refused. Web hits then pass the ``[network]`` policy (``research/policy.py``: blocked
and allowed domains, private-address literals) before the model sees them: a refused hit is left
out, and a note says how many and why. Kept hits are registered as the session's sources
(``research/registry.py``), so a later ``web_fetch`` of the same URL merges into one record.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, field_validator

if TYPE_CHECKING:
    from openmanus_tui.resilience.breakers import BreakerBoard

from openmanus_tui.errors import CircuitOpen, ConfigError
from openmanus_tui.tools.base import Risk, ToolContext, ToolResult, ToolSpec
from openmanus_tui.tools.search_backends import (
    SearchBackend,
    SearchHit,
    SearchUnavailable,
    WorkspaceSearch,
    backend_from_env,
    clean_text,
)

RETRIES = 1  # extra attempts after a transient web failure (run_tool, with backoff)
TOOL_TIMEOUT = 20.0  # two web attempts of WEB_TIMEOUT each, plus the delay, fit inside
SNIPPET_CHARS = 300  # per hit, in the text the model sees (data keeps the full snippet)
OUTPUT_CAP_CHARS = 8000

Source = Literal["auto", "web", "workspace"]


class SearchInfoArgs(BaseModel):
    query: str = Field(max_length=500, description="What to search for, in plain words.")
    max_results: int = Field(
        default=5, ge=1, le=20, description="Maximum number of results from each source."
    )
    source: Source = Field(
        default="auto",
        description=(
            "'web' for the web only, 'workspace' for the workspace's text files only, "
            "'auto' for both."
        ),
    )

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("query is empty; say what to search for")
        return value


async def _web_search(
    backend: SearchBackend, query: str, max_results: int, breakers: BreakerBoard | None
) -> list[SearchHit]:
    """One search, through the backend's circuit breaker when the runtime has one."""
    if breakers is None:
        return await backend.search(query, max_results)
    try:
        return await breakers.call(
            f"search {backend.name}",
            lambda: backend.search(query, max_results),
            counts=lambda exc: isinstance(exc, SearchUnavailable),
        )
    except CircuitOpen as exc:
        raise SearchUnavailable(str(exc)) from None


def _format_hit(number: int, hit: SearchHit) -> str:
    head = f"{number}. {hit.title} — {hit.url}"
    if hit.date:
        head += f" ({hit.date})"
    snippet = clean_text(hit.snippet, SNIPPET_CHARS)
    return f"{head}\n   {snippet}" if snippet else head


def _render(
    query: str,
    sections: list[tuple[str, list[SearchHit]]],
    notes: list[str],
) -> tuple[str, bool]:
    """The numbered list the model sees, and whether the size cap cut it."""
    lines = [*notes, f"Results for {query!r}:"] if any(h for _, h in sections) else list(notes)
    size = sum(len(line) + 1 for line in lines)
    number = 0
    shown = 0
    total = sum(len(hits) for _, hits in sections)
    for heading, hits in sections:
        if not hits:
            continue
        lines.append(heading)
        size += len(heading) + 1
        for hit in hits:
            number += 1
            entry = _format_hit(number, hit)
            if size + len(entry) + 1 > OUTPUT_CAP_CHARS:
                lines.append(f"[{total - shown} more results not shown: output limit reached]")
                return "\n".join(lines), True
            lines.append(entry)
            size += len(entry) + 1
            shown += 1
    return "\n".join(lines), False


async def _screen(
    ctx: ToolContext, hits: list[SearchHit], query: str
) -> tuple[list[SearchHit], list[str], dict[str, dict[str, int]]]:
    """The web hits the network policy lets through, the reasons for the others, and the
    source numbers of the kept ones by URL. Kept hits are registered as sources of the session
    (``ctx.extra["sources"]``, a SourceService); without one, the policy comes from the
    settings (the defaults if they cannot be read) and nothing is registered."""
    service = ctx.extra.get("sources")
    if service is None:
        from openmanus_tui.config import NetworkSettings, load_settings
        from openmanus_tui.research.policy import NetworkPolicy, PolicyRefusal

        try:
            network = load_settings().network
        except ConfigError:
            network = NetworkSettings()
        policy = NetworkPolicy.from_settings(network)
        kept, refused = [], []
        for hit in hits:
            try:
                policy.check_url(hit.url)
                kept.append(hit)
            except PolicyRefusal as exc:
                refused.append(str(exc))
        return kept, refused, {}
    screened, refused = await service.screen_hits(
        [hit.as_dict() for hit in hits], session_id=ctx.session_id or None, query=query
    )
    by_url = {hit.url: hit for hit in hits}
    kept = [by_url[h["url"]] for h in screened if h["url"] in by_url]
    numbers = {
        h["url"]: {"source_number": h["source_number"]} for h in screened if "source_number" in h
    }
    return kept, refused, numbers


async def _search_info(ctx: ToolContext, args: SearchInfoArgs) -> ToolResult:
    want_web = args.source in ("auto", "web")
    want_workspace = args.source in ("auto", "workspace")
    backend: SearchBackend | None = None
    web_error: str | None = None
    if want_web:
        try:
            backend = backend_from_env()
        except ConfigError as exc:
            web_error = f"search is misconfigured: {exc}"

    workspace = WorkspaceSearch(ctx.workspace)

    async def web() -> list[SearchHit] | SearchUnavailable:
        if backend is None:
            return []
        try:
            return await _web_search(backend, args.query, args.max_results, ctx.breakers)
        except SearchUnavailable as exc:
            return exc
        except Exception as exc:  # a registered third-party backend broke its contract
            return SearchUnavailable(f"{backend.name} failed: {type(exc).__name__}: {exc}")

    async def local() -> list[SearchHit] | SearchUnavailable:
        if not want_workspace:
            return []
        try:
            return await workspace.search(args.query, args.max_results)
        except SearchUnavailable as exc:
            return exc

    web_out, local_out = await asyncio.gather(web(), local())
    transient = False
    if isinstance(web_out, SearchUnavailable):
        web_error = str(web_out)
        transient = web_out.transient
    local_error = str(local_out) if isinstance(local_out, SearchUnavailable) else None
    web_hits = web_out if isinstance(web_out, list) else []
    local_hits = local_out if isinstance(local_out, list) else []
    web_hits, refused, numbers = await _screen(ctx, web_hits, args.query)
    hits = [*web_hits, *local_hits]

    failed = bool(web_error or local_error)
    status: Literal["ok", "error"] = "error" if failed and not hits else "ok"
    lead = "Error: " if status == "error" else "Note: "  # on the first line only
    notes: list[str] = []
    if web_error and want_workspace and local_error is None:
        where = "results below are from" if local_hits else "searched"
        notes.append(f"web search is unavailable: {web_error}; {where} the workspace only.")
    elif web_error:
        notes.append(f"web search is unavailable: {web_error}.")
    if refused:
        notes.append(
            f"{len(refused)} web result{'s' if len(refused) != 1 else ''} left out by the "
            f"network policy ({refused[0]})."
        )
    if local_error:
        notes.append(f"workspace search failed: {local_error}.")
    if want_workspace and local_error is None and workspace.stopped_early:
        notes.append("the workspace is large; only part of it was searched.")
    notes = [("" if i else lead) + note for i, note in enumerate(notes)]
    if not hits:
        searched = [
            name
            for name, wanted, err in (
                ("web", want_web, web_error),
                ("workspace", want_workspace, local_error),
            )
            if wanted and err is None
        ]
        if searched:
            notes.append(f"No results for {args.query!r} in the {' or the '.join(searched)}.")

    backend_name = backend.name if backend is not None else None
    content, truncated = _render(
        args.query,
        [(f"Web ({backend_name}):", web_hits), ("Workspace:", local_hits)],
        notes,
    )
    data: dict[str, Any] = {
        "query": args.query,
        "source": args.source,
        "backend": backend_name,
        "web_error": web_error,
        "workspace_error": local_error,
        "hits": [{**hit.as_dict(), **numbers.get(hit.url, {})} for hit in hits],
        "refused": refused,
    }
    # A web failure that may pass, with nothing else to show: run_tool tries again.
    return ToolResult(
        content=content, status=status, truncated=truncated, data=data,
        transient=transient and status == "error",
    )


def _cacheable(args: dict[str, Any]) -> bool:
    # Only the web: the workspace's files change under a cached answer.
    return args.get("source") == "web"


SEARCH_INFO = ToolSpec(
    name="search_info",
    description=(
        "Search the web and/or the workspace's text files. Returns a numbered list: title, URL "
        "(for workspace files 'path:line'), date when known, and a snippet. Use it to find "
        "current information, documentation or where something is mentioned in the workspace."
    ),
    args_model=SearchInfoArgs,
    func=_search_info,
    tier=1,
    risk=Risk.NETWORK,
    timeout=TOOL_TIMEOUT,
    retries=RETRIES,
    read_only=True,
    cacheable=_cacheable,
)


def search_tools() -> list[ToolSpec]:
    return [SEARCH_INFO]
