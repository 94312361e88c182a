"""The runtime's promises through the real ``openmanus`` command at a (pseudo-)terminal: a fork
asks each approval once, a kill or Ctrl+C at a prompt approves nothing and resumes where it
stopped, one run per session at a time, the task survives a kill right after it started, the
session's approval mode is remembered, and a run with nobody to ask pauses (exit 4).

Calls go to ``tally`` (``tests/tally_tool.py``), which appends to a file: its lines count runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from cli_tty import TtyRun
from conftest import cli, json_events, run_cli
from openai_server import OpenAITestServer, Reply, ToolCallSpec
from tally_tool import (
    LAUNCHER,
    approve_all,
    open_ask_runtime,
    tallies,
    tally_script,
    task_responder,
)

SCRIPTS = {
    "count A": tally_script("A"),
    "list please": [Reply(tool_calls=[ToolCallSpec("list_files", {})]), Reply(text="listed")],
}


@pytest.fixture
def server(tally_server: OpenAITestServer) -> OpenAITestServer:
    tally_server.set_responder(task_responder(SCRIPTS))
    return tally_server


async def finished_session() -> tuple[str, str]:
    """A session that ran "count A" (both calls approved); returns (id, its first model step
    with a call)."""
    async with await open_ask_runtime() as runtime:
        session = await runtime.create_session()
        assert (await session.run("count A", approver=approve_all)).final_answer == "done A"
        tree = await session.history.tree()
        first = next(c for c in tree.lineage(tree.current) if tree.nodes[c].kind == "tool_call")
    assert tallies() == ["A1", "A2"]
    return session.id, first


async def paused_session() -> str:
    """A session paused at its first approval (nobody answered)."""
    async with await open_ask_runtime() as runtime:
        session = await runtime.create_session()
        assert (await session.run("count A", approver=None)).status == "awaiting_approval"
    return session.id


# Reading the outcome back needs no process of its own (the runs under test have theirs).
def status_of(session_id: str) -> str:
    listed = cli("sessions", "list", "--json")
    rows = {r["id"]: r for r in map(json.loads, listed.stdout.splitlines())}
    return str(rows[session_id]["status"])


def heads(session_id: str) -> int:
    tree = json.loads(cli("sessions", "tree", session_id, "--json").stdout)
    return len(tree["heads"])


async def test_fork_run_at_a_terminal_asks_each_call_once(server: OpenAITestServer,
                                                          tmp_path: Path) -> None:
    """Issue 11's reproduction: ``OPENMANUS_APPROVAL__MODE=ask openmanus fork ID --at CP
    --run``, answer approve: each call is asked once, runs once, the run completes."""
    session_id, first = await finished_session()
    before = heads(session_id)
    run = TtyRun("fork", session_id, "--at", first, "--run", logs=tmp_path / "fork",
                 env={"OPENMANUS_APPROVAL__MODE": "ask"})
    run.wait_prompt(1)
    run.type("approve")
    run.wait_prompt(2)
    run.type("approve")
    assert run.wait() == 0, run.stderr[-3000:]
    assert run.prompts() == 2
    assert tallies() == ["A1", "A2", "A1", "A2"]
    assert heads(session_id) == before + 1
    assert status_of(session_id) == "completed"


async def test_kill_at_an_approval_then_resume_asks_only_what_is_pending(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    session_id, first = await finished_session()
    run = TtyRun("fork", session_id, "--at", first, "--run", "--approval", "ask",
                 logs=tmp_path / "fork")
    run.wait_prompt(1)
    run.type("approve")
    run.wait_prompt(2)
    run.kill()
    run.close()
    assert tallies() == ["A1", "A2", "A1"]
    assert status_of(session_id) == "interrupted"  # not "running": its process is gone

    # No --approval: the session's own mode (ask) is used; only the second call is asked.
    again = TtyRun("resume", session_id, logs=tmp_path / "resume")
    again.wait_prompt(1)
    again.type("approve")
    assert again.wait() == 0, again.stderr[-3000:]
    assert again.prompts() == 1
    assert tallies() == ["A1", "A2", "A1", "A2"]
    assert status_of(session_id) == "completed"


async def test_ctrl_c_at_the_approval_prompt_stops_cleanly(server: OpenAITestServer,
                                                           tmp_path: Path) -> None:
    session_id = await paused_session()
    run = TtyRun("resume", session_id, logs=tmp_path / "resume")
    run.wait_prompt(1)
    run.interrupt()
    assert run.wait() == 130, run.stderr[-3000:]
    assert "Interrupted" in run.stdout + run.stderr
    assert run.prompts() == 1  # no second prompt reading the next line as an answer
    assert tallies() == []  # nothing approved
    assert status_of(session_id) == "cancelled"

    again = TtyRun("resume", session_id, logs=tmp_path / "again")
    again.wait_prompt(1)
    again.type("approve")
    again.wait_prompt(2)
    again.type("approve")
    assert again.wait() == 0, again.stderr[-3000:]
    assert tallies() == ["A1", "A2"]


async def test_a_second_run_of_a_busy_session_is_refused(server: OpenAITestServer,
                                                         tmp_path: Path) -> None:
    session_id = await paused_session()
    first = TtyRun("resume", session_id, logs=tmp_path / "first")
    first.wait_prompt(1)  # the first resume holds the session, waiting at its prompt
    second = run_cli("resume", session_id, "--approval", "yolo")
    assert second.returncode == 2, second.stderr
    assert f"session {session_id} is busy" in second.stderr
    assert "Traceback" not in second.stderr
    assert status_of(session_id) == "running"  # the first run is alive
    first.type("approve")
    first.wait_prompt(2)
    first.type("approve")
    assert first.wait() == 0, first.stderr[-3000:]
    assert tallies() == ["A1", "A2"]


# The run kills itself right after its run_started event is handed to listeners.
KILL_AFTER_RUN_STARTED = """
import os, signal
from openmanus_tui.runtime.sink import EventSink
_emit = EventSink.emit
async def emit(self, event):
    out = await _emit(self, event)
    if event.type == "run_started" and not os.environ.get("DONE_ONCE"):
        os.kill(os.getpid(), signal.SIGKILL)
    return out
EventSink.emit = emit
""" + LAUNCHER


async def test_kill_right_after_run_started_keeps_the_task(server: OpenAITestServer) -> None:
    import subprocess

    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_RUN_STARTED, "run", "count A", "--json",
         "--approval", "yolo"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert [e["type"] for e in json_events(killed.stdout)][-1] == "run_started"
    session_id = json.loads(cli("sessions", "list", "--json").stdout.splitlines()[0])["id"]
    assert status_of(session_id) == "interrupted"

    # A looser mode than the configured one (auto) is never taken from the session: say it.
    resumed = subprocess.run(
        [sys.executable, "-c", LAUNCHER, "resume", session_id, "--json", "--approval", "yolo"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    events = json_events(resumed.stdout)
    assert [e["text"] for e in events if e["type"] == "final_answer"] == ["done A"]
    assert tallies() == ["A1", "A2"]  # each ran once
    assert status_of(session_id) == "completed"
    assert server.requests[-1]["messages"][1]["content"] == "count A"


async def test_resume_remembers_ask_and_pauses_without_a_terminal(server: OpenAITestServer,
                                                                  tmp_path: Path) -> None:
    """No terminal: the run pauses at the call (exit 4) instead of denying it and finishing;
    ``resume`` keeps the session's ``ask`` (the default config says ``auto``, which would run
    the read-only call unasked); a resume at a terminal asks it."""
    paused = run_cli("run", "list please", "--approval", "ask")
    assert paused.returncode == 4, paused.stderr
    assert "Paused" in paused.stderr + paused.stdout
    session_id = json.loads(cli("sessions", "list", "--json").stdout.splitlines()[0])["id"]
    assert status_of(session_id) == "awaiting_approval"

    still = run_cli("resume", session_id, "--json")
    assert still.returncode == 4, still.stderr
    assert not [e for e in json_events(still.stdout) if e["type"] == "tool_finished"]

    at_terminal = TtyRun("resume", session_id, logs=tmp_path / "tty")
    at_terminal.wait_prompt(1)
    at_terminal.type("approve")
    assert at_terminal.wait() == 0, at_terminal.stderr[-3000:]
    stored = json_events(cli("sessions", "show", session_id, "--json").stdout)
    assert [(e["tool"], e["status"]) for e in stored if e["type"] == "tool_finished"] == [
        ("list_files", "ok")
    ]
