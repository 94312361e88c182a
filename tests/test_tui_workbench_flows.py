"""Workbench flows a person meets in the first minutes: focus after hiding panes, typing a
slash command quickly, the welcome screen, queued follow-ups, interrupting, resuming an
interrupted session and the approval modal at 80×24 (the real app under Pilot, the real
runtime, the scripted model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import OptionList
from tui_helpers import make_app, notices, wait_for

from openmanus_tui.runtime.session import AgentSession
from openmanus_tui.tui.screens import approval as approval_mod
from openmanus_tui.tui.screens.help import HelpScreen
from openmanus_tui.tui.widgets.prompt import PromptInput

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


async def test_enter_on_a_complete_command_name_sends_it() -> None:
    # "/approval" offers "/approval " (its argument is optional): Enter sends the command.
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        prompt = app.query_one(PromptInput)
        prompt.focus()
        await pilot.press(*"/approval", "enter")
        await pilot.pause()
        assert prompt.text == ""
        assert any(n.message == "Approval mode: auto" for n in notices(app))


def _key(key: str):
    from textual import events

    return events.Key(key, key if len(key) == 1 else None)


# ---- the approval modal at 80×24 ----------------------------------------------------------------
async def next_approval(app, pilot, tool: str):
    from openmanus_tui.tui.screens.approval import ApprovalScreen

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

        def reason_on_screen() -> bool:
            try:
                return screen.get_widget_at(reason.region.x + 2, reason.region.y + 1)[0] is reason
            except Exception:  # off screen while the scroll animates
                return False

        await wait_for(pilot, reason_on_screen, timeout=5)
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


# ---- the first screen ---------------------------------------------------------------------------
def _status(app) -> str:
    from openmanus_tui.tui.widgets.status import StatusLine

    return str(app.query_one(StatusLine).render())


async def test_welcome_names_the_model_in_use_the_workspace_and_the_mode(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from openmanus_tui.tui.app import OpenManusApp
    from openmanus_tui.tui.widgets import welcome
    from openmanus_tui.tui.widgets.welcome import Welcome

    monkeypatch.setattr(welcome, "sandbox_level", lambda settings: "L3")
    folder = isolated_env / "project"
    folder.mkdir()
    # As ``openmanus --workspace DIR`` starts it: no settings given, overrides applied by the
    # app when it loads them; no API key, so the demo model is what will run.
    app = OpenManusApp(overrides={"sandbox": {"workspace": str(folder)}}, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await wait_for(pilot, lambda: "L3" in _status(app))
        shown = app.query_one(Welcome)
        facts = str(shown.query_one("#welcome-facts").render())
        assert "scripted:demo" in facts and "offline demo" in facts
        assert str(folder) in facts
        assert "auto" in facts
        status = _status(app)
        assert "scripted:demo" in status and "gpt-4.1-mini" not in status
        assert "│ manus │" in status and "approval auto" in status
        # /approval changes what the welcome says.
        app.run_slash("/approval ask")
        await pilot.pause()
        assert "Approval   ask" in str(shown.query_one("#welcome-facts").render())
        # An example task runs when picked; the welcome gives way to the conversation.
        examples = shown.query_one("#welcome-examples", OptionList)
        examples.focus()
        examples.highlighted = 0
        app.run_slash("/approval yolo")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.session is not None and not app.run_in_progress())
        assert not app.query(Welcome)
        assert app.session.workspace == folder.resolve()
        started = [e for e in await app.runtime.db.events(app.session.id)
                   if e.type == "run_started"]
        assert [e.input for e in started] == [welcome.EXAMPLES[0]]
        # A new session shows the welcome again.
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: bool(app.query(Welcome)))


async def test_a_task_given_at_start_runs_at_once(isolated_env: Path) -> None:
    from openmanus_tui.tui.app import OpenManusApp

    app = OpenManusApp(overrides={"approval": {"mode": "yolo"}}, task="hello there",
                       blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await wait_for(pilot, lambda: app.session is not None and not app.run_in_progress())
        started = [e for e in await app.runtime.db.events(app.session.id)
                   if e.type == "run_started"]
        assert [e.input for e in started] == ["hello there"]


async def test_a_current_folder_holding_openmanus_state_is_not_the_workspace(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Started in the home folder, say: the default workspace (the current folder) holds the
    data folder, so new sessions get folders of their own and the person is told why."""
    from openmanus_tui.tui.app import OpenManusApp
    from openmanus_tui.tui.widgets import welcome
    from openmanus_tui.tui.widgets.welcome import Welcome

    monkeypatch.setattr(welcome, "sandbox_level", lambda settings: "L3")
    # isolated_env holds the config file and the data folder (OPENMANUS_DATA_DIR)
    app = OpenManusApp(overrides={"sandbox": {"workspace": str(isolated_env)}}, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await wait_for(pilot, lambda: "L3" in _status(app))
        assert app.settings is not None and app.settings.sandbox.workspace is None
        notes = [n.message for n in notices(app)]
        assert any("data folder" in n and "folder of its own" in n for n in notes), notes
        facts = str(app.query_one(Welcome).query_one("#welcome-facts").render())
        assert "a new folder for each session" in facts


def test_the_command_line_starts_the_workbench_in_the_current_folder(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from openmanus_tui import cli
    from openmanus_tui.tui import app as tui_app

    seen: list[dict] = []
    monkeypatch.setattr(tui_app, "run_tui", lambda **kw: seen.append(kw) or 0)
    monkeypatch.chdir(isolated_env)
    assert cli.main(["fix the tests", "--approval", "ask", "--model", "scripted:demo"]) == 0
    assert seen[-1]["task"] == "fix the tests"
    assert seen[-1]["overrides"] == {
        "sandbox": {"workspace": str(isolated_env.resolve())},
        "approval": {"mode": "ask"},
        "model": {"provider": "scripted", "name": "demo"},
    }
    other = isolated_env / "other"
    other.mkdir()
    assert cli.main(["--workspace", str(other)]) == 0
    assert seen[-1]["task"] is None
    assert seen[-1]["overrides"]["sandbox"]["workspace"] == str(other)
    # A command's name is a command, not a task; ``--`` makes it one.
    assert cli.split_task(["sessions", "list"], {"sessions", "run"}) == (None, ["sessions", "list"])
    assert cli.split_task(["--", "run"], {"run"}) == ("run", [])
    # Mistakes: one line, exit status 2.
    capsys.readouterr()
    assert cli.main(["--workspace", str(isolated_env / "missing")]) == 2
    assert cli.main(["--model", "gpt4"]) == 2
    assert cli.main(["--workspace", str(isolated_env)]) == 2  # holds the data folder
    err = capsys.readouterr().err
    assert "no such folder" in err and "is not a model spec" in err
    assert "contains openmanus's data folder" in err
    assert "Traceback" not in err


# ---- resume inside the workbench ----------------------------------------------------------------
def _shell_script(tmp: Path, commands: list[str]) -> Path:
    import json

    script = tmp / "shell.json"
    script.write_text(json.dumps({
        "steps": [{"text": f"Step {n}.", "tool_calls": [
            {"name": "shell_exec", "args": {"command": c}}]} for n, c in enumerate(commands)],
        "final": "Done.",
    }))
    return script


def _banner(app):
    from openmanus_tui.tui.widgets.resume_banner import ResumeBanner

    found = list(app.query(ResumeBanner))
    return found[0] if found else None


async def test_a_killed_session_reopens_interrupted_and_resumes_in_place(
    isolated_env: Path,
) -> None:
    """The process running a session is killed mid-tool (SIGKILL); the workbench shows the
    call as interrupted (not running), offers Resume, and Resume finishes the run."""
    import os
    import signal
    import subprocess
    import sys

    from openmanus_tui.tui.app import OpenManusApp
    from openmanus_tui.tui.widgets.stream import StreamView

    script = _shell_script(isolated_env, ["echo started > started.txt; sleep 2; echo slept"])
    env = {**os.environ, "OPENMANUS_MODEL__PROVIDER": "scripted",
           "OPENMANUS_MODEL__NAME": str(script), "OPENMANUS_APPROVAL__MODE": "yolo"}
    proc = subprocess.Popen([sys.executable, "-m", "openmanus_tui", "run", "go", "--json"],
                            env=env, stdout=subprocess.PIPE, text=True)
    session_id = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if '"session_id"' in line and session_id is None:
            import json

            session_id = json.loads(line)["session_id"]
        if '"tool_started"' in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert session_id

    app = OpenManusApp(overrides={"model": {"provider": "scripted", "name": str(script)},
                                  "approval": {"mode": "yolo"}},
                       session_id=session_id, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await wait_for(pilot, lambda: _banner(app) is not None)
        transcript = app.query_one(StreamView).transcript
        assert [c.status for c in transcript.calls.values()] == ["interrupted"]
        assert not any(b.streaming for b in transcript.blocks)
        assert app.status.state == "interrupted"
        assert "interrupted" in str(_banner(app).query_one("#resume-text").render())
        await pilot.pause(0.2)  # laid out
        await pilot.click("#resume-run")
        await wait_for(pilot, lambda: app.status.state == "completed", timeout=60)
        assert app.status.state == "completed"
        assert _banner(app) is None
        events = await app.runtime.db.events(session_id)
        assert events[-1].type == "run_finished" and events[-1].status == "completed"
        assert [e.resumed for e in events if e.type == "run_started"][-1] is True


async def test_resume_a_waiting_approval_from_the_sidebar_palette_and_slash(
    isolated_env: Path,
) -> None:
    from openmanus_tui.config import load_settings
    from openmanus_tui.runtime.session import Runtime
    from openmanus_tui.tui.app import OpenManusApp
    from openmanus_tui.tui.commands import SessionCommands
    from openmanus_tui.tui.screens.approval import ApprovalScreen

    script = _shell_script(isolated_env, ["echo one >> log.txt", "echo two >> log.txt"])
    overrides = {"model": {"provider": "scripted", "name": str(script)},
                 "approval": {"mode": "auto"}}
    runtime = await Runtime.open(load_settings(overrides))
    session = await runtime.create_session(title="needs an answer")
    outcome = await session.run("go")  # nobody to ask: it waits
    assert outcome.status == "awaiting_approval"
    await runtime.close()

    app = OpenManusApp(overrides=overrides, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        # The palette offers it.
        entries = SessionCommands.entries(None, app)  # type: ignore[arg-type]
        assert any(name == "Resume session: needs an answer" for name, *_ in entries)
        # The sidebar: highlight it, press c.
        listed = app.query_one("#session-list", OptionList)
        listed.focus()
        listed.highlighted = 0
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        assert app.session.id == session.id
        await wait_for(pilot, lambda: app.screen.armed)
        app.screen.query_one("#approve").press()
        # Stop at the second approval (Esc denies it, so stop the run from outside instead).
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen)
                       and "two" in app.screen.call.args["command"])
        app.action_stop_run()
        await wait_for(pilot, lambda: not app.run_in_progress())
        await pilot.pause()
        assert not isinstance(app.screen, ApprovalScreen)  # the stopped run's modal closed

        await wait_for(pilot, lambda: _banner(app) is not None)
        stream_notices = [b.text for b in app.query_one("#stream").transcript.blocks
                          if b.kind == "notice"]
        assert "Run stopped. Resume it with the banner above or /resume." in stream_notices
        assert not any("openmanus resume" in text for text in stream_notices)
        # /resume: the second call is asked once and runs once.
        app.run_slash("/resume")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await wait_for(pilot, lambda: app.screen.armed)
        app.screen.query_one("#approve").press()
        await wait_for(pilot, lambda: not app.run_in_progress()
                       and app.status.state == "completed")
        assert (app.session.workspace / "log.txt").read_text() == "one\ntwo\n"
        await pilot.pause(0.2)
        assert _banner(app) is None
        # Nothing left: /resume says so.
        app.run_slash("/resume")
        await wait_for(pilot, lambda: any("Nothing to resume" in n.message
                                          for n in notices(app)))


# ---- queued follow-ups, Esc and Ctrl+C ----------------------------------------------------------
class HeldModel:
    """The loopback model server, holding its answer to the task "first" until ``release()``:
    a run that is still going for as long as the test needs, however loaded the machine is
    (a scripted reply streamed slowly could end before the test had typed its follow-ups).
    Any other task is echoed at once."""

    def __init__(self) -> None:
        import threading

        from openai_server import OpenAITestServer, echo_responder

        self._gate = threading.Event()

        def responder(body):
            users = [m for m in body["messages"] if m["role"] == "user"]
            if users and users[-1]["content"] == "first":
                self._gate.wait(timeout=120)
            return echo_responder(body)

        self.server = OpenAITestServer(responder)

    def release(self) -> None:
        self._gate.set()


@pytest.fixture
def held_model(monkeypatch: pytest.MonkeyPatch):
    from conftest import use_server

    held = HeldModel()
    with held.server:
        use_server(monkeypatch, held.server)
        try:
            yield held
        finally:
            held.release()  # a handler thread still waiting must not outlive the server


def _held_app(clock=None):
    from openmanus_tui.config import load_settings
    from openmanus_tui.tui.app import OpenManusApp

    kwargs = {"clock": clock} if clock is not None else {}
    return OpenManusApp(load_settings(), blink=False, **kwargs)


async def _type(pilot, app, text: str) -> None:
    prompt = app.query_one(PromptInput)
    prompt.focus()
    prompt.load_text(text)
    await pilot.press("enter")


async def _inputs(app) -> list[str | None]:
    return [e.input for e in await app.runtime.db.events(app.session.id)
            if e.type == "run_started"]


async def test_messages_typed_during_a_run_are_queued_and_sent_in_order(
    held_model: HeldModel,
) -> None:
    from openmanus_tui.tui.widgets.queue import QueuedMessages

    app = _held_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await _type(pilot, app, "first")
        await wait_for(pilot, app.run_in_progress)
        for text in ("second", "dropped", "third"):
            await _type(pilot, app, text)
        queue = app.query_one(QueuedMessages)
        await wait_for(pilot, lambda: len(queue.query(".queued")) == 3)
        assert queue.display
        assert "⏳ queued second" in str(queue.query(".queued-text").first().render())
        await pilot.click("#queued-cancel-1")  # ✕ on "dropped"
        await wait_for(pilot, lambda: app.queued == ["second", "third"])
        held_model.release()  # the first run ends; the queued ones follow
        await wait_for(pilot, lambda: not app.queued, timeout=60)
        await wait_for(pilot, lambda: not app.run_in_progress(), timeout=60)
        assert await _inputs(app) == ["first", "second", "third"]
        assert not queue.display


async def test_escape_stops_a_run_and_gives_queued_messages_back(held_model: HeldModel) -> None:
    app = _held_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await _type(pilot, app, "first")
        await wait_for(pilot, app.run_in_progress)
        await _type(pilot, app, "not like that")
        await wait_for(pilot, lambda: app.queued == ["not like that"])
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.run_in_progress())
        await pilot.pause(0.1)
        assert app.status.state == "cancelled"
        assert app.query_one(PromptInput).text == "not like that"
        assert app.queued == []
        assert await _inputs(app) == ["first"]
        # Esc when nothing runs does nothing (and the prompt keeps its text).
        await pilot.press("escape")
        assert app.query_one(PromptInput).text == "not like that"


async def test_ctrl_c_stops_a_run_and_twice_quits(held_model: HeldModel) -> None:
    from scenes import workbench as scenes

    clock = scenes.FixedClock()
    app = _held_app(clock)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        # Idle: one press warns; a second one after the window only warns again.
        await pilot.press("ctrl+c")
        assert app.is_running
        assert any("Ctrl+C again" in n.message for n in notices(app))
        clock.now += 5
        await pilot.press("ctrl+c")
        assert app.is_running
        # A run: the first press stops it, not the app.
        clock.now += 5
        await _type(pilot, app, "first")
        await wait_for(pilot, app.run_in_progress)
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not app.run_in_progress())
        assert app.is_running and app.status.state == "cancelled"
        # Right after stopping it, a second press quits.
        clock.now += 1
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not app.is_running, timeout=10)


# ---- after a run --------------------------------------------------------------------------------
async def test_the_answer_is_shown_once_and_the_elapsed_time_stays(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real OpenAI-style model (the loopback server) streams its closing text and calls
    ``terminate`` with the same answer: the stream shows it once, as the answer. The status
    line keeps the run's duration after it ends (it went back to 0:00)."""
    from conftest import use_server
    from openai_server import OpenAITestServer, Reply, ToolCallSpec
    from scenes import workbench as scenes

    from openmanus_tui.tui.app import OpenManusApp

    answer = "The workspace is **empty**."
    replies = [Reply(text="Let me look.", tool_calls=[ToolCallSpec("list_files", {"path": "."})]),
               Reply(text=answer, tool_calls=[ToolCallSpec("terminate", {"answer": answer})])]
    clock = scenes.FixedClock()
    with OpenAITestServer(replies) as server:
        use_server(monkeypatch, server)
        app = OpenManusApp(overrides={"approval": {"mode": "yolo"}}, clock=clock, blink=False)
        handle = app.handle_event

        def handle_and_take_time(event) -> None:
            if event.type == "run_finished":
                clock.now += 75  # the run took 75 s
            handle(event)

        app.handle_event = handle_and_take_time  # type: ignore[method-assign]
        async with app.run_test(size=SIZE) as pilot:
            await app.ready.wait()
            await _type(pilot, app, "what is here?")
            await wait_for(pilot, lambda: app.session is not None
                           and app.status.state == "completed", timeout=60)
            await wait_for(pilot, lambda: not app.run_in_progress(), timeout=60)
            await pilot.pause(0.1)
            blocks = app.query_one("#stream").transcript.blocks
            assert [b.kind for b in blocks] == ["user", "thought", "action", "observation",
                                                "answer"]
            assert blocks[-1].text == answer
            assert "1:15 │" in _status(app)
            app._tick()
            clock.now += 30
            app.refresh_status()
            assert "1:15 │" in _status(app)  # the last run's duration, not a running clock
