"""The Document tab: a Markdown file of the session's workspace checked by the writing system —
its outline, the scores with their parts, the citation problems (select one to jump to its
line in the text below) and the review rubric of the writing run that produced it. "Edit…"
runs ``/edit FILE TYPE`` on the file shown (the diff opens in ``tui/screens/edit_diff.py``).

Presentation only: ``runtime/writing.py`` (``document_view``) computes everything shown.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, DataTable, Select, Static, TextArea, Tree

from openmanus_tui.termsafe import sanitize
from openmanus_tui.tui.widgets.deferred import DeferredPane

NO_FILE = "no Markdown file in the workspace yet"


def _safe(text: str) -> str:
    # A document's own text (its citation keys, its headings, its name) may hold escape
    # sequences: shown as visible ``\x1b``, never sent to the terminal.
    return sanitize(text, keep_sgr=False)


def _wrap(text: str, width: int) -> str:
    text = _safe(text)
    return textwrap.fill(text, width=max(8, width), break_long_words=True) or text


class DocumentPane(DeferredPane):
    """Built when first shown, refreshed while shown (``tui/widgets/deferred.py``)."""

    DEFAULT_CSS = """
    DocumentPane { overflow-y: auto; }
    DocumentPane .doc-title { height: 1; margin-top: 1; text-style: bold; }
    DocumentPane #doc-file { width: 1fr; }
    DocumentPane #doc-edit-row { height: auto; }
    DocumentPane #doc-edit-type { width: 20; }
    DocumentPane #doc-summary { height: auto; }
    DocumentPane #doc-outline { height: auto; max-height: 10; }
    DocumentPane DataTable { height: auto; max-height: 16; overflow-x: hidden; }
    DocumentPane #doc-text { height: 16; }
    """

    runtime: Any = None
    folder: Path | None = None
    current: Path | None = None

    def build(self) -> list[Widget]:
        from openmanus_tui.runtime.writing import EDIT_TYPES

        problems = DataTable(id="doc-problems", cursor_type="row", zebra_stripes=True)
        problems.add_columns("level", "problem")
        scores = DataTable(id="doc-scores", cursor_type="row")
        scores.add_columns("part", "weight", "score", "from")
        rubric = DataTable(id="doc-rubric", cursor_type="row")
        rubric.add_columns("section", "criterion", "", "reason")
        outline: Tree[int] = Tree("outline", id="doc-outline")
        outline.show_root = False
        return [
            Select[str]([], prompt="document", id="doc-file", allow_blank=True),
            Horizontal(Select[str]([(t, t) for t in EDIT_TYPES], value=EDIT_TYPES[0],
                                   allow_blank=False, id="doc-edit-type"),
                       Button("Edit…", id="doc-edit"), id="doc-edit-row"),
            Static("", id="doc-summary"),
            Static("Outline", classes="doc-title"), outline,
            Static("Scores", classes="doc-title"), scores,
            Static("Citation problems", classes="doc-title"), problems,
            Static("Review rubric", classes="doc-title"), rubric,
            TextArea("", id="doc-text", read_only=True, language="markdown",
                     show_line_numbers=True),
        ]

    def show_workspace(self, runtime: Any, folder: Path | None) -> None:
        """Follow the session's workspace (a new session, or files written by a run)."""
        self.runtime, self.folder = runtime, folder
        self.request_update()

    def update_data(self) -> None:
        self._load()

    @work(group="document", exclusive=True)
    async def _load(self, chosen: Path | None = None) -> None:
        import asyncio

        from openmanus_tui.runtime.writing import document_view, workspace_documents

        if self.runtime is None or self.folder is None:
            self._summary(NO_FILE)
            return
        files = await asyncio.to_thread(workspace_documents, self.folder)
        select = self.query_one("#doc-file", Select)
        with select.prevent(Select.Changed):
            select.set_options([(_safe(str(p.relative_to(self.folder))), str(p))
                                for p in files])
        target = chosen or (self.current if self.current in files else None) or (
            files[0] if files else None)
        if target is None:
            self.current = None
            self._summary(NO_FILE)
            return
        self.current = target
        with select.prevent(Select.Changed):
            select.value = str(target)
        self._show(await document_view(self.runtime, target))

    @on(Select.Changed, "#doc-file")
    def _picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self._load(Path(event.value))

    def _summary(self, text: str | Text) -> None:
        self.query_one("#doc-summary", Static).update(text)

    def _show(self, view: Any) -> None:
        text_area = self.query_one("#doc-text", TextArea)
        text_area.load_text(_safe(view.text))
        outline = self.query_one("#doc-outline", Tree)
        outline.clear()
        for table_id in ("#doc-scores", "#doc-problems", "#doc-rubric"):
            self.query_one(table_id, DataTable).clear()
        if view.report is None:
            self._summary(Text(_safe(view.error), style="bold"))
            return
        report = view.report
        read = report.readability
        refs = f" · references: {_safe(view.references.name)}" if view.references else ""
        self._summary(Text.assemble(
            (f"quality {report.quality_score:.2f}", "bold"),
            f" · {report.words} words · reading ease {read.flesch_reading_ease:.0f} · "
            f"grade {read.flesch_kincaid_grade:.1f} · fog {read.gunning_fog:.1f} · "
            f"SMOG {read.smog:.1f}{refs}"))

        def add(node: Any, sections: list[Any]) -> None:
            for section in sections:
                child = node.add(Text(f"{_safe(section.title)} ({section.words})"),
                                 data=section.line, expand=True)
                add(child, section.children)
                if not section.children:
                    child.allow_expand = False

        add(outline.root, report.structure.outline)
        # Cells wrap to the panel's width (a row grows to its wrapped text), so nothing hides
        # behind a horizontal scroll bar.
        width = max(40, self.size.width - 8)  # the pane's scroll bar and cell padding
        scores = self.query_one("#doc-scores", DataTable)
        for part in report.parts:
            scores.add_row(_wrap(part.name.replace("_", " "), 11), f"{part.weight:g}",
                           f"{part.score:.2f}", _wrap(part.detail, width - 25), key=part.name,
                           height=None)
        problems = self.query_one("#doc-problems", DataTable)
        for number, problem in enumerate(report.citation_problems):
            style = "bold" if problem.level == "error" else "dim"
            problems.add_row(Text(problem.level, style=style), _wrap(problem.message, width - 10),
                             key=f"{number}:{problem.line or 0}:{problem.key or ''}",
                             height=None)
        if not report.citation_problems:
            problems.add_row("ok", "every citation resolves and every reference is cited",
                             key="none")
        rubric = self.query_one("#doc-rubric", DataTable)
        for review in view.reviews:
            for index, result in enumerate(review.results):
                rubric.add_row(_wrap(review.section, 12) if index == 0 else "",
                               _wrap(result.criterion, 10),
                               Text("pass" if result.passed else "fail",
                                    style="" if result.passed else "bold"),
                               _wrap(result.reason, width - 34), height=None)
        if not view.reviews:
            rubric.add_row("–", "–", "", "not written by the writing graph: no review")

    @on(Button.Pressed, "#doc-edit")
    def _edit_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if self.current is None:
            self.app.notify("No document to edit: the workspace has no Markdown file yet.",
                            severity="warning")
            return
        edit_type = self.query_one("#doc-edit-type", Select).value
        self.app.run_slash(f"/edit {self.current} {edit_type}")  # type: ignore[attr-defined]

    # ---- jumping to a line ----------------------------------------------------------------
    def jump_to(self, line: int) -> None:
        """Move the text's cursor to a 1-based line and show it."""
        text_area = self.query_one("#doc-text", TextArea)
        row = max(0, min(line - 1, text_area.document.line_count - 1))
        text_area.move_cursor((row, 0), center=True)
        text_area.scroll_visible()

    @on(DataTable.RowSelected, "#doc-problems")
    def _problem_selected(self, event: DataTable.RowSelected) -> None:
        parts = str(event.row_key.value or "").split(":")
        line = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        key = parts[2] if len(parts) > 2 else ""
        if not line and key:
            line = self._line_of_reference(key)
        if line:
            self.jump_to(line)

    def _line_of_reference(self, key: str) -> int:
        # A reference never cited has no line of its own: jump to where the text names it.
        text = self.query_one("#doc-text", TextArea).text
        for number, line in enumerate(text.splitlines(), 1):
            if f"@{key}" in line or f"[{key}]" in line:
                return number
        return 0

    @on(Tree.NodeSelected, "#doc-outline")
    def _section_selected(self, event: Tree.NodeSelected) -> None:
        if isinstance(event.node.data, int):
            self.jump_to(event.node.data)
