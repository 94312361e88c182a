"""The help screen: slash commands and the key bindings as they are now (after any remapping),
each with its binding id — the name to use in ``[ui] keymap`` of the config file."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from openmanus_tui.tui.commands import SLASH_COMMANDS


@dataclass(frozen=True)
class KeyHelp:
    keys: str  # as displayed, e.g. "^n" or "delete / d"
    description: str
    binding_id: str = ""
    where: str = ""


def bindings_help(
    owners: Iterable[tuple[str, Iterable[Any]]], keymap: Mapping[str, str], display: Any
) -> list[KeyHelp]:
    """One line per binding with an id, using ``keymap`` (binding id → keys) where it remaps
    one; ``display(binding)`` formats a key (``App.get_key_display``)."""
    out: list[KeyHelp] = []
    for where, bindings in owners:
        for b in bindings:
            if not isinstance(b, Binding) or not b.id:
                continue
            keys = keymap.get(b.id, b.key)
            shown = " / ".join(display(replace(b, key=k.strip())) for k in keys.split(","))
            out.append(KeyHelp(shown, b.description, b.id, where))
    return out


def help_markdown(keys: list[KeyHelp]) -> str:
    lines = ["# OpenManus workbench", "", "## Slash commands", ""]
    for c in SLASH_COMMANDS:
        arg = f" {c.arg}" if c.arg else ""
        note = "" if c.available else " *(not available yet)*"
        lines.append(f"- `/{c.name}{arg}` — {c.help}{note}")
    lines += [
        "", "## Keys", "", "| keys | what | where | binding id |", "| --- | --- | --- | --- |",
    ]
    lines += [f"| `{k.keys}` | {k.description} | {k.where} | `{k.binding_id}` |" for k in keys]
    lines += [
        "", "Remap a key in the config file: `[ui.keymap]` then `\"app.stop\" = \"ctrl+x\"` "
        "(a binding id, then one or more keys separated by commas).",
        "", "## Prompt", "",
        "- Enter sends, Shift+Enter or Ctrl+J adds a line; Up / Down recall earlier prompts.",
        "- In the approval dialog: type a reason and press Enter to deny; approving needs the "
        "button or Ctrl+S (Ctrl+T edits the arguments, Escape denies).",
        "", "Press Escape to close.",
    ]
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1", "dismiss_help", "Close")]

    def __init__(self, keys: list[KeyHelp]) -> None:
        super().__init__(classes="dialog-screen")
        self.keys = keys

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(help_markdown(self.keys))

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
