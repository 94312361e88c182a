"""Control sequences in untrusted text (model output, tool arguments, session titles, memory
notes, error text) never reach the terminal raw through the workbench.

Textual 8.2 writes widget text to the terminal as it is (only BEL, BS, VT, FF and CR are dropped,
by Rich): a session title holding ``ESC]0;…`` set the window title. ``tui/terminal_guard.py``
closes it for every widget at ``Strip.render``; the workbench shows the sequences as visible
``\\x1b`` text where it turns untrusted text into content. These tests attack both."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import sys
from pathlib import Path

from openai_server import Reply, ToolCallSpec
from tui_helpers import make_app, screen_text, wait_for

from openmanus_tui.termsafe import has_controls

# Window title, clipboard write (ST-terminated: Rich would strip a BEL), clear screen (7-bit
# and C1), a DCS query.
EVIL = "\x1b]0;PWNED\x1b\\A\x1b]52;c;SGVsbG8=\x1b\\B\x1b[2JC\x9b2JD\x1bP$qm\x1b\\E"
RAW = [b"\x1b]0;PWNED", b"\x1b]52;", b"\x1b[2JC", b"\xc2\x9b", b"\x1bP$q"]
# What Textual itself writes in a frame: SGR styles and OSC 8 links.
_OWN = re.compile(r"\x1b\[[0-9;:]*m|\x1b\]8;[^\x1b\x07]*(\x1b\\|\x07)")


def _frame(app) -> str:
    """The active screen as the terminal receives it (every strip through ``Strip.render``)."""
    return "\n".join(strip.render(app.console)
                     for strip in app.screen._compositor.render_strips())


def _raw_controls(frame: str) -> list[str]:
    rest = _OWN.sub("", frame)
    return sorted({repr(c) for c in rest if has_controls(c) and c != "\n"})


async def test_every_kind_of_widget_reaches_the_terminal_without_raw_controls() -> None:
    from textual.app import App
    from textual.containers import VerticalScroll
    from textual.strip import Strip
    from textual.widgets import (
        DataTable,
        Input,
        Label,
        Markdown,
        OptionList,
        RichLog,
        Static,
        TextArea,
        Tree,
    )

    from openmanus_tui.tui import terminal_guard

    class Widgets(App):
        def compose(self):
            with VerticalScroll():
                yield Static(EVIL, markup=False)
                yield Label(EVIL, markup=False)
                yield Markdown(EVIL)
                yield RichLog(id="log")
                yield DataTable(id="table")
                yield Tree(EVIL)
                yield TextArea(EVIL)
                yield Input(EVIL)
                yield OptionList(EVIL)

        def on_mount(self) -> None:
            self.query_one(RichLog).write(EVIL)
            table = self.query_one(DataTable)
            table.add_columns(EVIL)
            table.add_row(EVIL)
            self.notify(EVIL, title=EVIL, markup=False)

    terminal_guard.install()
    app = Widgets()
    async with app.run_test(size=(100, 60), notifications=True) as pilot:
        await pilot.pause()
        strips = list(app.screen._compositor.render_strips())
        # The need: Textual itself passes ESC and C1 through to the terminal.
        unguarded = "".join(terminal_guard._original_render(s, app.console) for s in strips)
        assert "\x1b]0;PWNED" in unguarded and "\x9b" in unguarded
        frame = _frame(app)
        assert _raw_controls(frame) == []
        assert "PWNED" in frame and "SGVsbG8=" in frame  # the text stays, harmless
        assert frame.count("\x1b[") > 10  # Textual's own styling still goes out
    assert terminal_guard.installed() and Strip.render is terminal_guard._guarded_render


async def test_escapes_from_the_model_and_the_task_are_visible_text_in_the_workbench(
    llm_server, monkeypatch, isolated_env: Path,
) -> None:
    from conftest import use_server
    from textual.widgets import DataTable, TextArea
    from textual.widgets._toast import Toast

    from openmanus_tui.tui.screens.approval import ApprovalScreen
    from openmanus_tui.tui.widgets.memory import MemoryPane
    from openmanus_tui.tui.widgets.prompt import PromptInput

    use_server(monkeypatch, llm_server)
    args = {"path": "evil.txt", "content": "x" + EVIL + "\n"}
    llm_server.set_responder([
        Reply(text="Writing " + EVIL, tool_calls=[ToolCallSpec("file_write", args)]),
        Reply(text="done " + EVIL),
    ])
    app = make_app(approval={"mode": "ask"})
    async with app.run_test(size=(140, 45), notifications=True) as pilot:
        await app.ready.wait()
        app.query_one(PromptInput).load_text("task " + EVIL)  # the session's title comes from it
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.armed)
        await pilot.pause()
        shown = screen_text(app)
        assert not has_controls(shown)
        assert "\\x1b]52;c;SGVsbG8=" in shown  # the arguments and the diff, visibly
        assert _raw_controls(_frame(app)) == []
        # The args editor's JSON means the same characters: an edit keeps what the model sent.
        assert json.loads(screen.query_one("#args-editor", TextArea).text) == args
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.status.state == "completed")
        await pilot.pause()
        app.notify("failed: " + EVIL, title=EVIL)  # error text in a toast
        app.notify("failed: [@click=app.quit]retry[/]")  # nor is quoted text read as markup
        await pilot.pause()
        shown = screen_text(app)
        assert not has_controls(shown)
        assert "task \\x1b]0;PWNED" in shown  # the sidebar title
        assert any(n.message == "failed: " + EVIL.replace("\x1b", "\\x1b")
                   .replace("\x9b", "\\u009b") for n in app._notifications)
        await wait_for(pilot, lambda: any("[@click=app.quit]retry[/]" in str(toast.render())
                                          for toast in app.query(Toast)), timeout=5)
        assert _raw_controls(_frame(app)) == []
        # The Memory pane's parts: the task and the model's turns, labelled from their text.
        pane = app.query_one(MemoryPane)
        app.query_one("#panel").active = "tab-memory"
        await wait_for(pilot, lambda: pane.view is not None and len(pane.view.parts) > 3)
        await pilot.pause()
        table = pane.query_one(DataTable)
        labels = [str(table.get_row_at(i)[4]) for i in range(table.row_count)]
        assert any("\\x1b" in label for label in labels)
        assert not any(has_controls(label) for label in labels)
        assert _raw_controls(_frame(app)) == []
        session_id, workspace = app.session.id, Path(app.session.workspace)
    # Approved as sent: the file holds the model's bytes, not the escaped display text.
    assert (workspace / "evil.txt").read_text(encoding="utf-8") == args["content"]

    # The stored session opened again: its events reach the stream from the database.
    app = make_app(approval={"mode": "ask"})
    app.initial_session_id = session_id
    async with app.run_test(size=(100, 40)) as pilot:
        await app.ready.wait()
        await wait_for(pilot, lambda: app.session is not None and "Answer" in screen_text(app))
        shown = screen_text(app)
        assert not has_controls(shown)
        # The task, the model's text, the call's arguments and the answer, visibly.
        assert shown.count("\\x1b]52;c;SGVsbG8=\\x1b\\B") >= 3
        assert _raw_controls(_frame(app)) == []


def _read_until(fd: int, marker: bytes, limit_s: float = 60.0) -> bytes:
    import time

    out = b""
    deadline = time.monotonic() + limit_s
    while marker not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_the_real_workbench_in_a_terminal_writes_no_raw_escape(isolated_env: Path) -> None:
    """A renamed session title and a memory note full of escapes; the workbench started by the
    ``openmanus`` command in a pseudo-terminal; the bytes it writes are checked."""
    import asyncio

    from openmanus_tui.config import load_settings
    from openmanus_tui.runtime.session import Runtime

    workspace = isolated_env / "ws"
    workspace.mkdir()

    async def seed() -> None:
        async with await Runtime.open(load_settings()) as runtime:
            session = await runtime.create_session(model="scripted:demo", workspace=workspace)
            await runtime.rename_session(session.id, EVIL)
            await session.memory.save("note " + EVIL, scope="project")

    asyncio.run(seed())
    pid, fd = pty.fork()
    if pid == 0:  # the child: the workbench on the newest session
        os.environ.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
        os.execv(sys.executable, [sys.executable, "-m", "openmanus_tui", "--last",
                                  "--workspace", str(workspace)])
    try:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        # The sidebar shows the title once the sessions are loaded (raw, before the fix).
        out = _read_until(fd, b"PWNED")
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
    assert b"PWNED" in out, out[-2000:]
    assert [raw for raw in RAW if raw in out] == []
    assert b"\\x1b]0;PWNED" in out  # shown as text
