"""The REST API driven by the real ``langgraph-sdk`` client against the real server (uvicorn on
a loopback port), with scripted models, the real database and the real sandbox."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import (
    collect,
    custom_types,
    http_get,
    http_post,
    serve,
    slow_script,
    write_file_script,
    write_script,
)
from langgraph_sdk.errors import BadRequestError, ConflictError, NotFoundError

YOLO = {"approval": "yolo"}


def _cfg(model: str, **extra: str) -> dict:
    return {"configurable": {"model": model, **extra}}


def _workspace(thread: dict) -> Path:
    return Path(thread["metadata"]["workspace"])


async def _wait_for(stream, predicate):
    """Read a stream until a part satisfies ``predicate``; returns the parts read so far."""
    parts = []
    async for part in stream:
        parts.append((part.event, part.data))
        if predicate(part.event, part.data):
            return parts
    raise AssertionError(f"the stream ended first: {[e for e, _ in parts]}")


def test_health_openapi_and_metrics(tmp_path: Path) -> None:
    with serve() as srv:
        assert http_get(f"{srv.url}/ok").json() == {"ok": True}
        health = http_get(f"{srv.url}/health").json()
        assert health["status"] == "ok" and health["database"]["ok"] is True
        assert health["sandbox"]["level"] in ("L0", "L1", "L2", "L3")
        assert health["model"] == {"spec": "scripted:demo", "state": "offline"}
        assert http_get(f"{srv.url}/ready").json() == {"ready": True}
        paths = http_get(f"{srv.url}/openapi.json").json()["paths"]
        for path in ("/threads", "/threads/{thread_id}/runs/stream", "/assistants/search",
                     "/threads/{thread_id}/history", "/threads/{thread_id}/runs/{run_id}/cancel"):
            assert path in paths
        metrics = http_get(f"{srv.url}/metrics").text
        assert "openmanus_queue_depth 0.0" in metrics and "openmanus_active_runs 0.0" in metrics


async def test_stream_run_state_and_history(tmp_path: Path) -> None:
    model = write_file_script(tmp_path)
    with serve() as srv:
        client = srv.client()
        found = await client.assistants.search()
        assert [a["name"] for a in found] == ["manus", "research", "writing", "data_analysis"]
        by_id = await client.assistants.get(found[1]["assistant_id"])
        assert by_id["name"] == "research"
        thread = await client.threads.create(metadata={"team": "a"})
        tid = thread["thread_id"]
        parts = await collect(client.runs.stream(
            tid, "manus", input={"messages": [{"role": "user", "content": "write a"}]},
            stream_mode=["values", "updates", "messages-tuple", "custom"],
            config=_cfg(model, **YOLO),
        ))
        event, meta = parts[0]
        assert event == "metadata" and set(meta) == {"run_id", "attempt"}
        events = [e for e, _ in parts]
        assert {"values", "updates", "messages", "custom"} <= set(events)
        assert "error" not in events
        kinds = custom_types(parts)
        assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
        assert kinds.count("tool_started") == 1 and "thought_delta" in kinds
        last_values = [d for e, d in parts if e == "values"][-1]
        assert last_values["final_answer"] == "done: Created a.txt (2 bytes)"
        assert (_workspace(thread) / "a.txt").read_text() == "hi"
        chunk, chunk_meta = next(d for e, d in parts if e == "messages")
        assert chunk["type"] == "AIMessageChunk" and chunk_meta["langgraph_node"] == "call_llm"

        run = await client.runs.get(tid, meta["run_id"])
        assert run["status"] == "success" and run["assistant_id"] == found[0]["assistant_id"]
        got = await client.threads.get(tid)
        assert got["status"] == "idle" and got["metadata"]["team"] == "a"
        assert got["values"]["final_answer"].startswith("done:")

        state = await client.threads.get_state(tid)
        assert state["next"] == [] and state["values"]["final_answer"].startswith("done:")
        history = await client.threads.get_history(tid, limit=3)
        assert len(history) == 3
        assert history[0]["checkpoint"] == state["checkpoint"]  # newest first
        assert history[0]["parent_checkpoint"] == history[1]["checkpoint"]
        older = await client.threads.get_history(tid, limit=2, before=history[1]["checkpoint"])
        assert [h["checkpoint"] for h in older] == [h["checkpoint"] for h in
                                                    (await client.threads.get_history(
                                                        tid, limit=4))[2:4]]
        at = await client.threads.get_state(tid, checkpoint_id=history[1]["checkpoint"]
                                            ["checkpoint_id"])
        assert at["checkpoint"] == history[1]["checkpoint"]
        with pytest.raises(NotFoundError):
            await client.threads.get_state(tid, checkpoint_id="nope")
        searched = await client.threads.search(metadata={"team": "a"})
        assert [t["thread_id"] for t in searched] == [tid]
        patched = await client.threads.update(tid, metadata={"team": "b", "owner": "x"})
        assert (patched["metadata"]["team"], patched["metadata"]["owner"]) == ("b", "x")
        assert await client.threads.search(metadata={"team": "a"}) == []


@pytest.mark.parametrize("answer", ["approve", "edit", "deny"])
async def test_approval_interrupt_resumed(tmp_path: Path, answer: str) -> None:
    model = write_file_script(tmp_path)
    with serve() as srv:
        client = srv.client()
        thread = await client.threads.create()
        tid = thread["thread_id"]
        cfg = _cfg(model, approval="auto")
        first = await collect(client.runs.stream(
            tid, "manus", input={"input": "write a"}, stream_mode=["values", "custom"],
            config=cfg,
        ))
        interrupt = first[-1]
        assert interrupt[0] == "values" and "__interrupt__" in interrupt[1]
        call = interrupt[1]["__interrupt__"][0]["value"]["calls"][0]
        assert (call["tool"], call["args"], call["risk"]) == (
            "file_write", {"path": "a.txt", "content": "hi"}, "write")
        assert call["reason"]
        got = await client.threads.get(tid)
        assert got["status"] == "interrupted" and got["interrupts"]
        run = await client.runs.get(tid, first[0][1]["run_id"])
        assert run["status"] == "interrupted"
        assert not (_workspace(thread) / "a.txt").exists()  # nothing ran unasked

        resume = {
            "approve": {"decision": "approve"},
            "edit": {call["call_id"]: {"decision": "edit",
                                       "args": {"path": "a.txt", "content": "edited"}}},
            "deny": {"decision": "deny", "reason": "not today"},
        }[answer]
        second = await collect(client.runs.stream(
            tid, "manus", command={"resume": resume}, stream_mode=["values", "custom"],
            config=cfg,
        ))
        kinds = custom_types(first) + custom_types(second)
        decided = [d for e, d in second if e == "custom" and d["type"] == "approval_decided"]
        assert [(d["decision"], d["by"]) for d in decided] == [(answer, "user")]
        final = [d for e, d in second if e == "values"][-1]
        path = _workspace(thread) / "a.txt"
        if answer == "deny":
            assert kinds.count("tool_started") == 0 and not path.exists()
            tool_msg = next(m for m in final["messages"] if m["type"] == "tool")
            assert "not today" in tool_msg["content"]
        else:
            assert kinds.count("tool_started") == 1  # exactly once
            assert path.read_text() == ("hi" if answer == "approve" else "edited")
        assert final["final_answer"].startswith("done:")
        assert (await client.threads.get(tid))["status"] == "idle"
        with pytest.raises(httpx.HTTPStatusError, match="400"):  # nothing is pending now
            await client.runs.wait(tid, "manus", command={"resume": {"decision": "approve"}})


async def test_bad_resume_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    model = write_file_script(tmp_path)
    with serve() as srv:
        client = srv.client()
        thread = await client.threads.create()
        tid = thread["thread_id"]
        result = await client.runs.wait(tid, "manus", input={"input": "go"},
                                        config=_cfg(model))
        call = result["__interrupt__"][0]["value"]["calls"][0]
        for bad in (
            {call["call_id"]: {"decision": "edit", "args": {"path": 3}}},  # schema
            {"decision": "maybe"},
            {"call_other": {"decision": "approve"}},
            "yes",
        ):
            with pytest.raises(BadRequestError):
                await client.runs.create(tid, "manus", command={"resume": bad})
        assert not (_workspace(thread) / "a.txt").exists()
        assert (await client.threads.get(tid))["status"] == "interrupted"


async def test_create_join_wait_and_content_location(tmp_path: Path) -> None:
    model = write_file_script(tmp_path)
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        created = []
        run = await client.runs.create(
            tid, "manus", input={"input": "go"}, config=_cfg(model, **YOLO),
            on_run_created=created.append,
        )
        assert created[0]["run_id"] == run["run_id"] and created[0]["thread_id"] == tid
        joined = await client.runs.join(tid, run["run_id"])
        assert joined["final_answer"].startswith("done:")
        assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
        listed = await client.runs.list(tid)
        assert [r["run_id"] for r in listed] == [run["run_id"]]
        copy = await client.threads.copy(tid)
        assert copy["thread_id"] != tid and copy["values"]["final_answer"].startswith("done:")
        assert await client.threads.count() == 2
        await client.runs.delete(tid, run["run_id"])
        assert await client.runs.list(tid) == []
        waited = await client.runs.wait(tid, "manus", input={"messages": [
            {"role": "user", "content": "again"}]}, config=_cfg(model, **YOLO))
        assert waited["final_answer"].startswith("done:")
        with pytest.raises(NotFoundError):
            await client.runs.get(tid, "00000000-0000-0000-0000-000000000000")
        with pytest.raises(NotFoundError):
            await client.runs.create("no-such-thread", "manus", input={"input": "x"})
        made = await client.runs.wait("made-on-demand", "manus", input={"input": "x"},
                                      if_not_exists="create", config=_cfg(model, **YOLO))
        assert made["final_answer"].startswith("done:")
        assert (await client.threads.get("made-on-demand"))["status"] == "idle"
        with pytest.raises(NotFoundError):
            await client.runs.create(tid, "no-such-assistant", input={"input": "x"})


async def test_cancel_reject_enqueue_and_continue(tmp_path: Path) -> None:
    slow = slow_script(tmp_path)
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        stream = client.runs.stream(tid, "manus", input={"input": "go"},
                                    stream_mode=["custom"], config=_cfg(slow))
        parts = await _wait_for(stream, lambda e, d: e == "custom"
                                and d["type"] == "thought_delta")
        run_id = parts[0][1]["run_id"]
        assert (await client.threads.get(tid))["status"] == "busy"
        with pytest.raises(ConflictError):
            await client.runs.create(tid, "manus", input={"input": "again"})
        queued = await client.runs.create(tid, "manus", input={"input": "after"},
                                          multitask_strategy="enqueue", config=_cfg(slow))
        assert (await client.runs.get(tid, queued["run_id"]))["status"] == "pending"
        await client.runs.cancel(tid, run_id, wait=True)
        assert (await client.runs.get(tid, run_id))["status"] == "interrupted"
        rest = [p async for p in stream]
        assert rest[-1][0] == "custom" and rest[-1][1]["type"] == "run_finished"
        assert rest[-1][1]["status"] == "cancelled"
        await client.runs.cancel(tid, queued["run_id"], wait=True)
        assert (await client.runs.get(tid, queued["run_id"]))["status"] in (
            "interrupted", "pending")
        got = await client.threads.get(tid)
        assert got["status"] == "idle"


async def test_interrupt_strategy_and_queue_limit(tmp_path: Path) -> None:
    slow = slow_script(tmp_path)
    quick = write_script(tmp_path / "quick.json", [], final="quick answer")
    with serve({"service": {"max_concurrent_runs": 1, "max_queue": 0}}) as srv:
        client = srv.client()
        t1 = (await client.threads.create())["thread_id"]
        t2 = (await client.threads.create())["thread_id"]
        first = await client.runs.create(t1, "manus", input={"input": "go"}, config=_cfg(slow))
        async with httpx.AsyncClient(base_url=srv.url, timeout=60) as raw:
            # the one slot is busy and nothing may wait: 429 with Retry-After
            deadline = asyncio.get_running_loop().time() + 20
            while (await client.runs.get(t1, first["run_id"]))["status"] != "running":
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
            r = await raw.post(f"/threads/{t2}/runs", json={"assistant_id": "manus",
                                                            "input": {"input": "x"}})
            assert r.status_code == 429 and r.headers["retry-after"]
        second = await client.runs.wait(t1, "manus", input={"input": "instead"},
                                        multitask_strategy="interrupt", config=_cfg(quick))
        assert second["final_answer"] == "quick answer"
        assert (await client.runs.get(t1, first["run_id"]))["status"] == "interrupted"


async def test_fork_through_state_update(tmp_path: Path) -> None:
    model = write_file_script(tmp_path)
    with serve() as srv:
        client = srv.client()
        thread = await client.threads.create()
        tid = thread["thread_id"]
        await client.runs.wait(tid, "manus", input={"input": "first"},
                               config=_cfg(model, **YOLO))
        history = await client.threads.get_history(tid, limit=50)
        reply = next(h for h in history if h["next"] == ["call_tool"])
        call_id = reply["values"]["tool_calls"][0]["id"]
        forked = await client.threads.update_state(
            tid, {"tool_calls": {call_id: {"path": "b.txt", "content": "forked"}}},
            checkpoint_id=reply["checkpoint"]["checkpoint_id"],
        )
        new_head = forked["checkpoint"]["checkpoint_id"]
        state = await client.threads.get_state(tid)
        assert state["checkpoint"]["checkpoint_id"] == new_head
        assert state["parent_checkpoint"] == reply["checkpoint"]
        done = await client.runs.wait(tid, "manus", input=None, config=_cfg(model, **YOLO))
        assert done["final_answer"] == "done: Created b.txt (6 bytes)"
        assert (_workspace(thread) / "b.txt").read_text() == "forked"
        assert not (_workspace(thread) / "a.txt").exists()  # files as at the fork point


async def test_delete_thread_and_validation(tmp_path: Path) -> None:
    with serve() as srv:
        client = srv.client()
        made = await client.threads.create(thread_id="my-thread")
        assert made["thread_id"] == "my-thread"
        again = await client.threads.create(thread_id="my-thread", if_exists="do_nothing")
        assert again["thread_id"] == "my-thread"
        with pytest.raises(ConflictError):
            await client.threads.create(thread_id="my-thread")
        both = await asyncio.gather(*(client.threads.create(thread_id="twin") for _ in range(3)),
                                    return_exceptions=True)
        assert sorted(type(r).__name__ for r in both) == ["ConflictError", "ConflictError",
                                                          "dict"]
        async with httpx.AsyncClient(base_url=srv.url, timeout=60) as raw:
            bad = await raw.post("/threads", json={"thread_id": "../etc"})
            assert bad.status_code == 422
            empty = await raw.post("/threads/my-thread/runs",
                                   json={"assistant_id": "manus", "input": {"input": "  "}})
            assert empty.status_code == 422
            shape = await raw.post("/threads/my-thread/runs",
                                   json={"assistant_id": "manus", "input": {"x": 1}})
            assert shape.status_code == 422 and "messages" in shape.json()["detail"]
            model = await raw.post("/threads/my-thread/runs", json={
                "assistant_id": "manus", "input": {"input": "x"},
                "config": {"configurable": {"model": "nope:x"}}})
            assert model.status_code == 400 and "Traceback" not in model.text
        await client.threads.delete("my-thread")
        with pytest.raises(NotFoundError):
            await client.threads.get("my-thread")


def test_token_required_off_loopback(tmp_path: Path) -> None:
    with serve(host="0.0.0.0") as srv:
        token_file = tmp_path / "data" / "api_token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert http_get(f"{srv.url}/ok").status_code == 200
        for path in ("/health", "/metrics", "/openapi.json"):
            assert http_get(f"{srv.url}{path}").status_code == 401
            wrong = http_get(f"{srv.url}{path}", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
        ok = http_get(f"{srv.url}/health", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert http_post(f"{srv.url}/assistants/search", json={},
                          headers={"x-api-key": token}).status_code == 200


async def test_sdk_with_api_key(tmp_path: Path) -> None:
    with serve({"service": {"token": "s3cret-token"}}) as srv:
        assert http_get(f"{srv.url}/health").status_code == 401
        client = srv.client(api_key="s3cret-token")
        assert (await client.threads.create())["status"] == "idle"


def test_body_limit(tmp_path: Path) -> None:
    with serve({"service": {"max_body_kb": 1}}) as srv:
        big = {"assistant_id": "manus", "input": {"input": "x" * 4000}}
        r = http_post(f"{srv.url}/threads/x/runs", json=big)
        assert r.status_code == 413

        def chunks():
            yield json.dumps(big).encode()

        r = http_post(f"{srv.url}/threads/x/runs", content=chunks(),
                       headers={"content-type": "application/json"})
        assert r.status_code in (400, 413)


async def test_metrics_count_a_run(tmp_path: Path) -> None:
    model = write_file_script(tmp_path)
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        await client.runs.wait(tid, "manus", input={"input": "go"}, config=_cfg(model, **YOLO))
        text = http_get(f"{srv.url}/metrics").text
        assert 'openmanus_runs_total{status="success"} 1.0' in text
        assert 'openmanus_tool_calls_total{status="ok",tool="file_write"} 1.0' in text
        assert "openmanus_steps_total 2.0" in text
        assert 'openmanus_approvals_total{by="policy",decision="approve"} 1.0' in text
        assert 'openmanus_tokens_total{direction="in"}' in text


async def test_ask_human_is_an_interrupt_answered_by_resume(tmp_path: Path) -> None:
    model = write_script(tmp_path / "ask.json", [
        {"text": "I need to know.", "tool_calls": [
            {"name": "ask_human", "args": {"question": "Which colour?"}}]},
    ], final="you said: {last_result}")
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        cfg = _cfg(model, approval="ask")  # ask_human never needs an approval
        first = await collect(client.runs.stream(
            tid, "manus", input={"input": "pick"}, stream_mode=["values", "custom"], config=cfg,
        ))
        event, data = first[-1]
        assert event == "values"
        value = data["__interrupt__"][0]["value"]
        assert value == {"type": "ask_human", "question": "Which colour?"}
        assert (await client.runs.get(tid, first[0][1]["run_id"]))["status"] == "interrupted"
        thread = await client.threads.get(tid)
        assert thread["status"] == "interrupted" and thread["interrupts"]
        with pytest.raises(ConflictError):  # a new task while the question waits
            await client.runs.create(tid, "manus", input={"input": "other"})
        with pytest.raises(BadRequestError):
            await client.runs.create(tid, "manus", command={"resume": {"decision": "approve"}})
        second = await collect(client.runs.stream(
            tid, "manus", command={"resume": "green"}, stream_mode=["values", "custom"],
            config=cfg,
        ))
        final = [d for e, d in second if e == "values"][-1]
        assert final["final_answer"] == "you said: green"
        kinds = custom_types(second)
        assert kinds[-1] == "run_finished" and "tool_finished" in kinds
        assert (await client.runs.get(tid, second[0][1]["run_id"]))["status"] == "success"
        assert (await client.threads.get(tid))["status"] == "idle"


def test_readme_example_streams_and_answers_an_approval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's API example, as printed there, against the real server."""
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    assert len(code.strip().splitlines()) <= 16
    script = write_file_script(tmp_path).removeprefix("scripted:")
    answers = iter(["approve"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    with serve({"model": {"provider": "scripted", "name": script}}) as srv:
        exec(compile(code.replace("http://127.0.0.1:2024", srv.url), "README", "exec"), {})
    out = capsys.readouterr().out
    assert "'tool': 'file_write'" in out
    assert out.strip().endswith("done: Created a.txt (2 bytes)")  # the scripted model's file


async def test_request_timeout_and_rollback(tmp_path: Path) -> None:
    slow = slow_script(tmp_path)
    quick = write_script(tmp_path / "quick.json", [], final="quick answer")
    with serve({"service": {"request_timeout": 0.5}}) as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        parts = await collect(client.runs.stream(tid, "manus", input={"input": "go"},
                                                 stream_mode=["values"], config=_cfg(slow)))
        assert parts[-1][0] == "error" and parts[-1][1]["error"] == "TimeoutError"
        assert (await client.runs.get(tid, parts[0][1]["run_id"]))["status"] == "timeout"
        assert (await client.threads.get(tid))["status"] == "idle"
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        await client.runs.wait(tid, "manus", input={"input": "one"}, config=_cfg(quick))
        before = await client.threads.get_state(tid)
        first = await client.runs.create(tid, "manus", input={"input": "go"}, config=_cfg(slow))
        state = before
        while state["checkpoint"] == before["checkpoint"]:  # until the run has stored a step
            state = await client.threads.get_state(tid)
        done = await client.runs.wait(tid, "manus", input={"input": "instead"},
                                      multitask_strategy="rollback", config=_cfg(quick))
        assert done["final_answer"] == "quick answer"
        assert (await client.runs.get(tid, first["run_id"]))["status"] == "interrupted"
        users = [m["content"] for m in done["messages"] if m["type"] == "human"]
        assert users == ["one", "instead"]  # the rolled-back run's input is not on the branch


def test_cors_only_when_configured(tmp_path: Path) -> None:
    preflight = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST"}
    with serve() as srv:
        r = httpx.options(f"{srv.url}/threads", headers=preflight, timeout=60)
        assert "access-control-allow-origin" not in r.headers
    with serve({"service": {"cors_origins": ["http://app.example"], "token": "t0ken"}}) as srv:
        # no token in a preflight
        r = httpx.options(f"{srv.url}/threads", headers=preflight, timeout=60)
        assert r.headers["access-control-allow-origin"] == "http://app.example"
        assert http_post(f"{srv.url}/threads", json={}).status_code == 401


def test_sessions_rm_deletes_the_threads_runs(tmp_path: Path) -> None:
    import sqlite3

    from conftest import cli

    model = write_script(tmp_path / "quick.json", [], final="ok")

    async def make() -> str:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        await client.runs.wait(tid, "manus", input={"input": "go"}, config=_cfg(model))
        return tid

    with serve() as srv:
        tid = asyncio.run(make())
    db = tmp_path / "data" / "openmanus.db"

    def rows() -> int:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM api_runs WHERE thread_id = ?",
                                (tid,)).fetchone()[0]

    assert rows() == 1
    assert cli("sessions", "rm", tid).returncode == 0
    assert rows() == 0


async def test_wait_sends_heartbeats_then_the_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openmanus_tui.service.app as app_module

    monkeypatch.setattr(app_module, "HEARTBEAT_S", 0.02)
    slow = slow_script(tmp_path, words=40, delay=0.01)
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        async with httpx.AsyncClient(base_url=srv.url, timeout=60) as raw:
            r = await raw.post(f"/threads/{tid}/runs/wait", json={
                "assistant_id": "manus", "input": {"input": "go"}, "config": _cfg(slow)})
        assert r.text.startswith("\n")  # heartbeats while the run went on
        assert json.loads(r.text)["final_answer"].startswith("word word")
        assert r.headers["content-location"].startswith(f"/threads/{tid}/runs/")


async def test_configurable_workspace(tmp_path: Path) -> None:
    model = write_file_script(tmp_path)
    folder = tmp_path / "project"
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        with pytest.raises(BadRequestError, match="openmanus"):  # its own data folder
            await client.runs.create(tid, "manus", input={"input": "go"},
                                     config=_cfg(model, workspace=str(tmp_path / "data")))
        done = await client.runs.wait(tid, "manus", input={"input": "go"},
                                      config=_cfg(model, approval="yolo",
                                                  workspace=str(folder)))
        assert done["final_answer"].startswith("done:")
        assert (folder / "a.txt").read_text() == "hi"
        assert (await client.threads.get(tid))["metadata"]["workspace"] == str(folder)
        with pytest.raises(BadRequestError, match="fixed"):
            await client.runs.create(tid, "manus", input={"input": "again"},
                                     config=_cfg(model, workspace=str(tmp_path / "other")))


async def test_real_openai_client_through_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, llm_server
) -> None:
    """The real langchain-openai client against the loopback OpenAI-compatible server, driven
    through the API: the health check sees the endpoint, tokens stream, the approval holds."""
    from conftest import use_server
    from openai_server import Reply, ToolCallSpec

    use_server(monkeypatch, llm_server)
    llm_server.set_responder([
        Reply(text="Writing it.", tool_calls=[ToolCallSpec("file_write",
                                                           {"path": "x.txt", "content": "1"})]),
        Reply(text="Wrote x.txt."),
    ])
    with serve() as srv:
        health = http_get(f"{srv.url}/health").json()["model"]
        assert health == {"spec": "openai:test-model", "state": "reachable", "status_code": 200}
        client = srv.client()
        thread = await client.threads.create()
        tid = thread["thread_id"]
        first = await collect(client.runs.stream(tid, "manus", input={"input": "write x"},
                                                 stream_mode=["messages-tuple", "values"]))
        tokens = "".join(d[0]["content"] for e, d in first if e == "messages"
                         and d[0]["type"] == "AIMessageChunk")
        assert tokens == "Writing it."
        assert first[-1][1]["__interrupt__"][0]["value"]["calls"][0]["tool"] == "file_write"
        done = await client.runs.wait(tid, "manus", command={"resume": {"decision": "approve"}})
        assert done["final_answer"] == "Wrote x.txt."
        assert (_workspace(thread) / "x.txt").read_text() == "1"
        assert len(llm_server.requests) == 2


async def test_thread_busy_while_the_cli_runs_it(tmp_path: Path) -> None:
    """A session run by another process (its lock held) is a busy thread: a run is a 409."""
    from openmanus_tui.store.locks import SessionLock  # the lock `openmanus run` takes

    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        held = SessionLock(srv.state.runtime.db.path, tid)
        held.acquire()
        try:
            assert (await client.threads.get(tid))["status"] == "busy"
            with pytest.raises(ConflictError, match="elsewhere"):
                await client.runs.create(tid, "manus", input={"input": "go"})
        finally:
            held.release()
        assert (await client.threads.get(tid))["status"] == "idle"


async def test_fork_with_an_edited_message(tmp_path: Path) -> None:
    model = write_script(tmp_path / "echo.json", [], final="ok")
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        await client.runs.wait(tid, "manus", input={"input": "first"}, config=_cfg(model))
        await client.runs.wait(tid, "manus", input={"input": "second"}, config=_cfg(model))
        state = await client.threads.get_state(tid)
        forked = await client.threads.update_state(
            tid, {"messages": [{"role": "user", "content": "second, edited"}]},
            checkpoint_id=state["checkpoint"]["checkpoint_id"])
        assert forked["checkpoint"]["checkpoint_id"] != state["checkpoint"]["checkpoint_id"]
        done = await client.runs.wait(tid, "manus", input={"input": "second, edited"},
                                      config=_cfg(model))
        humans = [m["content"] for m in done["messages"] if m["type"] == "human"]
        assert humans == ["first", "second, edited"]  # the edited run replaced the second


async def test_stream_picks_up_after_the_last_event_id(tmp_path: Path) -> None:
    """Every part has an id and ``Location`` names the run's stream, where ``Last-Event-ID``
    continues after the last part a client got (what the SDK does after a dropped stream)."""
    slow = slow_script(tmp_path, words=60, delay=0.01)
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        async with httpx.AsyncClient(base_url=srv.url, timeout=60) as raw, raw.stream(
            "POST", f"/threads/{tid}/runs/stream",
            json={"assistant_id": "manus", "input": {"input": "go"},
                  "stream_mode": ["custom"], "config": _cfg(slow)},
        ) as r:
            assert r.headers["location"].endswith("/stream")
            location = r.headers["location"]
            ids = []
            async for line in r.aiter_lines():
                if line.startswith("id:"):
                    ids.append(line[3:].strip())
                if len(ids) == 5:
                    break
        assert ids == ["1-0", "1-1", "1-2", "1-3", "1-4"]  # attempt-part
        run_id = location.split("/runs/")[1].split("/")[0]
        rest = [(p.event, p.data, p.id) async for p in client.runs.join_stream(
            tid, run_id, last_event_id="1-4")]
        assert rest[0][2] == "1-5" and rest[0][0] == "custom"  # no metadata again, no gap
        assert rest[-1][1]["type"] == "run_finished"
        numbers = [int(i.split("-")[1]) for _, _, i in rest]
        assert numbers == list(range(5, 5 + len(numbers)))
        again = [p.event async for p in client.runs.join_stream(tid, run_id,
                                                                 last_event_id="2-4")]
        assert again[0] == "metadata"  # another attempt's id: the whole stream


async def test_concurrent_requests_start_one_run_per_thread(tmp_path: Path) -> None:
    slow = slow_script(tmp_path)
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        results = await asyncio.gather(
            *(client.runs.create(tid, "manus", input={"input": f"go {i}"}, config=_cfg(slow))
              for i in range(6)),
            return_exceptions=True,
        )
        started = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if isinstance(r, ConflictError)]
        assert (len(started), len(refused)) == (1, 5), results
        await client.runs.cancel(tid, started[0]["run_id"], wait=True)


async def test_metrics_label_an_invented_tool_unknown(tmp_path: Path) -> None:
    model = write_script(tmp_path / "invent.json", [
        {"text": "trying", "tool_calls": [{"name": "made_up_tool_123", "args": {}}]}],
        final="gave up")
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        done = await client.runs.wait(tid, "manus", input={"input": "go"}, config=_cfg(model))
        assert done["final_answer"] == "gave up"
        text = http_get(f"{srv.url}/metrics").text
        assert "made_up_tool_123" not in text
        assert 'openmanus_tool_calls_total{status="error",tool="unknown"} 1.0' in text


def test_the_api_server_never_imports_textual() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from openmanus_tui.config import load_settings\n"
        "from openmanus_tui.service.app import create_app\n"
        "import openmanus_tui.service.server, openmanus_tui.cli.serve_api\n"
        "create_app(load_settings()).openapi()\n"
        "print(sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_model_failure_is_an_error_event_and_an_error_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, llm_server
) -> None:
    from conftest import use_server
    from openai_server import Fault

    use_server(monkeypatch, llm_server)
    llm_server.add_fault(Fault("status", status=400, message="bad request from the model"))
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        parts = await collect(client.runs.stream(tid, "manus", input={"input": "go"},
                                                 stream_mode=["custom"]))
        kinds = custom_types(parts)
        assert "error" in kinds and parts[-1][0] == "error"
        assert parts[-1][1]["error"] == "RunError" and parts[-1][1]["message"]
        assert "Traceback" not in json.dumps(parts)
        run = await client.runs.get(tid, parts[0][1]["run_id"])
        assert run["status"] == "error"
        assert (await client.threads.get(tid))["status"] == "error"
        text = http_get(f"{srv.url}/metrics").text
        assert 'openmanus_errors_total{error_class="permanent"} 1.0' in text
        assert 'openmanus_runs_total{status="error"} 1.0' in text


async def test_stateless_runs(tmp_path: Path) -> None:
    """``runs.wait(None, ...)``: a run on a thread of its own, deleted when it is over."""
    model = write_script(tmp_path / "quick.json", [], final="stateless answer")
    with serve() as srv:
        client = srv.client()
        done = await client.runs.wait(None, "manus", input={"input": "hi"}, config=_cfg(model))
        assert done["final_answer"] == "stateless answer"
        parts = await collect(client.runs.stream(None, "data_analysis", input={"input": "hi"},
                                                 config=_cfg(model), on_completion="keep"))
        assert parts[-1][1]["final_answer"] == "stateless answer"
        kept = await client.threads.search()
        assert len(kept) == 1 and kept[0]["metadata"]["profile"] == "data_analysis"


async def test_cancelling_a_run_that_asks_frees_the_thread(tmp_path: Path) -> None:
    model = write_script(tmp_path / "ask.json", [
        {"text": "Hm.", "tool_calls": [{"name": "ask_human", "args": {"question": "Why?"}}]},
    ], final="answered: {last_result}")
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        asked = await client.runs.wait(tid, "manus", input={"input": "go"}, config=_cfg(model))
        assert asked["__interrupt__"][0]["value"]["question"] == "Why?"
        run_id = (await client.runs.list(tid))[0]["run_id"]
        assert (await client.threads.get(tid))["status"] == "interrupted"
        await client.runs.cancel(tid, run_id, wait=True)
        assert (await client.threads.get(tid))["status"] == "idle"
        assert srv.state.runs.running == 0  # its slot is free again
        done = await client.runs.wait(tid, "manus", input={"input": "again"},
                                      config=_cfg(model))
        # the cut-off question got a result the model sees; the new task asks again
        tool = next(m for m in done["messages"] if m["type"] == "tool")
        assert tool["tool_call_id"] and tool["status"] == "error"
        assert done["__interrupt__"][0]["value"]["question"] == "Why?"


async def test_on_disconnect_cancel(tmp_path: Path) -> None:
    slow = slow_script(tmp_path)
    with serve() as srv:
        client = srv.client()
        tid = (await client.threads.create())["thread_id"]
        stream = client.runs.stream(tid, "manus", input={"input": "go"}, stream_mode=["custom"],
                                    config=_cfg(slow), on_disconnect="cancel")
        parts = await _wait_for(stream, lambda e, d: e == "custom"
                                and d["type"] == "thought_delta")
        await stream.aclose()  # the client goes away
        run_id = parts[0][1]["run_id"]
        await client.runs.join(tid, run_id)
        assert (await client.runs.get(tid, run_id))["status"] == "interrupted"


async def test_resume_keyed_by_interrupt_id(tmp_path: Path) -> None:
    """LangGraph's own convention, ``{interrupt_id: value}``, answers the approval too."""
    model = write_file_script(tmp_path)
    with serve() as srv:
        client = srv.client()
        thread = await client.threads.create()
        tid = thread["thread_id"]
        first = await client.runs.wait(tid, "manus", input={"input": "go"}, config=_cfg(model))
        interrupt = first["__interrupt__"][0]
        done = await client.runs.wait(tid, "manus", command={
            "resume": {interrupt["id"]: {"decision": "approve"}}})
        assert done["final_answer"] == "done: Created a.txt (2 bytes)"
        assert (_workspace(thread) / "a.txt").read_text() == "hi"


async def test_open_breaker_fallback_and_cache_show_in_health_and_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, llm_server
) -> None:
    """The primary endpoint answers 500 to everything: its breaker opens, the fallback answers;
    ``/health`` says degraded and names the open breaker, ``/metrics`` has the breaker's state,
    the steps per answering model, the fallbacks and the model cache's hits and misses."""
    from conftest import use_server
    from openai_server import OpenAITestServer, Reply

    use_server(monkeypatch, llm_server)
    llm_server.inject("status", status=500, times=10**6)
    with OpenAITestServer([Reply(text="done by the fallback")] * 4,
                          models=("fallback-model",)) as fallback:
        overrides = {
            "model": {"temperature": 0, "retry_backoff": 0, "fallbacks": [{
                "model": "openai:fallback-model", "base_url": fallback.base_url,
                "api_key": "sk-fallback"}]},
            "resilience": {"failure_threshold": 2, "recovery_timeout": 3600},
            "cache": {"model": True},
        }
        with serve(overrides) as srv:
            before = http_get(f"{srv.url}/health").json()
            assert before["status"] == "ok" and before["breakers"] == []
            client = srv.client()
            for _ in range(2):  # the same request twice: the second is a cache hit
                tid = (await client.threads.create())["thread_id"]
                done = await client.runs.wait(tid, "manus", input={"input": "hello"},
                                              config=_cfg("openai:test-model", **YOLO))
                assert done["final_answer"] == "done by the fallback"
            health = http_get(f"{srv.url}/health")
            assert health.status_code == 200
            body = health.json()
            assert body["status"] == "degraded"
            states = {b["name"]: b["state"] for b in body["breakers"]}
            primary = f"model test-model@127.0.0.1:{llm_server.port}"
            assert states[primary] == "open"
            assert states[f"model fallback-model@127.0.0.1:{fallback.port}"] == "closed"
            text = http_get(f"{srv.url}/metrics").text
    assert fallback.request_count == 1  # the second run was answered by the cache
    assert f'openmanus_breaker_state{{breaker="{primary}"}} 2.0' in text
    assert f'openmanus_breaker_failures{{breaker="{primary}"}} 2.0' in text
    # Both steps were the fallback's answer (the second from the cache), one step fell back.
    assert 'openmanus_model_steps_total{model="openai:fallback-model"} 2.0' in text
    assert 'openmanus_model_steps_total{model="openai:test-model"}' not in text
    assert "openmanus_model_fallbacks_total 1.0" in text
    assert 'openmanus_cache_hits_total{cache="model"} 1.0' in text
    assert 'openmanus_cache_misses_total{cache="model"} 1.0' in text
    assert 'openmanus_cache_entries{cache="model"} 1.0' in text


def test_the_server_follows_config_file_edits(isolated_env: Path) -> None:
    """Hot reload in the API server, as in the workbench: an edit of the config file applies
    without a restart; an invalid one is refused and the running settings stay."""
    config = isolated_env / "config.toml"  # OPENMANUS_CONFIG (conftest)
    with serve() as srv:
        runtime = srv.app.state.om.runtime
        reloader = srv.app.state.config_reloader
        results: list[Any] = []
        logged = reloader.on_result
        reloader.on_result = lambda result: (results.append(result), logged(result))[1]

        def wait(condition: Any, what: str) -> None:
            deadline = time.monotonic() + 60
            while not condition():
                assert time.monotonic() < deadline, what
                time.sleep(0.01)

        wait(reloader.watching.is_set, "the config file is not watched")
        assert runtime.settings.approval.mode == "auto"
        config.write_text('[approval]\nmode = "ask"\n')
        wait(lambda: runtime.settings.approval.mode == "ask", "the edit was not applied")
        version = runtime.config_version
        config.write_text('[approval]\nmode = "sometimes"\n')
        wait(lambda: any(r.error for r in results), "the invalid edit was not reported")
        refused = next(r for r in results if r.error)
        assert "approval.mode" in refused.error and "\n" not in refused.error
        assert runtime.settings.approval.mode == "ask" and runtime.config_version == version
