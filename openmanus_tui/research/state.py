"""The research graph's state, its per-run context and the depth bounds (``graph.py``).

Channels that parallel researchers write (sources, findings, tokens spent) merge records by
``id``; a ``RESET`` record, written by :func:`research_input` when a run starts, empties them,
so one session's runs never mix.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.constants import TAG_NOSTREAM

from openmanus_tui.agent.approval import ApprovalPolicy
from openmanus_tui.agent.state import AgentState
from openmanus_tui.errors import ModelError
from openmanus_tui.models.factory import Endpoint, ModelInfo
from openmanus_tui.models.fallback import OnFallback, call_chain
from openmanus_tui.models.retry import with_retries
from openmanus_tui.research.library import Library, ReadSource
from openmanus_tui.research.models import (
    ResearchResult,
)

if TYPE_CHECKING:
    from openmanus_tui.resilience.breakers import BreakerBoard

EXCERPT_CHARS = 12_000  # of a source's text sent to the extraction prompt
RESET = {"id": "__reset__"}


@dataclass(frozen=True)
class Depth:
    sub_questions: int
    rounds: int
    sources_per_question: int
    queries: int
    findings_per_source: int


DEPTHS = {
    "quick": Depth(sub_questions=1, rounds=1, sources_per_question=3, queries=2,
                   findings_per_source=3),
    "standard": Depth(sub_questions=3, rounds=2, sources_per_question=5, queries=3,
                      findings_per_source=4),
    "deep": Depth(sub_questions=5, rounds=3, sources_per_question=8, queries=4,
                  findings_per_source=5),
}


def merge_reset(current: list[dict[str, Any]] | None, new: Any) -> list[dict[str, Any]]:
    """Upsert records by ``id``; a ``RESET`` record (a new run) empties the list first."""
    result = list(current or [])
    for record in new if isinstance(new, list) else [new]:
        if record.get("id") == RESET["id"]:
            result = []
            continue
        pos = next((i for i, r in enumerate(result) if r["id"] == record["id"]), None)
        if pos is None:
            result.append(record)
        else:
            result[pos] = {**result[pos], **record}
    return result


def _append_or_reset(current: list[dict[str, Any]] | None, new: Any) -> list[dict[str, Any]]:
    if new == [RESET]:
        return []
    return [*(current or []), *(new or [])]


class ResearchState(AgentState, total=False):
    question: str
    depth: str
    reading_list: list[str]
    allow_domains: list[str]
    clarification: dict[str, str] | None
    sub_questions: list[str]
    web_allowed: bool
    started_at: float
    sources: Annotated[list[dict[str, Any]], merge_reset]
    findings: Annotated[list[dict[str, Any]], merge_reset]
    # Tokens spent per node ({id, in, out}), summed into tokens_in/out by cross_reference.
    spent: Annotated[list[dict[str, Any]], merge_reset]
    skipped: Annotated[list[dict[str, Any]], merge_reset]
    cross_references: list[dict[str, Any]]
    report_draft: str
    research: dict[str, Any] | None
    # This run's steps, as events show them; emptied when a run starts.
    research_log: Annotated[list[dict[str, Any]], _append_or_reset]


def research_input(
    question: str,
    message: HumanMessage,
    *,
    depth: str = "standard",
    reading_list: Sequence[str] = (),
    allow_domains: Sequence[str] = (),
) -> dict[str, Any]:
    """The update that starts a research run (the agent's per-run counters reset too)."""
    from openmanus_tui.agent.state import run_input

    return {
        **run_input(question, message),
        "question": question,
        "depth": depth if depth in DEPTHS else "standard",
        "reading_list": list(reading_list),
        "allow_domains": list(allow_domains),
        "clarification": None,
        "sub_questions": [],
        "web_allowed": False,
        "started_at": time.time(),
        "sources": [RESET],
        "findings": [RESET],
        "skipped": [RESET],
        "spent": [RESET],
        "cross_references": [],
        "report_draft": "",
        "research": None,
        "research_log": [RESET],
    }


class Answer(NamedTuple):
    """One model call of the research graph: the reply and what it cost, priced at the model
    that answered (a fallback when the primary was down)."""

    text: str
    tokens_in: int
    tokens_out: int
    cost: float
    model: str


@dataclass
class ResearchContext:
    """What the nodes use that is not state (never checkpointed)."""

    model: Any
    model_info: ModelInfo
    library: Library
    policy: ApprovalPolicy | None = None
    max_sources: int = 12
    timeout: float = 600.0
    cross_referencing: bool = True
    # False for the offline demo model: no web search, so no web access to ask for.
    web_search: bool = True
    max_retries: int = 3
    retry_backoff: float = 1.0
    on_retry: Callable[[int, float, ModelError], Awaitable[None]] | None = None
    save_result: Callable[[ResearchResult], Awaitable[None]] | None = None
    read_cache: dict[str, ReadSource] = field(default_factory=dict)
    read_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # The primary model and its fallbacks without tools (the agent's ``summary_chain``), the
    # runtime's breakers and the session's fallback event: the research graph's calls take
    # the same path as the agent's (models/fallback.py). None: ``model`` alone, with retries.
    chain: list[Endpoint] | None = None
    breakers: BreakerBoard | None = None
    on_fallback: OnFallback | None = None

    async def ask(self, system: str, user: str) -> Answer:
        """One model call, through the chain's breakers and fallbacks when there is one."""
        messages = [SystemMessage(content=system), HumanMessage(content=user)]
        config: Any = {"tags": [TAG_NOSTREAM, "openmanus:research"]}
        info = self.model_info
        if self.chain:

            async def on(endpoint: Endpoint) -> AIMessage:
                return await endpoint.model.ainvoke(messages, config=config)  # type: ignore[no-any-return]

            reply, _, endpoint = await call_chain(
                self.chain, on, board=self.breakers, max_retries=self.max_retries,
                base_delay=self.retry_backoff, on_retry=self.on_retry,
                on_fallback=self.on_fallback,
            )
            info = endpoint.info
        else:

            async def attempt() -> AIMessage:
                return await self.model.ainvoke(messages, config=config)  # type: ignore[no-any-return]

            reply, _ = await with_retries(
                attempt, max_retries=self.max_retries, base_delay=self.retry_backoff,
                on_retry=self.on_retry,
            )
        usage = reply.usage_metadata or {}
        text = reply.text if isinstance(reply.text, str) else str(reply.content)
        t_in, t_out = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
        return Answer(text, t_in, t_out, info.cost(t_in, t_out), info.spec)

    async def read(self, location: str) -> ReadSource:
        # Parallel researchers asking for one source read it once (one registry record).
        lock = self.read_locks.setdefault(location, asyncio.Lock())
        async with lock:
            hit = self.read_cache.get(location)
            if hit is None:
                hit = await self.library.read(location)
                self.read_cache[location] = hit
                self.read_cache[hit.location] = hit
        return hit


def spent_record(node: str, answers: Sequence[Answer]) -> dict[str, Any]:
    """A ``spent`` record of one node's model calls: tokens, cost, and how many calls each
    model answered."""
    models: dict[str, int] = {}
    for a in answers:
        models[a.model] = models.get(a.model, 0) + 1
    return {"id": node, "in": sum(a.tokens_in for a in answers),
            "out": sum(a.tokens_out for a in answers),
            "cost": sum(a.cost for a in answers), "models": models}


def answered_by(records: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Model calls per answering model over the ``spent`` records."""
    out: dict[str, int] = {}
    for record in records:
        for model, calls in (record.get("models") or {}).items():
            out[model] = out.get(model, 0) + calls
    return out


def log_step(stage: str, text: str, **data: Any) -> dict[str, Any]:
    return {"stage": stage, "text": text, "data": data}


def depth_of(state: ResearchState) -> Depth:
    return DEPTHS.get(state.get("depth") or "standard", DEPTHS["standard"])


