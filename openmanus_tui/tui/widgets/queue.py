"""Follow-up messages typed while the agent works: queued, shown under the stream, sent in
order when the run ends.

Each queued message has Edit (takes it back into the prompt) and ✕ (drops it). A run the
person stops (Esc, Ctrl+C, Ctrl+G) sends nothing: its queued messages go back into the prompt,
joined, to be edited or sent (stopping usually means "not like that").
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Static

from openmanus_tui.termsafe import sanitize

PREVIEW = 70  # characters of a queued message shown


class QueueAction(Message):
    """``action``: "edit" or "cancel" the queued message at ``index``."""

    def __init__(self, action: str, index: int) -> None:
        super().__init__()
        self.action = action
        self.index = index


class QueuedMessages(Vertical):
    DEFAULT_CSS = """
    QueuedMessages { height: auto; max-height: 6; padding: 0 1; }
    QueuedMessages .queued { height: 1; }
    QueuedMessages .queued-text { width: 1fr; color: $text-muted; }
    QueuedMessages Button { width: auto; min-width: 4; margin-left: 1; }
    """

    def __init__(self, *, id: str | None = "queued") -> None:
        super().__init__(id=id)
        self.messages: list[str] = []
        self.display = False

    async def show(self, messages: list[str]) -> None:
        self.messages = list(messages)
        await self.remove_children()
        self.display = bool(messages)
        if messages:
            await self.mount_all([self._row(i, text) for i, text in enumerate(messages)])

    def _row(self, index: int, text: str) -> Horizontal:
        flat = sanitize(" ".join(text.split()), keep_sgr=False)
        if len(flat) > PREVIEW:
            flat = flat[: PREVIEW - 1] + "…"
        label = Text.assemble(("⏳ queued ", "bold"), flat)
        return Horizontal(
            Static(label, classes="queued-text"),
            Button("Edit", id=f"queued-edit-{index}", compact=True),
            Button("✕", id=f"queued-cancel-{index}", compact=True),
            classes="queued",
        )

    def compose(self) -> ComposeResult:
        return iter(())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        _, action, index = str(event.button.id).split("-")
        self.post_message(QueueAction(action, int(index)))
