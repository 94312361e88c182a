"""The session API (``runtime/api.py``, ``runtime/views.py``) that the CLI and the workbench
both call: the same branch gives the same transcript in both front ends, a killed run reads
interrupted in both, edited arguments are judged by one check, export totals agree with the
workbench's, and the session operations behave.

The front ends are driven through their real paths: ``openmanus`` in-process (``cli.main``,
the parsing and printing a user gets) and the workbench under ``run_test``; the session is
real (SQLite file, scripted model, sandbox), and the killed run is a real ``openmanus run``
process killed with SIGKILL while its tool runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from openmanus_tui import cli
from openmanus_tui import events as ev
from openmanus_tui.cli import render as cli_render
from openmanus_tui.config import load_settings
from openmanus_tui.errors import OpenManusError
from openmanus_tui.runtime import api
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.runtime.views import transcript_of
from openmanus_tui.tools.builtin import build_registry
from openmanus_tui.tui import branching
from openmanus_tui.tui.app import OpenManusApp
from openmanus_tui.tui.screens.approval import ApprovalScreen
from openmanus_tui.tui.screens.args_editor import validate_args
from openmanus_tui.tui.transcript import Transcript
from openmanus_tui.tui.widgets.stream import StreamView


def _script(path: Path, command: str, final: str) -> Path:
    path.write_text(json.dumps({
        "steps": [{"text": f"Running {command}.",
                   "tool_calls": [{"name": "shell_exec", "args": {"command": command}}]}],
        "final": final,
    }))
    return path


def _settings(script: Path) -> Any:
    return load_settings({"approval": {"mode": "yolo"},
                          "model": {"provider": "scripted", "name": str(script)}})


def _view(t: Transcript) -> list[tuple[Any, ...]]:
    """What the stream shows: every block, with its call's status and approval."""
    out = []
    for b in t.blocks:
        rec = t.calls.get(b.call_id) if b.call_id else None
        out.append((b.kind, b.text, b.call_id, rec.status if rec else None,
                    rec.approval if rec else None))
    return out


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert cli.main(list(argv)) == 0
    return capsys.readouterr().out


def _inputs(json_lines: str) -> list[str]:
    events = [ev.parse_event(line) for line in json_lines.splitlines()]
    return [e.input for e in events if isinstance(e, ev.RunStarted) and e.input]


def _kill_during_tool(session_id: str, script: Path, db_path: Path) -> None:
    """``openmanus run`` on the session, SIGKILLed once its tool has started."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "openmanus_tui", "run", "sleep task", "--session", session_id,
         "--model", f"scripted:{script}", "--approval", "yolo", "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with sqlite3.connect(db_path) as db:
                started = db.execute(
                    "SELECT COUNT(*) FROM events WHERE session_id = ? AND type = 'tool_started'"
                    " AND payload LIKE '%sleep 30%'", (session_id,)).fetchone()[0]
            if started:
                break
            assert proc.poll() is None, "openmanus run ended before its tool started"
            assert time.monotonic() < deadline, "the tool never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_cli_and_workbench_show_the_same_branch_transcript(
    isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A session with a message edited on a second branch (the replaced run is dropped) and
    a run killed while its tool ran: ``sessions show`` and the workbench show the same
    transcript, interrupted, with the killed call interrupted rather than running."""
    quick = _script(isolated_env / "quick.json", "printf one", "Done quickly.")
    slow = _script(isolated_env / "slow.json", "sleep 30", "Never reached.")
    settings = _settings(quick)

    async def build() -> str:
        runtime = await Runtime.open(settings)
        try:
            session = await runtime.create_session()
            assert (await session.run("first task")).ok
            tree = await session.history.tree()
            first_input = next(n.checkpoint_id for n in tree.nodes.values() if n.kind == "user")
            await session.history.fork(first_input, message="edited task")
            assert (await session.run("edited task")).ok
            # Continue from the newest step: today a session's pinned head only moves when a
            # run finishes, so a run killed after a fork would sit below a stale head.
            await session.set_head(None)
            return session.id
        finally:
            await runtime.close()

    session_id = asyncio.run(build())
    _kill_during_tool(session_id, slow, settings.db_path)

    # The CLI: the events it prints as JSON, and its human transcript.
    shown = [ev.parse_event(line) for line in
             _cli(capsys, "sessions", "show", session_id, "--json").splitlines()]
    text = _cli(capsys, "sessions", "show", session_id)
    inputs = [e.input for e in shown if isinstance(e, ev.RunStarted) and e.input]
    assert inputs == ["edited task", "sleep task"]  # the replaced run is not on this branch
    assert "[interrupted]" in text and "⊘ shell_exec interrupted" in text
    assert f"openmanus resume {session_id}" in text
    # Another branch by its head's end, and the raw record of every branch.
    first_head = json.loads(_cli(capsys, "sessions", "tree", session_id, "--json"))["heads"][0]
    other = _cli(capsys, "sessions", "show", session_id, "--branch", first_head[-8:], "--json")
    assert _inputs(other) == ["first task"]
    everything = _cli(capsys, "sessions", "show", session_id, "--all", "--json")
    assert _inputs(everything) == ["first task", "edited task", "sleep task"]

    # The workbench, opening the same session.
    async def workbench() -> Transcript:
        app = OpenManusApp(settings, blink=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await app.ready.wait()
            await app.open_session(session_id)
            await pilot.pause()
            return app.query_one(StreamView).transcript

    tui = asyncio.run(workbench())
    assert tui.run_state == "interrupted"
    sleeping = next(r for r in tui.calls.values() if (r.args or {}).get("command") == "sleep 30")
    assert sleeping.status == "interrupted"
    # The same transcript: the workbench's stream equals the CLI's events read the same way.
    from_cli = branching.transcript_from(transcript_of(shown))
    assert _view(tui) == _view(from_cli)
    assert tui.totals.tokens_in > 0
    assert f"{tui.totals.tokens_in:,} tokens in · {tui.totals.tokens_out:,} tokens out" in text
    assert [b.text for b in tui.blocks if b.kind == "user"] == ["edited task", "sleep task"]


def test_export_totals_match_the_workbench(
    isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs in one session: the export's session totals count each model call once, the
    same tokens the workbench's status line shows (the runs' totals were summed running
    totals, counting the first run twice)."""
    settings = _settings(_script(isolated_env / "quick.json", "printf one", "Done."))

    async def build() -> tuple[str, int]:
        runtime = await Runtime.open(settings)
        try:
            session = await runtime.create_session()
            assert (await session.run("one")).ok
            assert (await session.run("two")).ok
            usage = await runtime.db.events(session.id, types=["usage"])
            return session.id, sum(u.tokens_in for u in usage)
        finally:
            await runtime.close()

    session_id, used = asyncio.run(build())
    markdown = _cli(capsys, "export", session_id, "--format", "md")
    totals_row = next(line for line in markdown.splitlines() if line.startswith("| Totals |"))
    assert f"{used:,} tokens in" in totals_row

    async def workbench() -> int:
        app = OpenManusApp(settings, blink=False)
        async with app.run_test(size=(120, 40)):
            await app.ready.wait()
            await app.open_session(session_id)
            return app.status.tokens_in

    assert asyncio.run(workbench()) == used


FILE_WRITE = ev.ApprovalCall(call_id="call_1", tool="file_write",
                             args={"path": "a.txt", "content": "x"}, risk="write", tier=1,
                             reason="write tool in approval mode ask")


def _cli_edit(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
              call: ev.ApprovalCall, edited: str) -> tuple[Any, str]:
    """The CLI approval prompt answered ``edit`` with ``edited`` then ``deny``."""
    answers = iter(["edit", edited, "deny", ""])
    monkeypatch.setattr(cli_render, "_read_line", lambda prompt: next(answers))
    capsys.readouterr()
    decision = cli_render._ask_one(cli_render.Renderer(), build_registry(), call)
    return decision, capsys.readouterr().err


@pytest.mark.parametrize("edited", ['{"path": 3}', "[1, 2]", "{not json"])
def test_edited_arguments_are_judged_alike(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], edited: str
) -> None:
    """The CLI prompt, the approval modal and the edit-arguments dialog refuse the same
    edits with the same line."""
    spec = build_registry().get("file_write")
    modal = ApprovalScreen(FILE_WRITE, args_model=spec.args_model).validate_edit(edited)
    dialog = validate_args(edited, "file_write", spec.args_model)
    decision, err = _cli_edit(monkeypatch, capsys, FILE_WRITE, edited)
    assert modal[0] is None and modal == dialog
    assert decision.decision == "deny"
    assert " ".join(modal[1].split()) in " ".join(err.split())


def test_cli_edit_of_a_call_without_a_schema_needs_an_object(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A call of a tool the registry does not know (no schema): a JSON list as arguments is
    refused with a line, not a traceback."""
    call = FILE_WRITE.model_copy(update={"tool": "gone_tool"})
    decision, err = _cli_edit(monkeypatch, capsys, call, "[1, 2]")
    assert decision.decision == "deny"
    assert "The arguments must be a JSON object." in err


# ---- the rules, on recorded events ------------------------------------------------------
def _run(*events: ev.Event) -> list[ev.Event]:
    return [e.model_copy(update={"seq": i}) for i, e in enumerate(events, 1)]


STARTED = ev.RunStarted(profile="manus", model="scripted:demo", input="go")
TOOL = ev.ToolStarted(call_id="c1", tool="shell_exec", args={"command": "sleep 9"})


def test_a_run_without_its_end_is_interrupted_unless_live() -> None:
    dead = transcript_of(_run(STARTED, TOOL))
    assert dead.state == "interrupted" and dead.interrupted_calls == ["c1"]
    live = transcript_of(_run(STARTED, TOOL), live=True)
    assert live.state == "running" and live.interrupted_calls == []


def test_a_resumed_run_settles_the_interrupted_call() -> None:
    """After a resume the journal reports the cut-off call itself: nothing stays open."""
    events = _run(STARTED, TOOL,
                  ev.RunStarted(profile="manus", model="scripted:demo", resumed=True),
                  ev.ToolFinished(call_id="c1", tool="shell_exec", status="interrupted",
                                  result="interrupted"),
                  ev.RunFinished(status="completed"))
    shown = transcript_of(events)
    assert shown.state == "completed" and shown.interrupted_calls == []


def test_a_cancelled_run_leaves_no_call_running() -> None:
    shown = transcript_of(_run(STARTED, TOOL, ev.RunFinished(status="cancelled")))
    assert shown.state == "cancelled" and shown.interrupted_calls == ["c1"]


def _unique_prefix(target: str, ids: list[str]) -> str:
    """The shortest prefix (past the timestamp) naming ``target`` alone: ids made in the same
    second share their first 16 characters, and a fixed-length prefix can match two."""
    for n in range(17, len(target)):
        if sum(i.startswith(target[:n]) for i in ids) == 1:
            return target[:n]
    return target


# ---- session operations -----------------------------------------------------------------
async def test_rename_delete_copy_and_replay_start(isolated_env: Path) -> None:
    settings = _settings(_script(isolated_env / "quick.json", "printf one", "Done."))
    runtime = await Runtime.open(settings)
    try:
        empty = await runtime.create_session(title="empty")
        with pytest.raises(OpenManusError, match="no steps to copy"):
            await api.copy_branch(empty)
        with pytest.raises(OpenManusError, match="no model step"):
            await api.live_replay_start(empty)
        with pytest.raises(OpenManusError, match="cannot be empty"):
            await runtime.rename_session(empty.id, "   ")

        session = await runtime.create_session()
        assert (await session.run("task")).ok
        ids = [r.id for r in await runtime.list_sessions()]
        renamed = await runtime.rename_session(_unique_prefix(session.id, ids),
                                               "  a   new\ttitle ")
        assert renamed.id == session.id and renamed.title == "a new title"
        assert (await runtime.get_session(session.id)).title == "a new title"

        tree = await session.history.tree()
        start = await api.live_replay_start(session)
        assert tree.nodes[start].node == "call_llm"
        assert start == next(c for c in tree.lineage(tree.current)
                             if tree.nodes[c].node == "call_llm")
        calls = [(c["name"], c["args"]) for c in await api.tool_calls_at(session, start)]
        assert calls == [("shell_exec", {"command": "printf one"})]

        copy = await api.copy_branch(session)
        assert copy.record.parent_checkpoint == tree.current
        def kinds(branch: api.BranchTranscript) -> list[str]:
            return [e.type for e in branch.events if e.type != "checkpoint"]

        assert kinds(await api.branch_transcript(copy)) == kinds(
            await api.branch_transcript(session))

        ids = [r.id for r in await runtime.list_sessions()]
        deleted = await runtime.delete_session(_unique_prefix(empty.id, ids))
        assert deleted.id == empty.id
        assert {r.id for r in await runtime.list_sessions()} == {session.id, copy.id}

        # A deleted session's pins go with it (they are keyed by its id).
        first = (await copy.graph.aget_state(await copy.current_config())).values["messages"][0]
        await copy.pin(first.id)
        await runtime.delete_session(copy.id)
        async with runtime.db.conn.execute(
            "SELECT count(*) FROM memory_pins WHERE session_id = ?", (copy.id,)
        ) as cur:
            assert (await cur.fetchone())[0] == 0
    finally:
        await runtime.close()


def test_reexports_name_the_core_objects() -> None:
    from openmanus_tui.agent.approval import Decision
    from openmanus_tui.store.tree import KIND_STYLE

    assert api.Decision is Decision and api.KIND_STYLE is KIND_STYLE
    for name in api._REEXPORTS:
        assert getattr(api, name) is not None
    with pytest.raises(AttributeError):
        api.no_such_name  # noqa: B018


def test_a_long_final_answer_wraps_inside_its_panel() -> None:
    """The Answer panel wraps its lines (the console soft-wraps everything else: a panel's
    long line used to be cut at the border, losing the end of the answer)."""
    from rich.console import Console

    renderer = cli_render.Renderer()
    renderer.out = Console(width=50, highlight=False, soft_wrap=True, record=True)
    answer = "The city planted 1,200 trees in 2023, according to the parks department [1]."
    renderer(ev.FinalAnswer(text=f"- {answer}"))
    shown = " ".join(line.strip("│ ") for line in renderer.out.export_text().splitlines())
    assert answer in " ".join(shown.split())


async def test_closing_the_runtime_stops_its_sessions_sandbox_helpers(isolated_env: Path) -> None:
    """A session's sandbox may keep a helper process (the mount namespace, as root); closing
    the runtime stops those of every session object still alive, not only the garbage
    collector (a server or a long test run piled them up)."""
    import psutil

    runtime = await Runtime.open(_settings(_script(isolated_env / "q.json", "true", "Done.")))
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    sessions = [await runtime.create_session() for _ in range(3)]
    for session in sessions:
        await session.sandbox().start()  # what its first command does
    started = {p.pid for p in psutil.Process().children(recursive=True)} - before
    if os.geteuid() == 0:
        assert started, "as root each session's sandbox keeps a helper process"
    await runtime.close()
    alive = [p for p in psutil.Process().children(recursive=True) if p.pid in started]
    psutil.wait_procs(alive, timeout=10)
    assert not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert len(sessions) == 3  # the session objects are still alive here
