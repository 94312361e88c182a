"""The sessions sidebar: every stored session, newest first; select to open one.

Keys while the list has focus: n new, c continue (resume) the highlighted session's interrupted
run, r rename, Delete / d delete (asks first). The app does the
database work; the sidebar only posts what the person asked for. The footer shows the size of
the database.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from openmanus_tui.termsafe import sanitize


class SessionAction(Message):
    """``action`` is one of open, new, resume, rename, delete."""

    def __init__(self, action: str, session_id: str | None) -> None:
        super().__init__()
        self.action = action
        self.session_id = session_id


class SessionList(OptionList):
    BINDINGS = [
        Binding("n", "session('new')", "New", id="session.new"),
        Binding("c", "session('resume')", "Continue", id="session.resume"),
        Binding("r", "session('rename')", "Rename", id="session.rename"),
        Binding("delete,d", "session('delete')", "Delete", id="session.delete"),
    ]

    def action_session(self, action: str) -> None:
        option = self.highlighted_option
        self.post_message(SessionAction(action, str(option.id) if option else None))


TITLE_WIDTH = 20


def title_of(record: Any, default: str = "(untitled)") -> str:
    """A session's title as the workbench shows it anywhere (sidebar, palette, history, banner):
    one line, control sequences (from a task or a rename) as visible escapes."""
    return sanitize(" ".join((record.title or "").split()), keep_sgr=False) or default


def _label(record: Any, current: bool, now: float) -> Text:
    title = title_of(record)
    if len(title) > TITLE_WIDTH:
        title = title[: TITLE_WIDTH - 1] + "…"
    age = now - record.updated
    when = (
        "now" if age < 60 else f"{age / 60:.0f}m" if age < 3600
        else f"{age / 3600:.0f}h" if age < 86400 else f"{age / 86400:.0f}d"
    )
    text = Text(("● " if current else "  ") + title, no_wrap=True, overflow="ellipsis")
    text.append(f"\n  {record.status} · {when}", style="dim")
    return text


class Sidebar(Vertical):
    """Empty in the first frame: its title, button, list and database size are mounted just
    after it (``fill``). No session is listed before the runtime is open anyway, and a Button
    and an OptionList cost about a sixth of the first frame (bench/startup.py)."""

    DEFAULT_CSS = """
    #db-size { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._filled = False

    def compose(self) -> ComposeResult:
        return iter(())

    def fill(self) -> Any:
        """Mount the title, the button, the list and the database size (once; they can be
        queried as soon as this returns). Returns what to await for them to be mounted, or
        None."""
        if self._filled:
            return None
        self._filled = True
        return self.mount_all([Static("Sessions", classes="pane-title"),
                               Button("+ New session", id="new-session", compact=True),
                               SessionList(id="session-list"), Static("", id="db-size")])

    def show_db_size(self, size: str) -> None:
        """The database's size on disk (``/prune`` shrinks it), refreshed after runs."""
        self.fill()
        self.query_one("#db-size", Static).update(f"database {size}")

    def show(self, records: list[Any], current: str | None, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.fill()
        sessions = self.query_one(SessionList)
        sessions.clear_options()
        sessions.add_options([Option(_label(r, r.id == current, now), id=r.id) for r in records])
        for index, record in enumerate(records):
            if record.id == current:
                sessions.highlighted = index

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "new-session":
            event.stop()
            self.post_message(SessionAction("new", None))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(SessionAction("open", str(event.option.id)))
