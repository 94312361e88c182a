"""Runs survive the server: a drained shutdown (SIGTERM's path) and a kill -9 during ten runs
leave every run resumable, continued at the next start with ``service.resume_on_start`` (or
marked interrupted without it), and no tool runs twice."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_helpers import http_get, serve, write_script

SHELL_STEP = {
    "text": "I'll note this run.",
    "tool_calls": [{"name": "shell_exec", "args": {"command": "echo ran >> log.txt"}}],
}


def _slow_final_script(tmp_path: Path) -> str:
    # A tool step, then an answer streamed slowly enough to be cut off in the middle.
    return write_script(tmp_path / "tool_then_slow.json", [SHELL_STEP],
                        final=" ".join(["word"] * 40), token_delay=0.02)


def _lines(workspace: str) -> int:
    path = Path(workspace) / "log.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


async def _until_answering(client, tid: str, model: str) -> str:
    """Start a run and read its stream until the tool ran and the answer streams."""
    stream = client.runs.stream(tid, "manus", input={"input": "go"}, stream_mode=["custom"],
                                config={"configurable": {"model": model, "approval": "yolo"}})
    run_id, tool_done = "", False
    async for part in stream:
        if part.event == "metadata":
            run_id = part.data["run_id"]
        elif part.event == "custom":
            tool_done |= part.data["type"] == "tool_finished"
            if tool_done and part.data["type"] == "thought_delta":
                break
    await stream.aclose()
    return run_id


@pytest.mark.parametrize("resume_on_start", [True, False])
async def test_drained_runs_are_resumable_after_restart(
    tmp_path: Path, resume_on_start: bool
) -> None:
    model = _slow_final_script(tmp_path)
    quick = write_script(tmp_path / "quick.json", [], final="queued answer")
    with serve({"service": {"drain_timeout": 0, "max_concurrent_runs": 1}}) as srv:
        client = srv.client()
        thread = await client.threads.create()
        tid, workspace = thread["thread_id"], thread["metadata"]["workspace"]
        run_id = await _until_answering(client, tid, model)
        other = (await client.threads.create())["thread_id"]
        queued = await client.runs.create(other, "manus", input={"input": "waiting"},
                                          config={"configurable": {"model": quick}})
        assert (await client.runs.get(other, queued["run_id"]))["status"] == "pending"
    # The server stopped mid-answer: the run's row says running, the session is resumable;
    # the queued run never started and says pending.
    with serve({"service": {"resume_on_start": resume_on_start}}) as srv:
        client = srv.client()
        if resume_on_start:
            final = await client.runs.join(tid, run_id)
            assert final["final_answer"].startswith("word word")
            assert (await client.runs.get(tid, run_id))["status"] == "success"
            waited = await client.runs.join(other, queued["run_id"])
            assert waited["final_answer"] == "queued answer"
            assert [m["content"] for m in waited["messages"] if m["type"] == "human"] == [
                "waiting"]
        else:
            assert (await client.runs.get(other, queued["run_id"]))["status"] == "interrupted"
        if not resume_on_start:
            assert (await client.runs.get(tid, run_id))["status"] == "interrupted"
            final = await client.runs.wait(
                tid, "manus", input=None,
                config={"configurable": {"model": model, "approval": "yolo"}},
            )
            assert final["final_answer"].startswith("word word")
        assert _lines(workspace) == 1  # the tool ran once, before the stop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``openmanus serve --api`` as a user starts it; its log (uvicorn's) goes to ``log``."""
    with log.open("ab") as out:  # a file, not a pipe: a full pipe would stall the server
        proc = subprocess.Popen(
            [sys.executable, "-m", "openmanus_tui", "serve", "--api", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=out,
        )
    deadline = time.monotonic() + 60
    while True:  # polling the real server's liveness endpoint until it answers
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if http_get(f"http://127.0.0.1:{port}/ok", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)


async def _until_tool_started(client, tid: str, model: str) -> str:
    stream = client.runs.stream(tid, "manus", input={"input": "go"}, stream_mode=["custom"],
                                config={"configurable": {"model": model, "approval": "yolo"}})
    run_id = ""
    async for part in stream:
        if part.event == "metadata":
            run_id = part.data["run_id"]
        elif part.event == "custom" and part.data["type"] == "tool_started":
            break
    await stream.aclose()
    return run_id


@pytest.mark.slow
async def test_kill_9_during_ten_runs(tmp_path: Path) -> None:
    """Killed while the ten runs' tools are running (each sleeps, then writes a line): at
    the restart every run is continued to its answer, and no tool ran twice (a tool cut off
    is reported to the model as interrupted, never run again)."""
    from langgraph_sdk import get_client

    model = write_script(tmp_path / "slow_tool.json", [{
        "text": "I'll note this run.",
        "tool_calls": [{"name": "shell_exec",
                        "args": {"command": "sleep 0.5; echo ran >> log.txt"}}],
    }], final="noted")
    port = _free_port()
    env = {**os.environ, "OPENMANUS_SERVICE__RESUME_ON_START": "true"}
    proc = _start_server(port, env, tmp_path / "serve.log")
    try:
        client = get_client(url=f"http://127.0.0.1:{port}", api_key=None)
        threads = [await client.threads.create() for _ in range(10)]
        run_ids = await asyncio.gather(
            *(_until_tool_started(client, t["thread_id"], model) for t in threads)
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc = _start_server(port, env, tmp_path / "serve.log")
        client = get_client(url=f"http://127.0.0.1:{port}", api_key=None)
        for thread, run_id in zip(threads, run_ids, strict=True):
            final = await client.runs.join(thread["thread_id"], run_id)
            assert final["final_answer"] == "noted", final
            assert (await client.runs.get(thread["thread_id"], run_id))["status"] == "success"
            lines = _lines(thread["metadata"]["workspace"])
            assert lines <= 1  # never twice
            result = next(m["content"] for m in final["messages"] if m["type"] == "tool")
            # cut off: reported as interrupted, not run again; else its one real result
            assert ("program stopped before it finished" in result) or lines == 1, result
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.slow
async def test_serve_api_as_a_user_starts_it_then_sigterm(tmp_path: Path) -> None:
    """``openmanus serve --api`` in its own process: /ok, /health, /metrics answer; SIGTERM
    with a run going on (and its stream open) ends the server within its drain time; the run
    is continued by the next start (``resume_on_start``) and its tool ran once."""
    from langgraph_sdk import get_client

    model = _slow_final_script(tmp_path)
    port = _free_port()
    env = {**os.environ, "OPENMANUS_SERVICE__DRAIN_TIMEOUT": "0.2",
           "OPENMANUS_SERVICE__RESUME_ON_START": "true"}
    proc = _start_server(port, env, tmp_path / "serve.log")
    try:
        url = f"http://127.0.0.1:{port}"
        assert http_get(f"{url}/health").json()["database"]["ok"] is True
        assert "openmanus_active_runs" in http_get(f"{url}/metrics").text
        client = get_client(url=url, api_key=None)
        thread = await client.threads.create()
        stream = client.runs.stream(
            thread["thread_id"], "manus", input={"input": "go"}, stream_mode=["custom"],
            config={"configurable": {"model": model, "approval": "yolo"}})
        run_id, tool_done = "", False
        async for part in stream:
            if part.event == "metadata":
                run_id = part.data["run_id"]
            elif part.event == "custom":
                tool_done |= part.data["type"] == "tool_finished"
                if tool_done and part.data["type"] == "thought_delta":
                    break
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down gracefully
        assert proc.wait(30) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()
        await stream.aclose()
        proc = _start_server(port, env, tmp_path / "serve.log")
        client = get_client(url=url, api_key=None)
        final = await client.runs.join(thread["thread_id"], run_id)
        assert final["final_answer"].startswith("word word")
        assert _lines(thread["metadata"]["workspace"]) == 1
    finally:
        proc.kill()
        proc.wait(10)


def test_serve_api_refuses_a_bad_port(tmp_path: Path) -> None:
    from conftest import cli

    bad = cli("serve", "--api", "--port", "70000")
    assert bad.returncode == 2 and "--port must be between 1 and 65535" in bad.stderr
    assert "Traceback" not in bad.stderr
