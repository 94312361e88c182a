"""Workbench flows a person meets in the first minutes: focus after hiding panes, typing a
slash command quickly, the welcome screen, queued follow-ups, interrupting, resuming an
interrupted session and the approval modal at 80×24 (the real app under Pilot, the real
runtime, the scripted model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import OptionList
from tui_helpers import make_app, wait_for

from openmanus_tui.runtime.session import AgentSession
from openmanus_tui.tui import approval as approval_mod
from openmanus_tui.tui.help import HelpScreen
from openmanus_tui.tui.prompt import PromptInput

SIZE = (140, 45)


@pytest.fixture(autouse=True)
def _fast_and_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(approval_mod, "ARM_DELAY", 0.05)
    monkeypatch.setattr(AgentSession, "isolation", lambda self: "L2")


# ---- focus traps --------------------------------------------------------------------------------
async def test_hiding_the_focused_sidebar_gives_the_prompt_focus(isolated_env: Path) -> None:
    app = make_app(approval={"mode": "yolo"})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await app.runtime.create_session(title="kept")
        await app.refresh_sessions()
        app.query_one("#session-list", OptionList).focus()
        await pilot.press("ctrl+b")
        assert not app.query_one("#sidebar").display
        prompt = app.query_one(PromptInput)
        assert app.focused is prompt
        # Typing now is typing a message: the sidebar's ``n`` (new session) does not fire.
        await pilot.press(*"continue")
        assert prompt.text == "continue"
        assert app.session is None and app.title != "OpenManus — new session"


async def test_hiding_the_focused_side_panel_gives_the_prompt_focus() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        from textual.widgets import Tabs

        app.query_one("#panel").query_one(Tabs).focus()
        await pilot.press("ctrl+r")
        assert not app.query_one("#panel-slot").display
        assert app.focused is app.query_one(PromptInput)


async def test_slash_help_typed_quickly_runs_help() -> None:
    # The completion menu follows the text one message later: Enter must act on the text
    # typed, not on the menu as it was a key earlier (it took "/new").
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        prompt = app.query_one(PromptInput)
        prompt.focus()
        await pilot.press("/")  # the menu opens with every command, "/new" highlighted
        assert prompt.menu is not None and prompt.menu.display
        for key in "help":  # then the rest in one burst, as a terminal delivers fast typing
            prompt.post_message(_key(key))
        prompt.post_message(_key("enter"))
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), timeout=5)
        assert prompt.text == ""


def _key(key: str):
    from textual import events

    return events.Key(key, key if len(key) == 1 else None)
