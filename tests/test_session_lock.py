"""One run per session at a time, and a session's status that matches reality, through the
session API: two runtimes on one database file (as two processes would be), a real lock file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAITestServer, Reply, ToolCallSpec, script_responder
from tally_tool import open_ask_runtime, tallies

from openmanus_tui import events as ev
from openmanus_tui.agent.approval import Decision
from openmanus_tui.store.locks import SessionBusy, SessionLock, is_running


@pytest.fixture
def server(tally_server: OpenAITestServer) -> OpenAITestServer:
    tally_server.set_responder(
        script_responder(
            [Reply(tool_calls=[ToolCallSpec("tally", {"tag": "once"})]), Reply(text="done")]
        )
    )
    return tally_server


async def test_a_second_run_of_a_busy_session_is_refused(server: OpenAITestServer) -> None:
    first_rt, second_rt = await open_ask_runtime(), await open_ask_runtime()
    try:
        session = await first_rt.create_session()
        asked = asyncio.Event()
        go = asyncio.Event()

        async def slow_approver(request: ev.ApprovalRequested) -> dict[str, Decision]:
            asked.set()
            await go.wait()
            return {c.call_id: Decision(decision="approve") for c in request.calls}

        running = asyncio.create_task(session.run("count", approver=slow_approver))
        await asyncio.wait_for(asked.wait(), 30)
        other = await second_rt.open_session(session.id)
        assert other.record.status == "running"  # the lock is held: really running
        for attempt in (other.resume(), other.run("again"), other.history.switch("x")):
            with pytest.raises(SessionBusy, match=f"session {session.id} is busy"):
                await attempt
        go.set()
        outcome = await asyncio.wait_for(running, 30)
        assert outcome.final_answer == "done"
        assert tallies() == ["once"]
        # Free again once the run ended.
        assert (await other.resume()).reason == "nothing to resume"
    finally:
        await first_rt.close()
        await second_rt.close()


async def test_running_without_a_live_run_reads_as_interrupted(
    server: OpenAITestServer,
) -> None:
    async with await open_ask_runtime() as runtime:
        session = await runtime.create_session()
        await runtime.db.update_session(session.id, status="running")  # as a kill leaves it
        assert (await runtime.db.get_session(session.id)).status == "interrupted"
        assert [r.status for r in await runtime.db.list_sessions()] == ["interrupted"]
        with SessionLock(runtime.db.path, session.id):  # a live run holds the lock
            assert is_running(runtime.db.path, session.id)
            assert (await runtime.db.get_session(session.id)).status == "running"
        assert not is_running(runtime.db.path, session.id)


def test_lock_is_released_when_its_holder_dies(tmp_path: Path) -> None:
    """The kernel drops the lock of a killed process: the next run is not refused."""
    import subprocess
    import sys

    db = tmp_path / "x.db"
    code = (
        "import sys, time\n"
        "from openmanus_tui.store.locks import SessionLock\n"
        f"SessionLock(__import__('pathlib').Path({str(db)!r}), 's1').acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert is_running(db, "s1")
        with pytest.raises(SessionBusy, match=f"process {proc.pid}"):
            SessionLock(db, "s1").acquire()
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert not is_running(db, "s1")
    lock = SessionLock(db, "s1")
    lock.acquire()
    lock.release()


async def test_task_stored_before_run_started_is_resumed(
    server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that died between storing its task and the graph's first checkpoint (the
    kill is simulated by cancelling it at ``run_started``): resume runs the task."""
    async with await open_ask_runtime() as runtime:
        session = await runtime.create_session()

        started: list[asyncio.Task[Any]] = []

        def stop_at_start(event: Any) -> None:
            if event.type == "run_started":
                started[0].cancel()

        task = asyncio.create_task(session.run("count", on_event=stop_at_start))
        started.append(task)
        with pytest.raises(asyncio.CancelledError):
            await task
        snapshot = await runtime.graph.aget_state(session.config)
        assert not (snapshot.values or {}).get("messages")  # the graph never got it

        async def approve(request: ev.ApprovalRequested) -> dict[str, Decision]:
            return {c.call_id: Decision(decision="approve") for c in request.calls}

        reopened = await runtime.open_session(session.id)
        outcome = await reopened.resume(approver=approve)
        assert outcome.final_answer == "done"
        assert tallies() == ["once"]
        assert server.requests[-1]["messages"][1]["content"] == "count"
        assert "pending_input" not in (await runtime.db.get_session(session.id)).meta
