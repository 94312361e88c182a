"""The welcome shown in the stream while a session has nothing in it: the model that will
really answer (``scripted:demo`` when no API key is configured, not the configured name), the
folder the agent works in, the approval mode, and example tasks to pick (Enter or a click runs
one).

Plain data first (``WelcomeInfo``, built from the settings without importing the agent stack:
the welcome is part of the first screen), then the widget.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

if TYPE_CHECKING:
    from openmanus_tui.config import Settings

def __getattr__(name: str) -> Any:
    """``sandbox_level`` (``runtime/views.py``; tests stub it here), imported when first asked
    for: not on the way to the first frame."""
    if name == "sandbox_level":
        from openmanus_tui.runtime.views import sandbox_level

        globals()[name] = sandbox_level
        return sandbox_level
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


EXAMPLES = [
    "What is in my workspace?",
    "Write a script that prints the mean of ten numbers, and run it",
    "List the TODO comments in this folder, by file",
]
APPROVAL_HELP = {
    "ask": "every tool call asks you",
    "auto": "read-only tools run, the rest ask you",
    "yolo": "nothing asks: every tool call runs",
}


def model_in_use(settings: Settings) -> tuple[str, bool]:
    """(spec, offline): the model a new session will run."""
    return settings.model.spec_in_use, settings.model.offline


@dataclass
class WelcomeInfo:
    model: str = ""
    offline: bool = False
    workspace: str = ""  # "" = a new folder per session (``workspaces_root`` says where)
    workspaces_root: str = ""
    approval: str = ""
    profile: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> WelcomeInfo | None:
        """Stored facts (``ui_state.remembered_welcome``); None if they do not fit."""
        if not data:
            return None
        try:
            return cls(**{k: data[k] for k in asdict(cls())})
        except (KeyError, TypeError):
            return None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, settings: Settings | None) -> WelcomeInfo:
        if settings is None:
            return cls()
        model, offline = model_in_use(settings)
        workspace = settings.sandbox.workspace
        return cls(
            model=model, offline=offline,
            workspace=str(workspace.expanduser().resolve()) if workspace else "",
            workspaces_root=str(settings.resolved_data_dir / "workspaces"),
            approval=settings.approval.mode, profile=settings.agent.profile,
        )


class ExampleChosen(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ExampleList(OptionList):
    """The example tasks. No letter bindings: typing here is never a command."""


class Welcome(Vertical):
    """The empty session's placeholder in the stream (``StreamView`` removes it when the first
    block arrives)."""

    # The title and the facts are one widget (``#welcome-facts``): the welcome is in the first
    # frame, and each widget costs a few milliseconds of it.
    DEFAULT_CSS = """
    Welcome { height: auto; padding: 1 2; }
    Welcome #welcome-facts { height: auto; margin-bottom: 1; }
    Welcome #welcome-try { color: $text-muted; }
    Welcome ExampleList { height: auto; border: none; background: transparent; padding: 0; }
    Welcome #welcome-keys { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, info: WelcomeInfo, *, id: str | None = "welcome") -> None:
        super().__init__(id=id)
        self.info = info

    def compose(self) -> ComposeResult:
        yield Static(self._head(), id="welcome-facts")
        yield Static("Try one (↑↓ and Enter), or type your own task below:", id="welcome-try")
        yield ExampleList(*[Option(f"  {text}", id=text) for text in EXAMPLES],
                          id="welcome-examples")
        yield Static("Ctrl+P commands · / slash commands · F1 help · Ctrl+B sessions",
                     id="welcome-keys")

    def _head(self) -> Content:
        return Content.assemble(("Welcome to OpenManus", "bold $primary"), "\n\n",
                                Content.from_rich_text(self.facts()))

    def facts(self) -> Text:
        """The model, the workspace and the approval mode (plain text: names and paths come
        from the configuration, never read as markup)."""
        info = self.info
        text = Text()
        if not info.model:
            text.append("Reading the configuration…", style="dim")
            return text
        text.append("Model      ", style="dim")
        text.append(info.model, style="bold")
        if info.offline:
            text.append("  offline demo (no API key: set OPENAI_API_KEY)", style="dim")
        text.append("\nWorkspace  ", style="dim")
        if info.workspace:
            text.append(info.workspace, style="bold")
        else:
            text.append("a new folder for each session, under ", style="")
            text.append(info.workspaces_root, style="bold")
        text.append("\nApproval   ", style="dim")
        text.append(info.approval, style="bold")
        help_text = APPROVAL_HELP.get(info.approval, "")
        if help_text:
            text.append(f"  {help_text}", style="dim")
        text.append(" (/approval)", style="dim")
        return text

    def update_info(self, info: WelcomeInfo) -> None:
        self.info = info
        for facts in self.query("#welcome-facts").results(Static):
            facts.update(self._head())

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(ExampleChosen(str(event.option.id)))


def welcome_for(settings: Any) -> Welcome:
    return Welcome(WelcomeInfo.of(settings))
