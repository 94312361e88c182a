"""The researcher node: one sub-question's bounded search → read → extract loop.

Per round the model proposes queries, the library searches (the workspace, and the web when the
run may use it), new sources are read (within the depth's and ``max_research_sources``'s
budget, and before ``research_timeout``), and the model extracts findings with quotes; a finding
whose quote is not in the source's stored text is dropped here, by code. The reading list is
offered to every researcher first.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from langgraph.runtime import Runtime

from openmanus_tui.errors import OpenManusError
from openmanus_tui.research import prompts
from openmanus_tui.research.library import ReadSource
from openmanus_tui.research.state import (
    DEPTHS,
    EXCERPT_CHARS,
    Answer,
    ResearchContext,
    log_step,
    spent_record,
)
from openmanus_tui.research.text import normalise


async def researcher(task: dict[str, Any], runtime: Runtime[ResearchContext]) -> dict[str, Any]:
    ctx = runtime.context
    depth = DEPTHS.get(task.get("depth") or "standard", DEPTHS["standard"])
    sub_q: str = task["sub_question"]
    index: int = task["index"]
    # From this researcher's own start: a run resumed hours after its clarifying question (or
    # a crash) still gets its time; researchers run in parallel, so the phase takes as long.
    deadline = time.monotonic() + ctx.timeout
    # New sources this researcher may read: its depth's share, within max_research_sources.
    budget = min(depth.sources_per_question,
                 max(1, ctx.max_sources // max(1, task.get("researchers", 1))))
    seen: set[str] = set()
    sources: dict[str, dict[str, Any]] = {}
    findings: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    log: list[dict[str, Any]] = []
    answers: list[Answer] = []

    async def extract(source: ReadSource) -> None:
        answer = await ctx.ask(
            prompts.EXTRACT.format(max_findings=depth.findings_per_source),
            f"Sub-question: {sub_q}\nSource: {source.title} ({source.location})\n"
            f"<source_text>\n{source.text[:EXCERPT_CHARS]}\n</source_text>",
        )
        answers.append(answer)
        kept = dropped = 0
        normal_text = normalise(source.text)
        found = prompts.parse_json(answer.text).get("findings") or []
        for raw in found[: depth.findings_per_source]:
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
        log.append(log_step("extract", f"{source.title or source.location}: {kept} finding(s)"
                        + (f", {dropped} dropped (quote not in the source)" if dropped else ""),
                        location=source.location, kept=kept, dropped=dropped))

    for location in task.get("reading") or []:
        seen.add(location)
        try:
            source = await ctx.read(location)
        except OpenManusError as exc:
            log.append(log_step("read", f"not read again: {location}: {exc.message}"))
            continue
        await extract(source)
    for round_no in range(depth.rounds):
        if time.monotonic() > deadline or len(sources) >= budget:
            break
        answer = await ctx.ask(
            prompts.QUERIES.format(max_queries=depth.queries),
            f"Question: {task.get('question', '')}\nSub-question: {sub_q}\n"
            f"Already read: {', '.join(sorted(seen)) or 'nothing'}",
        )
        answers.append(answer)
        queries = prompts.strings(prompts.parse_json(answer.text).get("queries"), depth.queries)
        queries = queries or ([sub_q] if round_no == 0 else [])
        if not queries:
            break
        hits = []
        for query in queries:
            hits.extend(await ctx.library.search(query, depth.sources_per_question,
                                                 web=bool(task.get("web"))))
        log.append(log_step("search", f"round {round_no + 1}: {len(hits)} result(s) for "
                        + "; ".join(queries), queries=queries))
        fresh = [h for h in hits if h.location not in seen]
        if not fresh:
            break
        for hit in fresh:
            if len(sources) >= budget or time.monotonic() > deadline:
                break
            seen.add(hit.location)
            try:
                source = await ctx.read(hit.location)
            except OpenManusError as exc:
                skipped.append({"id": hit.location, "reason": exc.message})
                log.append(log_step("read", f"not read: {hit.location}: {exc.message}"))
                continue
            seen.add(source.location)
            sources[source.location] = {**source.meta(), "from_reading_list": False}
            await extract(source)
    return {
        "sources": list(sources.values()),
        "findings": findings,
        "skipped": skipped,
        "spent": [spent_record(f"researcher_{index}", answers)],
        "research_log": [*log, log_step("research", f"sub-question {index + 1} done: "
                                    f"{len(findings)} finding(s) from {len(sources)} new "
                                    "source(s)", sub_question=sub_q)],
    }


