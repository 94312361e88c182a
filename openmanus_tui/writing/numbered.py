"""Numbered citations (``[1]``, ``[2, 3]``, ``[4-6]``) checked against the document's own
numbered reference section — the shape research reports take when no reference file exists."""

from __future__ import annotations

import re

from openmanus_tui.writing.citations import CitationProblem, _masked

REFERENCE_HEADINGS = re.compile(
    r"^#{1,6}\s+(references|bibliography|sources|works cited|citations)\s*$", re.I | re.M)
_MARKER = re.compile(r"\[(\d+(?:\s*[-–,]\s*\d+)*)\](?![(:])")
_ENTRY = re.compile(r"^\s*(?:\[(\d+)\]|(\d+)\.)\s+\S")


def _numbers(spec: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*,\s*", spec):
        if re.search(r"[-–]", part):
            low, high = (int(x) for x in re.split(r"\s*[-–]\s*", part))
            out.extend(range(low, min(high, low + 200) + 1))
        else:
            out.append(int(part))
    return out


def has_reference_section(markdown: str) -> bool:
    return bool(REFERENCE_HEADINGS.search(markdown))


def validate_numbered(markdown: str) -> tuple[list[CitationProblem], int, int]:
    """Problems, the number of citation markers and of listed references."""
    heading = REFERENCE_HEADINGS.search(markdown)
    if not heading:
        return [], 0, 0
    body, section = markdown[: heading.start()], markdown[heading.end():]
    next_heading = re.search(r"^#{1,6}\s", section, re.M)
    if next_heading:
        section = section[: next_heading.start()]
    first_line = markdown[: heading.end()].count("\n") + 1
    listed: dict[int, int] = {}
    for offset, line in enumerate(section.splitlines()):
        match = _ENTRY.match(line)
        if match:
            listed.setdefault(int(match.group(1) or match.group(2)), first_line + offset)
    problems: list[CitationProblem] = []
    cited: set[int] = set()
    markers = 0
    for line_no, line in enumerate(_masked(body).splitlines(), 1):
        for match in _MARKER.finditer(line):
            markers += 1
            for number in _numbers(match.group(1)):
                cited.add(number)
                if number not in listed:
                    problems.append(CitationProblem(
                        "error", "unresolved",
                        f"line {line_no}: citation [{number}] has no entry in the references",
                        key=str(number), line=line_no, column=match.start() + 1))
    for number, line_no in sorted(listed.items()):
        if number not in cited:
            problems.append(CitationProblem(
                "error", "uncited", f"reference [{number}] is never cited",
                key=str(number), line=line_no))
    return problems, markers, len(listed)
