"""The workbench's branch tree, forks, compare view, replay bar and database size, driven with
Pilot on real sessions (the real runtime, sandbox and scripted model), plus SVG snapshots of
the tree, the compare view and the replay bar from recorded scenes (``tests/scenes/history.py``).

Snapshot tests are plain (sync) functions: ``snap_compare`` runs the app in its own loop.
Update them with ``pytest --snapshot-update`` after checking the SVGs by eye.
"""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from scenes import history as history_scenes
from scenes import workbench as scenes
from textual.widgets import Input, Static, TextArea, Tree
from tui_helpers import type_text, wait_for

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import AgentSession, Runtime
from openmanus_tui.tui import branching
from openmanus_tui.tui.app import OpenManusApp
from openmanus_tui.tui.screens.args_editor import ArgsEditScreen
from openmanus_tui.tui.screens.compare import CompareScreen
from openmanus_tui.tui.screens.dialogs import ConfirmScreen, TextPromptScreen
from openmanus_tui.tui.screens.history import HistoryScreen
from openmanus_tui.tui.transcript import Transcript
from openmanus_tui.tui.widgets.replay import ReplayBar
from openmanus_tui.tui.widgets.status import StatusLine
from openmanus_tui.tui.widgets.stream import StreamView

SIZE = (140, 45)
LONG_STEPS = 120  # LangGraph writes a full snapshot of the messages every 200 updates
SCRIPT = {
    "steps": [{"text": "Writing the file.",
               "tool_calls": [{"name": "shell_exec", "args": {"command": "printf one > a.txt"}}]}],
    "final": "The file is written.",
}


@pytest.fixture
def fixed_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    # Snapshots only: the sandbox level depends on the machine; the recorded scenes say L2.
    # (The interaction tests keep the real probe: it also creates the session's workspace
    # before the first run's start snapshot, as in the real app.)
    monkeypatch.setattr(AgentSession, "isolation", lambda self: "L2")


def scripted_app(tmp: Path) -> OpenManusApp:
    script = tmp / "write.json"
    script.write_text(json.dumps(SCRIPT))
    settings = load_settings({"approval": {"mode": "yolo"},
                              "model": {"provider": "scripted", "name": str(script)}})
    return OpenManusApp(settings, blink=False)


async def runs_done(app: OpenManusApp, pilot, count: int, timeout: float = 60.0) -> None:
    """Until the session has ``count`` finished runs and the app is idle again (a scripted run
    can finish before a test could see it start)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        finished = 0
        if app.session is not None:
            finished = len(await app.runtime.db.events(app.session.id, types=["run_finished"]))
        if finished >= count and idle_screen(app)():
            break
        assert loop.time() < deadline, f"timed out waiting for run {count}"
        await pilot.pause(0.05)
    assert finished == count


async def run_and_wait(app: OpenManusApp, pilot, text: str) -> None:
    await pilot.click("#prompt")
    await type_text(pilot, text)
    await pilot.press("enter")
    await runs_done(app, pilot, 1)


async def open_tree_at(app: OpenManusApp, pilot, pick: Callable[[object], bool]) -> HistoryScreen:
    """Open the tree with Ctrl+T and put the cursor on the first step ``pick`` accepts."""
    await pilot.press("ctrl+t")
    await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen)
                   and app.screen.tree_data is not None)
    screen = app.screen
    assert isinstance(screen, HistoryScreen) and screen.tree_data is not None
    node = next(n for n in sorted(screen.tree_data.nodes.values(), key=lambda n: n.seq)
                if pick(n))
    assert screen.select(node.checkpoint_id)
    await pilot.pause()
    return screen


def plain(widget: Static) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=120, file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


def shown(app: OpenManusApp) -> Transcript:
    return app.query_one(StreamView).transcript


def commands_shown(app: OpenManusApp) -> list[str]:
    t = shown(app)
    return [t.calls[b.call_id].args["command"] for b in t.blocks
            if b.kind == "action" and t.calls[b.call_id].tool == "shell_exec"]


def idle_screen(app: OpenManusApp) -> Callable[[], bool]:
    return lambda: not app.run_in_progress() and not isinstance(app.screen, HistoryScreen) \
        and not any(w.group == "history" and w.is_running for w in app.workers)


async def test_fork_edited_args_then_switch_restores_files(isolated_env: Path) -> None:
    app = scripted_app(isolated_env)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await run_and_wait(app, pilot, "make a file")
        workspace = app.session.workspace
        assert (workspace / "a.txt").read_text() == "one"
        main_head = (await app.session.history.tree()).current

        # The tree: one level for a linear run, the current step marked.
        screen = await open_tree_at(app, pilot, lambda n: n.kind == "tool_call")
        tree_widget = screen.query_one("#history-tree", Tree)
        assert all(not node.children for node in tree_widget.root.children)
        current_line = next(n for n in tree_widget.root.children if n.data == main_head)
        assert "← current" in str(current_line.label) and "◆ head" in str(current_line.label)

        # Fork: edit the tool call's arguments; a bad edit is refused in place.
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ArgsEditScreen))
        editor = app.screen.query_one(TextArea)
        assert json.loads(editor.text) == {"command": "printf one > a.txt"}
        editor.load_text(json.dumps({"timeout": 5}))  # "command" is required
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ArgsEditScreen)
        assert "command" in str(app.screen.query_one("#args-edit-error").content)
        editor.load_text(json.dumps({"command": "printf two > a.txt"}))
        await pilot.press("ctrl+s")
        await runs_done(app, pilot, 2)
        assert (workspace / "a.txt").read_text() == "two"
        tree = await app.session.history.tree()
        assert len(tree.heads) == 2 and tree.current != main_head
        fork_head = tree.current
        assert any(n.kind == "fork" for n in tree.nodes.values())
        # The stream shows the new branch: the original call, then the edited one ran.
        assert commands_shown(app) == ["printf one > a.txt"]
        ran = [c.args_ran or c.args for c in shown(app).calls.values()]
        assert {"command": "printf two > a.txt"} in ran
        assert [b.kind for b in shown(app).blocks].count("answer") == 1

        # Switch back to the first branch: files and stream follow.
        await open_tree_at(app, pilot, lambda n: n.checkpoint_id == main_head)
        await pilot.press("s")
        await wait_for(pilot, idle_screen(app))
        await wait_for(pilot, lambda: (workspace / "a.txt").read_text() == "one")
        assert app.session.head == main_head
        assert all(c.args == {"command": "printf one > a.txt"} and c.status == "ok"
                   for c in shown(app).calls.values())
        assert shown(app).blocks[-1].kind == "answer"

        # A file changed outside the agent: switching asks, and "cancel" keeps it.
        (workspace / "a.txt").write_text("changed by a person")
        await open_tree_at(app, pilot, lambda n: n.checkpoint_id == fork_head)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "a.txt" in app.screen.question
        await click_landed(pilot, "#cancel")
        await wait_for(pilot, idle_screen(app))
        assert (workspace / "a.txt").read_text() == "changed by a person"
        assert app.session.head == main_head
        await open_tree_at(app, pilot, lambda n: n.checkpoint_id == fork_head)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await click_landed(pilot, "#confirm")
        await wait_for(pilot, idle_screen(app))
        await wait_for(pilot, lambda: (workspace / "a.txt").read_text() == "two")
        assert app.session.head == fork_head

        # Reopening the session shows its current branch, not every branch's events.
        await app.open_session(app.session.id)
        ran = [c.args_ran or c.args for c in shown(app).calls.values()]
        assert {"command": "printf two > a.txt"} in ran
        assert [b.kind for b in shown(app).blocks].count("answer") == 1


async def test_fork_edited_message_and_retry_from_the_tree(isolated_env: Path) -> None:
    app = scripted_app(isolated_env)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await run_and_wait(app, pilot, "make a file")

        # Edit the user message: the prompt comes prefilled with it.
        await open_tree_at(app, pilot, lambda n: n.kind == "tool_call")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        field = app.screen.query_one(Input)
        assert field.value == "make a file"
        field.value = "make another file"
        await pilot.press("enter")
        await runs_done(app, pilot, 2)
        tree = await app.session.history.tree()
        assert len(tree.heads) == 2
        labels = [tree.nodes[c].label for c in tree.lineage(tree.current)]
        assert "› make another file" in labels
        users = [b.text for b in shown(app).blocks if b.kind == "user"]
        assert users == ["make another file"]  # the replaced message is not shown
        assert shown(app).blocks[-1].kind == "answer"

        # The tree now opens a level at the fork.
        screen = await open_tree_at(app, pilot, lambda n: n.kind == "thought")
        tree_widget = screen.query_one("#history-tree", Tree)
        assert any(node.children for node in tree_widget.root.children)

        # Retry the model's last reply: a third branch, run live.
        await pilot.press("r")
        await runs_done(app, pilot, 3)
        tree = await app.session.history.tree()
        assert len(tree.heads) == 3
        assert [tree.nodes[c].kind for c in tree.lineage(tree.current)][-3:] == [
            "retry", "thought", "answer"]
        assert shown(app).blocks[-1].kind == "answer"
        assert shown(app).run_state == "completed"


async def test_compare_view_shows_both_branches_and_file_diffs(isolated_env: Path) -> None:
    app = scripted_app(isolated_env)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await run_and_wait(app, pilot, "make a file")
        tree = await app.session.history.tree()
        first = tree.current
        call = next(n for n in tree.nodes.values() if n.kind == "tool_call")
        # Two more branches: an edited user message, and edited tool arguments.
        assert await branching.edit_message(app, call.checkpoint_id, "make another file")
        await runs_done(app, pilot, 2)
        other_message = (await app.session.history.tree()).current
        calls = await _tool_calls(app, call.checkpoint_id)
        assert await branching.edit_args(
            app, call.checkpoint_id, {calls[0]["id"]: {"command": "printf 2 > b"}}
        )
        await runs_done(app, pilot, 3)
        other_args = (await app.session.history.tree()).current

        # Mark the first head as A (m), compare with the edited message's head (c).
        screen = await open_tree_at(app, pilot, lambda n: n.checkpoint_id == first)
        await pilot.press("m")
        assert screen.marked == first
        assert "[A]" in str(screen.query_one("#history-tree", Tree).cursor_node.label)
        screen.select(other_message)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = app.screen
        assert (compare.diff.head_a, compare.diff.head_b) == (first, other_message)
        side_a = plain(compare.query_one("#compare-a-messages"))
        side_b = plain(compare.query_one("#compare-b-messages"))
        assert "user  make a file" in side_a and "make another file" not in side_a
        assert "user  make another file" in side_b
        for side in (side_a, side_b):  # the tool call, its result and the answer, per side
            assert "→ shell_exec" in side and "printf one > a.txt" in side
            assert "tool shell_exec [success]" in side
            assert "final answer: The file is written." in side
        assert "same workspace files" in plain(compare.query_one("#compare-files-body"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, CompareScreen))

        # Nothing marked: the selected step against the current branch (the edited arguments).
        await open_tree_at(app, pilot, lambda n: n.checkpoint_id == first)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        diff = app.screen.diff
        assert (diff.head_a, diff.head_b) == (other_args, first)
        assert {f.path: f.status for f in diff.files} == {"a.txt": "added", "b": "deleted"}
        files = plain(app.screen.query_one("#compare-files-body"))
        assert "added  a.txt" in files and "deleted  b" in files
        assert "+one" in files and "-2" in files


async def _tool_calls(app: OpenManusApp, checkpoint_id: str) -> list[dict]:
    state = await app.runtime.graph.aget_state(app.session.history.at(checkpoint_id))
    return state.values["tool_calls"]


def event_rows(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "openmanus.db") as db:
        return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def stepping(bar: ReplayBar) -> bool:
    """A Step is still going: it pauses between checkpoints that show nothing and goes on, so
    "paused" alone can be read mid-step."""
    return any(w.group == "replay-control" and w.is_running for w in bar.app.workers)


async def test_replay_bar_steps_and_plays_the_stored_events(isolated_env: Path) -> None:
    settings = load_settings({"approval": {"mode": "yolo"}})
    app = OpenManusApp(settings, blink=False)  # the offline demo model
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await run_and_wait(app, pilot, "demo")
        live_blocks = [(b.kind, b.text) for b in shown(app).blocks]
        stored = await app.session.history.recorded(None)
        stats_before = {n: s.calls for n, s in app.runtime.registry.stats.items()}
        rows_before = event_rows(isolated_env / "data")
        files_before = sorted(p.name for p in app.session.workspace.iterdir())

        app.run_slash("/replay")
        await wait_for(pilot, lambda: bool(app.query(ReplayBar)))
        bar = app.query_one(ReplayBar)
        await wait_for(pilot, lambda: bar.running)
        assert bar.emitted == [] and shown(app).blocks == []
        assert app.run_in_progress()  # no task starts while a replay is open

        # Step: up to the next checkpoint that follows something visible, then pause.
        bar.set_speed(4)  # max
        app.clear_notifications()  # a toast over the bar would take the click
        await pilot.click("#replay-step")
        await wait_for(pilot, lambda: bar.emitted and bar.replayer.paused and not stepping(bar))
        await pilot.pause()
        first = len(bar.emitted)
        assert isinstance(stored[first], ev.Checkpoint)
        assert [b.kind for b in shown(app).blocks] == ["notice", "user"]
        app.clear_notifications()  # a toast over the bar would take the click
        await pilot.click("#replay-step")
        await wait_for(
            pilot, lambda: len(bar.emitted) > first and bar.replayer.paused and not stepping(bar)
        )
        await pilot.pause()
        assert bar.emitted == stored[: len(bar.emitted)]
        assert isinstance(stored[len(bar.emitted)], ev.Checkpoint)
        assert [b.kind for b in shown(app).blocks] == ["notice", "user", "thought", "action"]
        # Steps are named by the tree's numbers (1, 2, 3… across branches), not LangGraph's.
        numbers = {cid: n.step for cid, n in (await app.session.history.tree()).nodes.items()}
        last_step = numbers[[e.checkpoint_id for e in bar.emitted
                             if isinstance(e, ev.Checkpoint)][-1]]
        assert f"at step {last_step} ·" in str(bar.query_one("#replay-progress").render())
        # The status line tells a paused replay from a run (the replayed run has started).
        assert str(app.query_one(StatusLine).render()).startswith(" replay paused ")

        # Jump to a step: the stream is rebuilt up to it.
        call_checkpoint = next(e.checkpoint_id for e in stored
                               if isinstance(e, ev.Checkpoint) and e.nodes == ["call_tool"])
        jump = bar.query_one("#replay-jump", Input)
        jump.value = str(numbers[call_checkpoint])
        jump.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: bar.emitted and bar.emitted[-1].type == "checkpoint"
                       and bar.emitted[-1].checkpoint_id == call_checkpoint)
        assert any(b.kind == "observation" for b in shown(app).blocks)

        # Play to the end: exactly the stored events, and the same stream as the live run.
        app.clear_notifications()  # a toast over the bar would take the click
        await pilot.click("#replay-play")
        await wait_for(pilot, lambda: bar.finished)
        await pilot.pause(0.2)
        assert bar.emitted == stored
        assert [(b.kind, b.text) for b in shown(app).blocks] == live_blocks
        assert not app.run_in_progress()
        # No model or tool call happened, nothing was stored, the files are untouched.
        assert {n: s.calls for n, s in app.runtime.registry.stats.items()} == stats_before
        assert event_rows(isolated_env / "data") == rows_before
        assert sorted(p.name for p in app.session.workspace.iterdir()) == files_before

        # Play again from the start, at full speed, then close: the session's branch is back.
        app.clear_notifications()  # a toast over the bar would take the click
        await pilot.click("#replay-play")
        await wait_for(pilot, lambda: bar.finished and len(bar.emitted) == len(stored))
        assert bar.emitted == stored
        app.clear_notifications()  # a toast over the bar would take the click
        await pilot.click("#replay-close")
        await wait_for(pilot, lambda: not app.query(ReplayBar))
        assert [(b.kind, b.text) for b in shown(app).blocks] == live_blocks
        assert str(app.query_one(StatusLine).render()).startswith(" completed ")


async def test_palette_tree_and_live_replay_makes_a_branch(isolated_env: Path) -> None:
    app = scripted_app(isolated_env)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await run_and_wait(app, pilot, "make a file")
        # The palette and /tree open the tree.
        await pilot.press("ctrl+p")
        await pilot.press(*"branches")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HistoryScreen))
        app.run_slash("/tree")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("escape")

        app.run_slash("/replay live")
        await runs_done(app, pilot, 2)
        tree = await app.session.history.tree()
        assert len(tree.heads) == 2
        assert "retry" in [tree.nodes[c].kind for c in tree.lineage(tree.current)]
        assert shown(app).blocks[-1].kind == "answer"


async def click_landed(pilot, selector: str) -> None:
    """Click a dialog's button once it is laid out: a click sent before the new screen's first
    layout lands elsewhere and is lost (seen on a loaded machine). ``click`` says whether it
    landed on the button; one that did not changed nothing, so it is sent again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not await pilot.click(selector):
        assert loop.time() < deadline, f"{selector} never took a click"
        await pilot.pause(0.05)


async def test_database_size_and_prune(isolated_env: Path) -> None:
    # A long session (built without the TUI, for speed): enough steps for LangGraph to write a
    # full snapshot of the messages, so that older checkpoints can go.
    steps = [{"text": f"step {i}", "tool_calls": [{"name": "list_files", "args": {"path": "."}}]}
             for i in range(LONG_STEPS)]
    script = isolated_env / "long.json"
    script.write_text(json.dumps({"steps": steps, "final": "walked"}))
    settings = load_settings({
        "approval": {"mode": "yolo"}, "model": {"provider": "scripted", "name": str(script)},
        "agent": {"max_steps": LONG_STEPS + 5, "repeat_limit": LONG_STEPS + 5},
    })
    runtime = await Runtime.open(settings)
    session = await runtime.create_session()
    assert (await session.run("walk")).final_answer == "walked"
    app = OpenManusApp(settings, session_id=session.id, runtime=runtime, blink=False)
    try:
        await _prune_from_the_tui(app)
    finally:
        await runtime.close()


async def _wait_for_dialog(pilot, app: OpenManusApp) -> None:
    """The confirmation is up, laid out (a click lands on its buttons) and not covered by a
    toast: a click before that missed on a loaded machine, leaving the dialog open and the
    prune waiting for an answer."""
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen)
                   and app.screen.query("#confirm")
                   and app.screen.query_one("#confirm").region.area > 0)
    app.clear_notifications()
    await pilot.pause()


async def _prune_from_the_tui(app: OpenManusApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await pilot.pause(0.1)
        size = await app.runtime.db.size_bytes()
        footer = str(app.query_one("#db-size").render())
        assert footer == f"database {branching.human_bytes(size)}"

        app.run_slash("/prune 1")
        await _wait_for_dialog(pilot, app)
        assert "last 1 steps" in app.screen.question
        await click_landed(pilot, "#cancel")
        await pilot.pause(0.1)
        tree = await app.session.history.tree()
        assert not any(n.pruned for n in tree.nodes.values())

        app.run_slash("/prune 1")
        await _wait_for_dialog(pilot, app)
        await click_landed(pilot, "#confirm")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        # Pruning rewrites and VACUUMs the database: on a loaded machine more than the usual
        # 30 s hang guard.
        await wait_for(pilot, lambda: not any(w.group == "history" and w.is_running
                                              for w in app.workers), timeout=120)
        tree = await app.session.history.tree()
        assert sum(n.pruned for n in tree.nodes.values()) > len(tree.nodes) // 2
        assert not tree.nodes[tree.current].pruned
        after = await app.runtime.db.size_bytes()
        assert after < size
        assert str(app.query_one("#db-size").render()) == f"database {branching.human_bytes(after)}"
        # The tree shows the pruned steps, and refuses to fork from them.
        screen = await open_tree_at(app, pilot, lambda n: n.pruned and n.kind == "tool_call")
        assert "(pruned)" in str(screen.query_one("#history-tree", Tree).cursor_node.label)
        step = screen.selected
        assert not screen.can("retry", step) and not screen.can("switch", step)
        assert screen.can("replay", step)


# ---- snapshots ----------------------------------------------------------------------------------
def make_snapshot_app() -> OpenManusApp:
    return OpenManusApp(
        load_settings({"ui": {"theme": "openmanus-dark"}}), clock=scenes.FixedClock(),
        wall_clock=lambda: scenes.BASE_TS + 3600, blink=False,
    )


def test_tree_view_snapshot(snap_compare, fixed_isolation: None) -> None:
    assert snap_compare(make_snapshot_app(), terminal_size=(140, 40),
                        run_before=history_scenes.stage_tree)


def test_compare_view_snapshot(snap_compare, fixed_isolation: None) -> None:
    assert snap_compare(make_snapshot_app(), terminal_size=(140, 40),
                        run_before=history_scenes.stage_compare)


def test_replay_bar_snapshot(snap_compare, fixed_isolation: None) -> None:
    assert snap_compare(make_snapshot_app(), terminal_size=(140, 40),
                        run_before=history_scenes.stage_replay)
