"""The prompt: a multi-line input with history and slash-command completion.

Enter sends; Shift+Enter or Ctrl+J inserts a newline. Up / Down recall earlier prompts when the
prompt is empty (or still showing a recalled one). Typing ``/`` opens a completion menu fed by
the app (commands, then their arguments); Tab or Enter takes the highlighted entry.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import OptionList, TextArea
from textual.widgets.option_list import Option

Completer = Callable[[str], list[tuple[str, str]]]
"""``complete(text) -> [(completed text, description)]`` for a prompt starting with ``/``."""


class PromptInput(TextArea):
    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        self.prompt_history: list[str] = []
        self._recall: int | None = None
        self.menu: OptionList | None = None

    def on_mount(self) -> None:
        self.cursor_blink = getattr(self.app, "blink", True)

    def _menu_open(self) -> bool:
        return self.menu is not None and self.menu.display and self.menu.option_count > 0

    def _take_completion(self) -> None:
        assert self.menu is not None
        index = self.menu.highlighted or 0
        value = str(self.menu.get_option_at_index(index).id)
        self.load_text(value)
        self.move_cursor(self.document.end)

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if key in ("enter", "tab", "up", "down") and isinstance(self.parent, PromptBar):
            # The menu follows the text through ``Changed`` messages, which queue up behind
            # keys typed in one burst: "/" then "help⏎" reached Enter with the menu still
            # offering "/new". Bring it up to date with the text before acting on it.
            self.parent.update_menu(self.text)
        if key in ("enter", "tab") and self._menu_open():
            event.prevent_default()
            event.stop()
            before = self.text
            self._take_completion()
            # Enter on an already complete command sends it: nothing to add, or only the space
            # before an (optional) argument ("/resume" offers "/resume ").
            if key == "enter" and self.text.rstrip() == before.rstrip():
                self._submit()
            return
        if key == "enter":
            event.prevent_default()
            event.stop()
            self._submit()
            return
        if key in ("shift+enter", "ctrl+j"):
            event.prevent_default()
            event.stop()
            self.insert("\n")
            return
        if key in ("up", "down") and self._menu_open() and self.menu is not None:
            event.prevent_default()
            event.stop()
            if key == "up":
                self.menu.action_cursor_up()
            else:
                self.menu.action_cursor_down()
            return
        if key in ("up", "down") and self._browsing():
            event.prevent_default()
            event.stop()
            self._recall_step(-1 if key == "up" else 1)
            return
        if key == "escape" and self._menu_open() and self.menu is not None:
            event.stop()
            self.menu.display = False
            return
        await super()._on_key(event)

    def _browsing(self) -> bool:
        if not self.prompt_history:
            return False
        if not self.text:
            return True
        return self._recall is not None and self.text == self.prompt_history[self._recall]

    def _recall_step(self, step: int) -> None:
        if self._recall is None and step > 0:
            return
        index = len(self.prompt_history) if self._recall is None else self._recall
        index += step
        if index >= len(self.prompt_history):
            self._recall = None
            self.load_text("")
            return
        self._recall = max(0, index)
        self.load_text(self.prompt_history[self._recall])
        self.move_cursor(self.document.end)

    def _submit(self) -> None:
        text = self.text.strip()
        if not text:
            return
        if not self.prompt_history or self.prompt_history[-1] != text:
            self.prompt_history.append(text)
        self._recall = None
        self.load_text("")
        self.post_message(self.Submitted(text))


class PromptBar(Vertical):
    """The completion menu above the prompt input."""

    def __init__(self, complete: Completer, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.complete = complete
        self._menu_text: str | None = None  # the text the menu's entries were made for

    def compose(self) -> ComposeResult:
        yield PromptInput(id="prompt")

    def ensure_menu(self) -> OptionList:
        """The completion menu, mounted above the input the first time it is needed (or just
        after the first frame, by the app): an OptionList is not worth its share of the
        first frame while hidden."""
        prompt = self.query_one(PromptInput)
        if prompt.menu is None:
            menu = OptionList(id="slash-menu")
            menu.display = False
            menu.can_focus = False
            self.mount(menu, before=prompt)
            prompt.menu = menu
        return prompt.menu

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.update_menu(event.text_area.text)

    def update_menu(self, text: str) -> None:
        """Show the completions of ``text`` (hide the menu when there are none)."""
        if text == self._menu_text:
            return  # already showing these (keeps the highlighted entry)
        self._menu_text = text
        menu = self.ensure_menu()
        matches = self.complete(text) if text.startswith("/") and "\n" not in text else []
        menu.clear_options()
        if not matches:
            menu.display = False
            return
        menu.add_options([Option(f"{value}  [dim]{desc}[/]", id=value) for value, desc in matches])
        menu.highlighted = 0
        menu.display = True

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        prompt = self.query_one(PromptInput)
        prompt.load_text(str(event.option.id))
        prompt.move_cursor(prompt.document.end)
        prompt.focus()
