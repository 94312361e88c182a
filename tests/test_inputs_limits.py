"""Input sizes and odd text (issue 12, defects 4, 7 and 16).

Through the ``openmanus`` command line and the loopback model server (in this process, except
where the real process's output streams are what is checked): a task or reply of over a
million characters no longer crashes the tokenizer (and the session resumes); the task can come
from ``--task-file`` or standard input, an empty or oversized task is refused with one line and
exit 2 before a session exists; a lone surrogate in tool arguments or output neither crashes the
run nor the transcript, export or terminal.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from conftest import cli, json_events, run_cli, use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.memory.tokens import TokenCounter
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.store.db import Database

BIG = 1_200_000


@pytest.fixture
def server(llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> OpenAITestServer:
    use_server(monkeypatch, llm_server)
    return llm_server


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def _sessions() -> list[dict]:
    return json_events(cli("sessions", "list", "--json").stdout)


def test_token_count_of_a_huge_text() -> None:
    counter = TokenCounter()
    words = "hello world " * 150_000  # 1.8 million characters
    assert abs(counter.text(words) - 2 * counter.text("hello world " * 15_000) * 5) < 20
    assert counter.text("a" * 3_000_000) > 0


async def test_huge_reply_is_cut_and_the_session_resumes(server, workspace, monkeypatch):
    server.set_responder([Reply(text="x" * BIG)])
    # First with a raised limit: the session then holds a 1.2-million-character message, as a
    # session stored before the limit existed would.
    monkeypatch.setenv("OPENMANUS_LIMITS__MESSAGE_CHARS", "5000000")
    async with await Runtime.open(load_settings({"approval": {"mode": "yolo"}})) as runtime:
        session = await runtime.create_session(workspace=workspace)
        outcome = await session.run("write a lot")
        assert outcome.status == "completed" and len(outcome.final_answer) == BIG
        sid = session.id
    monkeypatch.delenv("OPENMANUS_LIMITS__MESSAGE_CHARS")
    server.set_responder([Reply(text="short")])
    async with await Runtime.open(load_settings({"approval": {"mode": "yolo"}})) as runtime:
        session = await runtime.open_session(sid)
        outcome = await session.run("and again")
        assert outcome.status == "completed"
        assert max(len(str(m["content"])) for m in server.requests[-1]["messages"]) < BIG
    # With the default limit, a huge reply is cut with a marker before it is stored.
    server.set_responder([Reply(text="y" * BIG)])
    async with await Runtime.open(load_settings({"approval": {"mode": "yolo"}})) as runtime:
        session = await runtime.create_session(workspace=workspace)
        outcome = await session.run("write a lot")
        assert outcome.status == "completed"
        assert len(outcome.final_answer) < 1_000_200
        assert "limits.message_chars" in outcome.final_answer


def test_task_from_file_and_stdin(server, tmp_path, workspace):
    big = "Summarise this: " + "word " * 60_000  # 300 KB: more than argv can carry
    # A short answer: echoing 60,000 words back would stream 60,000 chunks (minutes under load).
    server.set_responder(lambda body: Reply(text="Summarised."))
    task_file = tmp_path / "task.txt"
    task_file.write_text(big)
    done = cli("run", "--task-file", str(task_file), "--json", "--workspace", str(workspace))
    assert done.returncode == 0, done.stderr
    (started,) = [e for e in json_events(done.stdout) if e["type"] == "run_started"]
    assert started["input"] == big
    piped = cli("run", "-", "--json", "--workspace", str(workspace), input_text="from a pipe")
    assert piped.returncode == 0, piped.stderr
    assert server.requests[-1]["messages"][-1]["content"] == "from a pipe"


@pytest.mark.parametrize(
    "argv, stdin, message",
    [
        (["run", ""], "", "the task is empty"),
        (["run", "   \n"], "", "the task is empty"),
        (["run", "-"], "", "the task is empty"),
        (["run"], "", "no task given"),
        (["run", "--task-file", "/nonexistent/task.txt"], "", "no such file"),
        (["run", "x", "--task-file", "/etc/hostname"], "", "not both"),
        (["run", "-"], "z" * 1_000_001, "over the limit of 1,000,000"),
    ],
    ids=["empty", "blank", "empty-stdin", "none", "missing-file", "both", "too-big"],
)
def test_bad_tasks_are_refused_before_a_session_exists(server, argv, stdin, message):
    done = cli(*argv, input_text=stdin)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert _sessions() == []
    assert server.request_count == 0


def test_task_limit_is_configurable(server, workspace, monkeypatch):
    monkeypatch.setenv("OPENMANUS_LIMITS__TASK_CHARS", "10")
    done = cli("run", "a task of more than ten characters")
    assert done.returncode == 2 and "over the limit of 10" in done.stderr


def test_lone_surrogate_in_arguments_and_output(server, workspace):
    server.set_responder([
        # "\ud800" as JSON text: json.loads makes it a lone surrogate.
        Reply(tool_calls=[ToolCallSpec("file_write", '{"path": "s.txt", "content": "a\\ud800b"}'),
                          ToolCallSpec("shell_exec", {"command": "printf 'c\\355\\240\\200d'"})]),
        Reply(text="wrote \ud800 it".encode("utf-8", "surrogatepass").decode("utf-8", "replace")),
    ])
    done = run_cli("run", "go", "--approval", "yolo", "--workspace", str(workspace))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    (workspace / "s.txt").read_text(encoding="utf-8")  # valid UTF-8
    sid = _sessions()[0]["id"]
    # The real process: its standard output must take the replaced text (a lone surrogate
    # cannot be encoded, and printing one would end the command with a traceback).
    shown = {}
    for argv in (["sessions", "show", sid], ["export", sid, "--format", "json"],
                 ["sessions", "show", sid, "--json"]):
        shown[argv[0]] = run_cli(*argv)
        assert shown[argv[0]].returncode == 0, shown[argv[0]].stderr
        assert "Traceback" not in shown[argv[0]].stderr, shown[argv[0]].stderr
    assert json.loads(shown["export"].stdout)


async def test_surrogate_in_a_stored_event_is_replaced(tmp_path):
    db = await Database.open(Path(os.environ["OPENMANUS_DATA_DIR"]) / "x.db")
    try:
        event = ev.ToolCall(call_id="c", tool="t", args={"k\udc80": ["v\ud800"]})
        assert event.args == {"k\ufffd": ["v\ufffd"]}
        json.loads(event.to_json())
    finally:
        await db.close()
    await asyncio.sleep(0)


@pytest.mark.parametrize("where", ["file", "devnull", "under-a-file"])
def test_bad_workspace_is_refused_before_a_session_exists(server, tmp_path, where):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep")
    path = {"file": str(a_file), "devnull": "/dev/null",
            "under-a-file": str(a_file / "sub")}[where]
    done = cli("run", "hello", "--workspace", path)
    assert done.returncode == 2, done.stderr
    assert "workspace" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2
    assert _sessions() == []
    assert a_file.read_text() == "keep"


def test_missing_workspace_is_created(server, tmp_path):
    path = tmp_path / "new" / "ws"
    done = cli("run", "hello", "--workspace", str(path), "--json")
    assert done.returncode == 0, done.stderr
    assert path.is_dir()
