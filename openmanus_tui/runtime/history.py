"""Branching, rewind with files, replay and compare for one session.

Forks stay inside the session's LangGraph thread, so a session is one tree of checkpoints:
- edit a user message: run the new message from the input checkpoint of that run;
- edit a tool call's arguments or the model's text: ``aupdate_state(..., as_node="call_llm")``
  writes a ``source="update"`` child, and the run continues from it;
- retry: re-execute the step that produced a checkpoint, from its parent.
Switching branch (or forking) first restores the workspace to the chosen step from the snapshot
store, after checking that nobody changed files outside the agent since the current step.
Recorded replay re-emits stored events (no model or tool call); live replay is a retry.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from openmanus_tui import events as ev
from openmanus_tui.errors import OpenManusError
from openmanus_tui.store.db import EMPTY_HEAD
from openmanus_tui.store.tree import (
    SessionTree,
    branch_events,
    head_count,
    lineage_sql,
    load_tree,
)
from openmanus_tui.tools.base import Risk

if TYPE_CHECKING:
    from openmanus_tui.runtime.session import AgentSession, RunOutcome

log = logging.getLogger(__name__)


class WorkspaceChanged(OpenManusError):
    """Files changed outside the agent since the current step; restoring would lose them."""

    error_class = "user"

    def __init__(self, changes: list[Any]):
        paths = ", ".join(c.path for c in changes[:5]) + (" …" if len(changes) > 5 else "")
        super().__init__(
            f"the workspace has {len(changes)} change(s) made outside the agent ({paths})",
            hint="Restoring the step would overwrite them: confirm (--force) or save them first.",
        )
        self.changes = changes


@dataclass
class BranchDiff:
    head_a: str
    head_b: str
    common: int
    only_a: list[dict[str, Any]] = field(default_factory=list)
    only_b: list[dict[str, Any]] = field(default_factory=list)
    final_a: str | None = None
    final_b: str | None = None
    files: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["files"] = [getattr(f, "__dict__", f) for f in self.files]
        return out


def describe_message(message: BaseMessage) -> dict[str, Any]:
    """A short, comparable view of one message (for the compare view and exports)."""
    item: dict[str, Any] = {"id": message.id, "role": message.type}
    if isinstance(message, AIMessage):
        item["text"] = message.text if isinstance(message.text, str) else str(message.content)
        item["tool_calls"] = [{"tool": c["name"], "args": c["args"]} for c in message.tool_calls]
    elif isinstance(message, ToolMessage):
        item["tool"] = message.name
        item["text"] = str(message.content)
        item["status"] = message.status
    else:
        item["text"] = str(message.content)
    return item


def snapshot_budget(settings: Any) -> Any:
    """The per-snapshot budget from the ``storage`` settings."""
    from openmanus_tui.store.snapshot_budget import MiB, SnapshotBudget

    st = settings.storage
    return SnapshotBudget(
        max_bytes=st.snapshot_max_mb * MiB,
        max_files=st.snapshot_max_files,
        max_file_bytes=st.snapshot_max_file_mb * MiB,
        time_limit_s=st.snapshot_time_limit,
        exclude=tuple(st.snapshot_exclude),
    )


class History:
    def __init__(self, session: AgentSession) -> None:
        self.session = session
        self.db = session.runtime.db
        self._store: Any = None
        self._store_error: str | None = None
        self._told_skipped: tuple[set[str], bool] = (set(), False)
        # The snapshot after a tool step is taken while the next model call runs (it cost
        # ~1 ms a step in line; seconds with a large workspace): nothing changes the workspace
        # between a tool step and the next one, which awaits ``settle`` first (ToolRunner), as
        # do the end of a run and a restore. Only for graphs whose tools all go through the
        # ToolRunner (the agent's): ``overlap`` is set per run by the session. The read-only
        # step below is known for those graphs only, too.
        self.overlap = False
        self._pending: asyncio.Task[None] | None = None
        # A tool step that ran only read tools (Risk.READ: the tools that need no approval
        # because they change nothing) leaves the workspace as the previous snapshot found it;
        # its checkpoint needs no row of its own: ``nearest_snapshot`` reads the ancestor's,
        # the same tree. True until a step is known to be read-only (a resumed step whose
        # tools this process did not see is recorded).
        self._may_have_written = True

    # ---- workspace snapshots -----------------------------------------------------------
    def store(self) -> Any:
        if self._store is None and self._store_error is None:
            try:
                from openmanus_tui.store.snapshots import WorkspaceSnapshots

                data_dir = self.session.runtime.settings.resolved_data_dir
                self._store = WorkspaceSnapshots(
                    data_dir / "snapshots" / f"{self.session.id}.git",
                    self.session.workspace,
                    snapshot_budget(self.session.runtime.settings),
                )
            except OpenManusError as exc:
                self._store_error = str(exc)
        return self._store

    async def on_checkpoint(self, event: ev.Checkpoint) -> None:
        """Record the workspace at the start of each run and after every tool step."""
        if event.source != "input" and "call_tool" not in event.nodes:
            return
        wrote, self._may_have_written = self._may_have_written, False
        if event.source != "input" and not wrote and self.overlap:
            return
        await self.settle()  # one at a time, in checkpoint order
        if self.overlap:
            self._pending = asyncio.create_task(self._record(event))
        else:
            await self._record(event)

    async def before_tools(self, calls: list[dict[str, Any]]) -> None:
        """A step's tools are about to run (ToolRunner): the previous snapshot must be
        complete, and a tool that may write means this step's checkpoint gets one."""
        registry = self.session.runtime.registry
        for call in calls:
            spec = registry.get(call.get("name", ""))
            if spec is None or spec.risk != Risk.READ:
                self._may_have_written = True
        await self.settle()

    async def settle(self) -> None:
        """Wait for the snapshot being taken, if any (its errors surface here)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await asyncio.shield(pending)  # a cancelled waiter must not cut the record short

    async def _record(self, event: ev.Checkpoint) -> None:
        # The start of the first run may come before anything created the folder: record
        # it empty, so a rewind to before the first tool removes what the run made.
        self.session.workspace.mkdir(parents=True, exist_ok=True)
        store = self.store()
        if store is None:
            return
        try:
            tree = await asyncio.to_thread(store.snapshot)
        except OpenManusError as exc:
            log.warning("workspace snapshot failed: %s", exc)
            return
        await self.db.add_snapshot(self.session.id, event.checkpoint_id, tree)
        notice = store.last.notice()
        skipped = ({s.path for s in store.last.skipped}, store.last.incomplete)
        if notice and skipped != self._told_skipped:
            # skipped files are named to the user (once per change) and stored with the events
            self._told_skipped = skipped
            sink = await self.session._get_sink()
            await sink.emit(ev.Notice(level="warning", text=notice))

    async def restore(self, checkpoint_id: str, *, force: bool = False) -> list[Any]:
        """Make the workspace what it was at ``checkpoint_id``; returns what changed."""
        await self.settle()
        store = self.store()
        if store is None:
            raise OpenManusError(
                f"workspace snapshots are unavailable: {self._store_error}", error_class="user"
            )
        target = await self.db.nearest_snapshot(self.session.id, checkpoint_id)
        if target is None:
            return []
        if not force:
            current = await self.current_checkpoint()
            known = await self.db.nearest_snapshot(self.session.id, current) if current else None
            if known is not None:
                outside = await asyncio.to_thread(store.changed_since, known)
                if outside:
                    raise WorkspaceChanged(outside)
        changes = await asyncio.to_thread(store.changed_since, target)
        await asyncio.to_thread(store.restore, target)
        return changes

    def at(self, checkpoint_id: str) -> dict[str, Any]:
        """The LangGraph config that addresses one checkpoint of this session."""
        return {
            "configurable": {
                "thread_id": self.session.id,
                "checkpoint_ns": "",
                "checkpoint_id": checkpoint_id,
            }
        }

    # ---- the tree ------------------------------------------------------------------------
    async def current_checkpoint(self) -> str | None:
        snapshot = await self.session.graph.aget_state(
            await self.session.current_config()
        )
        return (snapshot.config or {}).get("configurable", {}).get("checkpoint_id")

    @property
    def emptied(self) -> bool:
        """Taken back to before its first run (``rollback``): no step is current."""
        return self.session.head == EMPTY_HEAD

    async def head_count(self) -> int:
        """Branch heads in the tree (``tree().heads``), counted without building the tree."""
        return await head_count(self.db, self.session.id)

    async def tree(self) -> SessionTree:
        tree = await load_tree(self.db, self.session.id)
        await self.session.current_config()  # a run moves the head
        if self.session.head in tree.nodes:
            tree.current = self.session.head
        elif self.session.head == EMPTY_HEAD:
            tree.current = None  # taken back to before the first run (``rollback``)
        return tree

    async def resolve(self, checkpoint: str) -> str:
        """A checkpoint id from the id, or a unique start or end of it (the tree prints ends:
        ids made close in time share their start)."""
        tree = await load_tree(self.db, self.session.id)
        if checkpoint in tree.nodes:
            return checkpoint
        found = [c for c in tree.nodes if c.startswith(checkpoint) or c.endswith(checkpoint)]
        if len(found) != 1:
            what = "no checkpoint" if not found else "more than one checkpoint"
            raise OpenManusError(
                f"{what} of session {self.session.id} matches {checkpoint!r}",
                hint=f"`openmanus sessions tree {self.session.id}` lists them.",
                error_class="user",
            )
        return found[0]

    async def switch(self, head: str, *, force: bool = False) -> list[Any]:
        """Make ``head`` the session's current step, restoring its files."""
        async with self.session.exclusive():  # never under a run of another process
            return await self._switch(head, force=force)

    async def _switch(self, head: str, *, force: bool) -> list[Any]:
        changes = await self.restore(head, force=force)
        await self.session.set_head(head)
        return changes

    async def rollback(self, start: str | None, *, force: bool = False) -> list[Any]:
        """Undo a run that started at ``start`` (the session's checkpoint when it started;
        None: it had none, the run was its first), files included: back to ``start``, or for a
        first run to an empty session (its state reads as before any run; the next run starts
        a new root). Nothing runs again: the run's steps stay in the tree as a branch of their
        own, and its task, if the graph never stored it, is forgotten (a resume must not start
        it). Returns what changed in the workspace."""
        async with self.session.exclusive():
            if self.session.record.meta.get("pending_input"):
                await self.session._set_pending_input(None)
            if start is not None:
                return await self._switch(start, force=force)
            current = await self.current_checkpoint()
            changes: list[Any] = []
            if current is not None:
                # The first checkpoint of the branch holds the workspace as the run found it.
                root = (await lineage_sql(self.db, self.session.id, current))[0]
                changes = await self.restore(root, force=force)
            await self.session.set_head(EMPTY_HEAD)
            return changes

    # ---- forks ---------------------------------------------------------------------------
    async def _emit_fork(
        self,
        checkpoint_id: str,
        parent: str,
        what: list[str],
        *,
        source: str = "update",
        nodes: tuple[str, ...] = ("call_llm",),
    ) -> None:
        """Announce a checkpoint written outside a run (an edit, a retry's copy), so the tree
        built from events keeps its parent link."""
        sink = await self.session._get_sink()
        sink.checkpoint_id = checkpoint_id
        self.session._seen_checkpoints.add(checkpoint_id)
        await sink.emit(
            ev.Checkpoint(
                checkpoint_id=checkpoint_id,
                parent_id=parent,
                source=source,
                nodes=list(nodes),
                changed=what,
            )
        )

    async def fork(
        self,
        at: str,
        *,
        message: str | None = None,
        call_args: dict[str, dict[str, Any]] | None = None,
        text: str | None = None,
        force: bool = False,
    ) -> str:
        """Prepare a new branch at ``at``; returns the checkpoint it starts from.

        With ``message``, the branch re-asks that run with a new user message (start it with
        ``session.run(message)``). With ``call_args`` / ``text``, the model's reply at ``at``
        is rewritten. With neither, the step that produced ``at`` is retried. Start the last
        two with ``session.resume()``.
        """
        async with self.session.exclusive():  # never under a run of another process
            return await self._fork(at, message=message, call_args=call_args, text=text,
                                    force=force)

    async def _fork(
        self,
        at: str,
        *,
        message: str | None,
        call_args: dict[str, dict[str, Any]] | None,
        text: str | None,
        force: bool,
    ) -> str:
        tree = await self.tree()
        node = tree.nodes.get(at)
        if node is None:
            raise OpenManusError(f"unknown checkpoint {at!r}", error_class="user")

        graph = self.session.graph
        if message is not None:
            lineage = tree.lineage(at)
            start = next((c for c in reversed(lineage) if tree.nodes[c].source == "input"), None)
            if start is None:
                raise OpenManusError("no user message above this step", error_class="user")
            base = start
        elif call_args is not None or text is not None:
            if node.node != "call_llm":
                raise OpenManusError(
                    "choose a step where the model replied (a tool call or a thought) to edit it",
                    error_class="user",
                )
            base = at
        else:
            if node.parent_id is None:
                raise OpenManusError(
                    "the first checkpoint has nothing to retry", error_class="user"
                )
            base = node.parent_id
            if tree.nodes[base].node == "approve" and tree.nodes[base].parent_id is not None:
                # Retrying a step whose calls a person approved: retry from the model's reply,
                # so the approval is asked again (one approval, one execution).
                base = tree.nodes[base].parent_id
        if tree.nodes[base].pruned:
            raise OpenManusError(
                "the checkpoint this fork needs was removed by `sessions prune`; "
                "fork from a recent step",
                hint="Recorded replay still shows every step; prune keeps heads and recent steps.",
                error_class="user",
            )
        await self.restore(base, force=force)
        if message is not None:
            await self.session.set_head(base)
            return base
        if call_args is None and text is None:
            return await self._retry_from(base, tree.nodes[base].parent_id, tree.nodes[base].node)

        config = self.at(at)
        state = await graph.aget_state(config)
        messages = state.values.get("messages", [])
        last_ai = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        if last_ai is None:
            raise OpenManusError("there is no model reply at this step", error_class="user")
        from openmanus_tui.agent.graph import _proposed_calls

        edits = call_args or {}
        unknown = set(edits) - {c["id"] for c in last_ai.tool_calls}
        if unknown:
            raise OpenManusError(
                f"no tool call {sorted(unknown)[0]!r} at this step", error_class="user"
            )
        new_calls = [{**c, "args": edits.get(c["id"], c["args"])} for c in last_ai.tool_calls]
        update: dict[str, Any] = {"tool_calls": new_calls}
        if text is not None:
            update["content"] = text
        edited = last_ai.model_copy(update=update)
        edited, calls = _proposed_calls(edited, self.session.runtime.registry)
        new_config = await graph.aupdate_state(
            config,
            {
                "messages": [edited],
                "tool_calls": calls,
                "decisions": {},
                "final_answer": None if calls else (text or None),
            },
            as_node="call_llm",
        )
        new_id = new_config["configurable"]["checkpoint_id"]
        what = (["text"] if text is not None else []) + [f"args:{c}" for c in edits]
        await self._emit_fork(new_id, at, what)
        await self.session.set_head(new_id)
        return new_id

    async def _retry_from(self, base: str, parent: str | None, node: str) -> str:
        """A fresh copy of ``base`` (same values, same parent, nothing of its step run yet)
        to continue from: the step after ``base`` is executed anew, approvals asked anew.
        LangGraph's own time travel from ``base`` would hand back writes stored there (an
        approval given on another branch included)."""
        graph = self.session.graph
        copied = await graph.aupdate_state(self.at(base), None, as_node="__copy__")
        new_id = copied["configurable"]["checkpoint_id"]
        files = await self.db.nearest_snapshot(self.session.id, base)
        if files is not None:  # the copy's files are the base's, not its parent's
            await self.db.add_snapshot(self.session.id, new_id, files)
        await self._emit_fork(
            new_id, parent, ["retry"], source="fork", nodes=(node,) if node else ()
        )
        await self.session.set_head(new_id)
        return new_id

    async def save_as_new_session(self, head: str) -> AgentSession:
        """Copy the branch ending at ``head`` into a new session (events, a rebuilt checkpoint
        tree, and the workspace files as they were at ``head``), recording its origin."""
        from dataclasses import asdict

        from openmanus_tui.export import ExportDoc
        from openmanus_tui.runtime.importer import import_session

        events = await self.recorded(head)
        doc = ExportDoc(session=asdict(self.session.record), events=events)
        copy = await import_session(self.session.runtime, doc, copied_from=head)
        from openmanus_tui.research.registry import SourceRegistry  # its sources come along

        await SourceRegistry(self.db).copy_session(self.session.id, copy.id)
        from openmanus_tui.research.store import ResearchResults

        await ResearchResults(self.db).copy_session(self.session.id, copy.id)
        tree = await self.db.nearest_snapshot(self.session.id, head)
        store = self.store()
        if tree and store is not None:
            from openmanus_tui.store.snapshots import WorkspaceSnapshots

            copy.workspace.mkdir(parents=True, exist_ok=True)
            target = WorkspaceSnapshots(store.store_dir, copy.workspace, store.budget)
            await asyncio.to_thread(target.restore, tree)
        return copy

    async def retry_live(self, at: str, **kwargs: Any) -> RunOutcome:
        """Live replay: re-execute from ``at`` into a new branch (model and tools run again)."""
        await self.fork(at, force=kwargs.pop("force", False))
        return await self.session.resume(**kwargs)

    # ---- replay and compare ----------------------------------------------------------------
    async def recorded(self, head: str | None = None) -> list[ev.Event]:
        head = head or (await self.tree()).current
        if head is None:
            return []
        return await branch_events(self.db, self.session.id, head)

    async def compare(self, head_a: str, head_b: str) -> BranchDiff:
        graph = self.session.graph

        async def state_of(head: str) -> dict[str, Any]:
            return (await graph.aget_state(self.at(head))).values

        a, b = await state_of(head_a), await state_of(head_b)
        msgs_a, msgs_b = a.get("messages", []), b.get("messages", [])
        common = 0
        for x, y in zip(msgs_a, msgs_b, strict=False):
            # An edited tool call keeps its message id: compare the calls too.
            if (
                x.id != y.id
                or x.content != y.content
                or getattr(x, "tool_calls", None) != getattr(y, "tool_calls", None)
            ):
                break
            common += 1
        diff = BranchDiff(
            head_a=head_a,
            head_b=head_b,
            common=common,
            only_a=[describe_message(m) for m in msgs_a[common:]],
            only_b=[describe_message(m) for m in msgs_b[common:]],
            final_a=a.get("final_answer"),
            final_b=b.get("final_answer"),
        )
        store = self.store()
        if store is not None:
            tree_a = await self.db.nearest_snapshot(self.session.id, head_a)
            tree_b = await self.db.nearest_snapshot(self.session.id, head_b)
            if tree_a and tree_b and tree_a != tree_b:
                diff.files = await asyncio.to_thread(store.diff, tree_a, tree_b)
        return diff
