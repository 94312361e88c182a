"""A session's checkpoint tree, read with SQL from the events table (no snapshot is decoded).

Every checkpoint the runtime writes is announced by a ``checkpoint`` event carrying its parent,
and every other event records the checkpoint it follows. So the tree (lineage, a label per step,
branch heads) comes from one ordered scan of small JSON payloads, and a branch's transcript is
the events whose checkpoint lies on its lineage. LangGraph's own ``aget_state_history`` would
deserialise every snapshot instead (seconds for a long session, LANGGRAPH.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from openmanus_tui.events import Event, parse_event
from openmanus_tui.store.db import Database

LABEL_TYPES = (
    "checkpoint",
    "run_started",
    "thought",
    "tool_call",
    "tool_finished",
    "approval_decided",
    "final_answer",
    "error",
    "research_step",
    "clarification",
)
LABEL_WIDTH = 72
# How each kind of step is drawn (Rich style strings), shared by the CLI and the TUI tree.
KIND_STYLE = {
    "user": "bold magenta",
    "tool_call": "cyan",
    "result": "green",
    "answer": "bold green",
    "fork": "yellow",
    "retry": "yellow",
    "approval": "dim",
    "thought": "italic",
    "start": "dim",
}


@dataclass
class TreeNode:
    checkpoint_id: str
    parent_id: str | None
    step: int
    source: str
    node: str
    kind: str
    label: str
    seq: int
    children: list[str] = field(default_factory=list)
    # The checkpoint was deleted by retention: shown, replayable from events, not forkable.
    pruned: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class SessionTree:
    nodes: dict[str, TreeNode]
    roots: list[str]
    current: str | None

    @property
    def heads(self) -> list[str]:
        """Branch heads: checkpoints without children, oldest first."""
        return [cid for cid, n in self.nodes.items() if not n.children]

    def lineage(self, checkpoint_id: str) -> list[str]:
        """Checkpoint ids from the root down to ``checkpoint_id``."""
        out: list[str] = []
        cursor: str | None = checkpoint_id
        while cursor is not None and cursor in self.nodes:
            out.append(cursor)
            cursor = self.nodes[cursor].parent_id
        out.reverse()
        return out

    def branch_of(self, checkpoint_id: str) -> str:
        """The newest head below ``checkpoint_id`` (following the newest child at forks)."""
        cursor = checkpoint_id
        while self.nodes[cursor].children:
            cursor = max(self.nodes[cursor].children, key=lambda c: self.nodes[c].seq)
        return cursor

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "heads": self.heads,
            "roots": self.roots,
            "nodes": [n.to_dict() for n in sorted(self.nodes.values(), key=lambda n: n.seq)],
        }


def _clip(text: str, width: int = LABEL_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _label(source: str, node: str, step_events: list[dict[str, Any]]) -> tuple[str, str]:
    """(kind, label) of a checkpoint from the events of the step that produced it."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in step_events:
        by_type.setdefault(e["type"], []).append(e)
    if source == "input":
        started = by_type.get("run_started", [])
        text = started[-1].get("input") if started else None
        return "user", f"› {_clip(text or '(resumed)')}"
    if source == "update":
        return "fork", "✎ edited"
    if source == "fork":
        return "retry", "↻ retry"
    if node == "call_llm":
        calls = by_type.get("tool_call", [])
        if calls:
            return "tool_call", "→ " + _clip(", ".join(c["tool"] for c in calls))
        thoughts = by_type.get("thought", [])
        return "thought", "… " + _clip(thoughts[-1]["text"] if thoughts else "(no text)")
    if node == "approve":
        decided = by_type.get("approval_decided", [])
        marks = ", ".join(f"{d['tool']} {d['decision']}" for d in decided if d.get("by") == "user")
        return "approval", "✓ " + _clip(marks or "approved by policy")
    if node == "call_tool":
        done = by_type.get("tool_finished", [])
        return "result", "← " + _clip(", ".join(f"{d['tool']} {d['status']}" for d in done))
    if node == "finalize":
        answers = by_type.get("final_answer", [])
        return "answer", "■ " + _clip(answers[-1]["text"] if answers else "stopped")
    # The research graph's steps (research/graph.py): their own summary line.
    if node == "verify":
        answers = by_type.get("final_answer", [])
        return "answer", "■ " + _clip(answers[-1]["text"] if answers else "report")
    asked = by_type.get("clarification", [])
    if asked:
        last = asked[-1]
        return "approval", "? " + _clip(f"{last['question']} → {last.get('answer') or '…'}")
    steps = by_type.get("research_step", [])
    if steps:
        return "thought", "… " + _clip(f"{steps[-1]['stage']}: {steps[-1]['text']}")
    return "start", "start"


async def _rows(db: Database, session_id: str, types: tuple[str, ...] | None) -> list[Any]:
    await db.flush_events()
    sql = "SELECT seq, type, checkpoint_id, payload FROM events WHERE session_id = ?"
    params: list[Any] = [session_id]
    if types:
        sql += f" AND type IN ({', '.join('?' for _ in types)})"
        params += list(types)
    async with db.conn.execute(sql + " ORDER BY seq", params) as cur:
        return list(await cur.fetchall())


def assign_steps(
    rows: list[Any],
) -> tuple[list[tuple[int, dict[str, Any]]], dict[str, list[Any]], dict[str | None, list[Any]]]:
    """Split ordered event rows into checkpoint events, the rows of the step that produced
    each checkpoint (keyed by that checkpoint), and rows after the last step of a branch.

    An event records the checkpoint it follows; the events of one step are claimed by the
    next checkpoint whose parent is that checkpoint. Two branches forked from the same
    checkpoint therefore keep their own events apart.

    Each checkpoint's ``step`` is renumbered 1, 2, 3… in the order the checkpoints were made,
    across all branches: a step number names one step of the session (what the tree and the
    workbench's replay bar show). LangGraph's own numbers (kept in the stored events) start at
    -1 and restart on every branch, so two branches showed the same numbers for different
    steps.
    """
    checkpoints: list[tuple[int, dict[str, Any]]] = []
    steps: dict[str, list[Any]] = {}
    pending: dict[str | None, list[Any]] = {}
    for row in rows:
        seq, kind, checkpoint_id, payload = row
        if kind != "checkpoint":
            pending.setdefault(checkpoint_id, []).append(row)
            continue
        data = json.loads(payload)
        checkpoints.append((seq, data))
        data["step"] = len(checkpoints)
        steps[checkpoint_id] = pending.pop(data.get("parent_id"), [])
    return checkpoints, steps, pending


async def existing_checkpoints(db: Database, session_id: str) -> set[str]:
    async with db.conn.execute(
        "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ''",
        (session_id,),
    ) as cur:
        return {row[0] for row in await cur.fetchall()}


async def head_count(db: Database, session_id: str) -> int:
    """How many branch heads (checkpoints without children) the session's tree has, without
    building the tree: opening a session asks this first, and one head needs no branch walk."""
    await db.flush_events()
    async with db.conn.execute(
        "SELECT json_extract(payload, '$.checkpoint_id'), json_extract(payload, '$.parent_id') "
        "FROM events WHERE session_id = ? AND type = 'checkpoint'",
        (session_id,),
    ) as cur:
        rows = await cur.fetchall()
    return len({row[0] for row in rows} - {row[1] for row in rows})


async def load_tree(db: Database, session_id: str, current: str | None = None) -> SessionTree:
    rows = await _rows(db, session_id, LABEL_TYPES)
    existing = await existing_checkpoints(db, session_id)
    checkpoints, steps, _ = assign_steps(rows)
    nodes: dict[str, TreeNode] = {}
    roots: list[str] = []
    for seq, data in checkpoints:
        checkpoint_id = data["checkpoint_id"]
        parent = data.get("parent_id")
        step_events = [json.loads(r[3]) for r in steps.get(checkpoint_id, [])]
        node_name = (data.get("nodes") or [""])[-1]
        label_kind, label = _label(data.get("source", ""), node_name, step_events)
        nodes[checkpoint_id] = TreeNode(
            checkpoint_id=checkpoint_id,
            parent_id=parent,
            step=data.get("step", 0),
            source=data.get("source", ""),
            node=node_name,
            kind=label_kind,
            label=label,
            seq=seq,
            pruned=checkpoint_id not in existing,
        )
        if parent in nodes:
            nodes[parent].children.append(checkpoint_id)
        else:
            roots.append(checkpoint_id)
    if current is None and nodes:
        current = max(nodes.values(), key=lambda n: n.seq).checkpoint_id
    return SessionTree(nodes=nodes, roots=roots, current=current)


async def branch_events(db: Database, session_id: str, head: str) -> list[Event]:
    """The stored events of the branch ending at ``head``, in order: its transcript."""
    rows = await _rows(db, session_id, None)
    checkpoints, steps, trailing = assign_steps(rows)
    parents = {data["checkpoint_id"]: data.get("parent_id") for _, data in checkpoints}
    lineage: list[str] = []
    cursor: str | None = head
    while cursor is not None:
        lineage.append(cursor)
        cursor = parents.get(cursor)
    on_branch = set(lineage)
    sources = {data["checkpoint_id"]: data.get("source") for _, data in checkpoints}
    # An input checkpoint directly followed by another one was re-asked with an edited
    # message (a fork): its own step (the replaced message) is not part of this branch.
    superseded = {
        cid
        for cid, child in zip(lineage[1:], lineage, strict=False)
        if sources.get(cid) == "input" and sources.get(child) == "input"
    }
    # Events before a session's first checkpoint are claimed by its root (parent None).
    wanted = {row[0] for cid in lineage if cid not in superseded for row in steps.get(cid, [])}
    wanted |= {row[0] for row in trailing.get(head, [])}
    wanted |= {seq for seq, data in checkpoints if data["checkpoint_id"] in on_branch}
    return [parse_event(row[3]) for row in rows if row[0] in wanted]


async def lineage_sql(db: Database, session_id: str, checkpoint_id: str) -> list[str]:
    """Lineage from LangGraph's own parent links (root first), for checks and snapshots."""
    async with db.conn.execute(
        "WITH RECURSIVE lin(id, depth) AS ("
        " SELECT ?, 0"
        " UNION ALL SELECT c.parent_checkpoint_id, lin.depth + 1 FROM checkpoints c"
        " JOIN lin ON c.checkpoint_id = lin.id"
        " WHERE c.thread_id = ? AND c.checkpoint_ns = '' AND c.parent_checkpoint_id IS NOT NULL)"
        " SELECT id FROM lin ORDER BY depth DESC",
        (checkpoint_id, session_id),
    ) as cur:
        return [row[0] for row in await cur.fetchall()]
