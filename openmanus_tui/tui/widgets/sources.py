"""The Sources tab: the session's source registry (number, title, domain, date, credibility,
freshness, cited by); the highlighted row's excerpt and the factors behind both scores below.

Data comes from the session API (``runtime.api.session_sources`` / ``source_excerpt``); the pane
holds no logic of its own beyond layout. Built when first shown and refreshed only while shown
(``tui/widgets/deferred.py``); the app asks for a refresh when a ``web_fetch`` or
``search_info`` call finishes and when another session is opened.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Static

from openmanus_tui.tui.terminal_guard import plain
from openmanus_tui.tui.widgets.deferred import DeferredPane

# The panel is about 50 cells wide: each row is two lines (the title, and the domain under it)
# and the columns carry their own one-space gap instead of the table's padding on both sides.
COLUMNS = ("#", " source", " date", " cred", " fresh", " cited")
SOURCE_WIDTH = 20
EXCERPT_CHARS = 600


def _score(value: float | None) -> Text:
    if value is None:
        return Text(" ?", style="dim")
    style = "bold" if value >= 0.75 else ("" if value >= 0.4 else "dim")
    return Text(f" {value:.2f}", style=style)


def _cell(text: str | None, width: int) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def row_cells(record: Any) -> tuple[Any, ...]:
    """The table's cells for one source (number, title over domain, date, scores, citations)."""
    source = Text(" " + _cell(record.title or record.url, SOURCE_WIDTH) + "\n")
    source.append(" " + _cell(record.domain, SOURCE_WIDTH), style="dim")
    return (
        Text(str(record.number), justify="right"),
        source,
        Text(" " + record.date) if record.date else Text(" —", style="dim"),
        _score(record.credibility.value),
        _score(record.freshness.value),
        Text(f" {len(record.cited_by)}" if record.cited_by else ""),
    )


def detail_text(record: Any, excerpt: str | None) -> Text:
    """What the pane shows for one source: where it is, its scores with every factor, and the
    start of its stored text (or its search snippets when it was never fetched)."""
    text = Text()
    text.append(f"[{record.number}] {record.title or record.url}\n", style="bold")
    text.append(f"{record.url}\n", style="underline")
    who = [record.author or "no author", record.published or record.modified or "no date"]
    if record.site:
        who.insert(0, record.site)
    text.append(" · ".join(who) + "\n")
    cred = record.credibility
    text.append("credibility ", style="bold")
    text.append(f"{cred.value:.2f}\n" if cred.value is not None else "?\n")
    for factor in cred.factors:
        effect = "" if factor.effect is None else f"{factor.effect:+.2f} "
        text.append(f" {effect:>6}{factor.name}: {factor.detail}\n", style="dim")
    fresh = record.freshness
    text.append("freshness ", style="bold")
    text.append(f"{fresh.value:.2f}" if fresh.value is not None else "unknown")
    details = " · ".join(f.detail if f.name == "date" else f"{f.name} {f.detail}"
                         for f in fresh.factors)
    text.append(f" — {details}\n", style="dim")
    if record.cited_by:
        text.append("cited by ", style="bold")
        text.append(", ".join(record.cited_by) + "\n")
    heading = "excerpt" if record.fetched else "search snippet (not fetched)"
    text.append(f"{heading}\n", style="bold")
    text.append(" ".join((excerpt or "").split()) or "(none)")
    return text


class SourcesPane(DeferredPane):
    DEFAULT_CSS = """
    SourcesPane #sources-summary { height: 1; }
    SourcesPane #sources-table {
        height: auto; max-height: 55%; min-height: 3; scrollbar-size-vertical: 1;
    }
    SourcesPane #sources-detail-scroll {
        height: 1fr; border-top: solid $primary; scrollbar-size-vertical: 1;
    }
    SourcesPane #sources-detail { height: auto; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.records: list[Any] = []
        self._wanted: int | None = None  # the source to highlight after the next load

    def build(self) -> list[Widget]:
        return [
            Static("No session yet.", id="sources-summary"),
            DataTable(id="sources-table", cursor_type="row", zebra_stripes=True, cell_padding=0),
            VerticalScroll(Static("", id="sources-detail"), id="sources-detail-scroll"),
        ]

    def after_build(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)

    def update_data(self) -> None:
        self.reload()

    @property
    def session(self) -> Any:
        return getattr(self.app, "session", None)

    @work(group="sources", exclusive=True)
    async def reload(self) -> None:
        """Read the session's sources and show them (the highlighted row is kept)."""
        await self._load()

    def select_source(self, number: int) -> None:
        """Read the sources again and highlight source ``number`` (a citation was clicked).
        Kept until a load completes: the reload that showing the tab starts may cancel ours."""
        self._wanted = number
        self.reload()

    async def _load(self) -> None:
        from openmanus_tui.errors import OpenManusError
        from openmanus_tui.runtime import api

        await self.ensure_built()
        session = self.session
        summary = self.query_one("#sources-summary", Static)
        table = self.query_one(DataTable)
        if session is None:
            self.records = []
            table.clear()
            summary.update("No session yet.")
            self.query_one("#sources-detail", Static).update("")
            return
        try:
            records = await api.session_sources(session)
        except OpenManusError as exc:
            summary.update(plain(f"Sources unavailable: {exc.message}"))
            return
        if session is not self.session:
            return
        self.records = records
        row = table.cursor_row
        table.clear()
        for record in records:
            table.add_row(*row_cells(record), key=str(record.number), height=2)
        fetched = sum(1 for r in records if r.fetched)
        summary.update(
            f"{len(records)} sources · {fetched} read · ↑↓ for each one's factors"
            if records
            else "No sources yet: web_fetch and search_info add them."
        )
        if records:
            wanted = next((i for i, r in enumerate(records) if r.number == self._wanted), None)
            self._wanted = None
            row = wanted if wanted is not None else row
            table.move_cursor(row=min(max(row, 0), len(records) - 1))
            self.show_detail(records[table.cursor_row].number)
        else:
            self.query_one("#sources-detail", Static).update("")

    @on(DataTable.RowHighlighted, "#sources-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self.show_detail(int(event.row_key.value))

    @work(group="sources-detail", exclusive=True)
    async def show_detail(self, number: int) -> None:
        from openmanus_tui.runtime import api

        record = next((r for r in self.records if r.number == number), None)
        session = self.session
        if record is None or session is None:
            return
        excerpt = await api.source_excerpt(session, number, EXCERPT_CHARS)
        self.query_one("#sources-detail", Static).update(detail_text(record, excerpt))
