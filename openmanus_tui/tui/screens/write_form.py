"""The write form (``/write [BRIEF]``): a writer's requirements as ``openmanus write`` takes
them — the brief, style, tone, audience, target length, technical level, citation style,
references file, output file and format.

The form holds no rules of its own: Write sends the fields to
``runtime.writing.session_write_options`` (the validation ``openmanus write`` uses); a mistake
shows as one line above the buttons and the form stays open; valid requirements dismiss it with
``{"brief": ..., "options": ...}`` for ``Session.run(brief, writing=options)``. Escape cancels
(None).

Small terminals (80×24): the title and the buttons are docked, the fields between them scroll
(focus moving to a field scrolls it into view), as in the approval modal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from openmanus_tui.errors import OpenManusError
from openmanus_tui.runtime import writing
from openmanus_tui.tui.terminal_guard import plain

LEVELS = ("general", "professional", "expert")


class WriteFormScreen(ModalScreen[dict[str, Any] | None]):
    BINDINGS = [
        Binding("ctrl+s", "submit", "Write", id="write.submit"),
        Binding("escape", "cancel", "Cancel", id="write.cancel"),
    ]

    def __init__(self, settings: Any, folder: Path, *, brief: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.settings = settings
        self.folder = folder  # where relative references are read from (the workspace)
        self.brief = brief

    def compose(self) -> ComposeResult:
        citation = self.settings.writing.citation_style
        with Vertical(id="write-form"):
            yield Static(plain("✎ Write a document", "bold"), id="write-title")
            with Vertical(id="write-footer"):
                yield Static("", id="write-error")
                with Horizontal(id="write-buttons"):
                    yield Button("Cancel  Esc", id="cancel")
                    yield Button("Write  ^S", id="submit", variant="success")
            with VerticalScroll(id="write-scroll"):
                yield Label("Brief: what to write")
                yield TextArea(self.brief, id="brief", tab_behavior="focus",
                               soft_wrap=True, show_line_numbers=False)
                yield from _row("Style", Select(
                    [(s, s) for s in writing.WRITING_STYLES], value="professional",
                    allow_blank=False, id="style"))
                yield from _row("Tone", Input(placeholder="neutral", id="tone"))
                yield from _row("Audience", Input(placeholder="general readers", id="audience"))
                yield from _row("Target length", Input(placeholder="words, e.g. 800 (free)",
                                                       id="length"))
                yield from _row("Technical level", Select(
                    [(level, level) for level in LEVELS], value="professional",
                    allow_blank=False, id="level"))
                yield from _row("Citation style", Select(
                    [(writing.STYLE_LABELS[s], s) for s in writing.STYLES],
                    value=citation if citation in writing.STYLES else writing.STYLES[0],
                    allow_blank=False, id="citation-style"))
                yield from _row("References", Input(
                    placeholder="CSL-JSON or BibTeX (none: the workspace's)",
                    id="references"))
                yield from _row("Output file", Input(
                    placeholder="in the workspace (none: named after the title)", id="output"))
                yield from _row("Format", Select(
                    [(f, f) for f in writing.FORMATS], prompt="from the output file (md)",
                    id="format"))

    def on_mount(self) -> None:
        blink = getattr(self.app, "blink", True)  # off in tests and screenshots
        for widget in self.query("TextArea, Input"):
            widget.cursor_blink = blink  # type: ignore[attr-defined]
        self.query_one("#brief", TextArea).focus()

    def _value(self, selector: str) -> str:
        widget = self.query_one(selector)
        if isinstance(widget, Select):
            return "" if widget.is_blank() else str(widget.value)
        if isinstance(widget, TextArea):
            return widget.text.strip()
        return str(widget.value).strip()  # type: ignore[attr-defined]

    def action_submit(self) -> None:
        brief = self._value("#brief")
        try:
            options = writing.session_write_options(
                self.settings, brief=brief, folder=self.folder,
                references=self._value("#references") or None,
                output=self._value("#output") or None,
                fmt=self._value("#format") or None, style=self._value("#style"),
                tone=self._value("#tone") or None, audience=self._value("#audience") or None,
                length=self._value("#length") or None, level=self._value("#level"),
                citation_style=self._value("#citation-style"))
        except OpenManusError as exc:
            self.query_one("#write-error", Static).update(plain(exc.message, "bold"))
            return
        self.dismiss({"brief": brief, "options": options})

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.action_cancel()


def _row(label: str, widget: Any) -> ComposeResult:
    with Horizontal(classes="write-row"):
        yield Label(label, classes="write-label")
        yield widget
