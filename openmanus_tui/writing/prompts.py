"""Prompts of the writing graph. Each starts with a ``TASK:`` line naming the step, so a log
(and the loopback test server) can tell the steps apart; replies are JSON or Markdown as asked."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openmanus_tui.writing.requirements import WritingRequirements

SYSTEM = (
    "You are a careful professional writer and editor. Follow the requirements exactly. "
    "Never invent sources: cite only the reference keys you are given, as [@key]."
)


def _requirements_block(req: WritingRequirements) -> str:
    lines = [
        f"Audience: {req.audience}",
        f"Tone: {req.tone}",
        f"Style: {req.style}",
        f"Technical level: {req.technical_level}",
    ]
    if req.length_words:
        low, high = req.length_range() or (req.length_words, req.length_words)
        lines.append(f"Length: about {req.length_words} words in total ({low}–{high})")
    if req.style_guide.strip():
        lines.append("Style guide rules:\n" + req.style_guide.strip())
    return "\n".join(lines)


def _references_block(references: list[dict[str, Any]]) -> str:
    if not references:
        return "References: none (do not cite anything)."
    rows = []
    for item in references:
        names = item.get("author") or []
        who = ", ".join(str(n.get("family") or n.get("literal") or "") for n in names[:2])
        year = ((item.get("issued") or {}).get("date-parts") or [[""]])[0][0]
        rows.append(f"- [@{item['id']}] {who} ({year or 'n.d.'}): {item.get('title', '')}")
    return "References you may cite (use the key exactly, e.g. [@key]):\n" + "\n".join(rows)


def outline_prompt(req: WritingRequirements, references: list[dict[str, Any]]) -> str:
    cite = ("Every section that makes a factual claim must cite at least one reference."
            if req.citations_required else "Cite references where they support a claim.")
    return (
        "TASK: outline\n"
        f"Write the outline of a document for this brief:\n{req.brief}\n\n"
        f"{_requirements_block(req)}\n{_references_block(references)}\n{cite}\n\n"
        'Reply with JSON only: {"title": "...", "sections": [{"heading": "...", '
        '"goal": "what this section must say", "words": N}]} with 2 to 8 sections whose '
        "word counts add up to the requested length."
    )


def draft_prompt(req: WritingRequirements, references: list[dict[str, Any]], title: str,
                 section: dict[str, Any], outline: list[dict[str, Any]],
                 feedback: list[str], previous: str) -> str:
    plan = "\n".join(f"{n}. {s['heading']}: {s.get('goal', '')}"
                     for n, s in enumerate(outline, 1))
    revise = ""
    if feedback:
        revise = ("\nThis is a revision. The review found these problems; fix every one:\n"
                  + "\n".join(f"- {f}" for f in feedback)
                  + f"\n\nYour previous draft:\n{previous}\n")
    return (
        "TASK: draft\n"
        f"Document title: {title}\nFull outline:\n{plan}\n\n"
        f"Write the section \"{section['heading']}\" ({section.get('words', 200)} words). "
        f"Its goal: {section.get('goal', '')}\n\n"
        f"{_requirements_block(req)}\n{_references_block(references)}\n{revise}\n"
        "Reply with the section's Markdown body only: no heading line for the section itself, "
        "no reference list (it is added by code)."
    )


CRITERIA = ("tone", "audience", "style", "clarity")


def review_prompt(req: WritingRequirements, section: dict[str, Any], text: str) -> str:
    return (
        "TASK: review\n"
        f"Review the section \"{section['heading']}\" against the requirements.\n"
        f"{_requirements_block(req)}\nSection goal: {section.get('goal', '')}\n\n"
        f"Section text:\n{text}\n\n"
        "For each criterion (" + ", ".join(CRITERIA) + ") decide pass or fail with a short "
        'reason. Reply with JSON only: {"criteria": [{"criterion": "tone", "passed": true, '
        '"reason": "..."}]}'
    )


EDIT_INSTRUCTIONS = {
    "proofread": "Correct spelling, grammar and punctuation only. Change nothing else.",
    "shorten": "Make it about a third shorter, keeping every point and every citation.",
    "expand": "Make it about half as long again, adding explanation and examples; keep every "
              "citation.",
    "simplify": "Rewrite it in plain language for a general reader: short sentences, common "
                "words; keep every point and every citation.",
    "restyle": "Rewrite it in the requested style and tone; keep every point and citation.",
}


def edit_prompt(edit_type: str, text: str, req: WritingRequirements | None = None) -> str:
    extra = f"\n{_requirements_block(req)}" if req is not None and edit_type == "restyle" else ""
    return (
        f"TASK: edit ({edit_type})\n{EDIT_INSTRUCTIONS[edit_type]}{extra}\n"
        "Keep the Markdown structure and every [@key] citation exactly as written. "
        "Reply with the whole revised document in Markdown only.\n\n"
        f"Document:\n{text}"
    )


_FENCE = re.compile(r"^```(?:json|markdown|md)?\s*\n(.*?)\n```\s*$", re.S)


def strip_fence(text: str) -> str:
    """A reply wrapped in one code fence, unwrapped."""
    match = _FENCE.match(text.strip())
    return match.group(1) if match else text.strip()


def parse_json(text: str) -> Any:
    """The JSON object in a model's reply (fenced or surrounded by prose); ValueError if none."""
    body = strip_fence(text)
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        start, end = body.find("{"), body.rfind("}")
        if start >= 0 and end > start:
            try:
                return json.loads(body[start:end + 1])
            except json.JSONDecodeError:
                pass
    raise ValueError(f"the model's reply is not JSON: {text[:120]!r}")
