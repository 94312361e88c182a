"""The last three nodes: number the sources and cross-reference the findings, write the report,
verify its citations (``verify.py``) and store the ``ResearchResult``.

Source numbers: the reading list first, then in the order findings use them. After
verification the report's citations are renumbered gap-free in order of appearance, and the
result's sources follow those numbers (cited first, then the sources read but not cited).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from openmanus_tui.research import prompts
from openmanus_tui.research.crossref import cross_reference, finding_confidence, report_confidence
from openmanus_tui.research.models import (
    CrossReference,
    ResearchFinding,
    ResearchResult,
    ResearchSource,
)
from openmanus_tui.research.state import (
    ResearchContext,
    ResearchState,
    answered_by,
    log_step,
    spent_record,
)
from openmanus_tui.research.verify import SourceText, verify_report


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
    records = state.get("spent") or []
    spent = [sum(r.get("in", 0) for r in records), sum(r.get("out", 0) for r in records)]
    # Each record priced at the models that answered it; a record from before costs were
    # recorded (an older checkpoint) at the primary's prices.
    cost = sum(r["cost"] if "cost" in r else runtime.context.model_info.cost(
        r.get("in", 0), r.get("out", 0)) for r in records)
    by_id = {f.id: f for f in findings}
    return {
        "findings": [{"id": f.id, "status": f.status, "cluster": f.cluster,
                      "confidence": f.confidence} for f in by_id.values()],
        "cross_references": [r.model_dump() for r in refs],
        "sources": updated_sources,
        "tokens_in": (state.get("tokens_in") or 0) + spent[0],
        "tokens_out": (state.get("tokens_out") or 0) + spent[1],
        "cost": (state.get("cost") or 0.0) + cost,
        "research_log": [log_step("cross_reference",
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
        answers = []
    else:
        answers = [await ctx.ask(prompts.REPORT, user)]
        draft = answers[0].text
    # Recorded in ``spent`` for the models that answered (the tokens were summed already by
    # cross_reference, so this record's go straight into the totals here).
    record = spent_record("report", answers)
    return {
        "report_draft": draft,
        "spent": [record],
        "tokens_in": (state.get("tokens_in") or 0) + record["in"],
        "tokens_out": (state.get("tokens_out") or 0) + record["out"],
        "cost": (state.get("cost") or 0.0) + record["cost"],
        "research_log": [log_step("report", f"report drafted ({len(draft.split())} words)")],
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
            "reading_list": state.get("reading_list") or [],
            "allow_domains": state.get("allow_domains") or [],
            "skipped": state.get("skipped") or [],
            "model": ctx.model_info.spec,
            # Calls per model that answered: a fallback's when the primary was down.
            "answered_by": answered_by(state.get("spent") or []),
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
        "research_log": [log_step(
            "verify",
            f"{len(checked.verdicts)} citation(s) checked: "
            f"{len(checked.verdicts) - caught} supported, {caught} removed",
            citations=len(checked.verdicts), removed=caught,
            # The report's numbers → the Sources tab's (the workbench links its citations).
            sources={str(s.number): s.registry_number for s in result_sources
                     if s.cited and s.registry_number is not None},
        )],
    }


