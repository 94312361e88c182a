"""CitationManager: golden reference lists and in-text citations for APA 7, MLA 9, Chicago
author-date and Chicago notes-bibliography (a journal article, a book, an undated web page, an
organisation as author), the citeproc-py quirks corrected, BibTeX input, and validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openmanus_tui.writing.bibtex import bibtex_to_csl
from openmanus_tui.writing.citations import (
    CitationError,
    CitationManager,
    find_markers,
    load_references,
    missing_fields,
    style_name,
)

FIXTURES = Path(__file__).parent / "writing_fixtures"
KEYS = ("smith2020", "garner2016", "plainweb", "who2021")

GOLDEN = {
    "apa": (
        [
            "Garner, B. (2016). The elements of legal style. Oxford University Press.",
            "Lee, M. (n.d.). Write for your audience. PlainLanguage.gov. Retrieved May 1, 2024, "
            "from https://www.plainlanguage.gov/audience",
            "Smith, J. A., & Okafor, C. (2020). Plain language and reader comprehension. "
            "Journal of Technical Writing, 50(2), 101–125. https://doi.org/10.1000/jtw.2020.02",
            # APA 7 (9.24): no publisher when it is the author (the CSL style alone repeats it).
            "World Health Organization. (2021). WHO global air quality guidelines.",
        ],
        ["(Smith & Okafor, 2020)", "(Garner, 2016)", "(Lee, n.d.)",
         "(World Health Organization, 2021)"],
    ),
    "mla": (
        [
            "Garner, Bryan. The Elements of Legal Style. Oxford University Press, 2016.",
            "Lee, Maria. “Write for Your Audience.” PlainLanguage.gov, "
            "https://www.plainlanguage.gov/audience. Accessed 1 May 2024.",
            "Smith, Jane Anne, and Chidi Okafor. “Plain Language and Reader Comprehension.” "
            "Journal of Technical Writing, vol. 50, no. 2, 2020, pp. 101–25, "
            "https://doi.org/10.1000/jtw.2020.02.",
            "World Health Organization. WHO Global Air Quality Guidelines. "
            "World Health Organization, 22 Sept. 2021.",
        ],
        ["(Smith and Okafor)", "(Garner)", "(Lee)", "(World Health Organization)"],
    ),
    "chicago-author-date": (
        [
            "Garner, Bryan. 2016. The Elements of Legal Style. Oxford University Press.",
            "Lee, Maria. n.d. “Write for Your Audience.” PlainLanguage.gov. Accessed May 1, 2024. "
            "https://www.plainlanguage.gov/audience.",
            "Smith, Jane Anne, and Chidi Okafor. 2020. “Plain Language and Reader Comprehension.” "
            "Journal of Technical Writing 50 (2): 101–25. https://doi.org/10.1000/jtw.2020.02.",
            "World Health Organization. 2021. WHO Global Air Quality Guidelines. "
            "World Health Organization.",
        ],
        ["(Smith and Okafor 2020)", "(Garner 2016)", "(Lee, n.d.)",
         "(World Health Organization 2021)"],
    ),
    "chicago-notes": (
        [
            "Garner, Bryan. The Elements of Legal Style. Oxford University Press, 2016.",
            "Lee, Maria. “Write for Your Audience.” PlainLanguage.gov. Accessed May 1, 2024. "
            "https://www.plainlanguage.gov/audience.",
            "Smith, Jane Anne, and Chidi Okafor. “Plain Language and Reader Comprehension.” "
            "Journal of Technical Writing 50, no. 2 (2020): 101–25. "
            "https://doi.org/10.1000/jtw.2020.02.",
            "World Health Organization. WHO Global Air Quality Guidelines. "
            "World Health Organization, 2021.",
        ],
        [
            "Jane Anne Smith and Chidi Okafor, “Plain Language and Reader Comprehension,” "
            "Journal of Technical Writing 50, no. 2 (2020): 101–25, "
            "https://doi.org/10.1000/jtw.2020.02.",
            "Bryan Garner, The Elements of Legal Style (Oxford University Press, 2016).",
            "Maria Lee, “Write for Your Audience,” PlainLanguage.gov, accessed May 1, 2024, "
            "https://www.plainlanguage.gov/audience.",
            "World Health Organization, WHO Global Air Quality Guidelines "
            "(World Health Organization, 2021).",
        ],
    ),
}


@pytest.mark.parametrize("style", list(GOLDEN))
def test_reference_list_and_in_text_citations_match_the_golden_entries(style: str) -> None:
    manager = CitationManager.from_file(FIXTURES / "refs.json", style)
    entries, cites = GOLDEN[style]
    assert manager.reference_list() == entries
    assert [manager.cite(key) for key in KEYS] == cites


@pytest.mark.parametrize("style", list(GOLDEN))
def test_a_bibtex_file_gives_the_same_entries_as_csl_json(style: str) -> None:
    manager = CitationManager.from_file(FIXTURES / "refs.bib", style)
    assert manager.reference_list() == GOLDEN[style][0]


def test_quirks_full_given_names_and_punctuation_inside_quotes() -> None:
    # citeproc-py alone prints "Smith, J. A." for MLA/Chicago and puts the period after ”.
    mla = CitationManager.from_file(FIXTURES / "refs.json", "mla").reference_list()
    assert any(e.startswith("Smith, Jane Anne, and Chidi Okafor.") for e in mla)
    assert all("”." not in e and "”," not in e for e in mla)
    assert "Reader Comprehension.”" in mla[2]


def test_mla_adds_a_title_only_when_two_works_share_authors() -> None:
    items = json.loads((FIXTURES / "refs.json").read_text())
    second = dict(items[1], id="garner2019", title="Legal writing in plain English",
                  issued={"date-parts": [[2019]]})
    manager = CitationManager([*items, second], "mla")
    assert manager.cite("smith2020") == "(Smith and Okafor)"
    assert manager.render_clusters([[find_markers("[@garner2016]")[0].refs[0]],
                                    [find_markers("[@garner2019]")[0].refs[0]]]) == [
        "(Garner, The Elements of Legal Style)", "(Garner, Legal Writing in Plain English)"]


def test_mla_names_the_authors_of_the_entry_above_with_its_substitute() -> None:
    """MLA's works cited: an entry by exactly the authors of the one above starts "———."
    (the style's subsequent-author-substitute, which citeproc-py does not apply)."""
    items = json.loads((FIXTURES / "refs.json").read_text())
    second = dict(items[1], id="garner2019", title="Why legal writing matters",
                  issued={"date-parts": [[2019]]})
    coauthored = dict(items[1], id="garner2020", title="Making your case",
                      author=[*items[1]["author"], {"family": "Scalia", "given": "Antonin"}],
                      issued={"date-parts": [[2020]]})
    entries = CitationManager([*items, second, coauthored], "mla").reference_list()
    assert entries[:3] == [
        "Garner, Bryan. The Elements of Legal Style. Oxford University Press, 2016.",
        "———. Why Legal Writing Matters. Oxford University Press, 2019.",
        "Garner, Bryan, and Antonin Scalia. Making Your Case. Oxford University Press, 2020.",
    ]
    apa = CitationManager([*items, second], "apa").reference_list()
    assert apa[:2] == [  # a style without a substitute repeats the names
        "Garner, B. (2016). The elements of legal style. Oxford University Press.",
        "Garner, B. (2019). Why legal writing matters. Oxford University Press.",
    ]


def test_html_output_keeps_the_styles_italics() -> None:
    manager = CitationManager.from_file(FIXTURES / "refs.json", "apa")
    html = manager.reference_list(fmt="html")
    assert html[0] == ("Garner, B. (2016). <i>The elements of legal style</i>. "
                       "Oxford University Press.")
    assert "<i>Journal of Technical Writing</i>, <i>50</i>(2)" in html[2]


def test_locators_and_clusters() -> None:
    manager = CitationManager.from_file(FIXTURES / "refs.json", "apa")
    marker = find_markers("As shown [see @smith2020, p. 104; @garner2016].")[0]
    assert [r.key for r in marker.refs] == ["smith2020", "garner2016"]
    assert manager.render_clusters([marker.refs]) == [
        "(Garner, 2016; Smith & Okafor, 2020, p. 104)"] or manager.render_clusters(
        [marker.refs]) == ["(Smith & Okafor, 2020, p. 104; Garner, 2016)"]


def test_markers_in_code_and_links_are_not_citations() -> None:
    text = "Real [@a].\n\n```\n[@incode]\n```\n\nInline `[@span]` and a [@link](http://x) too.\n"
    markers = find_markers(text)
    assert [(m.refs[0].key, m.line, m.column) for m in markers] == [("a", 1, 6)]


def test_render_document_appends_the_reference_list_and_notes() -> None:
    doc = "# Title\n\nPlain words help [@smith2020]. Style matters [@garner2016].\n"
    apa = CitationManager.from_file(FIXTURES / "refs.json", "apa").render_document(doc)
    assert "Plain words help (Smith & Okafor, 2020)." in apa
    assert apa.rstrip().endswith("https://doi.org/10.1000/jtw.2020.02")
    assert "## References\n\nGarner, B. (2016). *The elements of legal style*." in apa
    mla = CitationManager.from_file(FIXTURES / "refs.json", "mla").render_document(doc)
    assert "## Works Cited" in mla
    notes = CitationManager.from_file(FIXTURES / "refs.json", "chicago-notes").render_document(doc)
    assert "Plain words help[^1]. Style matters[^2]." in notes
    assert "[^2]: Bryan Garner, *The Elements of Legal Style* (Oxford University Press, 2016)." \
        in notes
    assert "## Bibliography" in notes


def test_validation_names_each_problem_exactly() -> None:
    items = json.loads((FIXTURES / "refs.json").read_text())
    items.append({"id": "bare", "type": "webpage", "title": "Untitled page"})
    doc = "Intro [@smith2020].\n\nLater [@nosuch; @plainweb] and [@bare].\n"
    problems = CitationManager(items, "apa").validate(find_markers(doc))
    messages = [p.message for p in problems]
    assert messages == [
        "line 3: citation @nosuch has no entry in the references",
        'reference "garner2016" is never cited',
        'reference "who2021" is never cited',
        'reference "bare" (webpage) has no author or organisation ("author"): APA 7 needs it',
        'reference "bare" (webpage) has no URL ("URL"): APA 7 needs it',
        'reference "bare" (webpage) has no access date ("accessed"): APA 7 needs it',
    ]
    unresolved = problems[0]
    assert (unresolved.code, unresolved.line, unresolved.column) == ("unresolved", 3, 7)


def test_missing_date_is_a_warning_printed_as_nd() -> None:
    problems = missing_fields({"id": "b", "type": "book", "title": "T",
                               "author": [{"literal": "Org"}], "publisher": "P"}, "mla")
    assert [(p.level, p.message) for p in problems] == [
        ("warning", 'reference "b" (book) has no date ("issued"): it is printed as "n.d."')]


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CitationError, match="unknown citation style 'harvard': choose apa, mla"):
        style_name("harvard")
    assert style_name("modern-language-association") == "mla"
    with pytest.raises(CitationError, match="reference file not found"):
        load_references(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CitationError, match=r"not CSL-JSON \(line 1"):
        load_references(bad)
    noid = tmp_path / "noid.json"
    noid.write_text('[{"title": "x"}]')
    with pytest.raises(CitationError, match='item 1 has no "id"'):
        load_references(noid)
    broken = tmp_path / "broken.bib"
    broken.write_text("@article{x, title = {unclosed\n")
    with pytest.raises(CitationError, match="cannot read a BibTeX entry"):
        load_references(broken)


def test_bibtex_names_accents_particles_and_organisations() -> None:
    items = bibtex_to_csl(
        "@article{x, author = {M{\\\"u}ller, J{\\'e}r{\\^o}me and van der Berg, Anna and "
        "{World Health Organization}}, title = {T}, journal = {J}, year = 2001}")
    assert items[0]["author"] == [
        {"family": "Müller", "given": "Jérôme"},
        {"family": "Berg", "given": "Anna", "non-dropping-particle": "van der"},
        {"literal": "World Health Organization"},
    ]
