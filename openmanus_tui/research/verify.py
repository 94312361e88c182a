"""The citation verifier: every ``[n]`` in a report checked against the text of source n.

Rules, applied to each citation (one verdict per ``[n]`` occurrence):

1. ``fabricated`` — there is no source n (no reference entry, no registered source).
2. ``unreadable`` — source n is listed but its text could not be read (fetch refused or failed).
3. ``misquote`` — text in quotation marks in the cited passage does not appear in any source
   the passage cites (compared after :func:`text.normalise`: whitespace, case, quote and dash
   styles are ignored).
4. ``number_not_found`` — a number in the cited passage (a figure, a percentage, a year) does
   not appear in any source the passage cites (compared by value as written: ``1,200`` =
   ``1200``; nothing is rounded or converted).
5. ``unsupported`` — beyond quotes and numbers, the passage's meaning words must be found in
   the source: the support score is the share of the passage's content words (stemmed, stop
   words dropped) found in the best window of ``WINDOW`` consecutive source sentences, and it
   must reach ``SUPPORT_THRESHOLD`` (0.5). A quotation found in this source is support by
   itself.
6. ``supported`` — none of the above.

The cited passage of a citation group (adjacent markers: ``[1][2]`` or ``[1, 2]``) is the text
since the previous group in the same sentence, and the last group also takes the rest of the
sentence. A passage with fewer than two content words is judged as its whole sentence.

:func:`verify_report` returns the verdicts and a repaired report: unsupported markers are
removed, a passage left without any supported citation is flagged ``[unverified]`` in place,
the remaining citations are renumbered globally and gap-free in order of appearance, the
reference list keeps the cited sources only, and a "Citation check" section names what was
removed and why. Nothing unsupported is kept silently.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from openmanus_tui.research.text import content_words, normalise, numbers_in

SUPPORT_THRESHOLD = 0.5
WINDOW = 3
MIN_PASSAGE_WORDS = 2

Status = Literal[
    "supported", "fabricated", "unreadable", "misquote", "number_not_found", "unsupported"
]

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$")
# The whole heading: "## Sources agree on…" is a section of the report, not its list.
_REF_HEADING = re.compile(
    r"^(references|sources|bibliography|works cited|citations|source list)\s*:?$", re.I
)
CHECK_HEADING = "Citation check"
_REF_LINE = re.compile(r"^\s*(?:[-*]\s+)?\[(\d+)\]:?\s+(.+?)\s*$")
_URL = re.compile(r"(?:https?|file)://\S+")
_SEPARATORS = (" — ", " – ", " - ", ": ", " | ")
# [3], [1, 2], [1-3]; not a Markdown link text ([1](url)).
_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+|\s*[-\u2013]\s*\d+)*)\](?!\()")
_GROUP = re.compile(r"(?:\[\d+(?:\s*[,;]\s*\d+|\s*[-\u2013]\s*\d+)*\](?!\()\s?)+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\u201d\u2019]*\s+(?!\[\d)")
_QUOTED = re.compile(r'"([^"]{2,}?)"')


@dataclass
class Reference:
    """One entry of a report's reference list: ``[n] Title — URL or path``."""

    number: int
    title: str
    location: str


@dataclass
class SourceText:
    """What the verifier knows of source n: its text, or why it has none."""

    number: int
    title: str
    location: str
    text: str | None
    error: str = ""


@dataclass
class Verdict:
    number: int  # as written in the report
    status: Status
    reason: str
    passage: str
    score: float = 0.0
    location: str = ""
    new_number: int | None = None  # in the repaired report; None when removed

    @property
    def supported(self) -> bool:
        return self.status == "supported"


@dataclass
class Verification:
    verdicts: list[Verdict]
    report: str  # the repaired report
    references: list[Reference] = field(default_factory=list)  # the repaired list

    @property
    def ok(self) -> bool:
        return all(v.supported for v in self.verdicts)

    @property
    def caught(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.supported]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "citations": len(self.verdicts),
            "supported": sum(v.supported for v in self.verdicts),
            "threshold": SUPPORT_THRESHOLD,
            "verdicts": [asdict(v) for v in self.verdicts],
            "references": [asdict(r) for r in self.references],
        }


# ---- the report's parts ---------------------------------------------------------------------
def _split(report: str) -> tuple[list[str], list[str], list[str]]:
    """(body lines, reference lines, the body's own earlier check section): the reference
    section starts at a "References"/"Sources" heading and runs to the next heading; without
    one, the trailing lines that look like entries are the list."""
    lines = report.splitlines()
    body: list[str] = []
    refs: list[str] = []
    check: list[str] = []
    target = body
    for line in lines:
        heading = _HEADING.match(line)
        if heading:
            title = heading.group(1).strip()
            if _REF_HEADING.match(title):
                target = refs
                continue
            if title.lower().startswith(CHECK_HEADING.lower()):
                target = check
                continue
            target = body
        target.append(line)
    if not refs:
        tail = len(body)
        while tail > 0 and (_REF_LINE.match(body[tail - 1]) or not body[tail - 1].strip()):
            tail -= 1
        if any(_REF_LINE.match(x) for x in body[tail:]):
            body, refs = body[:tail], body[tail:]
    return body, refs, check


def parse_references(report: str) -> dict[int, Reference]:
    """The report's reference entries by number (``[n] Title — URL``; ``[n]: URL``)."""
    _, refs, _ = _split(report)
    found: dict[int, Reference] = {}
    for line in refs:
        m = _REF_LINE.match(line)
        if not m:
            continue
        number, rest = int(m.group(1)), m.group(2).strip()
        url = _URL.search(rest)
        if url:
            location = url.group().rstrip(").,>]")
            title = rest[: url.start()].strip()
        else:
            title, location = rest, rest
            for sep in _SEPARATORS:
                if sep in rest:
                    title, _, location = rest.rpartition(sep)
                    break
        title = title.strip().rstrip("—–-:|(<").strip().strip("*_\"[]")
        found.setdefault(number, Reference(number, title or location, location.strip("<>`")))
    return found


def _numbers_of(group: str) -> list[int]:
    out: list[int] = []
    for m in _MARKER.finditer(group):
        for part in re.split(r"\s*[,;]\s*", m.group(1)):
            if re.search(r"[-\u2013]", part):
                lo, hi = (int(x) for x in re.split(r"\s*[-\u2013]\s*", part))
                out.extend(range(lo, hi + 1) if 0 < hi - lo < 50 else [lo, hi])
            else:
                out.append(int(part))
    return out


# ---- source text, prepared once -------------------------------------------------------------
class _Prepared:
    def __init__(self, source: SourceText):
        self.source = source
        text = source.text or ""
        self.normal = normalise(text)
        self.numbers = set(numbers_in(text))
        sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
        self.sentence_words = [content_words(s) for s in sentences] or [set()]

    def has_quote(self, quote: str) -> bool:
        return normalise(quote) in self.normal

    def support(self, words: set[str]) -> float:
        if not words:
            return 0.0
        best = 0
        n = len(self.sentence_words)
        for i in range(max(1, n - WINDOW + 1)):
            window = set().union(*self.sentence_words[i : i + WINDOW])
            best = max(best, len(words & window))
            if best == len(words):
                break
        return best / len(words)


# ---- verification ---------------------------------------------------------------------------
@dataclass
class _Group:
    start: int  # offsets in the body text
    end: int
    numbers: list[int]
    passage: str


_LIST_MARK = re.compile(r"^\s*(?:[-*+>]|\d+[.)]|\|)\s+")


def _clean(piece: str) -> str:
    """The passage as a reader sees it: one line, no list or quote marker, no space before
    punctuation (left where a citation was taken out)."""
    text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(piece.split()))
    return _LIST_MARK.sub("", text).strip(" ,;|")


def _groups(body: str) -> list[_Group]:
    """Each citation group of the body with the passage it cites."""
    groups: list[_Group] = []
    offset = 0
    in_code = False
    for line in body.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("```"):
            in_code = not in_code
        if in_code or _HEADING.match(line) or stripped.startswith("```"):
            offset += len(line)
            continue
        starts = [0] + [m.end() for m in _SENTENCE_END.finditer(line)]
        bounds = list(zip(starts, [*starts[1:], len(line)], strict=True))
        for s_start, s_end in bounds:
            sentence = line[s_start:s_end]
            found = list(_GROUP.finditer(sentence))
            prev = 0
            for i, m in enumerate(found):
                last = i == len(found) - 1
                piece = sentence[prev : m.start()] + (sentence[m.end() :] if last else "")
                piece = _MARKER.sub("", piece)
                if len(content_words(piece)) < MIN_PASSAGE_WORDS:
                    piece = _MARKER.sub("", sentence)
                groups.append(
                    _Group(
                        offset + s_start + m.start(),
                        offset + s_start + m.end(),
                        _numbers_of(m.group()),
                        _clean(piece),
                    )
                )
                prev = m.end()
        offset += len(line)
    return groups


def _judge(group: _Group, sources: dict[int, _Prepared]) -> list[Verdict]:
    passage = group.passage
    readable = [sources[n] for n in group.numbers if n in sources and sources[n].source.text]
    quotes = [q.strip() for q in _QUOTED.findall(normalise(passage)) if q.strip()]
    missing_quotes = [q for q in quotes if not any(p.has_quote(q) for p in readable)]
    missing_numbers = [
        n for n in dict.fromkeys(numbers_in(passage)) if not any(n in p.numbers for p in readable)
    ]
    words = content_words(passage)
    verdicts = []
    for number in group.numbers:
        prepared = sources.get(number)
        if prepared is None:
            verdicts.append(Verdict(number, "fabricated", f"[{number}] names no source", passage))
            continue
        loc = prepared.source.location
        if not prepared.source.text:
            why = prepared.source.error or "its text is not available"
            verdicts.append(
                Verdict(number, "unreadable", f"source [{number}] was not read: {why}", passage,
                        location=loc)
            )
            continue
        score = round(prepared.support(words), 3)
        if missing_quotes:
            quoted = "; ".join(f'"{q}"' for q in missing_quotes)
            verdicts.append(
                Verdict(number, "misquote", f"quotation not in the source: {quoted}", passage,
                        score, loc)
            )
        elif missing_numbers:
            verdicts.append(
                Verdict(
                    number, "number_not_found",
                    f"number not in the source: {', '.join(missing_numbers)}", passage, score, loc,
                )
            )
        elif any(prepared.has_quote(q) for q in quotes):
            verdicts.append(Verdict(number, "supported", "quotation found", passage, 1.0, loc))
        elif score >= SUPPORT_THRESHOLD:
            verdicts.append(
                Verdict(number, "supported", f"support score {score:.2f}", passage, score, loc)
            )
        else:
            verdicts.append(
                Verdict(
                    number, "unsupported",
                    f"support score {score:.2f} is below {SUPPORT_THRESHOLD}", passage, score, loc,
                )
            )
    return verdicts


def verify_report(report: str, sources: dict[int, SourceText]) -> Verification:
    """Check every citation of ``report`` against ``sources`` (by the number the report uses)
    and return the verdicts with the repaired report (see the module docstring)."""
    body_lines, _, _ = _split(report)
    body = "\n".join(body_lines)
    prepared = {n: _Prepared(s) for n, s in sources.items()}
    groups = _groups(body)
    verdicts: list[Verdict] = []
    renumber: dict[int, int] = {}
    replacements: list[tuple[int, int, str]] = []
    for group in groups:
        judged = _judge(group, prepared)
        verdicts.extend(judged)
        kept: list[int] = []
        for v in judged:
            if v.supported:
                v.new_number = renumber.setdefault(v.number, len(renumber) + 1)
                if v.new_number not in kept:
                    kept.append(v.new_number)
        text = "".join(f"[{n}]" for n in kept) if kept else "[unverified]"
        raw = body[group.start : group.end]
        trailing = raw[len(raw.rstrip()) :]
        replacements.append((group.start, group.end, text + trailing))
    for start, end, text in reversed(replacements):
        body = body[:start] + text + body[end:]
    references = [
        Reference(new, sources[old].title, sources[old].location)
        for old, new in sorted(renumber.items(), key=lambda kv: kv[1])
    ]
    parts = [body.rstrip()]
    if references:
        # One paragraph per entry: Markdown would run consecutive lines together.
        parts.append("## References\n\n" + "\n\n".join(
            f"[{r.number}] {r.title} — {r.location}" for r in references
        ))
    caught = [v for v in verdicts if not v.supported]
    if caught:
        parts.append(f"## {CHECK_HEADING}\n\n" + "\n".join(
            f"- removed [{v.number}] ({v.status}): {v.reason} — “{_short(v.passage)}”"
            for v in caught
        ))
    return Verification(verdicts, "\n\n".join(parts) + "\n", references)


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
