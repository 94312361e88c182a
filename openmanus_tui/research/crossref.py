"""Cross-referencing: cluster equivalent claims across sources and mark each cluster.

Two findings are the same claim when their content words (stemmed, stop words, negations and
numbers left out, see ``text.content_words``) overlap enough: at least ``MIN_SHARED`` words in
common and an overlap coefficient (shared / the smaller set) of at least ``SAME_CLAIM`` — so a
claim that adds detail ("opened in 1934, the gazette wrote, after a delay") still meets the
plain one ("opened in 1932"); or, for short claims, a Jaccard similarity of at least
``SAME_CLAIM``. Clusters are the connected groups of that relation. A cluster is:

- ``contradicted`` when two of its findings from different domains state different numbers
  for it, or one negates what the other affirms;
- ``agreed`` when findings from at least two independent domains (a workspace file counts as
  its own domain) support it;
- ``single_source`` otherwise.

Confidence per finding (0..1) is computed, never asked of the model:
``0.5·credibility + 0.2·freshness + 0.3·relevance`` (an unknown score counts 0.5), plus 0.1 per
further independent domain that agrees (at most +0.2), times 0.5 when contradicted. The
report's confidence is the mean over the findings it keeps.
"""

from __future__ import annotations

from collections.abc import Mapping

from openmanus_tui.research.models import CrossReference, ResearchFinding
from openmanus_tui.research.text import content_words, negated, numbers_in

SAME_CLAIM = 0.5
MIN_SHARED = 3


def _same_claim(a: set[str], b: set[str]) -> bool:
    if not a or not b:
        return False
    shared = len(a & b)
    if shared >= MIN_SHARED and shared / min(len(a), len(b)) >= SAME_CLAIM:
        return True
    return shared / len(a | b) >= SAME_CLAIM


def _conflict(a: ResearchFinding, b: ResearchFinding) -> str:
    na, nb = set(numbers_in(a.content)), set(numbers_in(b.content))
    if na and nb and na != nb:
        return f"different figures: {', '.join(sorted(na - nb) or sorted(na))} vs " + ", ".join(
            sorted(nb - na) or sorted(nb)
        )
    if negated(a.content) != negated(b.content):
        return "one source denies what the other states"
    return ""


def cross_reference(
    findings: list[ResearchFinding], domains: Mapping[int, str]
) -> list[CrossReference]:
    """Cluster ``findings`` (updating their ``status``, ``cluster`` and ``confidence`` in
    place) and return one cross-reference per cluster, contradictions first."""
    words = [content_words(f.content) for f in findings]
    parent = list(range(len(findings)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(findings)):
        for j in range(i + 1, len(findings)):
            if _same_claim(words[i], words[j]):
                parent[root(j)] = root(i)
    clusters: dict[int, list[int]] = {}
    for i in range(len(findings)):
        clusters.setdefault(root(i), []).append(i)

    refs: list[CrossReference] = []
    for number, members in enumerate(clusters.values(), start=1):
        group = [findings[i] for i in members]
        domain_of = {f.id: domains.get(f.source, f"source-{f.source}") for f in group}
        conflict = ""
        for x in range(len(group)):
            for y in range(x + 1, len(group)):
                if domain_of[group[x].id] != domain_of[group[y].id]:
                    conflict = conflict or _conflict(group[x], group[y])
        independent = sorted(set(domain_of.values()))
        if conflict:
            status = "contradicted"
        elif len(independent) >= 2:
            status = "agreed"
        else:
            status = "single_source"
        for f in group:
            f.status = status  # type: ignore[assignment]
            f.cluster = number
            f.confidence = finding_confidence(f, len(independent))
        refs.append(
            CrossReference(
                cluster=number,
                claim=max(group, key=lambda f: f.relevance).content,
                status=status,  # type: ignore[arg-type]
                findings=[f.id for f in group],
                sources=sorted({f.source for f in group}),
                domains=independent,
                conflict=conflict,
            )
        )
    order = {"contradicted": 0, "agreed": 1, "single_source": 2}
    refs.sort(key=lambda r: (order[r.status], r.cluster))
    return refs


def finding_confidence(finding: ResearchFinding, independent_domains: int = 1) -> float:
    def known(x: float | None) -> float:
        return 0.5 if x is None else x

    score = (
        0.5 * known(finding.credibility)
        + 0.2 * known(finding.freshness)
        + 0.3 * finding.relevance
    )
    score += min(0.2, 0.1 * max(0, independent_domains - 1)) if finding.status == "agreed" else 0
    if finding.status == "contradicted":
        score *= 0.5
    return round(min(1.0, max(0.0, score)), 3)


def report_confidence(findings: list[ResearchFinding]) -> float:
    return round(sum(f.confidence for f in findings) / len(findings), 3) if findings else 0.0
