"""One session's memory: plans every model call, compacts, recalls, pins and stores observations.

The agent graph calls :meth:`MemoryManager.prepare` before each model call; the runtime's
session exposes :meth:`view`, :meth:`compaction`, pins, and the long-term memory for the TUI's
Memory pane and for ``/compact``. Automatic and requested compaction, and the preview, all go
through :meth:`compaction`, so a preview is exactly what applying it stores.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from openmanus_tui.agent.context import ContextPlan, PromptPart, Turn, plan_context
from openmanus_tui.agent.state import active_summary
from openmanus_tui.config import Settings
from openmanus_tui.errors import OpenManusError
from openmanus_tui.memory.compaction import (
    CompactionPreview,
    describe_turns,
    fit_summary,
    select_turns,
    summary_record,
    summary_request,
)
from openmanus_tui.memory.longterm import (
    ROOT,
    SCOPES,
    LongTermMemory,
    MemoryRecord,
    for_database,
    project_label,
)
from openmanus_tui.memory.observations import ObservationPiece, ObservationStore
from openmanus_tui.memory.tokens import TokenCounter, content_text
from openmanus_tui.store.db import Database

PINS_SCHEMA = """
CREATE TABLE IF NOT EXISTS memory_pins (
    session_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (session_id, item_id)
);
"""
INSTRUCTION_TOKENS = 200  # the summarisation instructions, with room to spare
WORDS_PER_TOKEN = 0.7


@dataclass
class Prepared:
    """What ``prepare`` decided for one model call."""

    plan: ContextPlan
    compaction: CompactionPreview | None = None
    compaction_error: str = ""
    recalled: list[MemoryRecord] = field(default_factory=list)
    stored_observations: list[str] = field(default_factory=list)

    def outcome(self) -> dict[str, Any]:
        """The memory part of the step's ``agent_outcome`` (events are made from it)."""
        out: dict[str, Any] = {
            "recalled": [r.ref for r in self.recalled],
            "observations": self.stored_observations,
            "ratio": self.plan.ratio,
            "budget": self.plan.budget,
        }
        if self.compaction is not None:
            out["compaction"] = {
                "summary_id": self.compaction.summary["id"],
                "turns": len(self.compaction.turns),
                "tokens_before": self.compaction.tokens_before,
                "tokens_after": self.compaction.tokens_after,
                "usage": self.compaction.usage,
            }
        if self.compaction_error:
            out["compaction_error"] = self.compaction_error
        return out


@dataclass
class ContextView:
    """The next prompt as the Memory pane shows it."""

    parts: list[PromptPart]
    tokens: int  # calibrated to the server's counting
    local_tokens: int
    budget: int
    window: int
    ratio: float
    dropped: int
    would_compact: bool
    pins: list[str]
    summaries: list[dict[str, Any]]
    memories: list[MemoryRecord]
    observations: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "parts": [p.as_dict() for p in self.parts],
            "tokens": self.tokens,
            "local_tokens": self.local_tokens,
            "budget": self.budget,
            "window": self.window,
            "ratio": self.ratio,
            "dropped": self.dropped,
            "would_compact": self.would_compact,
            "pins": self.pins,
            "summaries": self.summaries,
            "memories": [m.as_dict() for m in self.memories],
            "observations": self.observations,
        }


def last_user_text(messages: Sequence[BaseMessage]) -> str:
    for msg in reversed(messages):
        if isinstance(msg, HumanMessage):
            return content_text(msg.content)
    return ""


# Pins change a few times a session but were read from the database before every model call
# (three trips to aiosqlite's thread a step). Each manager caches them, tagged with a version
# per (database, session) that every change in this process bumps: a pin set through another
# session object (the REST API opens one per request) reaches the next step of a running one.
# Another process's change is picked up at the next run (``MemoryManager.reload_pins``).
_PIN_VERSIONS: weakref.WeakKeyDictionary[Database, dict[str, int]] = weakref.WeakKeyDictionary()


def _pin_version(db: Database, session_id: str) -> int:
    return _PIN_VERSIONS.get(db, {}).get(session_id, 0)


def _pins_changed(db: Database, session_id: str) -> None:
    versions = _PIN_VERSIONS.setdefault(db, {})
    versions[session_id] = versions.get(session_id, 0) + 1


async def delete_pins(db: Database, session_id: str) -> None:
    """Forget a deleted session's pins."""
    async with db.saver.lock:
        await db.conn.executescript(PINS_SCHEMA)
        await db.conn.execute("DELETE FROM memory_pins WHERE session_id = ?", (session_id,))
        await db.conn.commit()
    _pins_changed(db, session_id)


class MemoryManager:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        session_id: str,
        *,
        model: str = "",
        project: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings.memory
        self.session_id = session_id
        self.project = project_label(project or self.settings.project or "default")
        self.counter = TokenCounter(model)
        self.longterm: LongTermMemory = for_database(db, settings)
        self.observations = ObservationStore(db)
        self._ready = False
        self._setup_lock = asyncio.Lock()
        self._recall_cache: tuple[str, int, list[MemoryRecord]] | None = None
        self._version = 0
        self._referenced: set[str] = set()  # observation handles this session's prompts used
        self._pins: tuple[int, list[str]] | None = None  # (version read before, pins)

    async def setup(self) -> None:
        async with self._setup_lock:
            if self._ready:
                return
            await self.longterm.setup()
            await self.observations.setup()
            async with self.db.saver.lock:
                await self.db.conn.executescript(PINS_SCHEMA)
                await self.db.conn.commit()
            self._ready = True

    # ---- budget --------------------------------------------------------------------------
    def budget(self, window: int) -> int:
        """The prompt's share of the window; the rest is left for the answer."""
        return window - min(int(window * self.settings.reserve_share), self.settings.reserve_max)

    # ---- long-term memory ------------------------------------------------------------------
    def namespace(self, scope: str) -> tuple[str, ...]:
        if scope == "user":
            return (ROOT, "user")
        if scope == "project":
            return (ROOT, "project", self.project)
        if scope == "session":
            return (ROOT, "session", self.session_id)
        raise OpenManusError(
            f"unknown memory scope {scope!r}; expected one of {', '.join(SCOPES)}",
            error_class="user",
        )

    def namespaces(self, scope: str | None = None) -> list[tuple[str, ...]]:
        return [self.namespace(scope)] if scope else [self.namespace(s) for s in SCOPES]

    async def save(self, text: str, scope: str = "project", kind: str = "note") -> MemoryRecord:
        await self.setup()
        record = await self.longterm.save(
            text, self.namespace(scope), kind=kind, session_id=self.session_id
        )
        self._version += 1
        return record

    async def forget(self, scope: str, key: str) -> bool:
        await self.setup()
        done = await self.longterm.delete(self.namespace(scope), key)
        self._version += 1
        return done

    async def search(
        self, query: str, scope: str | None = None, limit: int = 5
    ) -> tuple[list[MemoryRecord], str]:
        await self.setup()
        return await self.longterm.search(query, self.namespaces(scope), limit=limit, min_score=0.0)

    async def memories(self, scope: str | None = None) -> list[MemoryRecord]:
        await self.setup()
        return await self.longterm.list(self.namespaces(scope))

    async def recall(self, query: str) -> list[MemoryRecord]:
        """The memories recalled into the prompt for ``query`` (cached until the next save)."""
        if self.settings.recall <= 0 or not query.strip():
            return []
        cached = self._recall_cache
        if cached and cached[0] == query and cached[1] == self._version:
            return cached[2]
        await self.setup()
        found, _ = await self.longterm.search(query, self.namespaces(), limit=self.settings.recall)
        self._recall_cache = (query, self._version, found)
        return found

    # ---- pins ------------------------------------------------------------------------------
    async def pins(self) -> list[str]:
        # The version is read before the query: a change committed while it runs bumps it,
        # so what the query saw is never kept as current.
        version = _pin_version(self.db, self.session_id)
        if self._pins is not None and self._pins[0] == version:
            return list(self._pins[1])
        await self.setup()
        async with self.db.conn.execute(
            "SELECT item_id FROM memory_pins WHERE session_id = ? ORDER BY created",
            (self.session_id,),
        ) as cur:
            found = [r[0] for r in await cur.fetchall()]
        self._pins = (version, found)
        return list(found)

    def reload_pins(self) -> None:
        """Read the pins from the database at their next use (a run starts: another process
        may have changed them)."""
        self._pins = None

    async def set_pin(self, item_id: str, pinned: bool) -> None:
        await self.setup()
        async with self.db.saver.lock:
            if pinned:
                await self.db.conn.execute(
                    "INSERT OR IGNORE INTO memory_pins (session_id, item_id, created) "
                    "VALUES (?, ?, ?)",
                    (self.session_id, item_id, time.time()),
                )
            else:
                await self.db.conn.execute(
                    "DELETE FROM memory_pins WHERE session_id = ? AND item_id = ?",
                    (self.session_id, item_id),
                )
            await self.db.conn.commit()
        _pins_changed(self.db, self.session_id)

    # ---- observations ------------------------------------------------------------------------
    async def read_observation(
        self, handle: str, offset: int = 0, length: int = 4000
    ) -> ObservationPiece | None:
        await self.setup()
        # Scoped: this session's observations, or ones its own prompt has referred to.
        return await self.observations.read(
            handle, offset, length, session_id=self.session_id, referenced=self._referenced
        )

    # ---- planning ----------------------------------------------------------------------------
    def plan(
        self,
        state: dict[str, Any],
        *,
        system_prompt: str,
        tools: Sequence[dict[str, Any]],
        window: int,
        pins: Sequence[str],
        memories: Sequence[MemoryRecord],
        extra_summary: dict[str, Any] | None = None,
    ) -> ContextPlan:
        records = list(state.get("summaries") or [])
        if extra_summary is not None:
            records.append(extra_summary)
        summary, covered = active_summary({"summaries": records})
        return plan_context(
            system_prompt,
            state.get("messages", []),
            self.budget(window),
            counter=self.counter,
            tools=tools,
            summary=summary["text"] if summary else None,
            covered=covered,
            pins=pins,
            memories=[f"[{m.scope}] {m.text}" for m in memories],
            ratio=float(state.get("token_ratio") or 1.0),
            observation_chars=int(self.settings.observation_threshold_kb * 1024),
            excerpt_chars=self.settings.observation_excerpt_chars,
        )

    async def _current_plan(
        self, state: dict[str, Any], *, system_prompt: str, tools: Sequence[dict[str, Any]],
        window: int,
    ) -> tuple[ContextPlan, list[str], list[MemoryRecord]]:
        """The plan of the next call as things stand, with the pins and recalled memories it
        used (``prepare`` and ``view`` start from the same one)."""
        await self.setup()
        pins = await self.pins()
        memories = await self.recall(last_user_text(state.get("messages", [])))
        plan = self.plan(state, system_prompt=system_prompt, tools=tools, window=window,
                         pins=pins, memories=memories)
        return plan, pins, memories

    async def prepare(
        self,
        state: dict[str, Any],
        *,
        model: Any,
        system_prompt: str,
        tools: Sequence[dict[str, Any]],
        window: int,
        invoke: Any = None,
    ) -> Prepared:
        """The context of the next model call, compacting first when the trigger is reached."""
        plan, pins, memories = await self._current_plan(
            state, system_prompt=system_prompt, tools=tools, window=window)
        prepared = Prepared(plan, recalled=memories)
        if self.settings.auto_compact and plan.over(self.settings.compact_trigger):
            try:
                preview = await self.compaction(
                    state,
                    model,
                    system_prompt=system_prompt,
                    tools=tools,
                    window=window,
                    auto=True,
                    invoke=invoke,
                )
            except OpenManusError as exc:
                # The turns that do not fit are left out instead; the run goes on.
                prepared.compaction_error = exc.message
                preview = None
            if preview is not None:
                prepared.compaction = preview
                prepared.plan = self.plan(
                    state,
                    system_prompt=system_prompt,
                    tools=tools,
                    window=window,
                    pins=pins,
                    memories=memories,
                    extra_summary=preview.summary,
                )
        prepared.stored_observations = await self.observations.put_many(
            self.session_id, prepared.plan.observations
        )
        self._referenced.update(o.handle for o in prepared.plan.observations)
        return prepared

    async def view(
        self,
        state: dict[str, Any],
        *,
        system_prompt: str,
        tools: Sequence[dict[str, Any]],
        window: int,
    ) -> ContextView:
        plan, pins, memories = await self._current_plan(
            state, system_prompt=system_prompt, tools=tools, window=window)
        return ContextView(
            parts=plan.parts,
            tokens=plan.planned_tokens,
            local_tokens=plan.tokens,
            budget=plan.budget,
            window=window,
            ratio=plan.ratio,
            dropped=plan.dropped,
            would_compact=self.settings.auto_compact and plan.over(self.settings.compact_trigger),
            pins=pins,
            summaries=list(state.get("summaries") or []),
            memories=memories,
            observations=await self.observations.list(self.session_id),
        )

    # ---- compaction --------------------------------------------------------------------------
    def _selection(
        self,
        state: dict[str, Any],
        plan: ContextPlan,
        *,
        pins: Sequence[str],
        focus: str,
        force: bool,
    ) -> tuple[list[Turn], str]:
        chosen = select_turns(
            plan.turns,
            fixed_tokens=plan.fixed_tokens,
            budget=plan.budget,
            target=self.settings.compact_target,
            keep_recent=self.settings.keep_recent_turns,
            ratio=plan.ratio,
            force=force,
        )
        summary, _ = active_summary(state)
        messages = state.get("messages", [])
        base = json.dumps(
            [
                summary["id"] if summary else None,
                [t.ids for t in chosen],
                messages[-1].id if messages else None,
                sorted(pins),
                focus,
            ]
        )
        return chosen, hashlib.sha1(base.encode()).hexdigest()

    async def compaction(
        self,
        state: dict[str, Any],
        model: Any,
        *,
        system_prompt: str,
        tools: Sequence[dict[str, Any]],
        window: int,
        focus: str = "",
        auto: bool = False,
        reuse: CompactionPreview | None = None,
        invoke: Any = None,
    ) -> CompactionPreview | None:
        """Summarise the turns to compact; None when there is nothing to compact.

        ``auto`` compacts only what the target requires; a person's request takes every turn
        but the newest few. ``reuse``: a preview computed from the same state, focus and pins
        is returned as is (so applying a preview stores exactly what was shown).
        """
        await self.setup()
        pins = await self.pins()
        memories = await self.recall(last_user_text(state.get("messages", [])))
        plan = self.plan(
            state,
            system_prompt=system_prompt,
            tools=tools,
            window=window,
            pins=pins,
            memories=memories,
        )
        chosen, base = self._selection(state, plan, pins=pins, focus=focus, force=not auto)
        if not chosen:
            return None
        if reuse is not None and reuse.base == base:
            return reuse
        previous, _ = active_summary(state)
        text, usage = await self._summarise(
            chosen,
            model,
            previous=previous,
            messages=state.get("messages", []),
            budget=plan.budget,
            ratio=plan.ratio,
            focus=focus,
            invoke=invoke,
        )
        record = summary_record(
            previous=previous,
            turns=chosen,
            text=text,
            tokens=self.counter.text(text),
            tokens_before=plan.full_tokens,
            tokens_after=0,
            focus=focus,
            auto=auto,
        )
        after = self.plan(
            state,
            system_prompt=system_prompt,
            tools=tools,
            window=window,
            pins=pins,
            memories=memories,
            extra_summary=record,
        )
        record["tokens_after"] = after.full_tokens
        return CompactionPreview(
            summary=record,
            turns=describe_turns(chosen),
            tokens_before=plan.full_tokens,
            tokens_after=after.full_tokens,
            usage=usage,
            focus=focus,
            base=base,
        )

    async def _summarise(
        self,
        turns: list[Turn],
        model: Any,
        *,
        previous: dict[str, Any] | None,
        messages: Sequence[BaseMessage],
        budget: int,
        ratio: float,
        focus: str,
        invoke: Any,
    ) -> tuple[str, dict[str, int]]:
        """Summarise ``turns`` in as many calls as it takes for each request to fit the budget."""
        max_tokens = max(64, int(budget * self.settings.summary_share))
        words = max(40, int(max_tokens * WORDS_PER_TOKEN))
        task = last_user_text(messages) or None
        text = previous["text"] if previous else None
        usage = {"input_tokens": 0, "output_tokens": 0, "calls": 0}
        remaining = list(turns)
        while remaining:
            overhead = (
                INSTRUCTION_TOKENS + self.counter.text(text or "") + self.counter.text(task or "")
            )
            room = int(budget / ratio) - overhead
            chunk: list[Turn] = []
            used = 0
            for t in remaining:
                if chunk and used + t.tokens > room:
                    break
                chunk.append(t)
                used += t.tokens
            request = summary_request(chunk, previous=text, task=task, focus=focus, words=words)
            reply = await (invoke or _invoke)(model, request)
            text = fit_summary(content_text(reply.content), max_tokens, self.counter)
            meta = reply.usage_metadata or {}
            usage["input_tokens"] += int(meta.get("input_tokens", 0) or 0)
            usage["output_tokens"] += int(meta.get("output_tokens", 0) or 0)
            usage["calls"] += 1
            remaining = remaining[len(chunk) :]
        return text or "", usage


async def _invoke(model: Any, request: list[BaseMessage]) -> AIMessage:
    try:
        # "nostream": the summary is not the agent's thought; keep it out of the token stream.
        reply = await model.ainvoke(
            request, config={"tags": ["nostream", "openmanus:summary"]}, stream=False
        )
    except OpenManusError:
        raise
    except Exception as exc:  # the model client's errors, made one line
        raise OpenManusError(
            f"compaction: the summary request failed: {type(exc).__name__}: {exc}",
            error_class="transient",
        ) from None
    return reply  # type: ignore[no-any-return]
