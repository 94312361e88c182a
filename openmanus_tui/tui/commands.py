"""Slash commands (what the prompt completes and the app runs) and the command palette providers.

Both front doors lead to the same app actions, so the palette and ``/commands`` never disagree.
The palette has one provider per kind of entry: sessions, models, agent profiles, approval
modes, themes and actions (``PROVIDERS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from openmanus_tui.runtime.api import PROFILES
from openmanus_tui.tui.widgets.sidebar import title_of

if TYPE_CHECKING:
    from openmanus_tui.tui.app import OpenManusApp

APPROVAL_MODES = {
    "ask": "every call asks",
    "auto": "read-only tools run, the rest ask",
    "yolo": "nothing asks",
}
EXPORT_FORMATS = {"md": "Markdown", "json": "JSON (re-importable)", "html": "a single HTML page"}


@dataclass(frozen=True)
class SlashCommand:
    name: str
    help: str
    arg: str = ""
    available: bool = True


SLASH_COMMANDS = [
    SlashCommand("new", "start a new session"),
    SlashCommand("model", "show or switch this session's model", "SPEC"),
    SlashCommand("agent", "show or switch the agent profile", "NAME"),
    SlashCommand("approval", "show or set the approval mode", "ask|auto|yolo"),
    SlashCommand("rules", "approval rules: list, edit, delete, add (F2)"),
    SlashCommand("resume", "continue this session's interrupted run (or session ID's)", "[ID]"),
    SlashCommand("compact", "preview a compaction of older turns, then apply it", "[FOCUS]"),
    SlashCommand("export", "write the session to its workspace (or PATH)", "[md|json|html] [PATH]"),
    SlashCommand("write", "write a document: a form of requirements, then a writing run",
                 "[BRIEF]"),
    SlashCommand("edit", "edit a document: a diff to accept or reject",
                 "FILE proofread|shorten|expand|simplify|restyle [--style S --tone T "
                 "--audience A]"),
    SlashCommand("theme", "show or switch the theme", "NAME"),
    SlashCommand("rename", "rename this session", "TITLE"),
    SlashCommand("expand", "expand or fold all tool output"),
    SlashCommand("tree", "the branch tree: switch, fork, compare, replay (Ctrl+T)"),
    SlashCommand("replay", "replay this branch from its record, or live", "[live]"),
    SlashCommand("prune", "delete old checkpoints, keep branch heads; compact", "[KEEP_LAST]"),
    SlashCommand("help", "keys and commands"),
    SlashCommand("quit", "leave"),
]
BY_NAME = {c.name: c for c in SLASH_COMMANDS}


def model_specs(current: str) -> list[str]:
    """Model specs to offer: the current one, the offline scripts, then the known OpenAI-style
    models (any other ``openai:<name>`` works too when typed)."""
    from importlib import resources

    from openmanus_tui.config import KNOWN_MODELS

    scripts = sorted(
        f"scripted:{p.name.removesuffix('.json')}"
        for p in resources.files("openmanus_tui.models.scripts").iterdir()
        if p.name.endswith(".json")
    )
    specs = [current, *scripts, *(f"openai:{name}" for name in KNOWN_MODELS)]
    return list(dict.fromkeys(s for s in specs if s))


def complete(
    text: str, themes: list[str], models: list[str] | None = None
) -> list[tuple[str, str]]:
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
    elif name == "agent":
        options = [(key, label) for key, label in PROFILES.items()]
    elif name == "model":
        options = [(m, "") for m in models or []]
    elif name == "export":
        options = list(EXPORT_FORMATS.items())
    elif name == "replay":
        options = [("live", "re-run from the first step on a new branch")]
    else:
        return []
    return [(f"/{name} {value}", desc) for value, desc in options
            if value.startswith(arg) and value != arg]


def parse(text: str) -> tuple[str, str]:
    """(command name, argument) of a slash command line."""
    name, _, arg = text[1:].strip().partition(" ")
    return name.lower(), arg.strip()


Entry = tuple[str, Callable[[], object], str]


class _Entries(Provider):
    """A provider over a fixed list of (name, callback, help) entries built from the app."""

    def entries(self, app: OpenManusApp) -> list[Entry]:
        raise NotImplementedError

    def _entries(self) -> list[Entry]:
        return self.entries(self.app)  # type: ignore[arg-type]

    async def discover(self) -> Hits:
        for name, callback, help_text in self._entries():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._entries():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


class ActionCommands(_Entries):
    def entries(self, app: OpenManusApp) -> list[Entry]:
        return [
            ("New session", app.action_new_session, "start a new session"),
            ("Resume the interrupted run", app.action_resume,
             "continue this session from where it stopped (/resume)"),
            ("Write a document…", partial(app.run_slash, "/write"),
             "brief, style, tone, audience, length, citations, output file (/write)"),
            ("Compact: preview a compaction of older turns", partial(app.run_slash, "/compact"),
             "what would be summarised, the summary, tokens before → after"),
            *[(f"Export session as {label}", partial(app.run_slash, f"/export {fmt}"),
               "into the session's workspace") for fmt, label in EXPORT_FORMATS.items()],
            ("Approval rules", app.action_rules, "list, edit, delete and add allow/ask/deny rules"),
            ("Expand / fold all tool output", app.action_toggle_expand, ""),
            ("Toggle sessions sidebar", app.action_toggle_sidebar, ""),
            ("Toggle side panel", app.action_toggle_panel, ""),
            ("Help: keys and commands", app.action_help, ""),
        ]


# Session statuses whose last run may have work left (the sidebar shows them).
RESUMABLE = {"running", "cancelled", "interrupted", "awaiting_approval", "error"}


class SessionCommands(_Entries):
    def entries(self, app: OpenManusApp) -> list[Entry]:
        opened = [(f"Open session: {title_of(r, r.id)}", partial(app.open_session_by_id, r.id),
                   r.id) for r in app.session_records]
        resumable = [(f"Resume session: {title_of(r, r.id)}", partial(app.action_resume, r.id),
                      f"{r.id} · {r.status}")
                     for r in app.session_records if r.status in RESUMABLE]
        return resumable + opened


class ModelCommands(_Entries):
    def entries(self, app: OpenManusApp) -> list[Entry]:
        return [(f"Model: {spec}", partial(app.run_slash, f"/model {spec}"),
                 "switch this session's model") for spec in model_specs(app.status.model)]


class ProfileCommands(_Entries):
    def entries(self, app: OpenManusApp) -> list[Entry]:
        return [(f"Agent: {label}", partial(app.run_slash, f"/agent {key}"), "agent profile")
                for key, label in PROFILES.items()]


class ApprovalCommands(_Entries):
    def entries(self, app: OpenManusApp) -> list[Entry]:
        return [(f"Approval mode: {mode}", partial(app.set_approval_mode, mode), desc)
                for mode, desc in APPROVAL_MODES.items()]


class ThemeCommands(_Entries):
    def entries(self, app: OpenManusApp) -> list[Entry]:
        return [(f"Theme: {name}", partial(app.set_theme, name), "")
                for name in app.theme_names()]


PROVIDERS = {
    ActionCommands, SessionCommands, ModelCommands, ProfileCommands, ApprovalCommands,
    ThemeCommands,
}
