"""Scores computed by code: readability against published reference values, style findings,
structure, numbered citations, the quality score's parts — and no network touched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from openmanus_tui.writing.quality import WEIGHTS, check_document
from openmanus_tui.writing.readability import readability, syllables
from openmanus_tui.writing.requirements import RubricResult, WritingRequirements
from openmanus_tui.writing.style import is_passive

FIXTURES = Path(__file__).parent / "writing_fixtures"

# Published values: Wikipedia, "Flesch–Kincaid readability tests" (section "Flesch reading
# ease" gives 116 for the first sentence; the platypus sentence is given reading ease 37.5 and
# grade level 11.3 in the same article).
REFERENCE = [
    ("The cat sat on the mat.", {"flesch_reading_ease": 116.0}),
    ("The Australian platypus is seemingly a hybrid of a mammal and reptilian creature.",
     {"flesch_reading_ease": 37.5, "flesch_kincaid_grade": 11.3}),
]


@pytest.mark.parametrize(("text", "published"), REFERENCE)
def test_readability_matches_published_reference_values_within_one(text, published) -> None:
    scores = readability(text).as_dict()
    for name, value in published.items():
        assert abs(scores[name] - value) <= 1.0, (name, scores[name], value)


def test_fog_and_smog_follow_their_formulas_on_hand_counts() -> None:
    # 13 words, 1 sentence; 3+ syllables: Australian, platypus, seemingly, reptilian.
    r = readability("The Australian platypus is seemingly a hybrid of a mammal and reptilian "
                    "creature.")
    assert (r.words, r.sentences, r.syllables, r.polysyllables) == (13, 1, 24, 4)
    assert r.gunning_fog == pytest.approx(0.4 * (13 + 100 * 4 / 13), abs=0.01)
    assert r.smog == pytest.approx(1.0430 * (4 * 30) ** 0.5 + 3.1291, abs=0.01)
    assert r.avg_sentence_length == 13.0


def test_syllables_come_from_the_dictionary_with_fallbacks() -> None:
    assert [syllables(w) for w in ("readability", "carefully", "well-known", "don't")] == [
        5, 3, 2, 1]
    assert syllables("zorblaxicated") >= 4  # not in the dictionary: syllapy's rules


def test_three_fixtures_of_known_difficulty_rank_in_order() -> None:
    grades = {name: check_document((FIXTURES / f"{name}.md").read_text()).readability
              for name in ("easy", "medium", "hard")}
    assert grades["easy"].flesch_kincaid_grade < 3
    assert 6 <= grades["medium"].flesch_kincaid_grade <= 11
    assert grades["hard"].flesch_kincaid_grade > 16
    assert (grades["easy"].flesch_reading_ease > grades["medium"].flesch_reading_ease
            > grades["hard"].flesch_reading_ease)


def test_style_counts_passive_and_long_sentences_and_proselint_findings() -> None:
    assert is_passive("The report was written by the committee.")
    assert is_passive("Mistakes were quickly made.")
    assert not is_passive("The committee wrote the report.")
    long = " ".join(["word"] * 30) + "."
    doc = ("# Notes\n\nThe results were analysed by the team. This is very unique. "
           f"We utilize synergy. {long}\n")
    report = check_document(doc)
    assert report.style.passive_sentences == 1
    assert report.style.long_sentences == 1
    checks = {f.check for f in report.style.findings}
    assert {"uncomparables", "misc.greylist", "industrial_language.corporate_speak"} <= checks
    assert all(f.line == 3 for f in report.style.findings)
    unique = next(f for f in report.style.findings if f.check == "uncomparables")
    assert doc.splitlines()[2][unique.column - 1:].startswith("very unique")


def test_code_is_not_linted_as_prose() -> None:
    """A command in a code block or a code span is no style finding; the same words in prose
    are, at the document's own line and column."""
    prose = "This is very unique."
    doc = (f"# Notes\n\n```bash\necho '{prose}'\n```\n\nRun `echo {prose}` first.\n\n"
           f"    {prose}\n\nAnd {prose}\n")
    found = [f for f in check_document(doc).style.findings if f.check == "uncomparables"]
    assert [(f.line, f.column) for f in found] == [(11, len("And This is ") + 1)]


def test_structure_outline_sections_lists_tables_figures() -> None:
    doc = ("# Title\n\nIntro words here.\n\n## One\n\nFirst section has five words.\n\n"
           "- a point\n- another\n\n#### Deep\n\nSkipped a level.\n\n## Two\n\n"
           "| a | b |\n|---|---|\n| 1 | 2 |\n\n![chart](c.png)\n\n```\ncode\n```\n")
    s = check_document(doc).structure
    assert [(n.level, n.title, n.words) for n in s.flat_outline()] == [
        (1, "Title", 3), (2, "One", 8), (4, "Deep", 3), (2, "Two", 0)]
    assert (s.lists, s.list_items, s.tables, s.figures, s.code_blocks) == (1, 2, 1, 1, 1)
    assert s.heading_level_skips == ["line 12: h2 → h4 (Deep)"]
    assert s.paragraphs["count"] == 5


def test_numbered_citations_checked_against_the_reference_section() -> None:
    doc = ("# Report\n\nClaim one [1]. Claim two [3].\n\n## References\n\n"
           "[1] First source. https://a.example\n[2] Second source. https://b.example\n")
    report = check_document(doc)
    assert not report.ok
    assert [p.message for p in report.citation_errors] == [
        "line 3: citation [3] has no entry in the references",
        "reference [2] is never cited",
    ]


def test_citations_with_a_reference_file() -> None:
    items = json.loads((FIXTURES / "refs.json").read_text())
    doc = "# T\n\nA claim [@smith2020]. Another [@ghost2022].\n"
    report = check_document(doc, references=items, citation_style="mla")
    messages = [p.message for p in report.citation_errors]
    assert "line 3: citation @ghost2022 has no entry in the references" in messages
    assert 'reference "garner2016" is never cited' in messages
    assert report.citation_style == "mla"
    ok = check_document("x [@smith2020] [@garner2016] [@plainweb] [@who2021]", references=items)
    assert ok.ok and ok.citation_problems == []


def test_quality_score_is_the_weighted_mean_of_its_parts() -> None:
    requirements = WritingRequirements(length_words=100, length_tolerance=0.1,
                                       technical_level="general")
    rubric = [RubricResult(criterion="tone", passed=True),
              RubricResult(criterion="audience", passed=False, reason="too technical")]
    report = check_document((FIXTURES / "medium.md").read_text(), requirements=requirements,
                            rubric=rubric)
    names = [p.name for p in report.parts]
    assert names == ["readability", "style_findings", "passive_voice", "sentence_length",
                     "structure", "length", "rubric"]
    length = next(p for p in report.parts if p.name == "length")
    assert length.detail == f"{report.words} words, target 90–110"
    assert length.score == round(max(0.0, 1 - (report.words - 110) / 100), 3)
    assert next(p for p in report.parts if p.name == "rubric").score == 0.5
    expected = sum(p.weight * p.score for p in report.parts) / sum(p.weight for p in report.parts)
    assert report.quality_score == round(expected, 3)
    assert all(p.weight == WEIGHTS[p.name] for p in report.parts)


def test_no_network_is_touched() -> None:
    # A fresh interpreter with an audit hook that fails any socket use: every analysis,
    # the citation formatting and BibTeX parsing run to the end.
    code = f"""
import sys
def guard(event, args):
    if event.startswith("socket.") or event in ("urllib.Request", "http.client.connect"):
        raise RuntimeError("network touched: " + event)
sys.addaudithook(guard)
from pathlib import Path
from openmanus_tui.writing.quality import check_document
from openmanus_tui.writing.citations import CitationManager
fx = Path({str(FIXTURES)!r})
report = check_document((fx / "medium.md").read_text() + " A claim [@smith2020].",
                        references=CitationManager.from_file(fx / "refs.bib").items)
print(report.readability.words, len(CitationManager.from_file(fx / "refs.json").reference_list()))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == "4"


def test_the_one_pass_uncomparables_check_finds_what_proselints_does() -> None:
    from proselint.tools import LintFile

    from openmanus_tui.writing.style import _registered, proselint_findings

    text = ("It was the most unique plan. At most perfect, they said. The least possible "
            "cost. A most final answer, “the most unique” in quotes. Very unique.\n")
    _registered()
    theirs = [r.pos for r in LintFile("<t>", text).lint()
              if r.check_result.check_path == "uncomparables"]
    ours = [(f.line, f.column) for f in proselint_findings(text)[0] if f.check == "uncomparables"]
    assert ours == sorted(theirs)
    assert len(ours) == 4
