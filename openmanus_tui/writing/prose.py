"""Markdown → prose: the paragraphs a reader reads (headings, code, tables, URLs and citation
markers left out), split into sentences and words. Shared by the readability, style and
structure analyses so that they all count the same things."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

# Abbreviations whose period does not end a sentence.
_ABBREVIATIONS = frozenset((  # noqa: SIM905
    "mr mrs ms dr prof sr jr st vs etc e.g i.e cf al fig no vol pp p ed eds approx dept inc "
    "ltd co").split())
_SENTENCE_END = re.compile(r"([.!?]+)([\"'”’)\]]*)\s+(?=[\"'“‘(\[]?[A-Z0-9])")
WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*(?:-[A-Za-z0-9]+(?:['’][A-Za-z]+)*)*")
_CITATION = re.compile(r"\[[^\[\]]*@[^\[\]]+\]|\[\^?\d+\]")
_URL = re.compile(r"https?://\S+")


@functools.cache
def markdown_parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


@dataclass(frozen=True)
class Paragraph:
    text: str  # plain text (inline markup removed)
    line: int  # 1-based first line in the source
    kind: str  # paragraph | list_item | blockquote


def inline_text(token: Any) -> str:
    """The plain text of an inline token: link text kept, images and code dropped."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "html_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "code_inline":
            parts.append(child.content)
    return "".join(parts)


def paragraphs(markdown: str, tokens: list[Any] | None = None) -> list[Paragraph]:
    """The prose paragraphs of ``markdown`` (list items and block quotes included)."""
    tokens = tokens if tokens is not None else markdown_parser().parse(markdown)
    found: list[Paragraph] = []
    context: list[str] = []
    for index, token in enumerate(tokens):
        if token.type in ("list_item_open", "blockquote_open"):
            context.append("list_item" if token.type == "list_item_open" else "blockquote")
        elif token.type in ("list_item_close", "blockquote_close"):
            context.pop()
        elif token.type == "inline" and index and tokens[index - 1].type == "paragraph_open":
            text = _URL.sub("", _CITATION.sub("", inline_text(token)))
            text = re.sub(r"\s+", " ", text).strip()
            if text:
                line = (token.map[0] + 1) if token.map else 1
                found.append(Paragraph(text, line, context[-1] if context else "paragraph"))
    return found


def sentences(text: str) -> list[str]:
    """Sentences of one paragraph; a list item or a caption without a final period counts as
    one sentence. Abbreviations (``e.g.``, ``Dr.``) and initials do not end a sentence."""
    out: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start:match.start()].rsplit(None, 1)
        last = before[-1].lower().rstrip(".") if before else ""
        initial = len(last) == 1 and last.isalpha()
        if match.group(1) == "." and (last in _ABBREVIATIONS or initial):
            continue
        out.append(text[start:match.end()].strip())
        start = match.end()
    rest = text[start:].strip()
    if rest and WORD.search(rest):
        out.append(rest)
    return [s for s in out if WORD.search(s)]


def words(text: str) -> list[str]:
    return WORD.findall(text)
