"""The memory pane: what the next model call will contain, pins, and the compaction preview.

Everything shown comes from the session's memory manager (``AgentSession.context_parts()``):
the system prompt, recalled memories, the summary of earlier turns, the tool definitions, pinned
turns, the request and the other turns, each with its token weight and a bar against the
context window; turns the window would drop are marked. ``p`` (or the Pin button) pins or unpins
the highlighted turn. "Preview compaction" (and ``/compact [focus]``) asks the session what a
compaction would do — the turns it would summarise, the proposed summary, tokens before and
after — and Apply stores exactly that preview. Nothing is compacted while a run is going.
The pane is built the first time its tab is shown and only refreshes while shown
(``tui/widgets/deferred.py``): the tokenizer is not loaded for a tab nobody opened.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, DataTable, Static
from textual.worker import Worker

from openmanus_tui.termsafe import sanitize
from openmanus_tui.tui.terminal_guard import plain
from openmanus_tui.tui.widgets.deferred import DeferredPane

BAR_WIDTH = 8
EIGHTHS = " ▏▎▍▌▋▊▉█"
# Parts that are not turns of the conversation: they cannot be pinned.
FIXED_KINDS = {"system", "memories", "summary", "tools"}
PIN_MARK = "◆"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A bar with eighth-cell resolution; any non-zero share shows at least a sliver."""
    fraction = max(0.0, min(1.0, fraction))
    eighths = round(fraction * width * 8)
    if fraction > 0 and eighths == 0:
        eighths = 1
    full, rest = divmod(eighths, 8)
    text = "█" * full + (EIGHTHS[rest] if rest else "")
    return text + "░" * (width - len(text))


def one_line(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def preview_text(preview: Any) -> Text:
    """The compaction preview as shown: tokens before → after, the turns, the summary."""
    saved = preview.tokens_before - preview.tokens_after
    text = Text.assemble(
        ("Compaction preview", "bold"),
        (f" — focus: {sanitize(preview.focus, keep_sgr=False)}" if preview.focus else "",
         "italic"),
        "\n",
        f"tokens {preview.tokens_before:,} → {preview.tokens_after:,} (−{saved:,})",
        f" · summarises {len(preview.turns)} turns\n",
    )
    for turn in preview.turns:
        label = one_line(sanitize(turn["label"], keep_sgr=False), 26)
        text.append(f"  {turn['kind']:<9} {turn['tokens']:>5,}  {label}\n",
                    style="dim")
    text.append("Proposed summary:\n", style="bold")
    text.append(sanitize(preview.text, keep_sgr=False))
    return text


class MemoryPane(DeferredPane):
    DEFAULT_CSS = """
    MemoryPane #memory-table { height: 1fr; }
    MemoryPane #memory-actions { height: auto; }
    MemoryPane #memory-actions Button { min-width: 10; margin-right: 1; }
    /* Fixed widths: their labels change (Pin/Unpin, Summarising…) and must not relayout. */
    MemoryPane #memory-pin { width: 10; }
    MemoryPane #memory-compact { width: 20; }
    MemoryPane #memory-preview { height: auto; max-height: 60%; border-top: solid $primary; }
    MemoryPane #memory-preview-scroll { height: auto; }
    MemoryPane #memory-preview-text { height: auto; }
    MemoryPane #memory-preview-actions { height: auto; }
    MemoryPane #memory-preview-actions Button { margin-right: 1; }
    """
    BINDINGS = [
        Binding("p", "toggle_pin", "Pin / unpin", id="memory.pin"),
        Binding("c", "preview_compaction", "Preview compaction", id="memory.compact"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view: Any = None  # the last ContextView shown
        self.preview: Any = None  # the CompactionPreview shown, if any
        self._preview_pins: list[str] = []
        self._session: Any = None

    def build(self) -> list[Widget]:
        return [
            Static("No session yet.", id="memory-summary"),
            DataTable(id="memory-table", cursor_type="row", zebra_stripes=True),
            Horizontal(
                Button("Pin", id="memory-pin", compact=True),
                Button("Preview compaction", id="memory-compact", compact=True),
                id="memory-actions",
            ),
            # The buttons come first so that Apply is visible however long the summary is.
            Vertical(
                Horizontal(
                    Button("Apply", id="compact-apply", variant="primary", compact=True),
                    Button("Discard", id="compact-discard", compact=True),
                    id="memory-preview-actions",
                ),
                VerticalScroll(Static(id="memory-preview-text"), id="memory-preview-scroll"),
                id="memory-preview",
            ),
        ]

    def after_build(self) -> None:
        self.query_one(DataTable).add_columns("", "kind", "tokens", "of window", "item")
        self.query_one("#memory-preview").display = False

    def update_data(self) -> None:
        self._load()

    # ---- loading ------------------------------------------------------------------------------
    @property
    def session(self) -> Any:
        return getattr(self.app, "session", None)

    def _run_going(self) -> bool:
        running = getattr(self.app, "run_in_progress", None)
        return bool(running and running())

    def reload(self) -> Worker[None]:
        """Ask the session for the next prompt's parts and show them (drops a stale preview),
        now, whether or not the tab is shown; the returned worker can be awaited."""
        self._stale = False  # a Show arriving meanwhile must not start (and cancel) another
        return self._load()

    @work(group="memory", exclusive=True)
    async def _load(self) -> None:
        from openmanus_tui.errors import OpenManusError

        await self.ensure_built()
        session = self.session
        if session is not self._session or session is None:
            self._set_preview(None)
        self._session = session
        if session is None:
            self.view = None
            self.query_one("#memory-summary", Static).update(
                "No session yet: send a task, or open one from the sessions list.")
            self.query_one(DataTable).clear()
            return
        try:
            view = await session.context_parts()
        except OpenManusError as exc:
            summary = plain(f"Memory unavailable: {exc.message}")
            self.query_one("#memory-summary", Static).update(summary)
            return
        if session is self.session:
            if self.preview is not None and not self._preview_current(view):
                self._set_preview(None)
            self.show(view)

    def _preview_current(self, view: Any) -> bool:
        """A preview stays valid while the turns it summarises are still in the prompt
        unsummarised and no pin changed; the session re-checks its fingerprint on apply."""
        ids = {i for part in view.parts if part.kind not in FIXED_KINDS for i in part.message_ids}
        wanted = {i for turn in self.preview.turns for i in turn["ids"]}
        return wanted <= ids and sorted(view.pins) == sorted(self._preview_pins)

    def show(self, view: Any) -> None:
        self.view = view
        window = view.window or 1
        pinned = sum(1 for p in view.parts if p.pinned)
        dropped = sum(1 for p in view.parts if not p.included)
        summary = Text.assemble(
            ("next call ", "bold"), bar(view.tokens / window, 10),
            f" {view.tokens:,} / {view.window:,} tokens ({view.tokens / window * 100:.1f}%)\n",
            f"budget {view.budget:,} · {len(view.parts)} parts",
        )
        if pinned:
            summary.append(f" · {pinned} pinned")
        if dropped:
            summary.append(f" · {dropped} dropped by the window", style="bold")
        if view.memories:
            summary.append(f" · {len(view.memories)} memories recalled")
        if view.summaries:
            summary.append(f" · {len(view.summaries)} summaries")
        if view.would_compact:
            summary.append(" · the next call compacts", style="bold")
        self.query_one("#memory-summary", Static).update(summary)
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for n, part in enumerate(view.parts):
            style = "" if part.included else "dim strike"
            kind = part.kind if part.included else f"{part.kind} (dropped)"
            table.add_row(
                PIN_MARK if part.pinned else "", Text(kind, style=style), f"{part.tokens:,}",
                f"{bar(part.tokens / window)} {part.tokens / window * 100:4.1f}%",
                plain(one_line(part.label, 44), style=style), key=str(n),
            )
        if view.parts:
            table.move_cursor(row=min(row, len(view.parts) - 1), animate=False)
        self._update_pin_button()

    def selected_part(self) -> Any:
        if self.view is None or not self.view.parts:
            return None
        row = self.query_one(DataTable).cursor_row
        return self.view.parts[row] if 0 <= row < len(self.view.parts) else None

    def _update_pin_button(self) -> None:
        part = self.selected_part()
        self.query_one("#memory-pin", Button).label = (
            "Unpin" if part is not None and part.pinned else "Pin"
        )

    @on(DataTable.RowHighlighted, "#memory-table")
    def _on_row(self) -> None:
        self._update_pin_button()

    # ---- pins --------------------------------------------------------------------------------
    async def toggle_pin(self, part: Any) -> bool:
        """Pin an unpinned turn or unpin a pinned one; returns whether anything changed."""
        from openmanus_tui.errors import OpenManusError

        session = self.session
        if session is None or self.view is None:
            self.notify("No session yet: nothing to pin.", severity="warning")
            return False
        if part.kind in FIXED_KINDS or not part.message_ids:
            self.notify(f"Only conversation turns can be pinned, not the {part.label}.",
                        severity="warning")
            return False
        try:
            if part.pinned:
                for item in set(part.message_ids) & set(self.view.pins):
                    await session.unpin(item)
            else:
                await session.pin(part.message_ids[0])
        except OpenManusError as exc:
            self.notify(exc.message, severity="error")
            return False
        self.notify(("Unpinned: " if part.pinned else "Pinned (kept in every prompt): ")
                    + one_line(part.label, 50))
        self.reload()
        return True

    def action_toggle_pin(self) -> None:
        part = self.selected_part()
        if part is not None:
            self.run_worker(self.toggle_pin(part), group="memory-pin")

    # ---- compaction -------------------------------------------------------------------------
    def _set_preview(self, preview: Any) -> None:
        self.preview = preview
        box = self.query_one("#memory-preview")
        box.display = preview is not None
        if preview is not None:
            self._preview_pins = list(self.view.pins) if self.view is not None else []
            self.query_one("#memory-preview-text", Static).update(preview_text(preview))

    @work(group="memory-compact", exclusive=True)
    async def preview_compaction(self, focus: str = "") -> None:
        """Show what ``/compact focus`` would do (one model call for the proposed summary)."""
        from openmanus_tui.errors import OpenManusError

        session = self.session
        if session is None:
            self.notify("Nothing to compact yet: send a task first.", severity="warning")
            return
        if self._run_going():
            self.notify("A run is in progress: compact when it has finished.",
                        severity="warning")
            return
        await self.ensure_built()
        button = self.query_one("#memory-compact", Button)
        button.label, button.disabled = "Summarising…", True  # one model call: may take a while
        try:
            preview = await session.compaction_preview(focus)
            view = await session.context_parts()
        except OpenManusError as exc:
            self.notify(exc.message, severity="error")
            return
        finally:
            button.label, button.disabled = "Preview compaction", False
        if session is not self.session:
            return
        self._session, self._stale = session, False  # the view below is current
        self.show(view)
        if preview is None:
            self._set_preview(None)
            self.notify("Nothing to compact: every turn is recent, pinned or the request.")
            return
        self._set_preview(preview)

    def action_preview_compaction(self) -> None:
        self.preview_compaction()

    async def apply_compaction(self) -> Any:
        """Store the previewed summary exactly as shown; returns it (None if nothing applied)."""
        from openmanus_tui.errors import OpenManusError

        session, preview = self.session, self.preview
        if session is None or preview is None:
            return None
        if self._run_going():
            self.notify("A run is in progress: compact when it has finished.",
                        severity="warning")
            return None
        try:
            applied = await session.compact(preview.focus, preview)
        except OpenManusError as exc:
            self.notify(exc.message, severity="error")
            return None
        self._set_preview(None)
        if applied is None:
            self.notify("Nothing to compact any more.", severity="warning")
        else:
            self.notify(f"Compacted {len(applied.turns)} turns: "
                        f"{applied.tokens_before:,} → {applied.tokens_after:,} tokens.")
            if applied.base != preview.base:
                self.notify("The context changed since the preview: a new summary was made.",
                            severity="warning")
        self.reload()
        return applied

    @on(Button.Pressed, "#memory-pin")
    def _on_pin_button(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_toggle_pin()

    @on(Button.Pressed, "#memory-compact")
    def _on_compact_button(self, event: Button.Pressed) -> None:
        event.stop()
        self.preview_compaction()

    @on(Button.Pressed, "#compact-apply")
    def _on_apply(self, event: Button.Pressed) -> None:
        event.stop()
        self.run_worker(self.apply_compaction(), group="memory-compact", exclusive=True)

    @on(Button.Pressed, "#compact-discard")
    def _on_discard(self, event: Button.Pressed) -> None:
        event.stop()
        self._set_preview(None)
