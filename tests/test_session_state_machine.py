"""A hypothesis state machine over the session API with the offline scripted model.

Rules: run a task, resume, fork (edited message, edited arguments, edited text, retry), switch
branch, live replay, Ctrl+C at an approval, and a restart (the runtime closed and opened again,
as a new process would) — each answering approvals with drawn decisions (approve, deny, edit,
stop). Calls go to ``tally`` (``tests/tally_tool.py``), which appends its tag to a file outside
the workspace, so every execution is counted.

Invariants after every rule:
- each approval ran its call exactly once, and nothing ran without one (the tally file holds
  exactly the tags approved or edited in);
- within one run no call is asked twice (an answered approval continues, it never comes back);
- the tree read from events has the same lineage as LangGraph's own parent links;
- the session's status matches reality (never "running" between rules: no run is alive).

CI runs 200 examples (the ``ci`` profile), in ``SHARDS`` tests of 50 with seeds of their own so
that pytest-xdist spreads them over the workers. For a long run (more examples, longer
programs, fresh random seeds): ``OPENMANUS_STATEFUL_PROFILE=long
OPENMANUS_STATEFUL_EXAMPLES=5000 pytest -n auto tests/test_session_state_machine.py`` (the
examples are shared out among the shards in the same way).

The sandbox is not what this machine tests (``tally`` runs in-process): the session reports a
fixed isolation level instead of starting a sandbox (a helper process in a mount namespace)
for every example's session.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from tally_tool import registry_with_tally

from openmanus_tui import events as ev
from openmanus_tui.agent.approval import Decision
from openmanus_tui.config import load_settings
from openmanus_tui.errors import OpenManusError
from openmanus_tui.runtime.session import AgentSession, Runtime
from openmanus_tui.store.tree import SessionTree, lineage_sql, load_tree

EXAMPLES = int(os.environ.get("OPENMANUS_STATEFUL_EXAMPLES", "200"))
SHARDS = 4
SHARD_EXAMPLES = -(-EXAMPLES // SHARDS)  # rounded up: at least EXAMPLES in all
settings.register_profile(
    "ci",
    max_examples=SHARD_EXAMPLES,
    stateful_step_count=5,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,  # the same examples on every CI run; the long run explores more
)
settings.register_profile(
    "long",
    max_examples=SHARD_EXAMPLES,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

SCRIPT = {
    "steps": [
        {"text": "first", "tool_calls": [{"name": "tally", "args": {"tag": "t1"}}]},
        {"text": "second", "tool_calls": [{"name": "tally", "args": {"tag": "t2"}}]},
    ],
    "final": "done",
}

DECISIONS = st.lists(st.sampled_from(["approve", "deny", "edit", "stop"]), max_size=3)
PICK = st.integers(min_value=0, max_value=50)


class Answers:
    """Answers asks from a drawn list; when it runs out, or on "stop", the run is stopped."""

    def __init__(self, machine: SessionMachine, decisions: list[str]) -> None:
        self.machine = machine
        self.decisions = list(decisions)
        self.asked: list[str] = []

    async def __call__(self, request: ev.ApprovalRequested) -> dict[str, Decision]:
        out: dict[str, Decision] = {}
        for call in request.calls:
            assert call.call_id not in self.asked, f"{call.call_id} asked twice in one run"
            self.asked.append(call.call_id)
            kind = self.decisions.pop(0) if self.decisions else "stop"
            if kind == "stop":  # Ctrl+C at the prompt: the run's task is cancelled
                task = asyncio.current_task()
                assert task is not None
                task.cancel()
                await asyncio.sleep(0)
            if kind == "deny":
                out[call.call_id] = Decision(decision="deny", reason="no")
            elif kind == "edit":
                self.machine.edits += 1
                tag = f"e{self.machine.edits}"
                out[call.call_id] = Decision(decision="edit", args={"tag": tag})
                self.machine.approved[tag] += 1
            else:
                out[call.call_id] = Decision(decision="approve")
                self.machine.approved[call.args["tag"]] += 1
        return out


class Shared:
    """One event loop and runtime for all examples (opening a database per example would take
    most of the time); each example has its own session, workspace and tally file."""

    loop: asyncio.AbstractEventLoop | None = None
    runtime: Runtime | None = None
    dir: Path | None = None

    @classmethod
    async def open(cls) -> Runtime:
        return await Runtime.open(
            load_settings({"approval": {"mode": "ask"}}), registry=registry_with_tally()
        )

    @classmethod
    def start(cls, root: Path) -> None:
        cls.dir = root
        cls.loop = asyncio.new_event_loop()
        cls.runtime = cls.loop.run_until_complete(cls.open())

    @classmethod
    def stop(cls) -> None:
        assert cls.loop is not None and cls.runtime is not None
        cls.loop.run_until_complete(cls.runtime.close())
        cls.loop.close()
        cls.loop = cls.runtime = None


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        assert Shared.loop is not None and Shared.runtime is not None and Shared.dir
        self.loop = Shared.loop
        self.runtime = Shared.runtime
        self.dir = Path(tempfile.mkdtemp(prefix="example-", dir=Shared.dir))
        os.environ["TALLY_FILE"] = str(self.dir / "tally.txt")
        script = self.dir / "script.json"
        script.write_text(json.dumps(SCRIPT))
        self.model = f"scripted:{script}"
        self.session: AgentSession = self._await(
            self.runtime.create_session(model=self.model, workspace=self.dir / "ws")
        )
        self.approved: Counter[str] = Counter()
        self.edits = 0
        self.tasks = 0
        self.expected_status: str | None = None

    def _await(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- helpers -------------------------------------------------------------------------
    def _drive(self, coro: Any) -> None:
        """Run a run/resume to its end; a stop at a prompt cancels it, as Ctrl+C does."""

        async def go() -> str | None:
            try:
                outcome = await asyncio.ensure_future(coro)
                # Nothing to resume changes nothing (a finished session reads as finished).
                return None if outcome.reason == "nothing to resume" else str(outcome.status)
            except asyncio.CancelledError:
                return "cancelled"

        self.expected_status = self._await(go())

    def _fork(self, **kwargs: Any) -> bool:
        """A fork; False when the step cannot be forked that way (a user error, not a bug)."""
        try:
            self._await(self.session.history.fork(force=True, **kwargs))
        except OpenManusError as exc:
            assert exc.error_class == "user", exc
            return False
        return True

    def _tree(self) -> SessionTree:
        return self._await(self.session.history.tree())

    def _pick(self, tree: SessionTree, index: int, kind: str | None = None,
              node: str | None = None) -> str | None:
        found = [
            c for c, n in sorted(tree.nodes.items(), key=lambda item: item[1].seq)
            if (kind is None or n.kind == kind) and (node is None or n.node == node)
            and not n.pruned
        ]
        return found[index % len(found)] if found else None

    # ---- rules ---------------------------------------------------------------------------
    @rule(decisions=DECISIONS, nobody=st.booleans())
    def run(self, decisions: list[str], nobody: bool) -> None:
        self.tasks += 1
        approver = None if nobody else Answers(self, decisions)
        self._drive(self.session.run(f"task {self.tasks}", approver=approver))

    @precondition(lambda self: self.tasks > 0)
    @rule(decisions=DECISIONS)
    def resume(self, decisions: list[str]) -> None:
        self._drive(self.session.resume(approver=Answers(self, decisions)))

    @precondition(lambda self: self.tasks > 0)
    @rule(index=PICK, decisions=DECISIONS)
    def fork_message(self, index: int, decisions: list[str]) -> None:
        at = self._pick(self._tree(), index, kind="tool_call")
        if at is None:
            return
        self.tasks += 1
        text = f"task {self.tasks} (edited)"
        if self._fork(at=at, message=text):
            self._drive(self.session.run(text, approver=Answers(self, decisions)))

    @precondition(lambda self: self.tasks > 0)
    @rule(index=PICK, decisions=DECISIONS)
    def fork_args(self, index: int, decisions: list[str]) -> None:
        at = self._pick(self._tree(), index, kind="tool_call")
        if at is None:
            return
        state = self._await(self.runtime.graph.aget_state(self.session.history.at(at)))
        calls = state.values.get("tool_calls") or []
        if not calls:
            return
        self.edits += 1
        edits = {calls[0]["id"]: {"tag": f"f{self.edits}"}}
        if self._fork(at=at, call_args=edits):
            self._drive(self.session.resume(approver=Answers(self, decisions)))

    @precondition(lambda self: self.tasks > 0)
    @rule(index=PICK, decisions=DECISIONS)
    def fork_text(self, index: int, decisions: list[str]) -> None:
        at = self._pick(self._tree(), index, node="call_llm")
        if at is None:
            return
        if self._fork(at=at, text="reworded"):
            self._drive(self.session.resume(approver=Answers(self, decisions)))

    @precondition(lambda self: self.tasks > 0)
    @rule(index=PICK, decisions=DECISIONS)
    def retry(self, index: int, decisions: list[str]) -> None:
        tree = self._tree()
        at = self._pick(tree, index)
        if at is None or tree.nodes[at].parent_id is None:
            return
        if self._fork(at=at):
            self._drive(self.session.resume(approver=Answers(self, decisions)))

    @precondition(lambda self: self.tasks > 0)
    @rule(index=PICK, decisions=DECISIONS)
    def live_replay(self, index: int, decisions: list[str]) -> None:
        tree = self._tree()
        at = self._pick(tree, index, node="call_llm")
        if at is None or tree.nodes[at].parent_id is None:
            return
        self._drive(
            self.session.history.retry_live(at, force=True, approver=Answers(self, decisions))
        )

    @precondition(lambda self: self.tasks > 0)
    @rule(index=PICK)
    def switch(self, index: int) -> None:
        tree = self._tree()
        if not tree.heads:
            return
        self._await(self.session.history.switch(tree.heads[index % len(tree.heads)], force=True))
        self.expected_status = None

    @precondition(lambda self: self.tasks > 0)
    @rule()
    def restart(self) -> None:
        """Close the runtime and open it again, as a new process would."""
        self._await(self.runtime.close())
        self.runtime = Shared.runtime = self._await(Shared.open())
        self.session = self._await(self.runtime.open_session(self.session.id))

    # ---- invariants ----------------------------------------------------------------------
    @invariant()
    def each_approval_ran_exactly_once(self) -> None:
        path = Path(os.environ["TALLY_FILE"])
        ran = Counter(path.read_text().split()) if path.exists() else Counter()
        assert ran == self.approved, f"ran {dict(ran)} but approved {dict(self.approved)}"

    @invariant()
    def tree_matches_langgraph(self) -> None:
        tree = self._await(load_tree(self.runtime.db, self.session.id))
        for head in tree.heads:
            if tree.nodes[head].pruned:
                continue
            expected = self._await(lineage_sql(self.runtime.db, self.session.id, head))
            assert tree.lineage(head) == expected

    @invariant()
    def status_matches_reality(self) -> None:
        record = self._await(self.runtime.db.get_session(self.session.id))
        assert record.status != "running"  # no run is alive between rules
        if self.expected_status is not None:
            assert record.status == self.expected_status
        if self.tasks:
            head = self._await(self.runtime.db.session_head(self.session.id))
            assert head is not None


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SHARDS))
def test_session_state_machine(
    shard: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENMANUS_DATA_DIR", str(tmp_path / "data"))  # restored afterwards
    monkeypatch.setenv("TALLY_FILE", str(tmp_path / "tally.txt"))
    monkeypatch.setattr(AgentSession, "isolation", lambda self: "L2")
    profile = os.environ.get("OPENMANUS_STATEFUL_PROFILE", "ci")

    def machine() -> SessionMachine:
        return SessionMachine()

    if profile == "ci":
        # derandomized per shard: the same examples on every CI run, different in each shard
        machine = seed(20_000 + shard)(machine)
    Shared.start(tmp_path)
    try:
        run_state_machine_as_test(machine, settings=settings.get_profile(profile))
    finally:
        Shared.stop()
