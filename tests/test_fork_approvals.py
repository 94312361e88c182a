"""Fork × approval: on every branch operation a pending approval is asked once, continues from
the interrupted checkpoint of the current branch, and nothing already run on it runs again.

The model (the loopback OpenAI server) asks for two ``tally`` calls (``tests/tally_tool.py``) that
each append a line to a file outside the workspace, then answers. The file counts the runs, the
approver counts the asks. Every
branch operation (fork with an edited message, edited arguments, edited text, retry, switch, live
replay) is combined with each answer (approve, deny, edit), through the session API in ask mode.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from openai_server import OpenAITestServer
from tally_tool import open_ask_runtime, tallies, tally_script, task_responder

from openmanus_tui import events as ev
from openmanus_tui.agent.approval import Decision
from openmanus_tui.runtime.session import AgentSession, Runtime
from openmanus_tui.store.tree import SessionTree, lineage_sql, load_tree

ASK_LIMIT = 6  # far more asks than any scenario needs: a loop fails instead of hanging


SCRIPTS = {"count A": tally_script("A"), "count B": tally_script("B")}


@pytest.fixture
def server(tally_server: OpenAITestServer) -> OpenAITestServer:
    tally_server.set_responder(task_responder(SCRIPTS))
    return tally_server


class Approver:
    """Answers every ask with one decision; records the tag of each call asked."""

    def __init__(self, decision: str) -> None:
        self.decision = decision
        self.asked: list[str] = []

    async def __call__(self, request: ev.ApprovalRequested) -> dict[str, Decision]:
        out: dict[str, Decision] = {}
        for call in request.calls:
            self.asked.append(call.args.get("tag", ""))
            if len(self.asked) > ASK_LIMIT:
                raise AssertionError(f"asked again and again: {self.asked}")
            if self.decision == "edit":
                out[call.call_id] = Decision(decision="edit", args={"tag": "E"})
            elif self.decision == "deny":
                out[call.call_id] = Decision(decision="deny", reason="not today")
            else:
                out[call.call_id] = Decision(decision="approve")
        return out


def runs(session: AgentSession | None = None) -> list[str]:
    return tallies()


async def base_session(runtime: Runtime) -> AgentSession:
    session = await runtime.create_session()
    outcome = await session.run("count A", approver=Approver("approve"))
    assert outcome.final_answer == "done A"
    assert runs(session) == ["A1", "A2"]
    return session


def tool_call_steps(tree: SessionTree, head: str) -> list[str]:
    """The model steps that proposed a tool call on the branch ending at ``head``."""
    return [c for c in tree.lineage(head) if tree.nodes[c].kind == "tool_call"]


async def check_tree(runtime: Runtime, session: AgentSession) -> None:
    """The tree read from events agrees with LangGraph's parent links on every branch."""
    tree = await load_tree(runtime.db, session.id)
    for head in tree.heads:
        assert tree.lineage(head) == await lineage_sql(runtime.db, session.id, head)


def expected(decision: str, tags: list[str]) -> list[str]:
    if decision == "approve":
        return tags
    if decision == "edit":
        return ["E"] * len(tags)
    return []


OPERATIONS = ["message", "args", "text", "retry", "retry_tool", "switch", "live_replay"]


async def branch_and_resume(
    runtime: Runtime, session: AgentSession, operation: str, approver: Approver
) -> tuple[Any, list[str], list[str]]:
    """Do ``operation`` on the base session and run the new branch with ``approver``; returns
    the outcome, the tags expected to be asked and the tags approving them would append."""
    tree = await session.history.tree()
    first, second = tool_call_steps(tree, tree.current)
    if operation == "message":
        await session.history.fork(first, message="count B")
        outcome = await session.run("count B", approver=approver)
        return outcome, ["B1", "B2"], ["B1", "B2"]
    if operation == "args":
        state = await runtime.graph.aget_state(session.history.at(first))
        call_id = state.values["tool_calls"][0]["id"]
        await session.history.fork(first, call_args={call_id: {"tag": "X"}})
        outcome = await session.resume(approver=approver)
        return outcome, ["X", "A2"], ["X", "A2"]
    if operation == "text":
        await session.history.fork(first, text="First, reworded.")
        outcome = await session.resume(approver=approver)
        return outcome, ["A1", "A2"], ["A1", "A2"]
    if operation == "retry":
        await session.history.fork(second)
        outcome = await session.resume(approver=approver)
        return outcome, ["A2"], ["A2"]
    if operation == "retry_tool":
        # Retrying the step that ran an approved call asks for the approval again.
        result = next(c for c in tree.lineage(tree.current) if tree.nodes[c].kind == "result")
        await session.history.fork(result)
        outcome = await session.resume(approver=approver)
        return outcome, ["A1", "A2"], ["A1", "A2"]
    if operation == "live_replay":
        outcome = await session.history.retry_live(first, approver=approver)
        return outcome, ["A1", "A2"], ["A1", "A2"]
    assert operation == "switch"
    # A branch paused at its approval, then the old branch, then back: the pause is kept.
    main = tree.current
    await session.history.fork(first)
    paused = await session.resume(approver=None)
    assert paused.status == "awaiting_approval"
    paused_head = (await session.history.tree()).current
    await session.history.switch(main)
    await session.history.switch(paused_head)
    outcome = await session.resume(approver=approver)
    return outcome, ["A1", "A2"], ["A1", "A2"]


@pytest.mark.parametrize("decision", ["approve", "deny", "edit"])
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_branch_operation_asks_once_and_runs_once(
    server: OpenAITestServer, operation: str, decision: str
) -> None:
    runtime = await open_ask_runtime()
    try:
        session = await base_session(runtime)
        approver = Approver(decision)
        baseline = runs()
        outcome, asks, tags = await asyncio.wait_for(
            branch_and_resume(runtime, session, operation, approver), 60
        )
        assert outcome.status == "completed", outcome
        assert approver.asked == asks
        assert runs(session) == baseline + expected(decision, tags)
        # A second resume of a finished branch asks nothing and runs nothing.
        again = Approver(decision)
        snapshot = runs(session)
        assert (await session.resume(approver=again)).reason == "nothing to resume"
        assert again.asked == [] and runs(session) == snapshot
        await check_tree(runtime, session)
    finally:
        await runtime.close()


async def test_fork_branch_paused_twice_across_restarts_runs_each_call_once(
    server: OpenAITestServer,
) -> None:
    """A forked branch paused at each approval, every resume in a new runtime: each call is
    asked once, runs once, and the first never runs again when the second is approved."""
    runtime = await open_ask_runtime()
    try:
        session = await base_session(runtime)
        tree = await session.history.tree()
        first, _ = tool_call_steps(tree, tree.current)
        await session.history.fork(first, message="count B")
        assert (await session.run("count B", approver=None)).status == "awaiting_approval"
        session_id = session.id
    finally:
        await runtime.close()
    asked: list[str] = []
    for _ in range(4):
        async with await open_ask_runtime() as runtime:
            session = await runtime.open_session(session_id)
            approver = Approver("approve")
            # Approve exactly one ask per process, then pause again.
            calls = 0

            async def once(request: ev.ApprovalRequested, approver: Approver = approver) -> Any:
                nonlocal calls
                calls += 1
                if calls > 1:
                    raise asyncio.CancelledError
                return await approver(request)

            try:
                outcome = await session.resume(approver=once)
            except asyncio.CancelledError:
                outcome = None
            asked += approver.asked
            if outcome is not None and outcome.status == "completed":
                break
    assert asked == ["B1", "B2"]
    async with await open_ask_runtime() as runtime:
        session = await runtime.open_session(session_id)
        assert runs() == ["A1", "A2", "B1", "B2"]
        await check_tree(runtime, session)
