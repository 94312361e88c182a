"""The research graph's data: findings, cross-references and the result of one question.

``ResearchFinding`` and ``ResearchResult`` carry the fields of the design (query, findings,
sources, confidence, cross_references, timestamp, metadata; content, source, relevance,
credibility, freshness, key_points, supporting_evidence) plus what the graph adds: the
finding's cross-reference status, the report and its citation verdicts. They are plain
pydantic models: checkpointed in the graph's state as dicts, stored in ``research_results``
(``research/store.py``) and exported as JSON.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

Agreement = Literal["agreed", "contradicted", "single_source"]


class ResearchSource(BaseModel):
    """A source as a result names it: its number in the report and its scores."""

    number: int  # in this report (gap-free, in order of citation)
    # The same source's number in the session's registry (the Sources tab), None if unknown.
    registry_number: int | None = None
    location: str  # the normalised URL or the workspace path
    title: str = ""
    domain: str = ""
    published: str | None = None
    credibility: float | None = None
    freshness: float | None = None
    factors: dict[str, Any] = Field(default_factory=dict)
    from_reading_list: bool = False
    cited: bool = False


class ResearchFinding(BaseModel):
    id: str
    content: str
    source: int  # the source's number
    relevance: float = 0.0
    credibility: float | None = None
    freshness: float | None = None
    key_points: list[str] = Field(default_factory=list)
    # Exact quotes from the source's stored text; a finding without one is never kept.
    supporting_evidence: list[str] = Field(default_factory=list)
    sub_question: str = ""
    status: Agreement = "single_source"
    cluster: int | None = None
    confidence: float = 0.0


class CrossReference(BaseModel):
    """One cluster of equivalent claims across sources."""

    cluster: int
    claim: str
    status: Agreement
    findings: list[str]
    sources: list[int]
    domains: list[str]
    # For a contradiction: what differs (numbers, or one source negates the other).
    conflict: str = ""


class ResearchResult(BaseModel):
    query: str
    findings: list[ResearchFinding] = Field(default_factory=list)
    sources: list[ResearchSource] = Field(default_factory=list)
    confidence: float = 0.0
    cross_references: list[CrossReference] = Field(default_factory=list)
    timestamp: float = Field(default_factory=time.time)
    metadata: dict[str, Any] = Field(default_factory=dict)
    report: str = ""  # Markdown, after citation verification
    verification: dict[str, Any] = Field(default_factory=dict)

    @property
    def contradictions(self) -> list[CrossReference]:
        return [c for c in self.cross_references if c.status == "contradicted"]
