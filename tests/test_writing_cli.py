"""The writing commands as a person runs them: ``openmanus cite`` (golden entries per style),
``openmanus write check`` (exit 1 naming both citation problems), ``openmanus write`` end to end
against the loopback model server (a .docx and a .md with a reference list, read back), and
``openmanus write --edit`` with its diff."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import cli, run_cli, use_server
from docx import Document
from test_writing_citations import GOLDEN
from writing_model import WriterModel

FIXTURES = Path(__file__).parent / "writing_fixtures"


@pytest.mark.parametrize("style", ["apa", "mla", "chicago-author-date"])
def test_cite_prints_the_golden_reference_list(style: str) -> None:
    result = cli("cite", str(FIXTURES / "refs.json"), "--style", style)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split("\n\n") == GOLDEN[style][0]


def test_cite_html_and_bad_input() -> None:
    html = cli("cite", str(FIXTURES / "refs.bib"), "--format", "html")
    assert html.returncode == 0
    assert "<div class=\"csl-entry\">Garner, B. (2016). <i>The elements of legal style</i>." \
        in html.stdout
    bad_style = cli("cite", str(FIXTURES / "refs.json"), "--style", "harvard")
    assert (bad_style.returncode, bad_style.stderr.strip()) == (
        2, "openmanus: unknown citation style 'harvard': choose apa, mla, chicago-author-date, "
           "chicago-notes")
    missing = cli("cite", "nope.bib")
    assert (missing.returncode, missing.stderr.strip()) == (
        2, "openmanus: reference file not found: nope.bib")


def test_write_check_exits_1_and_names_both_problems(tmp_path: Path) -> None:
    doc = tmp_path / "draft.md"
    doc.write_text("# Draft\n\nPlain words help readers [@smith2020]. So does testing "
                   "[@ghost2021].\n")
    refs = json.loads((FIXTURES / "refs.json").read_text())[:2]
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    result = run_cli("write", "check", str(doc), "--references", str(tmp_path / "refs.json"))
    assert result.returncode == 1, result.stderr
    assert "error   line 3: citation @ghost2021 has no entry in the references" in result.stdout
    assert 'error   reference "garner2016" is never cited' in result.stdout
    assert "Flesch reading ease" in result.stdout and "quality" in result.stdout

    as_json = cli("write", "check", str(doc), "--references", str(tmp_path / "refs.json"),
                  "--json")
    data = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and data["ok"] is False
    assert [p["code"] for p in data["citations"]["problems"]] == ["unresolved", "uncited"]
    assert set(data["readability"]) >= {"flesch_reading_ease", "flesch_kincaid_grade",
                                        "gunning_fog", "smog", "avg_sentence_length"}

    fixed = tmp_path / "fixed.md"
    fixed.write_text("# Draft\n\nPlain words help [@smith2020]. Style matters [@garner2016].\n")
    ok = cli("write", "check", str(fixed), "--references", str(tmp_path / "refs.json"),
             "--citation-style", "mla")
    assert ok.returncode == 0, ok.stdout
    assert "MLA 9: 2 citations, 2 references, 0 errors" in ok.stdout


def test_write_check_user_mistakes_are_one_line() -> None:
    for args, message in [
        (("write", "check"), "write check takes one Markdown file"),
        (("write", "check", "nope.md"), "document not found: nope.md"),
        (("write", "check", str(FIXTURES / "easy.md"), "--tone", "warm"),
         "write check: --tone does not apply here"),
        (("write", "hello"), "write needs -o FILE"),
        (("write", "--edit", str(FIXTURES / "easy.md")), "write --edit needs --edit-type"),
    ]:
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_write_end_to_end_docx_and_md_with_references(tmp_path: Path, monkeypatch,
                                                      llm_server) -> None:
    use_server(monkeypatch, llm_server)
    writer = WriterModel(bad_first_draft=True)
    llm_server.set_responder(writer)
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps(json.loads((FIXTURES / "refs.json").read_text())[:2]))

    docx_out = tmp_path / "out" / "plain.docx"
    # In this process first (langchain-openai keeps one async HTTP client per base URL for the
    # process, so a second in-process run would find its event loop closed), then as a process.
    result = cli("write", "Why and how to write plainly", "--references", str(refs),
                     "--cite", "--length", "80", "--audience", "civil servants",
                     "-o", str(docx_out))
    assert result.returncode == 0, result.stderr
    assert "writing: requirements: professional, neutral tone, for civil servants" \
        in result.stderr
    assert "writing: draft 2/2: How to write plainly (revision 1)" in result.stderr
    assert result.stdout.startswith(f"{docx_out}: ")
    assert "2 references cited · 1 revision rounds" in result.stdout
    # The real client sent the real requests: the API key, the model, streamed or not.
    assert llm_server.records[0].body["model"] == "test-model"

    document = Document(str(docx_out))
    paragraphs = [(p.style.name, p.text) for p in document.paragraphs]
    assert paragraphs[0] == ("Heading 1", "Writing Plainly")
    assert ("Heading 2", "How to write plainly") in paragraphs
    assert ("Heading 2", "References") in paragraphs
    texts = [text for _, text in paragraphs]
    assert any("act on what they read (Smith & Okafor, 2020)." in t for t in texts)
    refs_at = texts.index("References")
    assert texts[refs_at + 1] == "Garner, B. (2016). The elements of legal style. " \
                                 "Oxford University Press."
    italic = [run.text for p in document.paragraphs[refs_at + 1:] for run in p.runs
              if run.italic]
    assert "The elements of legal style" in italic
    assert document.core_properties.title == "Writing Plainly"

    md_out = tmp_path / "plain.md"
    as_json = run_cli("write", "Why and how to write plainly", "--references", str(refs),
                      "--citation-style", "chicago-author-date", "-o", str(md_out), "--json")
    assert as_json.returncode == 0, as_json.stderr
    generated = json.loads(as_json.stdout)
    text = md_out.read_text()
    assert text == generated["content"]
    assert "(Smith and Okafor 2020)" in text
    assert text.rstrip().endswith("Journal of Technical Writing* 50 (2): 101–25. "
                                  "https://doi.org/10.1000/jtw.2020.02.")
    assert generated["report"]["ok"] is True
    assert 0 < generated["quality_score"] <= 1
    assert {p["name"] for p in generated["report"]["parts"]} >= {"readability", "rubric"}
    # Both runs are stored with their scores.
    db = sqlite3.connect(tmp_path / "data" / "openmanus.db")
    rows = db.execute("SELECT path, format, quality_score FROM writing_documents "
                      "ORDER BY created").fetchall()
    assert [(Path(r[0]).name, r[1]) for r in rows] == [("plain.docx", "docx"),
                                                      ("plain.md", "md")]


def test_write_edit_prints_a_diff_and_writes_only_with_o(tmp_path: Path, monkeypatch,
                                                         llm_server) -> None:
    use_server(monkeypatch, llm_server)
    llm_server.set_responder(WriterModel())
    source = tmp_path / "note.md"
    source.write_text("# Note\n\nWe utilize a very unique method [@smith2020].\n")
    dry = cli("write", "--edit", str(source), "--edit-type", "proofread")
    assert dry.returncode == 0, dry.stderr
    assert "-We utilize a very unique method [@smith2020].\n" \
           "+We use a unique method [@smith2020].\n" in dry.stdout
    assert "nothing written: add -o FILE" in dry.stderr
    assert source.read_text().startswith("# Note\n\nWe utilize")
    kept = run_cli("write", "--edit", str(source), "--edit-type", "proofread",
                   "-o", str(tmp_path / "note.edited.md"))
    assert kept.returncode == 0
    assert (tmp_path / "note.edited.md").read_text() == \
        "# Note\n\nWe use a unique method [@smith2020].\n"


def test_write_without_a_model_says_so(tmp_path: Path) -> None:
    result = cli("write", "a brief", "-o", str(tmp_path / "x.md"))
    assert result.returncode == 2
    assert "writing needs a real model" in result.stderr
    assert not (tmp_path / "x.md").exists()


def test_the_cli_choices_match_the_writing_package() -> None:
    from openmanus_tui.cli import write
    from openmanus_tui.runtime import writing

    assert write.STYLES == writing.WRITING_STYLES
    assert write.FORMATS == writing.FORMATS
    assert write.EDIT_TYPES == writing.EDIT_TYPES


def test_write_from_a_research_sessions_sources(tmp_path: Path, monkeypatch,
                                                llm_server) -> None:
    """``--from-session``: the session's source registry becomes the references (s1, s2…)."""
    import asyncio

    from openmanus_tui.config import load_settings
    from openmanus_tui.research.documents import Document
    from openmanus_tui.research.registry import SourceRegistry
    from openmanus_tui.runtime.session import Runtime
    from openmanus_tui.tools.builtin import build_registry

    async def research_session() -> str:
        runtime = await Runtime.open(load_settings(), build_registry())
        try:
            session = await runtime.create_session(profile="research")
            registry = SourceRegistry(runtime.db)
            await registry.setup()
            for url, title, site, published in [
                ("https://www.plainlanguage.gov/guide", "Federal plain language guidelines",
                 "PlainLanguage.gov", "2011-05-01"),
                ("https://example.org/testing", "Testing documents with readers", None, None),
            ]:
                await registry.add_document(session.id, Document(
                    url=url, final_url=url, kind="html", title=title, author=None, site=site,
                    domain=url.split("/")[2], published=published, modified=None,
                    text="text", content_hash="h" + title[:3], fetched=1_717_200_000.0))
            return session.id
        finally:
            await runtime.close()

    session_id = asyncio.run(research_session())
    use_server(monkeypatch, llm_server)
    llm_server.set_responder(WriterModel(keys={"smith2020": "s1", "garner2016": "s2"}))
    out = tmp_path / "from-session.md"
    result = cli("write", "Why and how to write plainly", "--from-session", session_id[:8],
                 "-o", str(out))
    assert result.returncode == 0, result.stderr + result.stdout
    text = out.read_text()
    assert "act on what they read (PlainLanguage.gov, 2011)." in text
    assert "before you publish it (example.org, n.d.)." in text
    # APA 7: a dated page needs no retrieval date; the undated one gets the fetch date.
    assert ("PlainLanguage.gov. (2011, May 1). *Federal plain language guidelines*. "
            "PlainLanguage.gov. https://www.plainlanguage.gov/guide" in text)
    assert ("example.org. (n.d.). *Testing documents with readers*. Example.org. Retrieved "
            "June 1, 2024, from https://example.org/testing" in text)

    missing = cli("write", "x", "--from-session", "nosuchsession", "-o", str(out))
    assert missing.returncode == 2
    assert "openmanus: no session matches 'nosuchsession'" in missing.stderr


def test_write_check_and_cite_stay_light() -> None:
    # What `write check` and `cite` import: no LangGraph, no model client, no citeproc until a
    # reference file is formatted (each costs hundreds of milliseconds at start).
    import subprocess
    import sys

    code = ("import sys; import openmanus_tui.runtime.writing, openmanus_tui.cli.write; "
            "print(sorted(m for m in ('langgraph', 'langchain_openai', 'openai', 'citeproc') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
