"""The offline model's answers to the writing graph's steps (``writing/prompts.py``).

A deterministic stand-in, like ``scripted_research`` for research: it outlines any brief in
three sections, drafts each in plain sentences built from the brief's words (citing the first
listed reference key, if any, so citations are formatted and checked), passes every review
criterion, and answers an edit with the document unchanged. It makes the offline demo show the
writing graph and the Document tab; it understands nothing.
"""

from __future__ import annotations

import json
import re

SECTIONS = ("Background", "Main points", "Next steps")


def _brief(user: str) -> str:
    match = re.search(r"^Write the outline of a document for this brief:\n(.*)$", user, re.M)
    return match.group(1).strip() if match else "the subject"


def _words(user: str) -> int:
    match = re.search(r"\((\d+) words\)", user)
    return int(match.group(1)) if match else 80


def outline(user: str) -> str:
    brief = _brief(user).rstrip(".")
    total = re.search(r"Length: about (\d+) words", user)
    each = max(40, int(total.group(1)) // len(SECTIONS)) if total else 80
    return json.dumps({
        "title": brief[:1].upper() + brief[1:80],
        "sections": [{"heading": h, "goal": f"{h.lower()} of {brief}", "words": each}
                     for h in SECTIONS]})


def draft(user: str) -> str:
    heading = re.search(r'Write the section "([^"]+)"', user)
    name = heading.group(1) if heading else "This section"
    topic = re.search(r"Its goal: (.*)$", user, re.M)
    subject = topic.group(1).strip() if topic else "the subject"
    key = re.search(r"^- \[@([^\]]+)\]", user, re.M)
    cite = f" [@{key.group(1)}]" if key else ""
    sentences = [
        f"This section covers the {subject}.",
        "It states the point first and then gives the reasons for it.",
        f"Readers who know the {name.lower()} can act on it with confidence{cite}.",
        "Each claim is short, concrete and easy to check.",
        "The next paragraph adds an example that a reader can follow.",
        "Plain words and short sentences keep the text easy to read.",
    ]
    out: list[str] = []
    target = _words(user)
    while sum(len(s.split()) for s in out) < target * 0.9:
        out.append(sentences[len(out) % len(sentences)])
    return " ".join(out)


def review(user: str) -> str:
    return json.dumps({"criteria": [
        {"criterion": c, "passed": True, "reason": "scripted review: no judgement made"}
        for c in ("tone", "audience", "style", "clarity")]})


def scripted_writing(user: str) -> str | None:
    """The reply to a writing-graph prompt, or None if ``user`` is not one."""
    task = user.split("\n", 1)[0]
    if task == "TASK: outline":
        return outline(user)
    if task == "TASK: draft":
        return draft(user)
    if task == "TASK: review":
        return review(user)
    if task.startswith("TASK: edit"):
        return user.split("Document:\n", 1)[-1]
    return None
