"""Structure of a Markdown document: the heading tree with each section's length, paragraph
and sentence length distributions, and counts of lists, tables, figures and code blocks."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from openmanus_tui.writing.prose import Paragraph, inline_text, sentences, words


@dataclass
class Section:
    level: int
    title: str
    line: int
    words: int = 0  # words in this section's own prose (not its subsections)
    children: list[Section] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "title": self.title, "line": self.line,
                "words": self.words, "children": [c.as_dict() for c in self.children]}


def _distribution(values: list[int]) -> dict[str, float]:
    if not values:
        return {"count": 0, "mean": 0.0, "median": 0.0, "max": 0, "min": 0, "stdev": 0.0}
    return {
        "count": len(values),
        "mean": round(statistics.fmean(values), 2),
        "median": float(statistics.median(values)),
        "min": min(values),
        "max": max(values),
        "stdev": round(statistics.pstdev(values), 2),
    }


@dataclass
class Structure:
    words: int
    outline: list[Section]
    headings: int
    paragraphs: dict[str, float]
    sentences: dict[str, float]
    lists: int
    list_items: int
    tables: int
    figures: int
    code_blocks: int
    heading_level_skips: list[str]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outline"] = [s.as_dict() for s in self.outline]
        return data

    def flat_outline(self) -> list[Section]:
        out: list[Section] = []

        def walk(nodes: list[Section]) -> None:
            for node in nodes:
                out.append(node)
                walk(node.children)

        walk(self.outline)
        return out


def structure(tokens: list[Any], prose: list[Paragraph]) -> Structure:
    roots: list[Section] = []
    stack: list[Section] = []
    skips: list[str] = []
    lists = list_items = tables = figures = code_blocks = 0
    previous_level = 0
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            level = int(token.tag[1])
            title = inline_text(tokens[index + 1]).strip()
            line = token.map[0] + 1 if token.map else 1
            if previous_level and level > previous_level + 1:
                skips.append(f"line {line}: h{previous_level} → h{level} ({title})")
            previous_level = level
            node = Section(level, title, line)
            while stack and stack[-1].level >= level:
                stack.pop()
            (stack[-1].children if stack else roots).append(node)
            stack.append(node)
        elif token.type in ("bullet_list_open", "ordered_list_open") and token.level == 0:
            lists += 1
        elif token.type == "list_item_open":
            list_items += 1
        elif token.type == "table_open":
            tables += 1
        elif token.type in ("fence", "code_block"):
            code_blocks += 1
        elif token.type == "inline":
            figures += sum(1 for c in token.children or [] if c.type == "image")
    # Attribute each paragraph's words to the section it falls in.
    flat: list[Section] = []

    def walk(nodes: list[Section]) -> None:
        for node in nodes:
            flat.append(node)
            walk(node.children)

    walk(roots)
    paragraph_lengths: list[int] = []
    sentence_lengths: list[int] = []
    total = 0
    for paragraph in prose:
        count = len(words(paragraph.text))
        total += count
        paragraph_lengths.append(count)
        sentence_lengths.extend(len(words(s)) for s in sentences(paragraph.text))
        owner = None
        for node in flat:
            if node.line <= paragraph.line:
                owner = node
        if owner is not None:
            owner.words += count
    return Structure(
        words=total,
        outline=roots,
        headings=len(flat),
        paragraphs=_distribution(paragraph_lengths),
        sentences=_distribution(sentence_lengths),
        lists=lists,
        list_items=list_items,
        tables=tables,
        figures=figures,
        code_blocks=code_blocks,
        heading_level_skips=skips,
    )
