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

import operator
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

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


def _merge(left: dict[int, Any], right: dict[int, Any]) -> dict[int, Any]:
    return {**left, **right}


class WritingState(TypedDict, total=False):
    requirements: dict[str, Any]
    references: list[dict[str, Any]]
    title: str
    outline: list[dict[str, Any]]
    drafts: Annotated[dict[int, str], _merge]
    reviews: Annotated[list[dict[str, Any]], operator.add]
    round: int
    pending: list[int]
    content: str
    source: str  # the assembled document before citations were formatted


class SectionTask(TypedDict):
    index: int
    round: int
    feedback: list[str]


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


class WritingGraph:
    """Builds and runs the graph for one model."""

    def __init__(self, model: BaseChatModel, *, max_rounds: int = 2,
                 progress: Progress | None = None) -> None:
        self.model = model
        self.max_rounds = max_rounds
        self.progress = progress
        self.graph = self._build().compile()

    async def _say(self, message: str) -> None:
        if self.progress is not None:
            result = self.progress(message)
            if result is not None:
                await result

    async def _ask(self, prompt: str) -> str:
        reply = await self.model.ainvoke([SystemMessage(prompts.SYSTEM), HumanMessage(prompt)])
        content = reply.content
        if isinstance(content, list):
            content = "".join(part.get("text", "") if isinstance(part, dict) else str(part)
                              for part in content)
        return str(content)

    # ------------------------------------------------------------------ nodes

    async def outline(self, state: WritingState) -> dict[str, Any]:
        req = WritingRequirements(**state["requirements"])
        await self._say("outline")
        last_error = ""
        for _attempt in range(2):
            reply = await self._ask(prompts.outline_prompt(req, state.get("references", [])))
            try:
                data = prompts.parse_json(reply)
                sections = [s for s in data.get("sections", []) if str(s.get("heading", ""))]
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
                return {"title": title, "outline": sections[:12], "round": 0,
                        "pending": list(range(len(sections[:12])))}
            except (ValueError, AttributeError, TypeError) as exc:
                last_error = str(exc)
        raise WritingError(f"the model did not return a usable outline: {last_error}")

    async def draft(self, task: dict[str, Any]) -> dict[str, Any]:
        state: WritingState = task["state"]
        index = task["index"]
        req = WritingRequirements(**state["requirements"])
        section = state["outline"][index]
        await self._say(f"draft {index + 1}/{len(state['outline'])}: {section['heading']}"
                        + (f" (revision {task['round']})" if task["round"] else ""))
        reply = await self._ask(prompts.draft_prompt(
            req, state.get("references", []), state["title"], section, state["outline"],
            task["feedback"], state.get("drafts", {}).get(index, "")))
        return {"drafts": {index: _clean_section(reply, section["heading"])}}

    def code_checks(self, state: WritingState, index: int) -> list[RubricResult]:
        req = WritingRequirements(**state["requirements"])
        section = state["outline"][index]
        text = state["drafts"].get(index, "")
        target = int(section.get("words") or 0)
        count = _words_of(text)
        results: list[RubricResult] = []
        if target:
            low = round(target * (1 - max(req.length_tolerance, 0.25)))
            high = round(target * (1 + max(req.length_tolerance, 0.25)))
            results.append(RubricResult(
                criterion="length", passed=low <= count <= high,
                reason=f"{count} words, section target {target} ({low}–{high})"))
        manager = CitationManager(state.get("references") or [{"id": "_none", "title": ""}],
                                  req.citation_style)
        keys = [r.key for m in find_markers(text) for r in m.refs]
        unknown = sorted({k for k in keys if not manager.has(k)})
        results.append(RubricResult(
            criterion="citations resolve", passed=not unknown,
            reason=("cites unknown keys: " + ", ".join(f"@{k}" for k in unknown)
                    + " (use only the listed keys)") if unknown else "every citation resolves"))
        if req.citations_required and state.get("references"):
            results.append(RubricResult(
                criterion="cites a source", passed=bool(keys),
                reason="cites " + ", ".join(f"@{k}" for k in dict.fromkeys(keys)) if keys
                else "no citation in this section: cite a listed reference"))
        return results

    async def review(self, task: dict[str, Any]) -> dict[str, Any]:
        state: WritingState = task["state"]
        index = task["index"]
        req = WritingRequirements(**state["requirements"])
        section = state["outline"][index]
        text = state["drafts"].get(index, "")
        await self._say(f"review {index + 1}: {section['heading']}")
        results = self.code_checks(state, index)
        reply = await self._ask(prompts.review_prompt(req, section, text))
        try:
            judged = prompts.parse_json(reply).get("criteria", [])
            for item in judged:
                criterion = str(item.get("criterion", "")).strip().lower()
                if criterion in prompts.CRITERIA:
                    results.append(RubricResult(criterion=criterion,
                                                passed=bool(item.get("passed")),
                                                reason=str(item.get("reason", ""))[:300]))
        except (ValueError, AttributeError):
            results.append(RubricResult(criterion="review", passed=True,
                                        reason="the model's review was not JSON; not judged"))
        review = SectionReview(section=section["heading"], round=task["round"], results=results)
        return {"reviews": [{"index": index, **review.model_dump()}]}

    async def decide(self, state: WritingState) -> dict[str, Any]:
        current = [r for r in state.get("reviews", []) if r["round"] == state.get("round", 0)]
        failing = [r["index"] for r in current
                   if not all(c["passed"] for c in r["results"])]
        if failing and state.get("round", 0) < self.max_rounds:
            return {"round": state.get("round", 0) + 1, "pending": sorted(failing)}
        return {"pending": []}

    async def assemble(self, state: WritingState) -> dict[str, Any]:
        await self._say("assemble")
        parts = [f"# {state['title']}"]
        for index, section in enumerate(state["outline"]):
            parts.append(f"## {section['heading']}\n\n{state['drafts'].get(index, '').strip()}")
        source = "\n\n".join(parts).strip() + "\n"
        req = WritingRequirements(**state["requirements"])
        content = source
        if state.get("references"):
            content = CitationManager(state["references"], req.citation_style).render_document(
                source)
        return {"content": content, "source": source}

    # ------------------------------------------------------------------ wiring

    def _drafts_to_send(self, state: WritingState) -> list[Send]:
        feedback: dict[int, list[str]] = {}
        for review in state.get("reviews", []):
            if review["round"] == state.get("round", 0) - 1:
                feedback[review["index"]] = [
                    f"{c['criterion']}: {c['reason']}" for c in review["results"]
                    if not c["passed"]]
        return [Send("draft", {"state": state, "index": i, "round": state.get("round", 0),
                               "feedback": feedback.get(i, [])})
                for i in state.get("pending", [])]

    def _reviews_to_send(self, state: WritingState) -> list[Send]:
        return [Send("review", {"state": state, "index": i, "round": state.get("round", 0)})
                for i in state.get("pending", [])]

    def _after_decide(self, state: WritingState) -> list[Send] | str:
        if state.get("pending"):
            return self._drafts_to_send(state)
        return "assemble"

    def _build(self) -> StateGraph:
        graph = StateGraph(WritingState)
        graph.add_node("outline", self.outline)
        graph.add_node("draft", self.draft)
        graph.add_node("drafted", lambda _state: {})
        graph.add_node("review", self.review)
        graph.add_node("decide", self.decide)
        graph.add_node("assemble", self.assemble)
        graph.add_edge(START, "outline")
        graph.add_conditional_edges("outline", self._drafts_to_send, ["draft"])
        graph.add_edge("draft", "drafted")
        graph.add_conditional_edges("drafted", self._reviews_to_send, ["review"])
        graph.add_edge("review", "decide")
        graph.add_conditional_edges("decide", self._after_decide, ["draft", "assemble"])
        graph.add_edge("assemble", END)
        return graph

    async def run(self, requirements: WritingRequirements,
                  references: list[dict[str, Any]] | None = None) -> GeneratedContent:
        """Write the document the requirements ask for and measure it."""
        state = await self.graph.ainvoke(
            {"requirements": requirements.model_dump(), "references": references or [],
             "drafts": {}, "reviews": []},
            {"recursion_limit": 25 + 6 * self.max_rounds},
        )
        content = state["content"]
        final_reviews = _latest_reviews(state.get("reviews", []))
        rubric = [RubricResult(**r) for review in final_reviews for r in review["results"]]
        report = check_document(content, references=references or None,
                                citation_style=requirements.citation_style,
                                requirements=requirements, rubric=rubric,
                                citations_from=state["source"])
        cited = {r.key.lower() for m in find_markers(state["source"]) for r in m.refs}
        return GeneratedContent(
            content=content,
            metadata={"title": state["title"], "outline": state["outline"],
                      "rounds": state.get("round", 0), "requirements": requirements.model_dump(),
                      "words": report.words},
            citations=[i for i in references or [] if str(i["id"]).lower() in cited],
            quality_score=report.quality_score,
            readability_score=report.readability.as_dict(),
            structure_analysis=report.structure.as_dict(),
            reviews=[SectionReview(**{k: v for k, v in r.items() if k != "index"})
                     for r in final_reviews],
            report=report.as_dict(),
        )


def _latest_reviews(reviews: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[int, dict[str, Any]] = {}
    for review in reviews:
        if review["index"] not in latest or review["round"] >= latest[review["index"]]["round"]:
            latest[review["index"]] = review
    return [latest[i] for i in sorted(latest)]


async def edit_content(model: BaseChatModel, text: str, edit_type: str,
                       requirements: WritingRequirements | None = None) -> str:
    """One editing pass (proofread, shorten, expand, simplify, restyle) over a document."""
    if edit_type not in prompts.EDIT_INSTRUCTIONS:
        raise ValueError(f"unknown edit type {edit_type!r}: use "
                         + ", ".join(prompts.EDIT_INSTRUCTIONS))
    reply = await model.ainvoke([SystemMessage(prompts.SYSTEM),
                                 HumanMessage(prompts.edit_prompt(edit_type, text,
                                                                  requirements))])
    content = reply.content if isinstance(reply.content, str) else str(reply.content)
    edited = prompts.strip_fence(content)
    return edited.rstrip() + "\n"
