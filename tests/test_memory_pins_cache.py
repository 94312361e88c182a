"""Pins are cached between model calls (they were read from the database before every step),
and every change reaches the next step's prompt: one made through this session object, one
made through another object of the same session (the REST API opens one per request), and one
made by another process (seen when the next run starts)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from openmanus_tui.config import load_settings
from openmanus_tui.memory.manager import MemoryManager
from openmanus_tui.runtime.session import Runtime


def state() -> dict[str, Any]:
    return {"messages": [
        HumanMessage("Read a.txt.", id="u1"),
        AIMessage("", id="a1", tool_calls=[{"name": "file_read", "args": {"path": "a.txt"},
                                             "id": "c1"}]),
        ToolMessage("alpha", tool_call_id="c1", id="t1"),
        AIMessage("Done.", id="a2"),
        HumanMessage("And now?", id="u2"),
    ]}


async def pinned_ids(memory: MemoryManager) -> list[str]:
    """The pinned messages of the next model call's plan (what ``prepare`` sends)."""
    prepared = await memory.prepare(
        state(), model=None, system_prompt="s", tools=[], window=100_000
    )
    return [i for p in prepared.plan.parts if p.kind == "pinned" for i in p.message_ids]


def count_pin_reads(monkeypatch: pytest.MonkeyPatch, memory: MemoryManager) -> list[str]:
    reads: list[str] = []
    real = memory.db.conn.execute

    def execute(sql: str, *args: Any, **kwargs: Any) -> Any:
        if "FROM memory_pins" in sql:
            reads.append(sql)
        return real(sql, *args, **kwargs)

    monkeypatch.setattr(memory.db.conn, "execute", execute)
    return reads


async def test_pins_are_read_once_and_every_change_reaches_the_next_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = await Runtime.open(load_settings({}))
    try:
        session = await runtime.create_session()
        memory = session.memory
        assert await pinned_ids(memory) == []
        reads = count_pin_reads(monkeypatch, memory)
        for _ in range(3):  # steps of a run: no change, no read
            assert await pinned_ids(memory) == []
        assert reads == []

        await memory.set_pin("a1", True)  # through this session object
        assert "a1" in await pinned_ids(memory)

        other = await runtime.open_session(session.id)  # another object, same session
        assert other.memory is not memory
        await other.memory.set_pin("a1", False)
        assert await pinned_ids(memory) == []
        await other.memory.set_pin("a2", True)
        assert "a2" in await pinned_ids(memory)

        # Another process: not seen mid-run, seen once the next run reloads the pins.
        async with runtime.db.saver.lock:
            await runtime.db.conn.execute(
                "INSERT INTO memory_pins (session_id, item_id, created) VALUES (?, 'u2', 9e9)",
                (session.id,),
            )
            await runtime.db.conn.commit()
        assert "u2" not in await pinned_ids(memory)
        memory.reload_pins()  # what a run does first
        assert "u2" in await pinned_ids(memory)
    finally:
        await runtime.close()
