"""The Document tab's pane (``tui/widgets/document.py``) under ``run_test``: a workspace file
checked with the references beside it, the outline, the scores with their parts, the citation
problems (selecting one moves the text's cursor to its line) and the review rubric."""

from __future__ import annotations

import json
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Select, TextArea, Tree
from tui_helpers import wait_for

from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.tools.builtin import build_registry
from openmanus_tui.tui.widgets.document import DocumentPane
from openmanus_tui.writing.records import WritingRecords
from openmanus_tui.writing.requirements import GeneratedContent, RubricResult, SectionReview

FIXTURES = Path(__file__).parent / "writing_fixtures"
DRAFT = """# Plain Language

Readers finish documents that respect their time [@smith2020].

## Method

Short sentences help. Testing with readers helps more [@ghost2021].

## Results

Agencies received fewer calls.
"""


def _cells(table: DataTable, row: int) -> list[str]:
    # Cells wrap to the panel's width: compare their words.
    return [" ".join(str(cell).split()) for cell in table.get_row_at(row)]


class PaneApp(App):
    def compose(self) -> ComposeResult:
        yield DocumentPane(id="document")


def _workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "draft.md").write_text(DRAFT)
    refs = json.loads((FIXTURES / "refs.json").read_text())[:2]
    (folder / "references.json").write_text(json.dumps(refs))
    (folder / "notes").mkdir()
    (folder / "notes" / "old.md").write_text("# Old\n\nOld notes.\n")
    (folder / ".hidden.md").write_text("# Hidden\n")
    (folder / "draft.sections").mkdir()
    (folder / "draft.sections" / "01-intro.md").write_text("## Intro\n")
    import os

    os.utime(folder / "notes" / "old.md", (1, 1))  # the draft is the newest
    return folder


async def test_document_pane_shows_scores_problems_and_jumps(tmp_path: Path) -> None:
    folder = _workspace(tmp_path)
    runtime = await Runtime.open(load_settings(), build_registry())
    try:
        records = WritingRecords(runtime.db)
        await records.setup()
        review = SectionReview(section="Method", round=1, results=[
            RubricResult(criterion="tone", passed=True, reason="plain"),
            RubricResult(criterion="length", passed=False, reason="12 words, target 40")])
        await records.add(GeneratedContent(content=DRAFT, reviews=[review]), brief="b",
                          path=str(folder / "draft.md"), fmt="md")
        app = PaneApp()
        async with app.run_test(size=(100, 80)) as pilot:
            pane = app.query_one(DocumentPane)
            await pane.ensure_built()
            pane.shown = True
            pane.show_workspace(runtime, folder)
            problems = app.query_one("#doc-problems", DataTable)
            await wait_for(pilot, lambda: problems.row_count > 0)

            select = app.query_one("#doc-file", Select)
            assert select.value == str(folder / "draft.md")
            assert [str(label) for label, _ in select._options[1:]] == ["draft.md",
                                                                        "notes/old.md"]
            rows = [_cells(problems, i) for i in range(problems.row_count)]
            assert rows == [
                ["error", "line 7: citation @ghost2021 has no entry in the references"],
                ["error", 'reference "garner2016" is never cited'],
            ]
            outline = app.query_one("#doc-outline", Tree)
            assert [str(n.label) for n in outline.root.children] == ["Plain Language (7)"]
            assert [str(n.label) for n in outline.root.children[0].children] == [
                "Method (8)", "Results (4)"]
            scores = app.query_one("#doc-scores", DataTable)
            names = [_cells(scores, i)[0] for i in range(scores.row_count)]
            assert names[0] == "readability" and "citations" in names and "rubric" not in names
            rubric = app.query_one("#doc-rubric", DataTable)
            assert [_cells(rubric, i) for i in range(rubric.row_count)] == [
                ["Method", "tone", "pass", "plain"],
                ["", "length", "fail", "12 words, target 40"]]

            text = app.query_one("#doc-text", TextArea)
            problems.focus()
            problems.move_cursor(row=0)
            await pilot.press("enter")
            await wait_for(pilot, lambda: text.cursor_location == (6, 0))
            # An outline node jumps to its heading.
            outline.select_node(outline.root.children[0].children[1])
            await wait_for(pilot, lambda: text.cursor_location == (8, 0))

            # Another file from the list.
            select.value = str(folder / "notes" / "old.md")
            await wait_for(pilot, lambda: text.text.startswith("# Old"))
            assert _cells(problems, 0) == [
                "ok", "every citation resolves and every reference is cited"]
    finally:
        await runtime.close()


def test_document_tab_snapshot(snap_compare, isolated_env: Path, monkeypatch) -> None:
    from scenes import workbench as scenes
    from scenes.document import stage_document

    from openmanus_tui.runtime.session import AgentSession
    from openmanus_tui.tui.app import OpenManusApp

    monkeypatch.setattr(AgentSession, "isolation", lambda self: "L2")
    app = OpenManusApp(load_settings({"ui": {"theme": "openmanus-dark"}}),
                       clock=scenes.FixedClock(), wall_clock=lambda: scenes.BASE_TS + 3600,
                       blink=False)

    async def run_before(pilot) -> None:
        await stage_document(pilot.app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(150, 50), run_before=run_before)


async def test_escape_sequences_in_a_document_are_shown_not_sent(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "evil.md").write_text("# Title \x1b]0;pwned\x07\n\nText [@key\x1b[2J].\n")
    runtime = await Runtime.open(load_settings(), build_registry())
    try:
        app = PaneApp()
        async with app.run_test(size=(100, 60)) as pilot:
            pane = app.query_one(DocumentPane)
            await pane.ensure_built()
            pane.shown = True
            pane.show_workspace(runtime, folder)
            text = app.query_one("#doc-text", TextArea)
            await wait_for(pilot, lambda: "Title" in text.text)
            assert "\x1b" not in text.text and "\\x1b]0;pwned" in text.text
            outline = app.query_one("#doc-outline", Tree)
            assert all("\x1b" not in str(n.label) for n in outline.root.children)
            problems = app.query_one("#doc-problems", DataTable)
            cells = [str(c) for i in range(problems.row_count) for c in problems.get_row_at(i)]
            assert all("\x1b" not in c for c in cells)
    finally:
        await runtime.close()
