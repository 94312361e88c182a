"""Run the approved tool calls of one step, exactly once across resumes and restarts.

The events table doubles as the tool journal: ``tool_started`` is committed before a tool runs
and ``tool_finished`` after, both keyed by the step's base checkpoint and the call id. When the
``call_tool`` node runs again for the same step (after a crash or a kill), a finished call gives
back its recorded result, and a call that started but never finished is reported to the model
as interrupted instead of being run a second time — its side effects may already have happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import ToolMessage

from openmanus_tui import events as ev
from openmanus_tui.limits import DEFAULT_TOOL_RESULT_CHARS, cut, scrub
from openmanus_tui.resilience.tool_cache import ToolCache, call_key
from openmanus_tui.runtime.sink import EventSink
from openmanus_tui.sandbox import git_guard
from openmanus_tui.tools.base import Risk, ToolContext, ToolRegistry, ToolResult, run_tool
from openmanus_tui.tools.provenance import SYSTEM, detect, flagged_excerpt

INTERRUPTED = (
    "This call was started but the program stopped before it finished, so its result is "
    "unknown and it was not run again. Check its effects before retrying."
)


class ToolRunner:
    def __init__(
        self,
        sink: EventSink,
        registry: ToolRegistry,
        make_context: Callable[[str], ToolContext],
        isolation: Callable[[], str | None],
        *,
        result_chars: int = DEFAULT_TOOL_RESULT_CHARS,
        cache: ToolCache | None = None,
        before: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None,
    ) -> None:
        self.result_chars = result_chars
        # Awaited with a step's calls before they run: the workspace snapshot of the previous
        # step, taken while the model answered, must be complete before anything can change
        # it, and a step that may write gets a snapshot of its own (History.before_tools).
        self.before = before
        # Results of read-only network tools (issue 16); None or disabled: always run.
        self.cache = cache if cache is not None and cache.enabled else None
        self.sink = sink
        self.registry = registry
        self.make_context = make_context
        self.isolation = isolation
        self._bases_run: set[str] = set()

    async def __call__(
        self, calls: list[dict[str, Any]], decisions: dict[str, dict[str, Any]], base: str
    ) -> tuple[list[ToolMessage], list[dict[str, Any]]]:
        messages: list[ToolMessage] = []
        results: list[dict[str, Any]] = []
        # A step this process has just checkpointed and never started cannot have journal
        # entries: skip the lookups. Marked before any tool starts, so a cancelled step run
        # again in this process still consults the journal.
        fresh = base in self.sink.fresh_checkpoints and base not in self._bases_run
        self._bases_run.add(base)
        if self.before is not None:
            await self.before(calls)
        for call in calls:
            decision = decisions.get(call["id"])
            finished = await self._run_one(call, decision, base, fresh)
            # What the program wrote itself is not marked as untrusted output in prompts.
            written_here = finished.status in ("denied", "interrupted") or (
                (decision or {}).get("decision") == "error"
            )
            messages.append(
                ToolMessage(
                    content=finished.result,
                    tool_call_id=call["id"],
                    name=call["name"],
                    id=f"result_{base[-12:]}_{call['id']}",
                    status="success" if finished.status == "ok" else "error",
                    response_metadata={"provenance": SYSTEM} if written_here else {},
                )
            )
            results.append(
                {
                    "call_id": call["id"],
                    "tool": call["name"],
                    "status": finished.status,
                    "duration_ms": finished.duration_ms,
                    "isolation": finished.isolation,
                    "truncated": finished.truncated,
                    "artifacts": finished.artifacts,
                }
            )
        return messages, results

    async def _git_before(self, ctx: ToolContext) -> git_guard.GitGuard | None:
        try:
            guard = git_guard.guard_for(Path(ctx.workspace))
            found = await asyncio.to_thread(guard.before)
        except Exception as exc:  # the check must never take a run down
            await self.sink.emit(ev.Notice(level="warning", text=f"git check failed: {exc}"))
            return None
        if found:
            await self.sink.emit(
                ev.Notice(level="warning", text=git_guard.summary(found, before=True))
            )
        return guard

    async def _git_after(self, guard: git_guard.GitGuard, result: ToolResult) -> None:
        try:
            found = await asyncio.shield(asyncio.to_thread(guard.after))
        except Exception as exc:
            await self.sink.emit(ev.Notice(level="warning", text=f"git check failed: {exc}"))
            return
        if found:
            text = git_guard.summary(found)
            await self.sink.emit(ev.Notice(level="warning", text=text))
            result.content += f"\n\n[{text}]"

    async def _finish(self, base: str, call: dict[str, Any], result: ToolResult) -> ev.ToolFinished:
        # Any tool's result (built-in, web, MCP) is storable and bounded before it is recorded.
        content, was_cut = cut(
            scrub(result.content), self.result_chars, "tool result", "limits.tool_result_chars"
        )
        if was_cut:
            result.truncated = True
            result.status = "truncated" if result.status == "ok" else result.status
        result.content = content
        event = ev.ToolFinished(
            call_id=call["id"],
            tool=call["name"],
            status=result.status,
            result=result.content,
            duration_ms=result.duration_ms,
            isolation=result.isolation,
            truncated=result.truncated,
            artifacts=result.artifacts,
            checkpoint_id=base,
            cached=result.cached,
        )
        await self.sink.emit(event)
        return event

    async def _run_one(
        self, call: dict[str, Any], decision: dict[str, Any] | None, base: str, fresh: bool
    ) -> ev.ToolFinished:
        journal = (
            [] if fresh else await self.sink.db.journal(self.sink.session_id, base, call["id"])
        )
        done = next((e for e in journal if isinstance(e, ev.ToolFinished)), None)
        if done is not None:
            return done
        if journal:  # started, never finished
            return await self._finish(
                base,
                call,
                ToolResult(INTERRUPTED, status="interrupted", isolation=self.isolation()),
            )
        decision = decision or {"decision": "deny", "reason": "no decision was recorded"}
        kind = decision.get("decision")
        if kind == "error":
            return await self._finish(
                base, call, ToolResult(f"Error: {decision.get('reason', '')}", status="error")
            )
        if kind == "deny":
            reason = decision.get("reason") or "no reason given"
            who = "The user" if decision.get("by") == "user" else "The approval policy"
            return await self._finish(
                base,
                call,
                ToolResult(f"{who} denied this call. Reason: {reason}", status="denied"),
            )
        spec = self.registry.get(call["name"])
        if spec is None:  # the registry changed between proposal and execution
            return await self._finish(
                base, call, ToolResult(f"Error: unknown tool {call['name']!r}", status="error")
            )
        await self.sink.emit(
            ev.ToolStarted(
                call_id=call["id"],
                tool=call["name"],
                args=call["args"],
                isolation=self.isolation(),
                checkpoint_id=base,
            )
        )
        ctx = self.make_context(call["id"])
        # Escape 2 of issue 12: every tool that can write is followed by a host-side check of
        # the workspace's git repositories (new hooks and executing config are neutralised).
        guard = await self._git_before(ctx) if spec.risk != Risk.READ else None
        started = time.perf_counter()
        key = call_key(spec, call["args"]) if self.cache is not None else None
        cached = await self.cache.get(spec, key) if self.cache is not None and key else None
        if cached is not None:
            result = cached
            await self.sink.emit(
                ev.CacheHit(
                    cache="tool", label=spec.name, key=key[:16] if key else "",
                    call_id=call["id"], checkpoint_id=base,
                )
            )
        else:
            # Each attempt of a read-only tool's retries may take its whole timeout.
            limit = (spec.timeout + 1) * (spec.retry_limit + 1) + 30
            try:
                result = await asyncio.wait_for(run_tool(spec, ctx, call["args"]), limit)
            except TimeoutError:
                result = ToolResult(
                    f"Error: {spec.name} did not finish within {spec.timeout:.0f} s",
                    status="timeout",
                )
            if self.cache is not None and key:
                await self.cache.put(spec, key, result, self.sink.session_id)
        if guard is not None:
            await self._git_after(guard, result)
        result.duration_ms = result.duration_ms or (time.perf_counter() - started) * 1000
        result.isolation = result.isolation or self.isolation()
        self.registry.record(
            spec.name, result.duration_ms, result.status == "ok", cached=result.cached,
            retries=int((result.data or {}).get("retries", 0) or 0),
        )
        finished = await self._finish(base, call, result)
        patterns = detect(finished.result)
        if patterns:  # shown to the person; the model gets the result marked untrusted anyway
            await self.sink.emit(
                ev.InjectionFlagged(
                    call_id=call["id"],
                    tool=call["name"],
                    patterns=patterns,
                    excerpt=flagged_excerpt(finished.result),
                    checkpoint_id=base,
                )
            )
        return finished
