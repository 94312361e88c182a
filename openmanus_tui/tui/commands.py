"""Slash commands (what the prompt completes and the app runs) and the command palette provider.

Both front doors lead to the same app actions, so the palette and ``/commands`` never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from openmanus_tui.tui.app import OpenManusApp

APPROVAL_MODES = {
    "ask": "every call asks",
    "auto": "read-only tools run, the rest ask",
    "yolo": "nothing asks",
}


@dataclass(frozen=True)
class SlashCommand:
    name: str
    help: str
    arg: str = ""
    available: bool = True


SLASH_COMMANDS = [
    SlashCommand("new", "start a new session"),
    SlashCommand("approval", "show or set the approval mode", "ask|auto|yolo"),
    SlashCommand("theme", "show or switch the theme", "NAME"),
    SlashCommand("rename", "rename this session", "TITLE"),
    SlashCommand("expand", "expand or fold all tool output"),
    SlashCommand("help", "keys and commands"),
    SlashCommand("quit", "leave"),
    SlashCommand("model", "switch model", "SPEC", available=False),
    SlashCommand("agent", "switch agent profile", "NAME", available=False),
    SlashCommand("compact", "summarise old context", available=False),
    SlashCommand("export", "export the session", available=False),
]
BY_NAME = {c.name: c for c in SLASH_COMMANDS}


def complete(text: str, themes: list[str]) -> list[tuple[str, str]]:
    """Completions for a prompt starting with ``/``: command names, then known arguments."""
    body = text[1:]
    if " " not in body:
        return [
            (f"/{c.name}" + (" " if c.arg else ""),
             c.help + ("" if c.available else " (not yet)"))
            for c in SLASH_COMMANDS if c.name.startswith(body)
        ]
    name, _, arg = body.partition(" ")
    if name == "approval":
        options = list(APPROVAL_MODES.items())
    elif name == "theme":
        options = [(t, "") for t in themes]
    else:
        return []
    return [(f"/{name} {value}", desc) for value, desc in options
            if value.startswith(arg) and value != arg]


def parse(text: str) -> tuple[str, str]:
    """(command name, argument) of a slash command line."""
    name, _, arg = text[1:].strip().partition(" ")
    return name.lower(), arg.strip()


class WorkbenchCommands(Provider):
    """Palette entries for sessions, approval modes, themes and actions."""

    def _entries(self) -> list[tuple[str, Callable[[], object], str]]:
        app: OpenManusApp = self.app  # type: ignore[assignment]
        entries: list[tuple[str, Callable[[], object], str]] = [
            ("New session", app.action_new_session, "start a new session"),
            ("Expand / fold all tool output", app.action_toggle_expand, ""),
            ("Toggle sessions sidebar", app.action_toggle_sidebar, ""),
            ("Toggle side panel", app.action_toggle_panel, ""),
            ("Help: keys and commands", app.action_help, ""),
        ]
        for mode, desc in APPROVAL_MODES.items():
            entries.append((f"Approval mode: {mode}", partial(app.set_approval_mode, mode), desc))
        for name in app.theme_names():
            entries.append((f"Theme: {name}", partial(app.set_theme, name), ""))
        for record in app.session_records:
            entries.append((f"Open session: {record.title or record.id}",
                            partial(app.open_session_by_id, record.id), record.id))
        return entries

    async def discover(self) -> Hits:
        for name, callback, help_text in self._entries():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._entries():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
