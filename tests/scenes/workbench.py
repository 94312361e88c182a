"""Recorded scenes: fixed event streams that put the app in a known state without a model.

Snapshot tests and ``screenshots/make_screenshots.py`` use these so that every frame is
deterministic (fixed ids, timestamps, checkpoint ids, outputs). The events mirror a real run of
the ``scripted:demo`` model: the same tools, arguments and order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from openmanus_tui import events as ev
from openmanus_tui.events import ApprovalCall

SESSION_ID = "20250101-090000-a1b2c3"
OTHER_SESSIONS = [
    ("20241231-170000-d4e5f6", "Summarise the quarterly CSV files", "completed"),
    ("20241230-110000-0a0b0c", "Fix the failing unit test in utils", "stopped"),
]
BASE_TS = 1_735_722_000.0  # 2025-01-01 09:00 UTC
STATS_PY = (
    '"""Tiny demo program written by the OpenManus demo agent."""\n'
    "import statistics\n\n"
    "numbers = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]\n"
    'print(f"count={len(numbers)} mean={statistics.mean(numbers):.2f} '
    'median={statistics.median(numbers)}")\n'
)
OLD_STATS_PY = (
    '"""Tiny demo program."""\n'
    "numbers = [3, 1, 4]\n"
    "print(sum(numbers))\n"
)


class FixedClock:
    """A clock the test moves by hand (``clock.now += 42``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class _Recorder:
    def __init__(self, session_id: str, run_id: str) -> None:
        self.session_id, self.run_id = session_id, run_id
        self.seq = 0
        self.ts = BASE_TS
        self.checkpoint = 0
        self.out: list[ev.Event] = []

    def ckpt(self) -> str:
        return f"1f0c0000-0000-6000-8000-{self.checkpoint:012d}"

    def add(self, event: ev.Event, *, stored: bool = True) -> None:
        if stored:
            self.seq += 1
        self.ts += 0.25
        event.session_id, event.run_id, event.seq, event.ts = (
            self.session_id, self.run_id, self.seq, self.ts,
        )
        if event.checkpoint_id is None:
            event.checkpoint_id = self.ckpt()
        self.out.append(event)

    def step(self, nodes: list[str], changed: list[str]) -> None:
        parent = self.ckpt()
        self.checkpoint += 1
        self.add(ev.Checkpoint(parent_id=parent, step=self.checkpoint, source="loop",
                               nodes=nodes, changed=changed))

    def thought(self, n: int, text: str, *, streamed: bool = True) -> str:
        message_id = f"msg_demo_{n}"
        if streamed:
            words = text.split(" ")
            for i, word in enumerate(words):
                self.add(ev.ThoughtDelta(message_id=message_id,
                                         text=word + (" " if i < len(words) - 1 else "")),
                         stored=False)
        self.add(ev.Thought(message_id=message_id, text=text))
        return message_id

    def usage(self, message_id: str, tokens_in: int, tokens_out: int, context: int,
              totals: tuple[int, int]) -> None:
        self.add(ev.Usage(message_id=message_id, tokens_in=tokens_in, tokens_out=tokens_out,
                          context_tokens=context, context_window=32_000, latency_ms=412.5,
                          total_tokens_in=totals[0], total_tokens_out=totals[1]))

    def call(self, n: int, message_id: str, tool: str, args: dict[str, Any], risk: str) -> str:
        call_id = f"call_demo_{n}"
        self.add(ev.ToolCall(call_id=call_id, tool=tool, args=args, raw_args=json.dumps(args),
                             tier=1, risk=risk, message_id=message_id))
        return call_id

    def decide(self, call_id: str, tool: str, decision: str = "approve", by: str = "policy",
               reason: str = "", args: dict[str, Any] | None = None) -> None:
        self.add(ev.ApprovalDecided(call_id=call_id, tool=tool, decision=decision,  # type: ignore[arg-type]
                                    by=by, reason=reason, args=args))  # type: ignore[arg-type]

    def run_tool(self, call_id: str, tool: str, args: dict[str, Any], result: str,
                 status: str = "ok", ms: float = 3.2, output: list[str] | None = None,
                 finish: bool = True) -> None:
        self.add(ev.ToolStarted(call_id=call_id, tool=tool, args=args, isolation="L2"))
        for line in output or []:
            self.add(ev.ToolOutput(call_id=call_id, text=line), stored=False)
        if finish:
            self.add(ev.ToolFinished(call_id=call_id, tool=tool, status=status,  # type: ignore[arg-type]
                                     result=result, duration_ms=ms, isolation="L2"))


def completed_run(session_id: str = SESSION_ID) -> list[ev.Event]:
    """A finished first run: list the workspace, answer."""
    r = _Recorder(session_id, "run_demo_1")
    r.add(ev.RunStarted(model="scripted:demo", input="What is in my workspace?"))
    r.step(["__input__"], [])
    m = r.thought(0, "First I'll look at what is already in the workspace.", streamed=False)
    c = r.call(0, m, "list_files", {"path": "."}, "read")
    r.usage(m, 1552, 58, 234, (1552, 58))
    r.step(["call_llm"], ["messages", "tool_calls"])
    r.decide(c, "list_files", reason="read-only tool in approval mode auto")
    r.step(["approve"], ["decisions"])
    r.run_tool(c, "list_files", {"path": "."}, "./\n  notes.md\n  data/\n    sales.csv")
    r.step(["call_tool"], ["messages", "tool_results"])
    answer = "The workspace holds `notes.md` and a `data/` folder with `sales.csv`."
    m = r.thought(1, answer, streamed=False)
    r.usage(m, 1610, 31, 298, (3162, 89))
    r.step(["call_llm"], ["messages"])
    r.add(ev.FinalAnswer(text=answer))
    r.step(["finalize"], ["final_answer", "messages"])
    r.add(ev.RunFinished(status="completed", steps=2, tokens_in=3162, tokens_out=89))
    return r.out


def live_run(
    session_id: str = SESSION_ID, *, after_seq: int = 0, finish: bool = False
) -> Iterator[ev.Event]:
    """A second run, stopped mid-way: a file written (approved by the user), a shell command
    running with live output. Events are yielded in the order the runtime emits them. With
    ``finish`` the command ends and the run answers (the memory scene)."""
    r = _Recorder(session_id, "run_demo_2")
    r.seq = after_seq
    r.ts = BASE_TS + 600
    r.checkpoint = 20
    r.add(ev.RunStarted(model="scripted:demo", input="Write a small stats program and run it."))
    r.step(["__input__"], [])
    m = r.thought(2, "I'll write a small **Python** program that summarises some numbers.")
    write_args = {"path": "stats.py", "content": STATS_PY}
    c = r.call(1, m, "file_write", write_args, "write")
    r.usage(m, 1700, 120, 410, (4862, 209))
    r.step(["call_llm"], ["messages", "tool_calls"])
    r.add(ev.ApprovalRequested(calls=[ApprovalCall(
        call_id=c, tool="file_write", args=write_args, risk="write", tier=1,
        reason="write tool in approval mode auto",
    )]))
    r.decide(c, "file_write", by="user")
    r.step(["approve"], ["decisions"])
    r.run_tool(c, "file_write", write_args, "Wrote 5 lines (221 bytes) to stats.py", ms=4.1)
    r.step(["call_tool"], ["messages", "tool_results"])
    m = r.thought(3, "Now I'll run it with the shell tool, inside the sandbox.")
    shell_args = {"command": "python3 stats.py && seq 1 30", "timeout": 30}
    c = r.call(2, m, "shell_exec", shell_args, "execute")
    r.usage(m, 1780, 44, 520, (6642, 253))
    r.step(["call_llm"], ["messages", "tool_calls"])
    r.decide(c, "shell_exec", by="user")
    r.step(["approve"], ["decisions"])
    output = ["count=10 mean=3.90 median=3.5", *[str(i) for i in range(1, 15)]]
    r.run_tool(c, "shell_exec", shell_args, "", output=output, finish=False)
    if finish:
        r.add(ev.ToolFinished(call_id=c, tool="shell_exec", status="ok",
                              result="exit code: 0\nstdout:\n" + "\n".join(output),
                              duration_ms=512.0, isolation="L2"))
        r.step(["call_tool"], ["messages", "tool_results"])
        answer = "`stats.py` prints count=10 mean=3.90 median=3.5 for the ten numbers."
        m = r.thought(4, answer, streamed=False)
        r.usage(m, 1850, 30, 610, (8492, 283))
        r.step(["call_llm"], ["messages"])
        r.add(ev.FinalAnswer(text=answer))
        r.step(["finalize"], ["final_answer", "messages"])
        r.add(ev.RunFinished(status="completed", steps=3, tokens_in=8492, tokens_out=283))
    yield from r.out


def write_approval_call() -> ApprovalCall:
    return ApprovalCall(
        call_id="call_demo_1", tool="file_write", args={"path": "stats.py", "content": STATS_PY},
        risk="write", tier=1, reason="write tool in approval mode auto",
    )


async def seed_sessions(db: Any) -> None:
    """Store the demo session (with its completed run) and two older sessions."""
    from openmanus_tui.runtime.api import SessionRecord

    # An explicit workspace: a record without one would resolve to the current directory.
    def workspace(sid: str) -> str:
        return str(db.path.parent / "workspaces" / sid)

    for n, (sid, title, status) in enumerate(OTHER_SESSIONS):
        await db.create_session(SessionRecord(
            id=sid, title=title, created=BASE_TS - 86400 * (n + 1),
            updated=BASE_TS - 86400 * (n + 1), model="scripted:demo", status=status,
            workspace=workspace(sid),
        ))
    await db.create_session(SessionRecord(
        id=SESSION_ID, title="What is in my workspace?", created=BASE_TS, updated=BASE_TS,
        model="scripted:demo", status="completed", workspace=workspace(SESSION_ID),
    ))
    for event in completed_run():
        await db.append_event(event)
    # list_sessions orders by "updated": pin the times (the runtime stamps them with now).
    for n, (sid, _, _) in enumerate(OTHER_SESSIONS):
        await db.update_session(sid, updated=BASE_TS - 86400 * (n + 1))
    await db.update_session(SESSION_ID, updated=BASE_TS)


async def stage_main(app: Any, *, live: bool = True, settle: float = 0.3) -> None:
    """Put a freshly started app into the demo scene: seeded sessions, the demo session open
    and (with ``live``) the second run replayed up to a running shell command."""
    import asyncio

    await app.ready.wait()
    await seed_sessions(app.runtime.db)
    await app.open_session(SESSION_ID)
    if live:
        stored = await app.runtime.db.last_seq(SESSION_ID)
        for event in live_run(after_seq=stored):
            app.handle_event(event)
        clock = app.clock
        if isinstance(clock, FixedClock):
            clock.now += 42  # the run has been going for 42 s
        app.refresh_status(keep_state=False)
    # Let the stream flush (tokens are coalesced) and the layout settle.
    await asyncio.sleep(settle)


def conversation_messages(events: list[ev.Event]) -> list[Any]:
    """The chat messages a run of these recorded events leaves in the graph state, with fixed
    ids: the user input, the model's messages with their tool calls, the tool results."""
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    out: list[Any] = []
    calls: dict[str, list[dict[str, Any]]] = {}
    texts: dict[str, str] = {}
    for event in events:
        if isinstance(event, ev.RunStarted) and event.input:
            out.append(("user", event.run_id, event.input))
        elif isinstance(event, ev.Thought):
            texts[event.message_id] = event.text
            calls[event.message_id] = []
            out.append(("ai", event.message_id, None))
        elif isinstance(event, ev.ToolCall) and event.message_id in calls:
            calls[event.message_id].append(
                {"id": event.call_id, "name": event.tool, "args": event.args})
        elif isinstance(event, ev.ToolFinished):
            out.append(("tool", event.call_id, (event.tool, event.result)))
    messages: list[Any] = []
    for kind, key, data in out:
        if kind == "user":
            messages.append(HumanMessage(content=data, id=f"user_{key}"))
        elif kind == "ai":
            messages.append(AIMessage(content=texts[key], tool_calls=calls[key], id=key))
        else:
            tool, result = data
            messages.append(ToolMessage(content=result, tool_call_id=key, name=tool,
                                        id=f"result_{key}"))
    return messages


async def stage_memory(app: Any, *, pin: str | None = "msg_demo_0", preview: bool = True) -> None:
    """The memory scene: both demo runs finished and stored — events and the graph state
    (written as the ``finalize`` step) — the ``list_files`` turn pinned, and (with
    ``preview``) a compaction preview open in the Memory tab."""
    import asyncio

    from openmanus_tui.runtime.api import is_live_only

    await app.ready.wait()
    await seed_sessions(app.runtime.db)
    stored = await app.runtime.db.last_seq(SESSION_ID)
    second = list(live_run(after_seq=stored, finish=True))
    for event in second:
        if not is_live_only(event):  # deltas and live output are never stored
            await app.runtime.db.append_event(event)
    await app.runtime.db.update_session(SESSION_ID, updated=BASE_TS)
    messages = conversation_messages([*completed_run(), *second])
    await app.runtime.graph.aupdate_state(
        {"configurable": {"thread_id": SESSION_ID}}, {"messages": messages}, as_node="finalize"
    )
    await app.open_session(SESSION_ID)
    if pin:
        await app.session.pin(pin)
    app.query_one("#panel").active = "tab-memory"
    pane = app.query_one("#memory")
    if preview:
        await pane.preview_compaction().wait()
    else:
        await pane.reload().wait()
    # Every refresh the scene started (sidebar, database size, panes) must be done before a
    # screenshot: on a loaded machine a fixed sleep alone was not always enough.
    await app.workers.wait_for_complete()
    await asyncio.sleep(0.3)
    await app.workers.wait_for_complete()
