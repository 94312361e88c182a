"""Edit one tool call's arguments for a fork: a JSON editor checked against the tool's schema.

The same editor and checks as the approval modal's "edit" (``tui/screens/approval.py``): a JSON code
editor, refused in place when the text is not a JSON object or the tool's ``args_model`` rejects
it. Ctrl+S accepts, Escape cancels (None).
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static, TextArea

from openmanus_tui.runtime.views import check_edited_args

# The edited-arguments check is the core's, shared with the approval modal and the CLI.
validate_args = check_edited_args


class ArgsEditScreen(ModalScreen[dict[str, Any] | None]):
    DEFAULT_CSS = """
    ArgsEditScreen { align: center middle; background: $background 60%; }
    #args-edit { width: 100; max-width: 96%; height: auto; max-height: 90%;
                 border: thick $warning; background: $surface; padding: 0 1; }
    #args-edit-editor { height: 16; }
    #args-edit-error { color: $error; height: auto; }
    #args-edit-buttons { height: auto; align-horizontal: right; }
    #args-edit-buttons Button { width: auto; margin-left: 1; }
    """
    BINDINGS = [
        Binding("ctrl+s", "accept", "Fork with these"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, tool: str, args: dict[str, Any], args_model: type | None) -> None:
        super().__init__()
        self.tool = tool
        self.args = args
        self.args_model = args_model

    def compose(self) -> ComposeResult:
        with Vertical(id="args-edit"):
            yield Label(Text.assemble(
                ("Edit the arguments of ", "bold"), (self.tool, "bold reverse"),
                " — a new branch continues with them",
            ))
            yield TextArea.code_editor(
                json.dumps(self.args, indent=2, ensure_ascii=False), language="json",
                id="args-edit-editor", show_line_numbers=False, soft_wrap=True, theme="css",
            )
            yield Static("", id="args-edit-error")
            with Horizontal(id="args-edit-buttons"):
                yield Button("Cancel  Esc", id="cancel")
                yield Button("Fork and run  ^S", id="accept", variant="warning")

    def on_mount(self) -> None:
        editor = self.query_one(TextArea)
        editor.cursor_blink = getattr(self.app, "blink", True)
        editor.focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "accept":
            self.action_accept()
        else:
            self.action_cancel()

    def action_accept(self) -> None:
        args, error = validate_args(self.query_one(TextArea).text, self.tool, self.args_model)
        if error:
            self.query_one("#args-edit-error", Static).update(Text(error, style="bold"))
            return
        self.dismiss(args)

    def action_cancel(self) -> None:
        self.dismiss(None)
