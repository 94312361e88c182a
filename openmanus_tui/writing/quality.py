"""``check_document``: every score and every citation problem of a Markdown document, no model
needed. ``quality_score`` (0–1) is a weighted mean of the parts that apply, each 0–1:

- readability (0.25): 1 inside the Flesch–Kincaid grade band of the technical level, minus
  0.15 per grade outside it;
- style findings (0.15): 1 − (proselint findings per 1,000 words) / 10;
- passive voice (0.10): 1 − (share of passive sentences − 0.10) / 0.30;
- sentence length (0.10): 1 − (share of sentences over the long limit − 0.10) / 0.30;
- structure (0.15): the share of these that hold: headings when over 300 words, no skipped
  heading level, paragraphs of at most 150 words on average;
- length (0.10, only with a target): 1 inside target ± tolerance, else 1 − (words beyond the
  tolerance) / target;
- citations (0.15, only when the document cites or lists references, or citations are
  required): 1 − errors / (citations + references);
- rubric (0.15, only after the writing graph's review): criteria passed / criteria reviewed.

Every part is clipped to 0–1; parts that do not apply are left out and the weights of the rest
renormalised. The parts are returned with their inputs so the number can be explained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from openmanus_tui.writing.citations import (
    CitationManager,
    CitationProblem,
    find_markers,
    style_name,
)
from openmanus_tui.writing.numbered import has_reference_section, validate_numbered
from openmanus_tui.writing.prose import markdown_parser, paragraphs
from openmanus_tui.writing.readability import Readability, readability
from openmanus_tui.writing.requirements import RubricResult, WritingRequirements
from openmanus_tui.writing.structure import Structure, structure
from openmanus_tui.writing.style import StyleReport, style_report

WEIGHTS = {
    "readability": 0.25,
    "style_findings": 0.15,
    "passive_voice": 0.10,
    "sentence_length": 0.10,
    "structure": 0.15,
    "length": 0.10,
    "citations": 0.15,
    "rubric": 0.15,
}


def _clip(value: float) -> float:
    return round(max(0.0, min(1.0, value)), 3)


@dataclass(frozen=True)
class ScorePart:
    name: str
    weight: float
    score: float
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DocumentReport:
    words: int
    readability: Readability
    style: StyleReport
    structure: Structure
    citation_style: str
    citation_problems: list[CitationProblem]
    citation_count: int
    reference_count: int
    target_words: tuple[int, int] | None
    parts: list[ScorePart] = field(default_factory=list)
    quality_score: float = 0.0

    @property
    def citation_errors(self) -> list[CitationProblem]:
        return [p for p in self.citation_problems if p.level == "error"]

    @property
    def ok(self) -> bool:
        """Citations validate (what ``write check``'s exit code says)."""
        return not self.citation_errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "quality_score": self.quality_score,
            "parts": [p.as_dict() for p in self.parts],
            "words": self.words,
            "target_words": list(self.target_words) if self.target_words else None,
            "readability": self.readability.as_dict(),
            "style": self.style.as_dict(),
            "structure": self.structure.as_dict(),
            "citations": {
                "style": self.citation_style,
                "citations": self.citation_count,
                "references": self.reference_count,
                "problems": [p.as_dict() for p in self.citation_problems],
            },
        }


def _parts(report: DocumentReport, requirements: WritingRequirements,
           rubric: list[RubricResult] | None) -> list[ScorePart]:
    parts: list[ScorePart] = []
    r = report.readability
    low, high = requirements.grade_band()
    grade = r.flesch_kincaid_grade
    distance = max(0.0, low - grade, grade - high)
    parts.append(ScorePart("readability", WEIGHTS["readability"], _clip(1 - 0.15 * distance),
                           f"Flesch–Kincaid grade {grade:.1f}, band {low:g}–{high:g} "
                           f"({requirements.technical_level})"))
    per_thousand = len(report.style.findings) * 1000 / max(1, report.words)
    parts.append(ScorePart("style_findings", WEIGHTS["style_findings"],
                           _clip(1 - per_thousand / 10),
                           f"{len(report.style.findings)} proselint findings "
                           f"({per_thousand:.1f} per 1,000 words)"))
    sentences = max(1, report.style.sentences)
    passive = report.style.passive_sentences / sentences
    parts.append(ScorePart("passive_voice", WEIGHTS["passive_voice"],
                           _clip(1 - max(0.0, passive - 0.10) / 0.30),
                           f"{report.style.passive_sentences} of {report.style.sentences} "
                           f"sentences passive ({passive:.0%})"))
    long_share = report.style.long_sentences / sentences
    parts.append(ScorePart("sentence_length", WEIGHTS["sentence_length"],
                           _clip(1 - max(0.0, long_share - 0.10) / 0.30),
                           f"{report.style.long_sentences} sentences over "
                           f"{report.style.long_sentence_words} words ({long_share:.0%})"))
    s = report.structure
    checks = [
        ("headings", s.headings > 0 or report.words <= 300),
        ("no skipped heading level", not s.heading_level_skips),
        ("paragraphs ≤ 150 words on average", s.paragraphs["mean"] <= 150),
    ]
    parts.append(ScorePart("structure", WEIGHTS["structure"],
                           _clip(sum(ok for _, ok in checks) / len(checks)),
                           "; ".join(f"{name}: {'yes' if ok else 'no'}" for name, ok in checks)))
    if report.target_words:
        lo, hi = report.target_words
        target = requirements.length_words or (lo + hi) // 2
        beyond = max(0, lo - report.words, report.words - hi)
        parts.append(ScorePart("length", WEIGHTS["length"], _clip(1 - beyond / max(1, target)),
                               f"{report.words} words, target {lo}–{hi}"))
    if report.citation_count or report.reference_count or requirements.citations_required:
        errors = len(report.citation_errors)
        base = report.citation_count + report.reference_count
        score = 0.0 if (requirements.citations_required and not base) else 1 - errors / max(1, base)
        parts.append(ScorePart("citations", WEIGHTS["citations"], _clip(score),
                               f"{report.citation_count} citations, {report.reference_count} "
                               f"references, {errors} errors"))
    if rubric:
        passed = sum(1 for item in rubric if item.passed)
        parts.append(ScorePart("rubric", WEIGHTS["rubric"], _clip(passed / len(rubric)),
                               f"{passed} of {len(rubric)} review criteria passed"))
    return parts


def check_document(
    markdown: str,
    *,
    references: list[dict[str, Any]] | None = None,
    citation_style: str = "apa",
    requirements: WritingRequirements | None = None,
    rubric: list[RubricResult] | None = None,
    long_sentence_words: int = 25,
    citations_from: str | None = None,
    uncited: Literal["error", "warning"] = "error",
) -> DocumentReport:
    """Measure ``markdown``: readability, style, structure, length and citations.

    ``citations_from``: the same document before its citations were formatted (the writing
    graph's assembly), where the ``[@key]`` markers are still there to check."""
    requirements = requirements or WritingRequirements(citation_style=citation_style)
    citation_style = style_name(citation_style)
    tokens = markdown_parser().parse(markdown)
    prose = paragraphs(markdown, tokens)
    shape = structure(tokens, prose)
    markers = find_markers(citations_from if citations_from is not None else markdown)
    problems: list[CitationProblem] = []
    citation_count, reference_count = len(markers), 0
    if references is not None:
        problems = CitationManager(references, citation_style).validate(markers, uncited=uncited)
        reference_count = len(references)
    elif markers:
        problems = [CitationProblem(
            "error", "unresolved",
            f"line {m.line}: citation @{ref.key} has no entry in the references "
            "(no reference file given: --references FILE)", key=ref.key, line=m.line,
            column=m.column) for m in markers for ref in m.refs]
    if has_reference_section(markdown) and references is None:
        numbered, count, listed = validate_numbered(markdown)
        problems.extend(numbered)
        citation_count += count
        reference_count += listed
    report = DocumentReport(
        words=shape.words,
        readability=readability(markdown, prose),
        style=style_report(markdown, prose, long_sentence_words),
        structure=shape,
        citation_style=citation_style,
        citation_problems=problems,
        citation_count=citation_count,
        reference_count=reference_count,
        target_words=requirements.length_range(),
    )
    report.parts = _parts(report, requirements, rubric)
    total_weight = sum(p.weight for p in report.parts)
    report.quality_score = round(
        sum(p.weight * p.score for p in report.parts) / total_weight, 3) if total_weight else 0.0
    return report
