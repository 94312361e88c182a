"""The citation verifier (research/verify.py) and the cross-referencing (research/crossref.py)."""

from __future__ import annotations

from openmanus_tui.research.crossref import cross_reference
from openmanus_tui.research.models import ResearchFinding
from openmanus_tui.research.verify import (
    SUPPORT_THRESHOLD,
    SourceText,
    parse_references,
    verify_report,
)

BRIDGE = SourceText(
    1,
    "Harbour bridge history",
    "http://city.example/bridge",
    "The harbour bridge opened in 1932 after eight years of work.\n"
    "Today it carries about 160,000 vehicles a day.\n"
    "At the opening the mayor called it \u201ca marvel of steel and nerve\u201d.",
)
TOLLS = SourceText(
    2, "Toll report", "http://roads.example/tolls",
    "Tolls on the bridge were introduced in 1935. They rose by 12% in 2020.",
)


def _statuses(report: str, sources: dict[int, SourceText]) -> list[tuple[int, str]]:
    return [(v.number, v.status) for v in verify_report(report, sources).verdicts]


def test_clean_report_is_supported_and_kept() -> None:
    report = (
        "The harbour bridge opened in 1932 [1]. It carries about 160,000 vehicles a day [1].\n"
        'The mayor called it "a marvel of steel and nerve" [1]. Tolls rose by 12% in 2020 [2].\n'
        "\n## References\n\n[1] Harbour bridge history — http://city.example/bridge\n"
        "[2] Toll report — http://roads.example/tolls\n"
    )
    result = verify_report(report, {1: BRIDGE, 2: TOLLS})
    assert result.ok, [v.reason for v in result.caught]
    assert [v.new_number for v in result.verdicts] == [1, 1, 1, 2]
    assert "Citation check" not in result.report
    assert "[2] Toll report — http://roads.example/tolls" in result.report


def test_fabricated_source_number_and_misquote_are_each_caught() -> None:
    report = (
        "The harbour bridge opened in 1932 [1]. Aliens designed the bridge in secret [3].\n"
        "It carries about 250,000 vehicles a day [1].\n"
        'The mayor called it "a marvel of glass" [1].\n'
    )
    result = verify_report(report, {1: BRIDGE, 2: TOLLS})
    assert _statuses(report, {1: BRIDGE, 2: TOLLS}) == [
        (1, "supported"), (3, "fabricated"), (1, "number_not_found"), (1, "misquote"),
    ]
    assert not result.ok
    reasons = " ".join(v.reason for v in result.caught)
    assert "250000" in reasons and "a marvel of glass" in reasons and "[3]" in reasons
    # Removed and flagged, never kept silently; the check section names each one.
    assert "[3]" not in result.report.split("## Citation check")[0]
    assert result.report.count("[unverified]") == 3
    assert result.report.count("- removed [") == 3


def test_quote_match_ignores_case_whitespace_and_quote_style() -> None:
    report = "At the opening the mayor called it \u201cA  marvel of STEEL and nerve\u201d [1].\n"
    assert _statuses(report, {1: BRIDGE}) == [(1, "supported")]


def test_a_claim_the_source_does_not_make_is_unsupported() -> None:
    report = "Seagulls nest under the deck every spring [1].\n"
    [verdict] = verify_report(report, {1: BRIDGE}).verdicts
    assert verdict.status == "unsupported"
    assert verdict.score < SUPPORT_THRESHOLD


def test_unreadable_source_fails_its_citations() -> None:
    source = SourceText(1, "Gone", "http://10.0.0.1/x", None, "refused: a private address")
    [verdict] = verify_report("The bridge opened in 1932 [1].\n", {1: source}).verdicts
    assert verdict.status == "unreadable" and "private address" in verdict.reason


def test_each_passage_is_judged_against_its_own_citation_and_numbers_renumbered() -> None:
    report = (
        "Tolls were introduced in 1935 [7], and the bridge opened in 1932 [4].\n"
        "Tolls rose by 12% in 2020 [7][4].\n"
    )
    result = verify_report(report, {4: BRIDGE, 7: TOLLS})
    assert [(v.number, v.status, v.new_number) for v in result.verdicts] == [
        (7, "supported", 1), (4, "supported", 2), (7, "supported", 1), (4, "unsupported", None),
    ]
    assert result.report.startswith(
        "Tolls were introduced in 1935 [1], and the bridge opened in 1932 [2].\n"
        "Tolls rose by 12% in 2020 [1].\n"
    )
    assert [r.number for r in result.references] == [1, 2]


def test_reference_list_parsing() -> None:
    report = (
        "Text [1].\n\n## Sources\n\n[1] A page — https://a.example/p?q=1\n"
        "- [2]: notes/local.md\n[3] Title only - docs/report.pdf\n"
        "[4] [A linked title](https://b.example/x)\n"
    )
    refs = parse_references(report)
    assert refs[1].location == "https://a.example/p?q=1" and refs[1].title == "A page"
    assert refs[2].location == "notes/local.md"
    assert refs[3].location == "docs/report.pdf" and refs[3].title == "Title only"
    assert refs[4].location == "https://b.example/x" and refs[4].title == "A linked title"


def test_verifying_a_repaired_report_again_is_clean() -> None:
    report = "The bridge opened in 1932 [2]. Aliens built it [5].\n"
    first = verify_report(report, {2: BRIDGE})
    again = verify_report(first.report, {1: BRIDGE})
    assert again.ok and len(again.verdicts) == 1


def _finding(fid: str, content: str, source: int) -> ResearchFinding:
    return ResearchFinding(id=fid, content=content, source=source, relevance=0.8,
                           credibility=0.7, freshness=0.5, supporting_evidence=[content])


def test_cross_reference_marks_agreement_contradiction_and_single_source() -> None:
    findings = [
        _finding("a", "The harbour bridge opened to traffic in 1932.", 1),
        _finding("b", "The harbour bridge opened to traffic in 1934.", 2),
        _finding("c", "Tolls on the bridge rose by 12 percent in 2020.", 2),
        _finding("d", "Bridge tolls rose by 12 percent in 2020.", 3),
        _finding("e", "Seagulls nest under the deck.", 1),
    ]
    refs = cross_reference(findings, {1: "city.example", 2: "roads.example", 3: "news.example"})
    by_id = {f.id: f for f in findings}
    assert by_id["a"].status == by_id["b"].status == "contradicted"
    assert by_id["c"].status == by_id["d"].status == "agreed"
    assert by_id["e"].status == "single_source"
    assert refs[0].status == "contradicted" and "1932" in refs[0].conflict
    assert by_id["d"].confidence > by_id["e"].confidence > by_id["a"].confidence


def test_same_domain_is_not_independent_corroboration() -> None:
    findings = [
        _finding("a", "Tolls on the bridge rose by 12 percent in 2020.", 1),
        _finding("b", "Tolls on the bridge rose by 12 percent in 2020.", 2),
    ]
    cross_reference(findings, {1: "roads.example", 2: "roads.example"})
    assert {f.status for f in findings} == {"single_source"}


def test_grouped_and_ranged_markers_get_one_verdict_each() -> None:
    report = "The harbour bridge opened in 1932 [1, 2]. Tolls rose by 12% in 2020 [1-2].\n"
    verdicts = verify_report(report, {1: BRIDGE, 2: TOLLS}).verdicts
    assert [(v.number, v.status) for v in verdicts] == [
        (1, "supported"), (2, "unsupported"), (1, "unsupported"), (2, "supported"),
    ]


def test_code_blocks_headings_and_links_are_not_citations() -> None:
    report = (
        "# Findings [1]\n\n```\nx = a[1]\n```\n\nSee [1](http://example.org) for more.\n"
        "The harbour bridge opened in 1932 [1].\n"
    )
    verdicts = verify_report(report, {1: BRIDGE}).verdicts
    assert [(v.number, v.status) for v in verdicts] == [(1, "supported")]


def test_a_section_that_merely_starts_with_sources_is_part_of_the_report() -> None:
    report = (
        "## Sources agree on the opening\n\nThe harbour bridge opened in 1932 [1].\n\n"
        "## Sources\n\n[1] Harbour bridge history — http://city.example/bridge\n"
    )
    result = verify_report(report, {1: BRIDGE})
    assert [(v.number, v.status) for v in result.verdicts] == [(1, "supported")]
    assert "## Sources agree on the opening" in result.report
