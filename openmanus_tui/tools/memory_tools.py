"""The agent's memory tools: ``memory_save``, ``memory_search`` and ``observation_read``.

They reach the session's :class:`~openmanus_tui.memory.manager.MemoryManager` through
``ToolContext.extra["memory"]`` (set by the runtime); without one they answer with an error
result rather than failing.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from openmanus_tui.errors import OpenManusError
from openmanus_tui.tools.base import Risk, ToolContext, ToolResult, ToolSpec

Scope = Literal["user", "project", "session"]
MAX_PIECE = 16_000


class MemorySaveArgs(BaseModel):
    text: str = Field(description="The fact, preference or note to remember, self-contained.")
    scope: Scope = Field(
        "project",
        description="user: about the person, for every project; project: about this "
        "project; session: only this conversation.",
    )
    kind: Literal["fact", "preference", "note"] = "note"


class MemorySearchArgs(BaseModel):
    query: str = Field(description="What to look for, in a few words.")
    scope: Scope | None = Field(None, description="Limit the search to one scope.")
    limit: int = Field(5, ge=1, le=20)


class ObservationReadArgs(BaseModel):
    handle: str = Field(description="The handle of a stored result, like obs_0123456789ab.")
    offset: int = Field(0, ge=0, description="Character offset to start reading at.")
    length: int = Field(4000, ge=1, le=MAX_PIECE, description="Characters to read.")


def _manager(ctx: ToolContext) -> Any:
    memory = ctx.extra.get("memory")
    if memory is None:
        raise OpenManusError("memory is not available in this session")
    return memory


async def _save(ctx: ToolContext, args: MemorySaveArgs) -> ToolResult:
    try:
        record = await _manager(ctx).save(args.text, args.scope, args.kind)
    except OpenManusError as exc:
        return ToolResult(f"Error: {exc.message}", status="error")
    return ToolResult(
        f"Saved to {args.scope} memory as {record.key}.",
        data={"memory": record.as_dict()},
    )


async def _search(ctx: ToolContext, args: MemorySearchArgs) -> ToolResult:
    try:
        found, mode = await _manager(ctx).search(args.query, args.scope, args.limit)
    except OpenManusError as exc:
        return ToolResult(f"Error: {exc.message}", status="error")
    if not found:
        return ToolResult(f"No memories match {args.query!r} ({mode} search).")
    lines = [f"{len(found)} memories ({mode} search):"]
    for r in found:
        lines.append(f"- [{r.scope}/{r.kind}] {r.text} (key {r.key}, score {r.score:g})")
    return ToolResult("\n".join(lines), data={"memories": [r.as_dict() for r in found]})


async def _read(ctx: ToolContext, args: ObservationReadArgs) -> ToolResult:
    try:
        piece = await _manager(ctx).read_observation(args.handle, args.offset, args.length)
    except OpenManusError as exc:
        return ToolResult(f"Error: {exc.message}", status="error")
    if piece is None:
        return ToolResult(f"Error: no stored observation {args.handle!r}", status="error")
    end = args.offset + len(piece.text)
    more = (
        f"; continue with offset={piece.next_offset}"
        if piece.next_offset is not None
        else "; that is the end"
    )
    header = f"[{piece.handle}: characters {args.offset}–{end} of {piece.total_chars}{more}]"
    return ToolResult(f"{header}\n{piece.text}")


def memory_tools() -> list[ToolSpec]:
    return [
        ToolSpec(
            name="memory_save",
            description="Remember a fact, a preference of the user or a project note across "
            "sessions. Save only what will matter later.",
            args_model=MemorySaveArgs,
            func=_save,
            risk=Risk.WRITE,
            timeout=30,
        ),
        ToolSpec(
            name="memory_search",
            description="Search long-term memory (facts, preferences, project notes saved in "
            "this or earlier sessions).",
            args_model=MemorySearchArgs,
            func=_search,
            risk=Risk.READ,
            timeout=30,
        ),
        ToolSpec(
            name="observation_read",
            description="Read part of a large tool result that was stored with a handle "
            "(obs_…) instead of being shown in full.",
            args_model=ObservationReadArgs,
            func=_read,
            risk=Risk.READ,
            timeout=30,
        ),
    ]
