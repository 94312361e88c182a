"""Documents written as DOCX, HTML and PDF (read back with python-docx and pypdf), and the
stored documents' rows deleted with their session."""

from __future__ import annotations

from pathlib import Path

import pytest
from docx import Document
from pypdf import PdfReader

from openmanus_tui.config import load_settings
from openmanus_tui.runtime import api
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.tools.builtin import build_registry
from openmanus_tui.writing.output import OutputError, write_document
from openmanus_tui.writing.records import WritingRecords
from openmanus_tui.writing.requirements import GeneratedContent

MARKDOWN = """# Annual Review

Intro with **bold**, *italic* and `code`, and a [link](https://example.org).

## Numbers

1. first
2. second
   - nested

| Year | Trees |
|------|------:|
| 2020 | 120 |

> A quotation.

```
print("hi")
```

## References

Garner, B. (2016). *The elements of legal style*. Oxford University Press.
"""


def test_docx_has_headings_lists_tables_and_formatting(tmp_path: Path) -> None:
    target = write_document(MARKDOWN, tmp_path / "r.docx", "docx")
    doc = Document(str(target))
    styles = [(p.style.name, p.text) for p in doc.paragraphs]
    assert styles[:2] == [("Heading 1", "Annual Review"),
                          ("Normal", "Intro with bold, italic and code, and a link "
                                     "(https://example.org).")]
    assert ("List Number", "first") in styles and ("List Bullet 2", "nested") in styles
    assert ("Quote", "A quotation.") in styles
    assert ("Heading 2", "References") in styles
    runs = doc.paragraphs[1].runs
    assert [r.text for r in runs if r.bold] == ["bold"]
    assert [r.text for r in runs if r.italic] == ["italic"]
    assert [r.text for r in runs if r.font.name == "Courier New"] == ["code"]
    table = doc.tables[0]
    assert [[c.text for c in row.cells] for row in table.rows] == [["Year", "Trees"],
                                                                   ["2020", "120"]]
    assert table.style.name == "Table Grid"


def test_html_and_pdf(tmp_path: Path) -> None:
    html = write_document(MARKDOWN, tmp_path / "r.html", "html").read_text()
    assert "<title>Annual Review</title>" in html and "<table>" in html
    pdf = PdfReader(write_document(MARKDOWN, tmp_path / "r.pdf", "pdf"))
    text = pdf.pages[0].extract_text()
    assert pdf.metadata.title == "Annual Review"
    assert "Garner, B. (2016)" in text and "2020" in text


def test_unwritable_target_is_one_error_and_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot write"):
        write_document(MARKDOWN, blocker / "r.docx", "docx")
    assert not list(tmp_path.glob("**/*.partial"))


async def test_deleting_a_session_deletes_its_documents(isolated_env: Path) -> None:
    runtime = await Runtime.open(load_settings(), build_registry())
    try:
        session = await runtime.create_session()
        records = WritingRecords(runtime.db)
        await records.setup()
        generated = GeneratedContent(content="# x\n", quality_score=0.5)
        mine = await records.add(generated, brief="b", path="x.md", fmt="md",
                                 session_id=session.id)
        other = await records.add(generated, brief="b", path="y.md", fmt="md")
        assert (await records.get(mine)).quality_score == 0.5
        await api.delete_session(runtime, session.id)
        assert await records.get(mine) is None
        assert [row.id for row in await records.list()] == [other]
    finally:
        await runtime.close()


def test_docx_embeds_local_images(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (12, 8), (200, 30, 30)).save(tmp_path / "chart.png")
    target = write_document("# Chart\n\n![chart](chart.png)\n\n![gone](gone.png)\n",
                            tmp_path / "c.docx", "docx")
    doc = Document(str(target))
    assert len(doc.inline_shapes) == 1
    assert doc.paragraphs[-1].text == "[image: gone]"
