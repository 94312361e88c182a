"""The banner above the stream of a session that stopped before it finished (the process was
killed, the run was stopped with Esc / Ctrl+C / Ctrl+G, or an approval is still unanswered):
it says so and offers Resume (``/resume``, the palette and the sessions list do the same).

The app decides when to show it from ``AgentSession.pending()`` (the checkpoint has work left);
the banner only posts what the person chose.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, Static


class ResumeChosen(Message):
    """``resume``: True to continue the run, False to dismiss the banner."""

    def __init__(self, resume: bool) -> None:
        super().__init__()
        self.resume = resume


def banner_text(waiting_approval: bool, stopped: bool) -> str:
    if waiting_approval:
        return "⏸ This run is waiting for your approval of a tool call."
    if stopped:
        return "⏸ This run was stopped before it finished."
    return "⏸ This run was interrupted before it finished."


class ResumeBanner(Horizontal):
    DEFAULT_CSS = """
    ResumeBanner {
        height: auto;
        background: $warning 15%;
        border-left: outer $warning;
        padding: 0 1;
    }
    ResumeBanner #resume-text { width: 1fr; padding: 0 1 0 0; }
    ResumeBanner Button { width: auto; margin-left: 1; }
    """

    def __init__(self, text: str, *, id: str | None = "resume-banner") -> None:
        super().__init__(id=id)
        self.text = text

    def compose(self) -> ComposeResult:
        yield Static(self.text, id="resume-text")
        yield Button("▶ Resume", id="resume-run", compact=True, variant="warning")
        yield Button("✕", id="resume-dismiss", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(ResumeChosen(event.button.id == "resume-run"))
