"""The ``web_fetch`` tool: read one web page (or PDF) through the network policy.

``web_fetch(url, max_chars=3000, offset=0)`` fetches the page (``research.SourceService``: the
``[network]`` policy on every hop, extraction, storage once per normalised URL, the session's
source registry, credibility and freshness), then shows the model a header — source number,
title, URL, author, dates, both scores with their factors, the stored document's handle — and
``max_chars`` characters of the text from ``offset``. The rest stays stored: calling again with
a later ``offset`` reads on from the stored copy (the page cache), without a new request.

A refused URL is an error result whose text is the policy's one-line reason; nothing of the page
reaches the model. A host that keeps failing (its circuit breaker is open, see
``research/service.py``) is not asked: the one-line error says when it will be tried again.
Risk ``network``: every call goes through the approval policy.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from openmanus_tui.errors import OpenManusError
from openmanus_tui.tools.base import Risk, ToolContext, ToolResult, ToolSpec

# With the header this stays under memory.observation_threshold_kb (4 KB): not excerpted twice.
DEFAULT_CHARS = 3000
TOOL_TIMEOUT = 60.0


class WebFetchArgs(BaseModel):
    url: str = Field(max_length=4000, description="The http(s) URL to read.")
    max_chars: int = Field(
        default=DEFAULT_CHARS, ge=200, le=50_000, description="How much of the text to return."
    )
    offset: int = Field(
        default=0, ge=0, description="Where to start in the text (to read on after a first call)."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("url is empty")
        if "://" not in value:
            value = "https://" + value
        return value


def _scores_line(record: Any) -> list[str]:
    cred, fresh = record.credibility, record.freshness
    cred_factors = "; ".join(str(f) for f in cred.factors)
    fresh_value = "unknown" if fresh.value is None else f"{fresh.value:.2f}"
    fresh_factors = "; ".join(f"{f.name}: {f.detail}" for f in fresh.factors)
    return [
        f"Credibility: {cred.value:.2f} ({cred_factors})",
        f"Freshness: {fresh_value} ({fresh_factors})",
    ]


def render(record: Any, text: str, offset: int, max_chars: int, url: str) -> tuple[str, bool]:
    """What the model sees, and whether text was left out."""
    total = len(text)
    start = min(offset, total)
    piece = text[start : start + max_chars]
    end = start + len(piece)
    number = f"[source {record.number}] " if record.number else ""
    dates = [f"published {record.published}" if record.published else "no publication date"]
    if record.modified:
        dates.append(f"modified {record.modified}")
    who = [f"author: {record.author}" if record.author else "author: not named"]
    if record.site:
        who.append(f"site: {record.site}")
    lines = [
        f"{number}{record.title}",
        f"URL: {record.url}",
        f"Domain: {record.domain} · {' · '.join(who)} · {', '.join(dates)}",
        *_scores_line(record),
        f"Document doc_{(record.content_hash or '')[:12]}: {total:,} characters; "
        f"showing {start:,}–{end:,}.",
        "",
        piece,
    ]
    more = end < total
    if more:
        lines.append(
            f"\n[… {total - end:,} more characters. Read on with "
            f'web_fetch(url="{url}", offset={end}) — from the stored copy, no new request.]'
        )
    return "\n".join(lines), more


async def _web_fetch(ctx: ToolContext, args: WebFetchArgs) -> ToolResult:
    from openmanus_tui.research.service import HostFailing  # the service is loaded by then

    service = ctx.extra.get("sources")
    if service is None:
        why = ctx.extra.get("sources_error") or "no source store in this context"
        return ToolResult(f"Error: web_fetch is not available: {why}", status="error")
    try:
        fetched = await service.fetch(args.url, session_id=ctx.session_id or None)
    except HostFailing as exc:
        # The host's circuit breaker is open: no request was made; one line says when it
        # will be tried again, so the model reads something else meanwhile.
        return ToolResult(f"Error: {exc}", status="error", data={
            "url": args.url, "breaker": exc.breaker, "retry_in": round(exc.retry_in, 1)})
    except OpenManusError as exc:
        return ToolResult(f"Error: {exc}", status="error", data={"refused": True, "url": args.url})
    record, doc = fetched.record, fetched.document
    content, more = render(record, doc.text, args.offset, args.max_chars, args.url)
    return ToolResult(
        content=content,
        truncated=more,
        data={
            "source": record.as_dict(),
            "offset": min(args.offset, len(doc.text)),
            "chars": len(doc.text),
            "from_cache": doc.from_cache,
        },
    )


WEB_FETCH = ToolSpec(
    name="web_fetch",
    description=(
        "Read a web page or PDF: returns its title, URL, author, dates, credibility and "
        "freshness scores with their factors, and up to max_chars characters of its text "
        "(call again with offset to read on). Pages refused by the network policy say why."
    ),
    args_model=WebFetchArgs,
    func=_web_fetch,
    tier=1,
    risk=Risk.NETWORK,
    timeout=TOOL_TIMEOUT,
)


def web_tools() -> list[ToolSpec]:
    return [WEB_FETCH]
