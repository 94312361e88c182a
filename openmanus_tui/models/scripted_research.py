"""The offline model's answers to the research graph's stages (``research/prompts.py``).

A deterministic stand-in, like ``scripted_summary`` for compaction: it plans by splitting the
question, searches with the question's words, extracts the source sentences that share the
most words with the sub-question (copied exactly, so they pass the quote check) and writes the
report from the findings it is given, citing each with its number. It makes the offline demo
show research over workspace documents; it understands nothing.
"""

from __future__ import annotations

import json
import re

from openmanus_tui.research.text import content_words

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def _limit(system: str, pattern: str, default: int) -> int:
    m = re.search(pattern, system)
    return int(m.group(1)) if m else default


def _field(user: str, name: str) -> str:
    m = re.search(rf"^{name}: (.*)$", user, re.M)
    return m.group(1).strip() if m else ""


def plan(system: str, user: str) -> str:
    question = _field(user, "Question")
    limit = _limit(system, r"at most (\d+) sub-questions", 3)
    parts = [p.strip(" ,;") for p in re.split(r"\?\s+|\band\b(?= (?:how|what|when|where|who|"
                                               r"why|which|is|are|does|do)\b)", question)]
    subs = [p if p.endswith("?") else p + "?" for p in parts if len(p.split()) >= 2]
    return json.dumps({"sub_questions": subs[:limit] or [question], "clarify": None})


def queries(system: str, user: str) -> str:
    sub = _field(user, "Sub-question")
    words = [w for w in re.findall(r"[A-Za-z][\w-]+", sub) if content_words(w)]
    return json.dumps({"queries": [" ".join(words[:4])] if words else []})


def extract(system: str, user: str) -> str:
    sub = _field(user, "Sub-question")
    limit = _limit(system, r"At most (\d+)\s+findings", 3)
    m = re.search(r"<source_text>\n(.*)\n</source_text>", user, re.S)
    text = m.group(1) if m else ""
    wanted = content_words(sub)
    scored = []
    for i, raw in enumerate(_SENTENCE.split(text)):
        sentence = " ".join(raw.split()).lstrip("#-* ").strip()
        if len(sentence.split()) < 4 or len(sentence) > 400:
            continue
        overlap = len(content_words(sentence) & wanted)
        if overlap >= 2:
            scored.append((-overlap, i, sentence))
    scored.sort()
    findings = [
        {"claim": s, "quote": s, "key_points": [], "relevance": round(min(1.0, -o / 4), 2)}
        for o, _, s in scored[:limit]
    ]
    return json.dumps({"findings": findings})


def report(system: str, user: str) -> str:
    question = _field(user, "Question")
    lines = re.findall(r"^\[(\d+)\] \((\w+)\) (.*)$", user, re.M)
    if not lines:
        return "The sources read do not answer the question."
    body = [f"This report answers: {question}", ""]
    for number, status, claim in lines:
        claim = claim.rstrip()
        end = "" if claim[-1:] in ".!?" else "."
        note = " Sources disagree on this." if status == "contradicted" else ""
        body.append(f"- {claim.rstrip('.!?')} [{number}]{end or '.'}{note}")
    return "\n".join(body)


STAGES = {"plan": plan, "queries": queries, "extract": extract, "report": report}


def scripted_research(stage: str, system: str, user: str) -> str:
    answer = STAGES.get(stage)
    return answer(system, user) if answer else "{}"
