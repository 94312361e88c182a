"""Interaction tests of the workbench: the real app, the real runtime and the scripted model,
driven with Pilot (approvals, sessions, slash commands, streaming, the bounded stream window)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scenes import workbench as scenes
from textual.widgets import Button, DataTable, Input, OptionList, TextArea
from tui_helpers import make_app, notices, send, wait_for

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import AgentSession, Runtime
from openmanus_tui.tui.app import OpenManusApp
from openmanus_tui.tui.screens import approval as approval_mod
from openmanus_tui.tui.screens.approval import ApprovalScreen
from openmanus_tui.tui.screens.dialogs import ConfirmScreen, TextPromptScreen
from openmanus_tui.tui.widgets.inspector import Inspector
from openmanus_tui.tui.widgets.memory import MemoryPane
from openmanus_tui.tui.widgets.prompt import PromptInput
from openmanus_tui.tui.widgets.stream import LOAD_MORE, WINDOW, StreamView
from openmanus_tui.tui.widgets.tools_pane import ToolsTable

SIZE = (140, 45)


@pytest.fixture(autouse=True)
def _fast_and_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Arm the approval buttons quickly (the delay itself has its own test) and keep the sandbox
    # probe out of the status line's way.
    monkeypatch.setattr(approval_mod, "ARM_DELAY", 0.05)
    monkeypatch.setattr(AgentSession, "isolation", lambda self: "L2")


async def next_approval(app: OpenManusApp, pilot) -> ApprovalScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
    screen = app.screen
    assert isinstance(screen, ApprovalScreen)
    await wait_for(pilot, lambda: screen.armed)
    return screen


async def stored(app: OpenManusApp) -> list[ev.Event]:
    return await app.runtime.db.events(app.session.id)


async def test_full_task_approve_edit_deny(isolated_env: Path) -> None:
    app = make_app(approval={"mode": "ask"})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await send(pilot, "write and run a stats program")

        # 1. list_files: approved once.
        screen = await next_approval(app, pilot)
        assert screen.call.tool == "list_files"
        assert app.title.startswith("⚠ APPROVAL NEEDED")
        # Neither approve nor the reason box: the scrolling body, where keys do nothing.
        assert app.focused is screen.query_one("#approval-scroll")
        await pilot.click("#approve")

        # 2. file_write: edited. Invalid JSON and a schema violation are refused in place.
        screen = await next_approval(app, pilot)
        assert screen.call.tool == "file_write"
        assert screen.diff_text is not None
        assert "+numbers = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]" in screen.diff_text
        assert screen.query_one("#approval-diff").display
        await pilot.click("#edit")
        editor = screen.query_one("#args-editor", TextArea)
        editor.load_text("{not json")
        await pilot.press("ctrl+s")
        assert app.screen is screen
        assert "Not valid JSON" in str(screen.query_one("#edit-error").content)
        editor.load_text(json.dumps({"path": "stats.py"}))  # content is required
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen
        assert "content" in str(screen.query_one("#edit-error").content)
        edited = "print('edited by a person')\n"
        editor.load_text(json.dumps({"path": "stats.py", "content": edited}))
        await pilot.press("ctrl+s")

        # 3. file_read: approved.
        screen = await next_approval(app, pilot)
        assert screen.call.tool == "file_read"
        await pilot.click("#approve")

        # 4. shell_exec: denied with a reason typed into the reason box.
        screen = await next_approval(app, pilot)
        assert screen.call.tool == "shell_exec"
        screen.query_one("#deny-reason", Input).focus()
        await pilot.press(*"no shell today", "enter")

        await wait_for(pilot, lambda: not app.run_in_progress())
        events = await stored(app)
        workspace = app.session.workspace
        assert not app.title.startswith("⚠")

    decided = {e.tool: e for e in events if isinstance(e, ev.ApprovalDecided)}
    assert decided["list_files"].decision == "approve" and decided["list_files"].by == "user"
    assert decided["file_write"].decision == "edit"
    assert decided["file_write"].args == {"path": "stats.py", "content": edited}
    assert (workspace / "stats.py").read_text() == edited  # the edited arguments really ran
    finished = {e.tool: e for e in events if isinstance(e, ev.ToolFinished)}
    assert finished["file_read"].status == "ok"
    assert "edited by a person" in finished["file_read"].result
    # The model receives the reason as the call's result, in the same step.
    assert finished["shell_exec"].status == "denied"
    assert "no shell today" in finished["shell_exec"].result
    assert not any(isinstance(e, ev.ToolStarted) and e.tool == "shell_exec" for e in events)
    assert isinstance(events[-1], ev.RunFinished) and events[-1].status == "completed"


async def test_type_ahead_cannot_approve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(approval_mod, "ARM_DELAY", 60)  # never arms by itself in this test
    app = make_app(approval={"mode": "ask"})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await send(pilot, "go")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        screen = app.screen
        assert isinstance(screen, ApprovalScreen)
        assert screen.query_one("#approve", Button).disabled
        # Keys typed ahead: the approve shortcut, text and Enter land harmlessly.
        await pilot.press("ctrl+s", "y", "e", "s", "enter")
        assert app.screen is screen
        assert screen.query_one("#deny-reason", Input).value == ""
        screen._arm()
        await pilot.press("ctrl+s")  # deliberate, after the modal has been shown
        await wait_for(pilot, lambda: app.screen is not screen)
        app.action_stop_run()


async def test_resuming_a_session_shows_its_history(isolated_env: Path) -> None:
    settings = load_settings({"approval": {"mode": "yolo"}})
    runtime = await Runtime.open(settings)
    session = await runtime.create_session()
    outcome = await session.run("list, write, read and run")
    assert outcome.ok
    await runtime.close()

    app = OpenManusApp(settings, session_id=session.id, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await pilot.pause(0.1)
        stream = app.query_one(StreamView)
        kinds = [b.kind for b in stream.transcript.blocks]
        assert kinds[0] == "notice"  # the offline-model warning of the stored run
        assert kinds[1] == "user" and kinds[-1] == "answer"
        tools = [stream.transcript.calls[b.call_id].tool
                 for b in stream.transcript.blocks if b.kind == "observation"]
        assert tools == ["list_files", "file_write", "file_read", "shell_exec"]
        assert stream.mounted_blocks == len(kinds)
        assert "count=10 mean=3.90" in stream.transcript.blocks[-1].text
        assert app.status.state == "completed"
        assert app.status.tokens_in > 0
        listed = app.query_one("#session-list", OptionList)
        assert listed.option_count == 1
        # A resumed session takes new tasks in the same thread.
        await send(pilot, "again")
        await wait_for(pilot, lambda: not app.run_in_progress())
        assert [b.kind for b in stream.transcript.blocks].count("user") == 2


async def test_typing_while_a_run_streams_stays_responsive(isolated_env: Path) -> None:
    # A slow scripted model (thousands of tokens, 20 ms apart) so that the run outlasts the
    # typing; the test stops it. Pilot waits for the screen to settle after each key, which
    # takes longer while a stream renders, hence few keys.
    script = isolated_env / "slow.json"
    words = " ".join(f"word{n}" for n in range(3000))
    script.write_text(json.dumps({"steps": [], "final": words, "token_delay": 0.02}))
    app = make_app(model={"provider": "scripted", "name": str(script)})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await send(pilot, "stream something")
        stream = app.query_one(StreamView)
        await wait_for(pilot, lambda: any(b.kind == "thought" and b.streaming
                                          for b in stream.transcript.blocks))
        prompt = app.query_one(PromptInput)
        await pilot.press(*"hey")
        assert app.run_in_progress()  # the keys were handled while the agent streamed
        assert prompt.text == "hey"
        shown = next(b for b in stream.transcript.blocks if b.kind == "thought")
        assert 0 < len(shown.text) < len(words)  # mid-stream
        await pilot.press("enter")  # queued while running; the line is in the history
        assert prompt.prompt_history[-1] == "hey"
        assert app.queued == ["hey"]
        await pilot.press("ctrl+g")  # stop the run: the queued line comes back, unsent
        await wait_for(pilot, lambda: not app.run_in_progress())
        assert app.status.state == "cancelled"
        assert prompt.text == "hey"


async def test_sessions_rename_and_delete_with_confirmation() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await scenes.seed_sessions(app.runtime.db)
        await app.refresh_sessions()
        sessions = app.query_one("#session-list", OptionList)
        assert sessions.option_count == 3
        sessions.focus()
        sessions.highlighted = 0
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        field = app.screen.query_one(Input)
        field.value = ""
        await pilot.press(*"Renamed", "enter")
        await wait_for(pilot, lambda: any(r.title == "Renamed" for r in app.session_records))
        renamed = next(r for r in app.session_records if r.title == "Renamed")

        sessions.focus()
        sessions.highlighted = 0
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("enter")  # Cancel has focus: Enter keeps the session
        await pilot.pause(0.1)
        assert len(await app.runtime.db.list_sessions()) == 3
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: len(app.session_records) == 2)
        assert renamed.id not in {r.id for r in await app.runtime.db.list_sessions()}

        # Selecting a session opens it.
        sessions.focus()
        target = app.session_records[0].id
        sessions.highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.session is not None and app.session.id == target)


async def test_slash_commands_and_completion() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        prompt = app.query_one(PromptInput)
        await pilot.click("#prompt")
        await pilot.press("/", "t", "h")
        menu = app.query_one("#slash-menu", OptionList)
        assert menu.display and menu.option_count == 1
        await pilot.press("tab")
        assert prompt.text == "/theme "
        await pilot.press(*"openmanus-l", "tab")
        assert prompt.text == "/theme openmanus-light"
        await pilot.press("enter")
        assert app.theme == "openmanus-light"

        await pilot.press(*"/approval yolo")
        await pilot.press("escape", "enter")  # close the menu, then send
        assert app.settings.approval.mode == "yolo"
        assert "approval yolo" in str(app.query_one("#status").content)

        # History: Up on an empty prompt recalls the previous line.
        await pilot.press("up")
        assert prompt.text == "/approval yolo"
        await pilot.press("up")
        assert prompt.text == "/theme openmanus-light"
        await pilot.press("down", "down")
        assert prompt.text == ""


async def test_bounded_window_and_load_earlier() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        db = app.runtime.db
        from openmanus_tui.store.db import SessionRecord

        await db.create_session(SessionRecord(id="long", title="long"))
        for n in range(1, 451):
            await db.append_event(ev.Notice(session_id="long", seq=n, text=f"note {n}"))
        await app.open_session("long")
        stream = app.query_one(StreamView)
        assert len(stream.transcript.blocks) == 450
        assert stream.mounted_blocks == WINDOW
        button = stream.query_one("#load-earlier", Button)
        assert f"({450 - WINDOW} more)" in str(button.label)

        # Scrolling up to the top mounts older blocks above, and what was on screen stays put.
        first = stream._widgets[stream.transcript.blocks[450 - WINDOW].key]
        stream.scroll_to(y=stream.max_scroll_y - 3, animate=False, immediate=True)
        await pilot.pause(0.05)
        stream.scroll_home(animate=False, immediate=True)
        await wait_for(pilot, lambda: stream.mounted_blocks == WINDOW + LOAD_MORE
                       and stream.scroll_y > 0)
        await pilot.pause(0.1)
        # Still at the top of the view (below the load button), not pushed 200 rows down.
        assert 0 <= first.region.y - stream.region.y <= 3

        # The button at the top does the same (the keyboard's way), until nothing is left.
        while stream.mounted_blocks < 450:
            count = stream.mounted_blocks
            stream.query_one("#load-earlier", Button).press()
            await wait_for(pilot, lambda count=count: stream.mounted_blocks > count)
        await wait_for(pilot, lambda: not stream.query("#load-earlier"))  # nothing left to load
        # Live events still append at the bottom and keep the window bounded.
        for n in range(60):
            app.handle_event(ev.Notice(text=f"live {n}"))
        await pilot.pause(0.05)
        assert stream.mounted_blocks == 450


async def test_inspector_memory_and_tools_follow_the_run() -> None:
    app = make_app(approval={"mode": "yolo"})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await send(pilot, "do the demo")
        await wait_for(pilot, lambda: not app.run_in_progress())
        await pilot.pause(0.1)
        stream = app.query_one(StreamView)
        calls = stream.transcript.calls
        action = next(b for b in stream.transcript.blocks
                      if b.kind == "action" and calls[b.call_id].tool == "shell_exec")
        widget = stream._widgets[action.key]
        widget.scroll_visible(animate=False)
        await pilot.pause(0.05)
        await pilot.click(widget)
        doc = json.loads(app.query_one("#inspector-json", TextArea).text)
        assert doc["tool_call"]["tool"] == "shell_exec"
        assert doc["tool_call"]["args"]["command"].startswith("python3 stats.py")
        assert doc["status"] == "ok" and "count=10" in doc["result"]
        assert doc["model_call"]["tokens_in"] > 0
        assert doc["checkpoint_id"] and doc["checkpoint_after"]
        assert "messages" in doc["state_changed"]
        assert app.query_one(Inspector).display

        # The memory pane is built when its tab opens, and shows the session's next prompt
        # (``context_parts``): the system prompt, the tool definitions, the request and the
        # four tool-call turns.
        pane = app.query_one(MemoryPane)
        assert not pane.built  # nobody looked at it yet: nothing was computed
        app.query_one("#panel").active = "tab-memory"
        await wait_for(pilot, lambda: pane.built and pane.view is not None)
        memory = pane.query_one("#memory-table", DataTable)
        kinds = [str(memory.get_row_at(i)[1]) for i in range(memory.row_count)]
        assert kinds[:3] == ["system", "tools", "request"] and kinds.count("tool_call") == 4

        app.query_one("#panel").active = "tab-tools"
        await wait_for(pilot, lambda: bool(app.query(ToolsTable)) and
                       app.query_one(ToolsTable).row_count > 0)
        tools = app.query_one(ToolsTable)
        row = tools.get_row("shell_exec")
        assert row[3] == "1" and row[4] == "0"  # calls, failures


async def test_narrow_terminal_hides_side_panels() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.ready.wait()
        assert not app.query_one("#sidebar").display
        assert not app.query_one("#panel-slot").display
        await pilot.press("ctrl+b")
        assert app.query_one("#sidebar").display
        await pilot.press("ctrl+b", "ctrl+r")
        assert app.query_one("#panel-slot").display
        assert app.query_one("#panel").active == "tab-inspector"  # the tabs are in the slot


async def test_broken_theme_is_reported_once_and_skipped(isolated_env: Path) -> None:
    themes = isolated_env / "themes"  # beside the test's config file: the user theme folder
    themes.mkdir()
    (themes / "broken.toml").write_text("name = 'x'\nprimary = ")
    (themes / "badcolour.toml").write_text("name = 'y'\nprimary = 'not-a-colour'")
    (themes / "mine.toml").write_text("name = 'mine'\nprimary = '#ff0000'\ndark = true")
    app = make_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await app.ready.wait()
        await pilot.pause()
        warnings = [n for n in notices(app) if "theme" in n.message]
        assert len(warnings) == 1
        assert "broken.toml" in warnings[0].message and "badcolour.toml" in warnings[0].message
        assert "mine" in app.available_themes and "openmanus-ocean" in app.available_themes
        assert app.theme == "openmanus-dark"
        assert app.set_theme("mine") and app.theme == "mine"
