"""The help screen: slash commands and the active key bindings (after any remapping)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from openmanus_tui.tui.commands import SLASH_COMMANDS


def help_markdown(bindings: list[tuple[str, str]]) -> str:
    lines = ["# OpenManus workbench", "", "## Slash commands", ""]
    for c in SLASH_COMMANDS:
        arg = f" {c.arg}" if c.arg else ""
        note = "" if c.available else " *(not available yet)*"
        lines.append(f"- `/{c.name}{arg}` — {c.help}{note}")
    lines += ["", "## Keys", ""]
    lines += [f"- `{key}` — {desc}" for key, desc in bindings]
    lines += [
        "", "## Prompt", "",
        "- Enter sends, Shift+Enter or Ctrl+J adds a line; Up / Down recall earlier prompts.",
        "- In the approval dialog: type a reason and press Enter to deny; approving needs the "
        "button or Ctrl+S (Ctrl+T edits the arguments, Escape denies).",
        "", "Press Escape to close.",
    ]
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1", "dismiss_help", "Close")]

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__(classes="dialog-screen")
        self.bindings_text = bindings

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(help_markdown(self.bindings_text))

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
