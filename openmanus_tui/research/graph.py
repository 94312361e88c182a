"""The research graph (LangGraph): from a question to a report whose citations were checked.

```
START → read_list → plan ─┬─ clarify (interrupt) → plan
                          └─ approve_web (interrupt when the approval mode asks) ─ Send ×N →
      researcher (one per sub-question, in parallel; a bounded search/read/extract loop) →
      cross_reference → write_report → verify → END
```

- ``read_list``: the user's reading list (``--source`` URLs and workspace files) is read
  first; its sources are offered to every researcher and cited like any other.
- ``plan``: the model splits the question into sub-questions (bounded by the depth) or asks
  one clarifying question; ``clarify`` asks it with ``interrupt()`` (the session hands it to
  the person, over resume too) and ``plan`` runs again with the answer.
- ``approve_web``: web access for this run goes through the approval policy as one
  ``web_fetch`` request naming the sub-questions; a denial means workspace and reading list
  only. Side-effect free, like the agent graph's ``approve``.
- ``researcher``: per round, the model proposes queries, the library searches (workspace, and
  the web when allowed), new sources are read, and the model extracts findings with quotes;
  a finding whose quote is not in the source's text is dropped by code. Bounded by rounds,
  sources, and ``research.research_timeout``.
- ``cross_reference`` numbers the sources (reading list first) and clusters the findings
  (``crossref.py``); ``write_report`` asks the model for the report with ``[n]`` citations and
  appends the reference list from the registry; ``verify`` checks every citation
  (``verify.py``), adds the contradiction list, stores the ``ResearchResult`` and answers.

Document texts are never in the graph's state (checkpoints stay small): the library stores
them and gives them back by location.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.constants import TAG_NOSTREAM
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send, interrupt

from openmanus_tui.agent.approval import ApprovalPolicy, Decision
from openmanus_tui.agent.state import AgentState
from openmanus_tui.errors import ModelError, OpenManusError
from openmanus_tui.models.factory import ModelInfo
from openmanus_tui.models.retry import with_retries
from openmanus_tui.research import prompts
from openmanus_tui.research.crossref import cross_reference, finding_confidence, report_confidence
from openmanus_tui.research.library import Library, ReadSource
from openmanus_tui.research.models import (
    CrossReference,
    ResearchFinding,
    ResearchResult,
    ResearchSource,
)
from openmanus_tui.research.text import normalise
from openmanus_tui.research.verify import SourceText, verify_report

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

    async def ask(self, system: str, user: str) -> tuple[str, int, int]:
        """One model call: (reply text, tokens in, tokens out)."""

        async def attempt() -> AIMessage:
            return await self.model.ainvoke(  # type: ignore[no-any-return]
                [SystemMessage(content=system), HumanMessage(content=user)],
                config={"tags": [TAG_NOSTREAM, "openmanus:research"]},
            )

        reply, _ = await with_retries(
            attempt, max_retries=self.max_retries, base_delay=self.retry_backoff,
            on_retry=self.on_retry,
        )
        usage = reply.usage_metadata or {}
        text = reply.text if isinstance(reply.text, str) else str(reply.content)
        return text, int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))

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


def _log(stage: str, text: str, **data: Any) -> dict[str, Any]:
    return {"stage": stage, "text": text, "data": data}


def _depth(state: ResearchState) -> Depth:
    return DEPTHS.get(state.get("depth") or "standard", DEPTHS["standard"])


# ---- nodes ----------------------------------------------------------------------------------
async def read_list(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    ctx = runtime.context
    sources, skipped, log = [], [], []
    for location in state.get("reading_list") or []:
        try:
            source = await ctx.read(location)
        except OpenManusError as exc:
            skipped.append({"id": location, "reason": exc.message})
            log.append(_log("read", f"not read: {location}: {exc.message}", location=location))
            continue
        sources.append({**source.meta(), "from_reading_list": True, "asked_as": location})
        log.append(_log("read", f"read {source.title or source.location}",
                        location=source.location))
    return {"sources": sources, "skipped": skipped, "research_log": log}


async def plan(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    ctx = runtime.context
    depth = _depth(state)
    question = state.get("question") or state.get("input") or ""
    clarification = state.get("clarification")
    user = f"Question: {question}"
    if clarification:
        user += (f"\nYou asked: {clarification['question']}\n"
                 f"The person answered: {clarification['answer']}")
    note = " (you already asked once: do not ask again)" if clarification else ""
    text, t_in, t_out = await ctx.ask(
        prompts.PLAN.format(max_sub=depth.sub_questions, clarify_note=note), user
    )
    data = prompts.parse_json(text)
    subs = prompts.strings(data.get("sub_questions"), depth.sub_questions)
    ask = data.get("clarify")
    update: dict[str, Any] = {"spent": [{"id": "plan", "in": t_in, "out": t_out}]}
    if isinstance(ask, str) and ask.strip() and not clarification:
        update["clarification"] = {"question": ask.strip(), "answer": ""}
        update["sub_questions"] = []
        update["research_log"] = [_log("plan", f"a clarifying question: {ask.strip()}")]
        return update
    subs = subs or [question]
    update["sub_questions"] = subs
    update["research_log"] = [_log("plan", f"{len(subs)} sub-question(s)", sub_questions=subs)]
    return update


def clarify(state: ResearchState) -> dict[str, Any]:
    """Ask the person (interrupt; the answer comes back on resume). Side-effect free."""
    pending = state.get("clarification") or {}
    answer = interrupt({"question": pending.get("question", ""), "kind": "clarify"})
    text = answer if isinstance(answer, str) else str((answer or {}).get("answer", ""))
    return {
        "clarification": {"question": pending.get("question", ""),
                          "answer": text.strip() or "(no answer: use your best judgement)"},
    }


def _web_call_id(state: ResearchState) -> str:
    seed = f"{state.get('question', '')}:{state.get('started_at', 0)}"
    return "research_web_" + hashlib.sha1(seed.encode()).hexdigest()[:12]


def approve_web(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    """Web access for this run, through the approval policy (one request). Side-effect free:
    re-run from the top on resume, it asks the same question and reads the answer."""
    ctx = runtime.context
    args = {
        "purpose": "research",
        "question": state.get("question", ""),
        "sub_questions": state.get("sub_questions") or [],
        "max_sources": ctx.max_sources,
    }
    if not ctx.web_search:
        return {"web_allowed": False, "research_log": [
            _log("approve", "no web search with this model: workspace and reading list only")]}
    if ctx.policy is None:
        return {"web_allowed": True}
    verdict = ctx.policy.evaluate("web_fetch", args)
    if verdict.action != "ask":
        allowed = verdict.action == "allow"
        why = "allowed" if allowed else f"refused ({verdict.reason or verdict.rule})"
        return {"web_allowed": allowed, "research_log": [_log("approve", f"web access {why}")]}
    call_id = _web_call_id(state)
    answer = interrupt(
        {"calls": [{"call_id": call_id, "tool": "web_fetch", "args": args, "risk": "network",
                    "tier": 1, "rule": verdict.rule, "reason": "research reads web pages"}]}
    )
    raw = (answer or {}).get(call_id) if isinstance(answer, dict) else None
    try:
        decision = Decision.model_validate(raw) if raw is not None else None
    except ValueError:
        decision = None
    allowed = decision is not None and decision.decision in ("approve", "always", "edit")
    recorded = (
        {**decision.model_dump(exclude_none=True), "by": "user", "tool": "web_fetch"}
        if decision is not None
        else {"decision": "deny", "by": "system", "tool": "web_fetch",
              "reason": "no valid decision was given"}
    )
    text = (
        "web access approved" if allowed
        else "web access denied: workspace and reading list only"
    )
    return {"web_allowed": allowed, "decisions": {call_id: recorded},
            "research_log": [_log("approve", text)]}


def _after_plan(state: ResearchState) -> str:
    c = state.get("clarification")
    if c and not c.get("answer"):
        return "clarify"
    return "approve_web"


def _fan_out(state: ResearchState) -> list[Send]:
    subs = state.get("sub_questions") or [state.get("question", "")]
    reading = [s["id"] for s in state.get("sources") or [] if s.get("from_reading_list")]
    return [
        Send(
            "researcher",
            {
                "index": i,
                "sub_question": q,
                "question": state.get("question", ""),
                "depth": state.get("depth", "standard"),
                "web": bool(state.get("web_allowed")),
                "reading": reading,
                "started_at": state.get("started_at") or time.time(),
                "researchers": len(subs),
            },
        )
        for i, q in enumerate(subs)
    ]


async def researcher(task: dict[str, Any], runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    ctx = runtime.context
    depth = DEPTHS.get(task.get("depth") or "standard", DEPTHS["standard"])
    sub_q: str = task["sub_question"]
    index: int = task["index"]
    deadline = float(task.get("started_at") or time.time()) + ctx.timeout
    # New sources this researcher may read: its depth's share, within max_research_sources.
    budget = min(depth.sources_per_question,
                 max(1, ctx.max_sources // max(1, task.get("researchers", 1))))
    seen: set[str] = set()
    sources: dict[str, dict[str, Any]] = {}
    findings: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    log: list[dict[str, Any]] = []
    spent = [0, 0]

    async def extract(source: ReadSource) -> None:
        text, t_in, t_out = await ctx.ask(
            prompts.EXTRACT.format(max_findings=depth.findings_per_source),
            f"Sub-question: {sub_q}\nSource: {source.title} ({source.location})\n"
            f"<source_text>\n{source.text[:EXCERPT_CHARS]}\n</source_text>",
        )
        spent[0] += t_in
        spent[1] += t_out
        kept = dropped = 0
        normal_text = normalise(source.text)
        for raw in (prompts.parse_json(text).get("findings") or [])[: depth.findings_per_source]:
            if not isinstance(raw, dict):
                continue
            claim = " ".join(str(raw.get("claim") or "").split())
            quote = " ".join(str(raw.get("quote") or "").split())
            if not claim or not quote or normalise(quote) not in normal_text:
                dropped += 1
                continue
            try:
                relevance = min(1.0, max(0.0, float(raw.get("relevance", 0.5))))
            except (TypeError, ValueError):
                relevance = 0.5
            # One finding per (source, quote): two researchers finding it make it once.
            seed = f"{source.location}:{normalise(quote)}"
            fid = "f_" + hashlib.sha1(seed.encode()).hexdigest()[:12]
            findings.append({
                "id": fid, "content": claim, "location": source.location,
                "relevance": relevance, "key_points": prompts.strings(raw.get("key_points"), 5),
                "supporting_evidence": [quote], "sub_question": sub_q, "order": index,
            })
            kept += 1
        log.append(_log("extract", f"{source.title or source.location}: {kept} finding(s)"
                        + (f", {dropped} dropped (quote not in the source)" if dropped else ""),
                        location=source.location, kept=kept, dropped=dropped))

    for location in task.get("reading") or []:
        seen.add(location)
        try:
            source = await ctx.read(location)
        except OpenManusError as exc:
            log.append(_log("read", f"not read again: {location}: {exc.message}"))
            continue
        await extract(source)
    for round_no in range(depth.rounds):
        if time.time() > deadline or len(sources) >= budget:
            break
        text, t_in, t_out = await ctx.ask(
            prompts.QUERIES.format(max_queries=depth.queries),
            f"Question: {task.get('question', '')}\nSub-question: {sub_q}\n"
            f"Already read: {', '.join(sorted(seen)) or 'nothing'}",
        )
        spent[0] += t_in
        spent[1] += t_out
        queries = prompts.strings(prompts.parse_json(text).get("queries"), depth.queries)
        queries = queries or ([sub_q] if round_no == 0 else [])
        if not queries:
            break
        hits = []
        for query in queries:
            hits.extend(await ctx.library.search(query, depth.sources_per_question,
                                                 web=bool(task.get("web"))))
        log.append(_log("search", f"round {round_no + 1}: {len(hits)} result(s) for "
                        + "; ".join(queries), queries=queries))
        fresh = [h for h in hits if h.location not in seen]
        if not fresh:
            break
        for hit in fresh:
            if len(sources) >= budget or time.time() > deadline:
                break
            seen.add(hit.location)
            try:
                source = await ctx.read(hit.location)
            except OpenManusError as exc:
                skipped.append({"id": hit.location, "reason": exc.message})
                log.append(_log("read", f"not read: {hit.location}: {exc.message}"))
                continue
            seen.add(source.location)
            sources[source.location] = {**source.meta(), "from_reading_list": False}
            await extract(source)
    return {
        "sources": list(sources.values()),
        "findings": findings,
        "skipped": skipped,
        "spent": [{"id": f"researcher_{index}", "in": spent[0], "out": spent[1]}],
        "research_log": [*log, _log("research", f"sub-question {index + 1} done: "
                                    f"{len(findings)} finding(s) from {len(sources)} new "
                                    "source(s)", sub_question=sub_q)],
    }


def _number_sources(state: ResearchState) -> dict[str, int]:
    """Source numbers: the reading list first, then in the order findings use them."""
    numbers: dict[str, int] = {}
    for s in state.get("sources") or []:
        if s.get("from_reading_list"):
            numbers.setdefault(s["id"], len(numbers) + 1)
    for f in sorted(state.get("findings") or [], key=lambda f: f.get("order", 0)):
        numbers.setdefault(f["location"], len(numbers) + 1)
    for s in state.get("sources") or []:
        numbers.setdefault(s["id"], len(numbers) + 1)
    return numbers


def _findings(state: ResearchState, numbers: dict[str, int]) -> list[ResearchFinding]:
    by_loc = {s["id"]: s for s in state.get("sources") or []}
    out = []
    for f in sorted(state.get("findings") or [], key=lambda f: f.get("order", 0)):
        src = by_loc.get(f["location"], {})
        out.append(ResearchFinding(
            id=f["id"], content=f["content"], source=numbers[f["location"]],
            relevance=f.get("relevance", 0.5), credibility=src.get("credibility"),
            freshness=src.get("freshness"), key_points=f.get("key_points") or [],
            supporting_evidence=f.get("supporting_evidence") or [],
            sub_question=f.get("sub_question", ""),
        ))
    return out


async def cross_reference_node(
    state: ResearchState, runtime: Runtime[ResearchContext]
) -> dict[str, Any]:
    numbers = _number_sources(state)
    findings = _findings(state, numbers)
    # Independence is by domain; each workspace file is its own (a person's documents).
    domains = {
        numbers[s["id"]]: s["id"] if s.get("domain") in (None, "", "workspace") else s["domain"]
        for s in state.get("sources") or []
    }
    if runtime.context.cross_referencing:
        refs = cross_reference(findings, domains)
    else:
        refs = []
        for f in findings:
            f.confidence = finding_confidence(f)
    contradictions = [r for r in refs if r.status == "contradicted"]
    # Corroboration is a credibility factor (research/scoring.py): other independent domains
    # that agree with a source's findings.
    location_of = {n: loc for loc, n in numbers.items()}
    by_loc = {s["id"]: s for s in state.get("sources") or []}
    updated_sources = []
    for source_number in sorted({f.source for f in findings}):
        others = {d for r in refs if r.status == "agreed" and source_number in r.sources
                  for d in r.domains} - {domains.get(source_number)}
        credibility = await runtime.context.library.corroborated(
            location_of[source_number], len(others)
        )
        if credibility is not None and credibility.get("value") is not None:
            loc = location_of[source_number]
            factors = {**(by_loc.get(loc, {}).get("factors") or {}), "credibility": credibility}
            updated_sources.append(
                {"id": loc, "credibility": credibility["value"], "factors": factors}
            )
    spent = [sum(r.get("in", 0) for r in state.get("spent") or []),
             sum(r.get("out", 0) for r in state.get("spent") or [])]
    by_id = {f.id: f for f in findings}
    return {
        "findings": [{"id": f.id, "status": f.status, "cluster": f.cluster,
                      "confidence": f.confidence} for f in by_id.values()],
        "cross_references": [r.model_dump() for r in refs],
        "sources": updated_sources,
        "tokens_in": (state.get("tokens_in") or 0) + spent[0],
        "tokens_out": (state.get("tokens_out") or 0) + spent[1],
        "research_log": [_log("cross_reference",
                              f"{len(findings)} finding(s) in {len(refs)} claim(s); "
                              f"{len(contradictions)} contradiction(s)",
                              contradictions=len(contradictions))],
    }


async def write_report(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    ctx = runtime.context
    numbers = _number_sources(state)
    by_loc = {s["id"]: s for s in state.get("sources") or []}
    lines = []
    for f in sorted(state.get("findings") or [], key=lambda f: numbers[f["location"]]):
        n = numbers[f["location"]]
        quote = (f.get("supporting_evidence") or [""])[0]
        lines.append(f"[{n}] ({f.get('status', 'single_source')}) {f['content']}\n"
                     f"    quote: \"{quote}\"")
    sources = "\n".join(
        f"[{n}] {by_loc[loc].get('title') or loc} — {loc}"
        for loc, n in sorted(numbers.items(), key=lambda kv: kv[1]) if loc in by_loc
    )
    contradictions = [r for r in state.get("cross_references") or []
                      if r["status"] == "contradicted"]
    user = (f"Question: {state.get('question', '')}\n\nFindings:\n" + ("\n".join(lines) or
            "(none: say that the sources read do not answer the question)")
            + f"\n\nSources:\n{sources or '(none)'}\n\nContradictions: "
            + ("; ".join(f"{r['claim']} ({r['conflict']})" for r in contradictions) or "none"))
    if not lines:
        draft = ("The sources read do not answer this question: no finding could be "
                 "supported by a quote from them.")
        t_in = t_out = 0
    else:
        draft, t_in, t_out = await ctx.ask(prompts.REPORT, user)
    return {
        "report_draft": draft,
        "tokens_in": (state.get("tokens_in") or 0) + t_in,
        "tokens_out": (state.get("tokens_out") or 0) + t_out,
        "research_log": [_log("report", f"report drafted ({len(draft.split())} words)")],
    }


def _contradiction_section(refs: list[CrossReference], findings: list[ResearchFinding],
                           sources: dict[int, dict[str, Any]]) -> str:
    if not refs:
        return ""
    by_id = {f.id: f for f in findings}
    lines = ["## Contradictions", ""]
    for ref in refs:
        parts = []
        for fid in ref.findings:
            f = by_id.get(fid)
            if f is None:
                continue
            src = sources.get(f.source, {})
            parts.append(f"“{f.content}” ({src.get('title') or src.get('id')}, "
                         f"{src.get('domain') or 'workspace'})")
        lines.append(f"- {ref.conflict}: " + " vs ".join(parts))
    return "\n".join(lines)


async def verify(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    ctx = runtime.context
    numbers = _number_sources(state)
    by_loc = {s["id"]: s for s in state.get("sources") or []}
    texts: dict[int, SourceText] = {}
    for loc, n in numbers.items():
        meta = by_loc.get(loc, {})
        cached = ctx.read_cache.get(loc)
        text = cached.text if cached else await ctx.library.text(loc)
        texts[n] = SourceText(n, meta.get("title") or loc, loc, text,
                              "" if text else "its text is not in the store")
    draft = state.get("report_draft") or ""
    checked = verify_report(draft, texts)
    renumber = {v.number: v.new_number for v in checked.verdicts if v.new_number}
    findings = _findings(state, numbers)
    stored = {f["id"]: f for f in state.get("findings") or []}
    for f in findings:
        extra = stored.get(f.id, {})
        f.status = extra.get("status", f.status)
        f.cluster = extra.get("cluster")
        f.confidence = extra.get("confidence", 0.0)
    refs = [CrossReference.model_validate(r) for r in state.get("cross_references") or []]
    # Final numbers: the report's (cited, gap-free) first, then the sources read but not cited.
    final: dict[int, int] = dict(renumber)
    for n in sorted(numbers.values()):
        if n not in final:
            final[n] = len(final) + 1
    sources_by_old = {numbers[loc]: {**by_loc.get(loc, {"id": loc}), "id": loc}
                      for loc in numbers}
    result_sources = []
    for old, new in sorted(final.items(), key=lambda kv: kv[1]):
        meta = sources_by_old[old]
        result_sources.append(ResearchSource(
            number=new, registry_number=(meta.get("factors") or {}).get("registry_number"),
            location=meta["id"], title=meta.get("title") or meta["id"],
            domain=meta.get("domain") or "", published=meta.get("published"),
            credibility=meta.get("credibility"), freshness=meta.get("freshness"),
            factors=meta.get("factors") or {}, from_reading_list=bool(
                meta.get("from_reading_list")), cited=old in renumber,
        ))
        if old in renumber:
            await ctx.library.cited(meta["id"], f"report [{new}]")
    for f in findings:
        f.source = final[f.source]
    final_sources = {s.number: {"title": s.title, "domain": s.domain, "id": s.location}
                     for s in result_sources}
    contradiction = _contradiction_section(
        [r for r in refs if r.status == "contradicted"], findings, final_sources
    )
    report = checked.report.rstrip() + ("\n\n" + contradiction if contradiction else "") + "\n"
    kept = [f for f in findings if f.source in renumber.values()] or findings
    result = ResearchResult(
        query=state.get("question", ""),
        findings=findings,
        sources=result_sources,
        confidence=report_confidence(kept),
        cross_references=[r.model_copy(update={"sources": sorted(final[s] for s in r.sources)})
                          for r in refs],
        metadata={
            "depth": state.get("depth", "standard"),
            "sub_questions": state.get("sub_questions") or [],
            "clarification": state.get("clarification"),
            "web_allowed": bool(state.get("web_allowed")),
            "skipped": state.get("skipped") or [],
            "model": ctx.model_info.spec,
            "started_at": state.get("started_at"),
            "seconds": round(time.time() - float(state.get("started_at") or time.time()), 3),
        },
        report=report,
        verification=checked.as_dict(),
    )
    if ctx.save_result is not None:
        await ctx.save_result(result)
    caught = len(checked.caught)
    answer_id = "research_" + hashlib.sha1(report.encode()).hexdigest()[:16]
    return {
        "research": result.model_dump(mode="json"),
        "final_answer": report,
        "messages": [AIMessage(content=report, id=answer_id)],
        "research_log": [_log(
            "verify",
            f"{len(checked.verdicts)} citation(s) checked: "
            f"{len(checked.verdicts) - caught} supported, {caught} removed",
            citations=len(checked.verdicts), removed=caught,
        )],
    }


def build_research_graph() -> StateGraph:
    graph = StateGraph(ResearchState, context_schema=ResearchContext)
    graph.add_node("read_list", read_list)
    graph.add_node("plan", plan)
    graph.add_node("clarify", clarify)
    graph.add_node("approve_web", approve_web)
    graph.add_node("researcher", researcher)  # type: ignore[arg-type]
    graph.add_node("cross_reference", cross_reference_node)
    graph.add_node("write_report", write_report)
    graph.add_node("verify", verify)
    graph.add_edge(START, "read_list")
    graph.add_edge("read_list", "plan")
    graph.add_conditional_edges("plan", _after_plan, ["clarify", "approve_web"])
    graph.add_edge("clarify", "plan")
    graph.add_conditional_edges("approve_web", _fan_out, ["researcher"])
    graph.add_edge("researcher", "cross_reference")
    graph.add_edge("cross_reference", "write_report")
    graph.add_edge("write_report", "verify")
    graph.add_edge("verify", END)
    return graph


__all__ = [
    "DEPTHS",
    "ResearchContext",
    "ResearchState",
    "build_research_graph",
    "research_input",
]
