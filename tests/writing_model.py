"""A loopback-server responder that plays a writer: it answers the writing graph's outline,
draft, review and edit prompts (told apart by their ``TASK:`` line) with fixed, plausible text."""

from __future__ import annotations

import json
import re
from typing import Any

from openai_server import Reply

SECTION_TEXT = {
    "Why plain language matters": (
        "Readers finish documents that respect their time. Short sentences and common words "
        "help people act on what they read [@smith2020]. Plain language is not simple "
        "thinking; it is careful editing. Agencies that rewrote their letters in plain "
        "language received fewer calls from confused readers."),
    "How to write plainly": (
        "Start with the reader's question and answer it first. Use the active voice and "
        "name who does what. Cut words that add nothing, and test the text with a real "
        "reader before you publish it [@garner2016]."),
}


def last_user(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


class WriterModel:
    """Callable responder; ``bad_first_draft`` makes the first draft of section 2 cite an
    unknown key so that the review fails it and a revision round runs."""

    def __init__(self, *, bad_first_draft: bool = False,
                 keys: dict[str, str] | None = None) -> None:
        self.bad_first_draft = bad_first_draft
        self.keys = keys or {}  # cite other keys than the fixture's (``[@s1]``)
        self.tasks: list[str] = []

    def __call__(self, body: dict[str, Any]) -> Reply:
        prompt = last_user(body)
        task = prompt.splitlines()[0] if prompt else ""
        self.tasks.append(task)
        if task == "TASK: outline":
            return Reply(text="```json\n" + json.dumps({
                "title": "Writing Plainly",
                "sections": [
                    {"heading": "Why plain language matters", "goal": "the case", "words": 40},
                    {"heading": "How to write plainly", "goal": "the method", "words": 40},
                ]}) + "\n```")
        if task == "TASK: draft":
            heading = re.search(r'Write the section "([^"]+)"', prompt).group(1)
            text = SECTION_TEXT[heading]
            for old, new in self.keys.items():
                text = text.replace(f"[@{old}]", f"[@{new}]")
            if (self.bad_first_draft and heading == "How to write plainly"
                    and "This is a revision" not in prompt):
                text = text.replace("[@garner2016]", "[@madeup1999]")
            return Reply(text=f"## {heading}\n\n{text}\n\n## References\n\n- junk")
        if task == "TASK: review":
            return Reply(text=json.dumps({"criteria": [
                {"criterion": c, "passed": True, "reason": f"{c} fits"}
                for c in ("tone", "audience", "style", "clarity")]}))
        if task.startswith("TASK: edit"):
            document = prompt.split("Document:\n", 1)[1]
            return Reply(text=document.replace("utilize", "use").replace("very unique",
                                                                          "unique"))
        return Reply(text="done")
