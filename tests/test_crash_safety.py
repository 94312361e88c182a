"""Crash safety of the runtime: ``openmanus run`` killed with SIGKILL, then ``openmanus resume``.

Each scenario runs the real CLI in a subprocess against the loopback OpenAI server, kills it at
one point of the ReAct loop (mid model reply, mid tool, between steps), then resumes it in a new
process and checks what a user relies on: the run finishes, nothing stored before the kill was
rewritten, the model sees the whole history with every tool call answered, and a tool with side
effects never runs twice. The last test does the same for approvals across runtime restarts.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import check_tool_pairing, json_events, run_cli, use_server
from openai_server import (
    Fault,
    OpenAITestServer,
    Reply,
    ToolCallSpec,
    assistant_turns_since_user,
    script_responder,
)

from openmanus_tui import events as ev
from openmanus_tui.agent.approval import Decision
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.runtime.tool_runner import INTERRUPTED
from openmanus_tui.tools.provenance import unwrap

ANSWER = "all done"
KILL_POINT_TIMEOUT = 20.0  # seconds to reach a kill point; a CLI start takes ~2 s
GATE_TIMEOUT = 15.0  # a held model request gives up after this, so no thread outlives a test

EventRow = tuple[Any, ...]  # (seq, run_id, checkpoint_id, type, call_id, ts, payload)

# Run inside the ``openmanus run`` process for the kill points no outside observer can hit on
# time: the process SIGKILLs itself around LangGraph's commit of the tool step's writes, i.e.
# after ``tool_finished`` is stored and before the checkpoint that ends the step. Our saver
# writes them itself (one trip to the database thread, store/db.py), so its method is wrapped.
SELF_KILL_HOOK = """
import os, signal, sys
from openmanus_tui.store.db import _EventAwareSaver as AsyncSqliteSaver

_put_writes = AsyncSqliteSaver.aput_writes
WHEN = os.environ["CRASH_TEST_KILL"]

async def aput_writes(self, config, writes, task_id, task_path=""):
    # Only call_tool writes results; a run's input writes an empty list to reset them.
    tool_step = any(channel == "tool_results" and value for channel, value in writes)
    if tool_step and WHEN == "before_writes":
        os.kill(os.getpid(), signal.SIGKILL)
    await _put_writes(self, config, writes, task_id, task_path)
    if tool_step and WHEN == "after_writes":
        os.kill(os.getpid(), signal.SIGKILL)

AsyncSqliteSaver.aput_writes = aput_writes
from openmanus_tui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _terminate() -> Reply:
    return Reply(tool_calls=[ToolCallSpec("terminate", {"answer": ANSWER})])


def _shell(command: str) -> Reply:
    return Reply(tool_calls=[ToolCallSpec("shell_exec", {"command": command}, id="call_shell")])


# ---- reading the database the way an outside observer would -----------------------------------
def _db_path() -> Path:
    return Path(os.environ["OPENMANUS_DATA_DIR"]) / "openmanus.db"


def _query(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read-only query; [] while the database or its tables do not exist yet."""
    path = _db_path()
    if not path.exists():
        return []
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # the schema is being created
        return []
    finally:
        conn.close()


def _event_rows() -> dict[int, EventRow]:
    rows = _query("SELECT seq, run_id, checkpoint_id, type, call_id, ts, payload FROM events "
                  "ORDER BY seq")
    return {row[0]: row for row in rows}


def _rows_of(rows: dict[int, EventRow], kind: str, call_id: str | None = None) -> list[EventRow]:
    return [r for r in rows.values() if r[3] == kind and (call_id is None or r[4] == call_id)]


def _parsed(row: EventRow) -> Any:
    return ev.parse_event(row[6])


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# ---- driving the CLI ---------------------------------------------------------------------------
@dataclass
class Crash:
    """What a scenario observed: the stored events at the kill, the resume's outcome."""

    session_id: str
    before: dict[int, EventRow]
    after: dict[int, EventRow]
    requests_at_kill: int
    resume: subprocess.CompletedProcess[str]
    workspace: Path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; any still alive at the end (a failed test) are killed."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _wait_until(what: str, condition: Callable[[], bool], proc: subprocess.Popen[bytes],
                logs: Path) -> None:
    deadline = time.monotonic() + KILL_POINT_TIMEOUT
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n"
                        f"{(logs / 'stderr.txt').read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def _crash_and_resume(server: OpenAITestServer, workspace: Path,
                      procs: list[subprocess.Popen[bytes]], kill_when: str,
                      condition: Callable[[], bool] | None, *,
                      after_kill: Callable[[], None] | None = None,
                      self_kill: str | None = None) -> Crash:
    """Start ``openmanus run``, SIGKILL it when ``condition`` holds (or let the ``self_kill``
    hook kill it from inside), then ``openmanus resume`` it in a new process."""
    logs = workspace.parent
    if self_kill is None:
        program = ["-m", "openmanus_tui"]
        env = dict(os.environ)
    else:
        program = ["-c", SELF_KILL_HOOK]
        env = {**os.environ, "CRASH_TEST_KILL": self_kill}
    with (logs / "stdout.txt").open("wb") as out, (logs / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, *program, "run", "make the marker", "--json",
             "--approval", "yolo", "--workspace", str(workspace)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
        )
    procs.append(proc)
    if condition is not None:
        _wait_until(kill_when, condition, proc, logs)
        proc.send_signal(signal.SIGKILL)
    try:
        code = proc.wait(timeout=KILL_POINT_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the run did not die at {kill_when}")
    requests_at_kill = server.request_count
    assert code == -signal.SIGKILL, (logs / "stderr.txt").read_text()[-3000:]
    if after_kill is not None:
        after_kill()

    sessions = _query("SELECT id, status FROM sessions")
    assert len(sessions) == 1
    session_id, status = sessions[0]
    assert status == "running"  # nothing got the chance to record an end
    before = _event_rows()
    assert before, "no events were stored before the kill"

    resume = run_cli("resume", session_id, "--json", timeout=60)
    assert resume.returncode == 0, resume.stderr[-3000:]
    return Crash(session_id, before, _event_rows(), requests_at_kill, resume, workspace)


def _check_common(crash: Crash, server: OpenAITestServer) -> None:
    """The invariants every kill point must keep."""
    # The resumed run finished with the model's answer.
    events = json_events(crash.resume.stdout)
    assert [e["text"] for e in events if e["type"] == "final_answer"] == [ANSWER]
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "completed"
    assert _query("SELECT status FROM sessions") == [("completed",)]

    # What was stored before the kill is still there, unchanged; new events come after it.
    for seq, row in crash.before.items():
        assert crash.after.get(seq) == row, f"event {seq} changed or vanished after the resume"
    assert sorted(crash.after) == list(range(1, len(crash.after) + 1))
    assert min(set(crash.after) - set(crash.before)) == max(crash.before) + 1

    # The last request carried the whole conversation, each earlier request being a prefix of
    # it, and met the API's pairing rule for tool calls and results.
    requests = server.requests
    last = requests[-1]["messages"]
    check_tool_pairing(last)
    for i, earlier in enumerate(requests[:-1]):
        sent = earlier["messages"]
        assert last[: len(sent)] == sent, f"request {i + 1}'s history is not kept in the last one"
    assert [m["role"] for m in last[:2]] == ["system", "user"]
    assert last[1]["content"] == "make the marker"


def _tool_message(messages: list[dict[str, Any]], call_id: str) -> dict[str, Any]:
    found = [m for m in messages if m.get("role") == "tool" and m.get("tool_call_id") == call_id]
    assert len(found) == 1, f"{len(found)} tool results for {call_id}"
    return found[0]


# ---- the kill points ---------------------------------------------------------------------------
def test_kill_during_streamed_model_reply(llm_server, monkeypatch, workspace, started):
    """(a) SIGKILL while the second model reply is streaming (headers sent, tokens held)."""
    use_server(monkeypatch, llm_server)
    llm_server.set_responder([_shell("echo ran >> marker.txt"), _terminate()])
    llm_server.add_fault(Fault("slow_first_token", delay_s=0))  # request 1: a no-op fault
    llm_server.add_fault(Fault("slow_first_token", delay_s=30))  # request 2: held until killed

    def in_second_reply() -> bool:
        # The server records a request before it sends the headers; give it a moment to send
        # them so the client is reading the stream when it dies.
        if llm_server.request_count < 2:
            return False
        time.sleep(0.2)
        return True

    crash = _crash_and_resume(llm_server, workspace, started, "the second model request",
                              in_second_reply)
    _check_common(crash, llm_server)
    assert crash.requests_at_kill == 2
    assert llm_server.records[1].fault is not None
    assert llm_server.records[1].fault.kind == "slow_first_token"
    # The step that finished before the kill is not redone: one run of the tool, one journal
    # entry, and the resumed request is the interrupted one sent again.
    assert _lines(workspace / "marker.txt") == ["ran"]
    assert len(_rows_of(crash.after, "tool_started", "call_shell")) == 1
    assert llm_server.request_count == 3
    assert llm_server.requests[2]["messages"] == llm_server.requests[1]["messages"]


def test_kill_while_tool_runs(llm_server, monkeypatch, workspace, started):
    """(b) SIGKILL while ``shell_exec`` sleeps: on resume the tool is reported as interrupted
    to the model and is not run a second time."""
    use_server(monkeypatch, llm_server)
    llm_server.set_responder([_shell("echo started >> marker.txt; sleep 5"), _terminate()])
    marker = workspace / "marker.txt"

    def tool_running() -> bool:
        return bool(_rows_of(_event_rows(), "tool_started")) and _lines(marker) == ["started"]

    crash = _crash_and_resume(llm_server, workspace, started, "the tool to start", tool_running)
    _check_common(crash, llm_server)
    assert crash.requests_at_kill == 1
    assert not _rows_of(crash.before, "tool_finished")

    time.sleep(0.2)  # a second run would have appended at once; the sleep is in the way
    assert _lines(marker) == ["started"]
    assert len(_rows_of(crash.after, "tool_started", "call_shell")) == 1
    finished = [_parsed(r) for r in _rows_of(crash.after, "tool_finished", "call_shell")]
    assert [(f.status, f.result) for f in finished] == [("interrupted", INTERRUPTED)]

    last = llm_server.requests[-1]["messages"]
    assert _tool_message(last, "call_shell")["content"] == INTERRUPTED
    assert llm_server.request_count == 2


def _held_second_call(gate: threading.Event) -> Callable[[dict[str, Any]], Reply]:
    """The shell-then-terminate script, holding the second model call until ``gate`` is set so
    that a kill lands before any reply to it even when the process got that far."""
    script = script_responder([_shell("echo ran >> marker.txt"), _terminate()])

    def respond(body: dict[str, Any]) -> Reply:
        if assistant_turns_since_user(body.get("messages") or []) == 1:
            gate.wait(GATE_TIMEOUT)
        return script(body)

    return respond


def _check_tool_ran_once(crash: Crash, server: OpenAITestServer) -> None:
    assert _lines(crash.workspace / "marker.txt") == ["ran"]
    assert len(_rows_of(crash.after, "tool_started", "call_shell")) == 1
    finished = [_parsed(r) for r in _rows_of(crash.after, "tool_finished", "call_shell")]
    assert [f.status for f in finished] == ["ok"]
    last = server.requests[-1]["messages"]
    # The model gets the result inside untrusted-output delimiters (tools/provenance.py).
    assert unwrap(_tool_message(last, "call_shell")["content"]) == finished[0].result


def test_kill_between_steps(llm_server, monkeypatch, workspace, started):
    """(c) SIGKILL after the tool step is stored (``tool_finished`` and the step's checkpoint),
    before the next model reply."""
    use_server(monkeypatch, llm_server)
    gate = threading.Event()
    llm_server.set_responder(_held_second_call(gate))

    def step_stored() -> bool:
        rows = _event_rows()
        done = _rows_of(rows, "tool_finished")
        return bool(done) and any(
            seq > done[0][0] and _parsed(r).nodes == ["call_tool"]
            for seq, r in rows.items() if r[3] == "checkpoint")

    try:
        crash = _crash_and_resume(llm_server, workspace, started, "the tool step's checkpoint",
                                  step_stored, after_kill=gate.set)
    finally:
        gate.set()
    _check_common(crash, llm_server)
    assert crash.requests_at_kill in (1, 2)  # 1: killed before the next request was sent
    _check_tool_ran_once(crash, llm_server)


@pytest.mark.parametrize("when", ["before_writes", "after_writes"])
def test_kill_inside_tool_step_commit(llm_server, monkeypatch, workspace, started, when):
    """(c) SIGKILL at the two points between ``tool_finished`` and the step's checkpoint: before
    and after LangGraph stores the ``call_tool`` step's writes."""
    use_server(monkeypatch, llm_server)
    gate = threading.Event()
    llm_server.set_responder(_held_second_call(gate))
    try:
        crash = _crash_and_resume(llm_server, workspace, started, f"the hook ({when})", None,
                                  after_kill=gate.set, self_kill=when)
    finally:
        gate.set()
    assert crash.requests_at_kill == 1
    assert [r[3] for r in crash.before.values()][-2:] == ["tool_started", "tool_finished"]
    _check_common(crash, llm_server)
    _check_tool_ran_once(crash, llm_server)


# ---- approvals across restarts ----------------------------------------------------------------
async def test_approved_tool_runs_once_across_restarts(llm_server, monkeypatch, workspace):
    """A run paused for approval is resumed by new runtimes (restarts): the tool runs once."""
    use_server(monkeypatch, llm_server)
    llm_server.set_responder([_shell("echo ran >> marker.txt"), _terminate()])
    marker = workspace / "marker.txt"
    settings = load_settings({"approval": {"mode": "ask"}})
    asked: list[ev.ApprovalRequested] = []

    async def approve_all(request: ev.ApprovalRequested) -> dict[str, Decision]:
        asked.append(request)
        return {c.call_id: Decision(decision="approve") for c in request.calls}

    runtime = await Runtime.open(settings)
    try:
        session = await runtime.create_session(workspace=workspace)
        outcome = await session.run("make the marker", approver=None)
        session_id = session.id
    finally:
        await runtime.close()
    assert outcome.status == "awaiting_approval"
    assert not marker.exists()

    # Restart with still nobody to answer: still paused, nothing ran.
    async with await Runtime.open(settings) as runtime:
        outcome = await (await runtime.open_session(session_id)).resume(approver=None)
    assert outcome.status == "awaiting_approval"
    assert not marker.exists()

    # Restart and approve: the tool runs and the run completes.
    async with await Runtime.open(settings) as runtime:
        outcome = await (await runtime.open_session(session_id)).resume(approver=approve_all)
    assert (outcome.status, outcome.final_answer) == ("completed", ANSWER)
    assert [[c.call_id for c in r.calls] for r in asked] == [["call_shell"]]
    assert _lines(marker) == ["ran"]

    # Two more restarts and resumes change nothing.
    for _ in range(2):
        async with await Runtime.open(settings) as runtime:
            outcome = await (await runtime.open_session(session_id)).resume(approver=approve_all)
        assert (outcome.status, outcome.final_answer) == ("completed", ANSWER)
    assert _lines(marker) == ["ran"]
    assert len(asked) == 1
    rows = _event_rows()
    assert len(_rows_of(rows, "tool_started", "call_shell")) == 1
    assert [_parsed(r).status for r in _rows_of(rows, "tool_finished", "call_shell")] == ["ok"]
    assert llm_server.request_count == 2
    check_tool_pairing(llm_server.requests[-1]["messages"])
