"""The edit review modal: the unified diff of one editing pass (``/edit FILE TYPE``) over a
workspace document, decided by a person.

**Accept** (Ctrl+S) dismisses with True and the caller writes the edited text; **Reject**
(Escape) dismisses with False and nothing is written. The diff is the model's text: shown as
a diff (the same rendering as the approval modal's ``file_write`` diff), control sequences
as visible escapes, never read as markup.
"""

from __future__ import annotations

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from openmanus_tui.termsafe import sanitize
from openmanus_tui.tui.terminal_guard import plain


class EditDiffScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("ctrl+s", "accept", "Accept", id="edit.accept"),
        Binding("escape", "reject", "Reject", id="edit.reject"),
    ]
    DEFAULT_CSS = """
    EditDiffScreen { align: center middle; }
    EditDiffScreen #edit-review { width: 90%; height: 90%; border: thick $accent;
                                  background: $surface; }
    EditDiffScreen #edit-title { dock: top; height: 1; text-style: bold; }
    EditDiffScreen #edit-buttons { dock: bottom; height: 3; }
    """

    def __init__(self, title: str, diff: str) -> None:
        super().__init__()
        self.review_title = title
        self.diff_text = sanitize(diff, keep_sgr=False)

    def compose(self) -> ComposeResult:
        with Vertical(id="edit-review"):
            yield Static(plain(self.review_title, "bold"), id="edit-title")
            with VerticalScroll(id="edit-scroll"):
                if self.diff_text:
                    yield Static(Syntax(self.diff_text, "diff", word_wrap=True,
                                        theme="ansi_dark"), id="edit-diff")
                else:
                    yield Static(plain("(no change)"), id="edit-diff")
            with Horizontal(id="edit-buttons"):
                yield Button("Reject  Esc", id="reject", variant="error")
                yield Button("Accept  ^S", id="accept", variant="success",
                             disabled=not self.diff_text)

    def on_mount(self) -> None:
        self.query_one("#edit-scroll").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "accept")

    def action_accept(self) -> None:
        if self.diff_text:
            self.dismiss(True)

    def action_reject(self) -> None:
        self.dismiss(False)
