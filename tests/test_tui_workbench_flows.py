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


# ---- the approval modal at 80×24 ----------------------------------------------------------------
async def next_approval(app, pilot, tool: str):
    from openmanus_tui.tui.approval import ApprovalScreen

    await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen)
                   and app.screen.call.tool == tool)
    screen = app.screen
    await wait_for(pilot, lambda: screen.armed)
    return screen


async def test_approval_modal_fits_80x24_and_a_stray_enter_is_no_answer() -> None:
    from textual.widgets import Button, Input

    app = make_app(approval={"mode": "ask"})
    async with app.run_test(size=(80, 24)) as pilot:
        await app.ready.wait()
        app.query_one(PromptInput).load_text("write and run a stats program")
        await pilot.press("enter")
        screen = await next_approval(app, pilot, "list_files")
        screen.query_one("#approve", Button).press()
        screen = await next_approval(app, pilot, "file_write")
        await pilot.pause(0.1)
        # Every choice is on screen and is what the terminal shows at its place.
        for button in screen.query(Button):
            region = button.region
            assert region.bottom <= 24 and region.right <= 80, button.id
            assert screen.get_widget_at(region.x + 2, region.y + 1)[0] is button, button.id
        # Not the reason box: typed-ahead text and Enter land nowhere.
        reason = screen.query_one("#deny-reason", Input)
        assert app.focused is not reason
        await pilot.press(*"yes", "enter")
        assert app.screen is screen and reason.value == ""
        # The reason box scrolls into view; Enter while it is empty does not deny.
        reason.focus()
        await pilot.pause()
        assert screen.get_widget_at(reason.region.x + 2, reason.region.y + 1)[0] is reason
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press(*"not now", "enter")
        await wait_for(pilot, lambda: app.screen is not screen)
        app.action_stop_run()
        await wait_for(pilot, lambda: not app.run_in_progress())
        decided = [e for e in await app.runtime.db.events(app.session.id)
                   if e.type == "approval_decided" and e.tool == "file_write"]
        assert [(d.decision, d.reason) for d in decided] == [("deny", "not now")]
