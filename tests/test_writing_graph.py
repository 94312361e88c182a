"""The writing graph through the real langchain-openai client against the loopback server:
outline → parallel drafts → rubric review → a revision round → assembly with a formatted
reference list, scored by code; and one editing pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from writing_model import WriterModel

from openmanus_tui.config import load_settings
from openmanus_tui.models.factory import make_model
from openmanus_tui.writing.graph import WritingGraph, edit_content
from openmanus_tui.writing.requirements import WritingRequirements

FIXTURES = Path(__file__).parent / "writing_fixtures"


def _model(monkeypatch: pytest.MonkeyPatch, server) -> object:
    from conftest import use_server

    use_server(monkeypatch, server)
    model, info = make_model(load_settings())
    assert info.spec == "openai:test-model"
    return model


async def test_graph_drafts_reviews_revises_and_assembles(monkeypatch, llm_server) -> None:
    writer = WriterModel(bad_first_draft=True)
    llm_server.set_responder(writer)
    # Four references to draw from; the drafts cite two.
    references = json.loads((FIXTURES / "refs.json").read_text())
    requirements = WritingRequirements(brief="Why and how to write plainly", length_words=80,
                                       citations_required=True, citation_style="apa")
    progress: list[str] = []
    result = await WritingGraph(_model(monkeypatch, llm_server), max_rounds=2,
                                progress=progress.append).run(requirements, references)

    # outline, two drafts, two reviews, one revision of the failing section, its review.
    assert writer.tasks == ["TASK: outline", "TASK: draft", "TASK: draft", "TASK: review",
                            "TASK: review", "TASK: draft", "TASK: review"]
    assert "draft 2/2: How to write plainly (revision 1)" in progress
    content = result.content
    assert content.startswith("# Writing Plainly\n\n## Why plain language matters\n\n")
    assert "help people act on what they read (Smith & Okafor, 2020)." in content
    assert "before you publish it (Garner, 2016)." in content
    assert "madeup1999" not in content and "junk" not in content
    assert content.count("## How to write plainly") == 1
    assert content.rstrip().endswith("https://doi.org/10.1000/jtw.2020.02")
    assert "## References\n\nGarner, B. (2016). *The elements of legal style*." in content
    assert result.metadata["rounds"] == 1
    assert [c["id"] for c in result.citations] == ["smith2020", "garner2016"]
    # The final rubric: every criterion of both sections passes, with its reason.
    second = result.reviews[1]
    assert second.round == 1 and second.passed, second
    assert {r.criterion for r in second.results} >= {
        "length", "citations resolve", "cites a source", "tone", "audience"}
    assert result.report["ok"] is True, result.report["citations"]
    # A library item left uncited is worth knowing, not an error in the document.
    assert [(p["level"], p["message"]) for p in result.report["citations"]["problems"]
            if p["code"] == "uncited"] == [("warning", 'reference "plainweb" is never cited'),
                                           ("warning", 'reference "who2021" is never cited')]
    assert "World Health Organization" not in content
    parts = {p["name"]: p for p in result.report["parts"]}
    assert parts["rubric"]["score"] == 1.0
    assert 0 < result.quality_score <= 1
    assert result.readability_score["words"] == result.metadata["words"]


async def test_revision_rounds_are_bounded(monkeypatch, llm_server) -> None:
    writer = WriterModel(bad_first_draft=True)
    llm_server.set_responder(writer)
    references = json.loads((FIXTURES / "refs.json").read_text())[:2]
    result = await WritingGraph(_model(monkeypatch, llm_server), max_rounds=0).run(
        WritingRequirements(brief="b", length_words=80), references)
    assert writer.tasks.count("TASK: draft") == 2  # no revision
    failing = result.reviews[1]
    assert not failing.passed
    assert [r.reason for r in failing.results if not r.passed] == [
        "cites unknown keys: @madeup1999 (use only the listed keys)"]
    assert result.report["ok"] is False  # the unresolved citation is reported, not hidden


async def test_edit_content_keeps_citations(monkeypatch, llm_server) -> None:
    llm_server.set_responder(WriterModel())
    text = "# Note\n\nWe utilize a very unique method [@smith2020].\n"
    edited = await edit_content(_model(monkeypatch, llm_server), text, "proofread")
    assert edited == "# Note\n\nWe use a unique method [@smith2020].\n"
    with pytest.raises(ValueError, match="unknown edit type 'polish'"):
        await edit_content(_model(monkeypatch, llm_server), text, "polish")
