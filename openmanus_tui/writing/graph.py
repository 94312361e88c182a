"""The writing graph (LangGraph): outline → draft every section in parallel (``Send``) → review
each section against a rubric → revise the failing ones, for a bounded number of rounds →
assemble and polish → measure.

The rubric has criteria checked by code (section length within its target ± tolerance; every
citation resolves to a reference; a cited reference when citations are required) and criteria
judged by the model (tone, audience, style, clarity), each pass/fail with a reason. "Polish" is
done by code: model-added headings and reference lists are removed, the document gets one H1,
citations are formatted and the reference list appended by ``CitationManager``, never by the
model. ``quality_score`` and every other number come from ``check_document``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.constants import TAG_NOSTREAM
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from openmanus_tui.agent.state import AgentState
from openmanus_tui.models.fallback import ChainCalls
from openmanus_tui.writing import prompts
from openmanus_tui.writing.citations import CitationManager, find_markers
from openmanus_tui.writing.prose import paragraphs, words
from openmanus_tui.writing.quality import check_document
from openmanus_tui.writing.requirements import (
    GeneratedContent,
    RubricResult,
    SectionReview,
    WritingRequirements,
)

Progress = Callable[[str], Awaitable[None] | None]


class WritingError(RuntimeError):
    """The model's replies could not be turned into a document (one line)."""


def _merge_or_reset(left: dict[int, Any] | None, right: dict[int, Any] | None) -> dict[int, Any]:
    # ``None`` starts a new run's drafts (a session's thread keeps the previous run's state).
    return {} if right is None else {**(left or {}), **right}


def _append_or_reset(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    return [] if right is None else [*(left or []), *right]


class WritingState(AgentState, total=False):
    requirements: dict[str, Any]
    references: list[dict[str, Any]]
    title: str
    outline: list[dict[str, Any]]
    drafts: Annotated[dict[int, str], _merge_or_reset]
    reviews: Annotated[list[dict[str, Any]], _append_or_reset]
    round: int
    pending: list[int]
    content: str
    source: str  # the assembled document before citations were formatted
    writing: dict[str, Any] | None  # the GeneratedContent, when finished
    output: str  # in a session: the file to write (relative: in the workspace); "": by title


@dataclass
class WritingContext(ChainCalls):
    """What the nodes use that is not state (never checkpointed). Its model calls take the
    agent's path (``ChainCalls``: the chain, breakers, fallbacks and retry/fallback events)."""

    model: Any
    max_rounds: int = 2
    progress: Progress | None = None
    # In a session: the folder the document is written to (a file named after its title) and
    # where results are stored.
    output_dir: Path | None = None
    save_result: Callable[[GeneratedContent], Awaitable[None]] | None = None
    policy: Any = None  # the session's approval policy (the writing graph calls no tools)

    async def say(self, message: str) -> None:
        if self.progress is not None:
            result = self.progress(message)
            if result is not None:
                await result

    async def ask(self, prompt: str) -> str:
        reply, _ = await self.invoke(
            self.model, [SystemMessage(prompts.SYSTEM), HumanMessage(prompt)],
            {"tags": [TAG_NOSTREAM, "openmanus:writing"]})
        content = reply.content
        if isinstance(content, list):
            content = "".join(part.get("text", "") if isinstance(part, dict) else str(part)
                              for part in content)
        return str(content)


def writing_input(brief: str, message: BaseMessage | None = None, *,
                  requirements: WritingRequirements | None = None,
                  references: list[dict[str, Any]] | None = None,
                  output: str | None = None) -> dict[str, Any]:
    """The update that starts a writing run (in a session, the agent's counters reset too);
    ``output``: the file a session's run writes (none: named after the title)."""
    from openmanus_tui.agent.state import run_input

    req = requirements or WritingRequirements()
    if not req.brief:
        req = req.model_copy(update={"brief": brief})
    start = run_input(brief, message) if message is not None else {"input": brief}
    return {**start, "requirements": req.model_dump(), "references": references or [],
            "drafts": None, "reviews": None, "round": 0, "pending": [], "writing": None,
            "output": output or ""}


# Model-made extras the assembly removes: a heading repeating the section's, a reference list.
_REFERENCE_HEADING = re.compile(
    r"^#{1,6}\s*(references|bibliography|works cited|sources)\s*$.*", re.I | re.M | re.S)


def _clean_section(text: str, heading: str) -> str:
    text = prompts.strip_fence(text)
    text = _REFERENCE_HEADING.sub("", text).strip()
    lines = text.splitlines()
    if lines and lines[0].lstrip("#").strip().lower() == heading.strip().lower():
        lines = lines[1:]
    # Headings inside a section sit below its H2.
    out = []
    for line in lines:
        match = re.match(r"^(#{1,6})\s+(.*)", line)
        if match:
            level = min(6, max(3, len(match.group(1))))
            line = "#" * level + " " + match.group(2)
        out.append(line)
    return "\n".join(out).strip()


def _words_of(markdown: str) -> int:
    return sum(len(words(p.text)) for p in paragraphs(markdown))


def _req(state: dict[str, Any]) -> WritingRequirements:
    return WritingRequirements(**state["requirements"])


# ---------------------------------------------------------------------------------- nodes

async def outline(state: WritingState, runtime: Runtime[WritingContext]) -> dict[str, Any]:
    ctx = runtime.context
    req = _req(state)
    await ctx.say(f"requirements: {req.summary()}")
    await ctx.say("outline")
    last_error = ""
    for _attempt in range(2):
        reply = await ctx.ask(prompts.outline_prompt(req, state.get("references") or []))
        try:
            data = prompts.parse_json(reply)
            sections = [s for s in data.get("sections", []) if str(s.get("heading", ""))][:12]
            if not sections:
                raise ValueError("the outline has no sections")
            total = req.length_words or 0
            for section in sections:
                try:
                    section["words"] = max(30, int(section.get("words") or 0))
                except (TypeError, ValueError):
                    section["words"] = 0
                if not section["words"]:
                    section["words"] = max(60, total // len(sections)) if total else 200
            title = str(data.get("title") or req.brief[:80] or "Document").strip()
            return {"title": title, "outline": sections, "round": 0,
                    "pending": list(range(len(sections)))}
        except (ValueError, AttributeError, TypeError) as exc:
            last_error = str(exc)
    raise WritingError(f"the model did not return a usable outline: {last_error}")


def _task(state: WritingState, index: int, **extra: Any) -> dict[str, Any]:
    # What a parallel branch needs: never the whole state (a session's holds its messages).
    keep = ("requirements", "references", "title", "outline", "drafts")
    return {**{k: state.get(k) for k in keep}, "index": index, "round": state.get("round", 0),
            **extra}


async def draft(task: dict[str, Any], runtime: Runtime[WritingContext]) -> dict[str, Any]:
    ctx = runtime.context
    index = task["index"]
    section = task["outline"][index]
    await ctx.say(f"draft {index + 1}/{len(task['outline'])}: {section['heading']}"
                  + (f" (revision {task['round']})" if task["round"] else ""))
    reply = await ctx.ask(prompts.draft_prompt(
        _req(task), task.get("references") or [], task["title"], section, task["outline"],
        task.get("feedback") or [], (task.get("drafts") or {}).get(index, "")))
    text = _clean_section(reply, section["heading"])
    if ctx.output_dir is not None:
        # In a session a long document is written section by section as drafts arrive
        # (<title>.sections/NN-<heading>.md beside the document), not only at the end.
        from openmanus_tui.writing.output import slug, write_document

        folder = ctx.output_dir / f"{slug(task['title'])}.sections"
        write_document(f"## {section['heading']}\n\n{text}\n",
                       folder / f"{index + 1:02d}-{slug(section['heading'])}.md", "md")
    return {"drafts": {index: text}}


def code_checks(task: dict[str, Any]) -> list[RubricResult]:
    """The rubric's criteria decided by code: length, citations resolve, a source cited."""
    req = _req(task)
    index = task["index"]
    section = task["outline"][index]
    text = (task.get("drafts") or {}).get(index, "")
    target = int(section.get("words") or 0)
    count = _words_of(text)
    results: list[RubricResult] = []
    if target:
        spread = max(req.length_tolerance, 0.25)  # sections vary more than the whole
        low, high = round(target * (1 - spread)), round(target * (1 + spread))
        results.append(RubricResult(
            criterion="length", passed=low <= count <= high,
            reason=f"{count} words, section target {target} ({low}–{high})"))
    references = task.get("references") or []
    known = {str(i["id"]).lower() for i in references}
    keys = [r.key for m in find_markers(text) for r in m.refs]
    unknown = sorted({k for k in keys if k.lower() not in known})
    results.append(RubricResult(
        criterion="citations resolve", passed=not unknown,
        reason=("cites unknown keys: " + ", ".join(f"@{k}" for k in unknown)
                + " (use only the listed keys)") if unknown else "every citation resolves"))
    if req.citations_required and references:
        results.append(RubricResult(
            criterion="cites a source", passed=bool(keys),
            reason="cites " + ", ".join(f"@{k}" for k in dict.fromkeys(keys)) if keys
            else "no citation in this section: cite a listed reference"))
    return results


async def review(task: dict[str, Any], runtime: Runtime[WritingContext]) -> dict[str, Any]:
    ctx = runtime.context
    index = task["index"]
    section = task["outline"][index]
    text = (task.get("drafts") or {}).get(index, "")
    await ctx.say(f"review {index + 1}: {section['heading']}")
    results = code_checks(task)
    reply = await ctx.ask(prompts.review_prompt(_req(task), section, text))
    try:
        for item in prompts.parse_json(reply).get("criteria", []):
            criterion = str(item.get("criterion", "")).strip().lower()
            if criterion in prompts.CRITERIA:
                results.append(RubricResult(criterion=criterion, passed=bool(item.get("passed")),
                                            reason=str(item.get("reason", ""))[:300]))
    except (ValueError, AttributeError):
        results.append(RubricResult(criterion="review", passed=True,
                                    reason="the model's review was not JSON; not judged"))
    done = SectionReview(section=section["heading"], round=task["round"], results=results)
    return {"reviews": [{"index": index, **done.model_dump()}]}


async def decide(state: WritingState, runtime: Runtime[WritingContext]) -> dict[str, Any]:
    current = [r for r in state.get("reviews") or [] if r["round"] == state.get("round", 0)]
    failing = [r["index"] for r in current if not all(c["passed"] for c in r["results"])]
    if failing and state.get("round", 0) < runtime.context.max_rounds:
        return {"round": state.get("round", 0) + 1, "pending": sorted(failing)}
    return {"pending": []}


async def assemble(state: WritingState, runtime: Runtime[WritingContext]) -> dict[str, Any]:
    """Join the sections under one H1, format the citations, append the reference list, and
    measure the result (``check_document``, with the final rubric)."""
    ctx = runtime.context
    await ctx.say("assemble")
    req = _req(state)
    parts = [f"# {state['title']}"]
    for index, section in enumerate(state["outline"]):
        parts.append(f"## {section['heading']}\n\n{state['drafts'].get(index, '').strip()}")
    source = "\n\n".join(parts).strip() + "\n"
    references = state.get("references") or []
    content = source
    if references:
        content = CitationManager(references, req.citation_style).render_document(source)
    final_reviews = _latest_reviews(state.get("reviews") or [])
    rubric = [RubricResult(**r) for review in final_reviews for r in review["results"]]
    report = check_document(content, references=references or None,
                            citation_style=req.citation_style, requirements=req, rubric=rubric,
                            citations_from=source, uncited="warning")
    cited = {r.key.lower() for m in find_markers(source) for r in m.refs}
    generated = GeneratedContent(
        content=content,
        metadata={"title": state["title"], "outline": state["outline"],
                  "rounds": state.get("round", 0), "requirements": req.model_dump(),
                  "words": report.words},
        citations=[i for i in references if str(i["id"]).lower() in cited],
        quality_score=report.quality_score,
        readability_score=report.readability.as_dict(),
        structure_analysis=report.structure.as_dict(),
        reviews=[SectionReview(**{k: v for k, v in r.items() if k != "index"})
                 for r in final_reviews],
        report=report.as_dict(),
    )
    update: dict[str, Any] = {"content": content, "source": source}
    if ctx.output_dir is not None:  # in a session: the file is the output, not the chat
        from openmanus_tui.writing.output import free_name, write_document

        chosen = state.get("output")
        target = ctx.output_dir / chosen if chosen else free_name(
            ctx.output_dir, state["title"], req.format)
        write_document(content, target, req.format)
        # Relative to the workspace when inside it (the answer's "Wrote <name>").
        generated.metadata["output"] = str(
            target.relative_to(ctx.output_dir) if target.is_relative_to(ctx.output_dir)
            else target)
    if ctx.save_result is not None:
        await ctx.save_result(generated)
    update["writing"] = generated.model_dump(mode="json")
    if "messages" in state:
        # The file is the output: the answer says where it is and what it scored.
        problems = "" if report.ok else f", {len(report.citation_errors)} citation problems"
        outline_lines = "\n".join(
            f"- {s['heading']} ({_words_of(state['drafts'].get(i, ''))} words)"
            for i, s in enumerate(state["outline"]))
        cited = f"\n\n{len(generated.citations)} references cited ({req.citation_style})." \
            if references else ""
        summary = (f"Wrote {generated.metadata.get('output') or 'the document'}: "
                   f"{report.words} words, quality {generated.quality_score:.2f}{problems}"
                   f".\n\n# {state['title']}\n\n{outline_lines}{cited}")
        answer_id = "writing_" + hashlib.sha1(content.encode()).hexdigest()[:16]
        update["final_answer"] = summary
        update["messages"] = [AIMessage(content=summary, id=answer_id)]
    return update


# ---------------------------------------------------------------------------------- wiring

def _drafts_to_send(state: WritingState) -> list[Send]:
    feedback: dict[int, list[str]] = {}
    for done in state.get("reviews") or []:
        if done["round"] == state.get("round", 0) - 1:
            feedback[done["index"]] = [f"{c['criterion']}: {c['reason']}"
                                       for c in done["results"] if not c["passed"]]
    return [Send("draft", _task(state, i, feedback=feedback.get(i, [])))
            for i in state.get("pending") or []]


def _reviews_to_send(state: WritingState) -> list[Send]:
    return [Send("review", _task(state, i)) for i in state.get("pending") or []]


def _after_decide(state: WritingState) -> list[Send] | str:
    return _drafts_to_send(state) if state.get("pending") else "assemble"


def build_writing_graph() -> StateGraph:
    """The writing graph, uncompiled: compiled with the session's checkpointer for the Writing
    profile, or without one by ``WritingGraph`` (``openmanus write``)."""
    graph = StateGraph(WritingState, context_schema=WritingContext)
    graph.add_node("outline", outline)
    graph.add_node("draft", draft)  # type: ignore[arg-type]
    graph.add_node("drafted", lambda _state: {})
    graph.add_node("review", review)  # type: ignore[arg-type]
    graph.add_node("decide", decide)
    graph.add_node("assemble", assemble)
    graph.add_edge(START, "outline")
    graph.add_conditional_edges("outline", _drafts_to_send, ["draft"])
    graph.add_edge("draft", "drafted")
    graph.add_conditional_edges("drafted", _reviews_to_send, ["review"])
    graph.add_edge("review", "decide")
    graph.add_conditional_edges("decide", _after_decide, ["draft", "assemble"])
    graph.add_edge("assemble", END)
    return graph


class WritingGraph:
    """The graph run on its own (no session, no checkpoints), as ``openmanus write`` does."""

    def __init__(self, model: BaseChatModel, *, max_rounds: int = 2,
                 progress: Progress | None = None, **calls: Any) -> None:
        # ``calls``: the model path (``ChainCalls``' chain, breakers, fallbacks, retries).
        self.context = WritingContext(model=model, max_rounds=max_rounds, progress=progress,
                                      **calls)
        self.max_rounds = max_rounds
        self.graph = build_writing_graph().compile()

    async def run(self, requirements: WritingRequirements,
                  references: list[dict[str, Any]] | None = None) -> GeneratedContent:
        """Write the document the requirements ask for and measure it."""
        state = await self.graph.ainvoke(
            writing_input(requirements.brief, requirements=requirements, references=references),
            {"recursion_limit": 25 + 6 * self.max_rounds},
            context=self.context,
        )
        return GeneratedContent(**state["writing"])


def _latest_reviews(reviews: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[int, dict[str, Any]] = {}
    for review in reviews:
        if review["index"] not in latest or review["round"] >= latest[review["index"]]["round"]:
            latest[review["index"]] = review
    return [latest[i] for i in sorted(latest)]


async def edit_content(model: BaseChatModel, text: str, edit_type: str,
                       requirements: WritingRequirements | None = None, **calls: Any) -> str:
    """One editing pass (proofread, shorten, expand, simplify, restyle) over a document;
    ``calls``: the model path (``ChainCalls``)."""
    if edit_type not in prompts.EDIT_INSTRUCTIONS:
        raise ValueError(f"unknown edit type {edit_type!r}: use "
                         + ", ".join(prompts.EDIT_INSTRUCTIONS))
    content = await WritingContext(model=model, **calls).ask(
        prompts.edit_prompt(edit_type, text, requirements))
    return prompts.strip_fence(content).rstrip() + "\n"
