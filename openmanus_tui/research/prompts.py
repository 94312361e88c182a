"""What the research graph asks the model at each stage, and how the answers are read.

Every stage sends one system message that starts with :data:`RESEARCH_MARKER` and the stage's
name (the offline scripted model answers these by stage, ``models/scripted_research.py``; the
loopback test server picks replies the same way), then one user message with the material.
Answers are JSON objects; :func:`parse_json` takes the first object in the reply (models wrap
JSON in prose or code fences) and an unreadable answer is treated as empty, never raised.
"""

from __future__ import annotations

import json
import re
from typing import Any

RESEARCH_MARKER = "[openmanus research stage:"


def marker(stage: str) -> str:
    return f"{RESEARCH_MARKER} {stage}]"


def stage_of(system: str) -> str | None:
    m = re.search(re.escape(RESEARCH_MARKER) + r"\s*(\w+)\]", system)
    return m.group(1) if m else None


PLAN = marker("plan") + """
You plan research. Split the user's question into at most {max_sub} sub-questions that
together answer it (one sub-question is fine for a narrow question). If the question cannot be
researched without knowing more (it is ambiguous in a way that changes the answer), ask one
short clarifying question instead{clarify_note}.
Answer with JSON only: {{"sub_questions": ["..."], "clarify": null}} or
{{"sub_questions": [], "clarify": "your question"}}."""

QUERIES = marker("queries") + """
You choose search queries for one research sub-question. Give at most {max_queries} short
queries (keywords, not sentences) that find sources not yet read.
Answer with JSON only: {{"queries": ["..."]}}."""

EXTRACT = marker("extract") + """
You extract findings from one source for a research sub-question. A finding is one claim the
source makes that helps answer the sub-question, with a quote copied exactly, word for word,
from the source text (one or two sentences) that supports it. Never invent or paraphrase a
quote: findings whose quote is not in the source are discarded. At most {max_findings}
findings; none if the source says nothing relevant. relevance is 0..1.
Answer with JSON only:
{{"findings": [{{"claim": "...", "quote": "...", "key_points": ["..."], "relevance": 0.8}}]}}."""

REPORT = marker("report") + """
You write a research report in Markdown that answers the question from the numbered findings
given. Cite with the finding's source number in square brackets right after the sentence's
claim, like "... in 1932 [2]." Only use the numbers given; every figure, date or quotation you
write must come from the cited finding, written exactly as there (no rounding or converting):
each citation is checked against the source's text, and one that does not hold is removed.
Say where sources agree and where they contradict each other. Do not write a reference list:
it is added from the source registry.
Start with a one-paragraph answer, then the key findings, then open questions."""


def parse_json(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``; {} when there is none."""
    text = text.strip()
    fence = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.S)
    candidates = [fence.group(1)] if fence else []
    start = text.find("{")
    if start >= 0:
        candidates.append(text[start:])
    decoder = json.JSONDecoder()
    for candidate in candidates:
        try:
            value, _ = decoder.raw_decode(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def strings(value: Any, limit: int) -> list[str]:
    """Up to ``limit`` non-empty strings from a JSON value that should be a list of them."""
    if not isinstance(value, list):
        return []
    out = [" ".join(str(v).split()) for v in value if isinstance(v, str | int | float)]
    return [v for v in out if v][:limit]
