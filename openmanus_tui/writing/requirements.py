"""What a writer asks for (``WritingRequirements``) and what the writing system hands back
(``GeneratedContent``): plain pydantic models, stored as JSON and exported with the document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Style = Literal["professional", "academic", "technical", "conversational", "persuasive",
                "creative"]
Format = Literal["md", "html", "pdf", "docx"]
TechnicalLevel = Literal["general", "professional", "expert"]
EditType = Literal["proofread", "shorten", "expand", "simplify", "restyle"]

STYLES: tuple[str, ...] = ("professional", "academic", "technical", "conversational",
                           "persuasive", "creative")
FORMATS: tuple[str, ...] = ("md", "html", "pdf", "docx")
EDIT_TYPES: tuple[str, ...] = ("proofread", "shorten", "expand", "simplify", "restyle")

# Flesch–Kincaid grade band the text should land in, per technical level.
GRADE_BANDS: dict[str, tuple[float, float]] = {
    "general": (6.0, 10.0),
    "professional": (8.0, 13.0),
    "expert": (10.0, 17.0),
}


class WritingRequirements(BaseModel):
    """The brief as data: set from CLI flags or the workbench, shown before drafting."""

    model_config = ConfigDict(extra="forbid")

    brief: str = ""
    audience: str = "general readers"
    tone: str = "neutral"
    style: Style = "professional"
    length_words: int | None = Field(default=None, ge=50, le=50_000)
    length_tolerance: float = Field(default=0.15, ge=0.0, le=1.0)
    format: Format = "md"
    style_guide: str = ""  # the rules from the user's style guide file, as text
    citations_required: bool = False
    citation_style: str = "apa"
    technical_level: TechnicalLevel = "professional"

    @field_validator("citation_style")
    @classmethod
    def _known_style(cls, value: str) -> str:
        from openmanus_tui.writing.citations import CitationError, style_name

        try:
            return style_name(value)
        except CitationError as exc:
            raise ValueError(str(exc)) from None

    def grade_band(self) -> tuple[float, float]:
        return GRADE_BANDS[self.technical_level]

    def length_range(self) -> tuple[int, int] | None:
        if self.length_words is None:
            return None
        spread = round(self.length_words * self.length_tolerance)
        return self.length_words - spread, self.length_words + spread

    def summary(self) -> str:
        """One line for the user to confirm before drafting."""
        length = (f"{self.length_words} words ±{round(self.length_tolerance * 100)}%"
                  if self.length_words else "length free")
        cite = f"citations {self.citation_style}" if self.citations_required else "no citations"
        return (f"{self.style}, {self.tone} tone, for {self.audience} "
                f"({self.technical_level} level), {length}, {cite}, .{self.format}")


class RubricResult(BaseModel):
    criterion: str
    passed: bool
    reason: str = ""


class SectionReview(BaseModel):
    section: str
    round: int
    results: list[RubricResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


class GeneratedContent(BaseModel):
    """A finished document with everything measured about it."""

    content: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    citations: list[dict[str, Any]] = Field(default_factory=list)  # CSL-JSON items cited
    quality_score: float = 0.0
    readability_score: dict[str, Any] = Field(default_factory=dict)
    structure_analysis: dict[str, Any] = Field(default_factory=dict)
    reviews: list[SectionReview] = Field(default_factory=list)
    report: dict[str, Any] = Field(default_factory=dict)  # the full DocumentReport
