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
them and gives them back by location. The state and context are in ``state.py``, the
researcher in ``researcher.py``, the last three nodes in ``report.py``; this module has the
first nodes and the wiring.
"""

from __future__ import annotations

import hashlib
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send, interrupt

from openmanus_tui.agent.approval import Decision
from openmanus_tui.errors import OpenManusError
from openmanus_tui.research import prompts
from openmanus_tui.research.report import cross_reference_node, verify, write_report
from openmanus_tui.research.researcher import researcher
from openmanus_tui.research.state import (
    DEPTHS,
    ResearchContext,
    ResearchState,
    depth_of,
    log_step,
    research_input,
    spent_record,
)


# ---- nodes ----------------------------------------------------------------------------------
async def read_list(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    ctx = runtime.context
    sources, skipped, log = [], [], []
    for location in state.get("reading_list") or []:
        try:
            source = await ctx.read(location)
        except OpenManusError as exc:
            skipped.append({"id": location, "reason": exc.message})
            log.append(log_step("read", f"not read: {location}: {exc.message}", location=location))
            continue
        sources.append({**source.meta(), "from_reading_list": True, "asked_as": location})
        log.append(log_step("read", f"read {source.title or source.location}",
                             location=source.location))
    return {"sources": sources, "skipped": skipped, "research_log": log}


async def plan(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    ctx = runtime.context
    depth = depth_of(state)
    question = state.get("question") or state.get("input") or ""
    clarification = state.get("clarification")
    user = f"Question: {question}"
    if clarification:
        user += (f"\nYou asked: {clarification['question']}\n"
                 f"The person answered: {clarification['answer']}")
    note = " (you already asked once: do not ask again)" if clarification else ""
    answer = await ctx.ask(
        prompts.PLAN.format(max_sub=depth.sub_questions, clarify_note=note), user
    )
    data = prompts.parse_json(answer.text)
    subs = prompts.strings(data.get("sub_questions"), depth.sub_questions)
    ask = data.get("clarify")
    update: dict[str, Any] = {"spent": [spent_record("plan", [answer])]}
    if isinstance(ask, str) and ask.strip() and not clarification:
        update["clarification"] = {"question": ask.strip(), "answer": ""}
        update["sub_questions"] = []
        update["research_log"] = [log_step("plan", f"a clarifying question: {ask.strip()}")]
        return update
    subs = subs or [question]
    update["sub_questions"] = subs
    update["research_log"] = [log_step("plan", f"{len(subs)} sub-question(s)", sub_questions=subs)]
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


def web_request(state: ResearchState, max_sources: int) -> tuple[str, dict[str, Any]]:
    """The call id and arguments of a run's one request for web access (what the policy and
    the person decide on)."""
    return _web_call_id(state), {
        "purpose": "research",
        "question": state.get("question", ""),
        "sub_questions": state.get("sub_questions") or [],
        "max_sources": max_sources,
    }


def approve_web(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    """Web access for this run, through the approval policy (one request). Side-effect free:
    re-run from the top on resume, it asks the same question and reads the answer."""
    ctx = runtime.context
    call_id, args = web_request(state, ctx.max_sources)
    if not ctx.web_search:
        return {"web_allowed": False, "research_log": [
            log_step("approve", "no web search with this model: workspace and reading list only")]}
    if ctx.policy is None:
        return {"web_allowed": True}
    verdict = ctx.policy.evaluate("web_fetch", args)
    if verdict.action != "ask":
        allowed = verdict.action == "allow"
        why = "allowed" if allowed else f"refused ({verdict.reason or verdict.rule})"
        return {"web_allowed": allowed, "research_log": [log_step("approve", f"web access {why}")]}
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
            "research_log": [log_step("approve", text)]}


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
                "researchers": len(subs),
            },
        )
        for i, q in enumerate(subs)
    ]


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
