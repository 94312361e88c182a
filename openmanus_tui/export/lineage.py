"""Branch lineage read from the stored ``checkpoint`` events, and cutting a document to one branch.

A session is a tree of checkpoints; its branches are the leaves with their paths from the root.
The runtime's tree module knows more (labels, forks made with ``update_state``); this is what an
export can tell on its own, e.g. for a JSONL stream from ``openmanus run --json``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from openmanus_tui import events as ev
from openmanus_tui.errors import OpenManusError

if TYPE_CHECKING:
    from openmanus_tui.export.document import ExportDoc

LABEL_CHARS = 60


def _excerpt(text: str, limit: int = LABEL_CHARS) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def branches_from_events(events: list[ev.Event]) -> list[dict[str, Any]]:
    """``[{"head", "checkpoints" (root→head), "label"}]``, oldest head first."""
    parents: dict[str, str | None] = {}
    made_by_run: dict[str, str] = {}
    for event in events:
        if isinstance(event, ev.Checkpoint) and event.checkpoint_id:
            parents[event.checkpoint_id] = event.parent_id
            made_by_run[event.checkpoint_id] = event.run_id
    has_children = {p for p in parents.values() if p is not None and p in parents}
    inputs = {
        e.run_id: e.input for e in events if isinstance(e, ev.RunStarted) and e.input is not None
    }
    branches: list[dict[str, Any]] = []
    for head in parents:  # insertion order = the order the checkpoints were made
        if head in has_children:
            continue
        path: list[str] = []
        node: str | None = head
        seen: set[str] = set()
        while node is not None and node in parents and node not in seen:
            seen.add(node)  # a corrupt stream could hold a cycle
            path.append(node)
            node = parents[node]
        path.reverse()
        n = len(branches) + 1
        task = inputs.get(made_by_run.get(head, ""))
        label = f"branch {n}" + (f": {_excerpt(task)}" if task else "")
        branches.append({"head": head, "checkpoints": path, "label": label})
    return branches


def find_branch(branches: list[dict[str, Any]], head: str) -> dict[str, Any]:
    """A branch by its head checkpoint id, a unique prefix of it, or its exact label."""
    exact = [b for b in branches if b.get("head") == head or b.get("label") == head]
    matches = exact or [b for b in branches if str(b.get("head", "")).startswith(head)]
    if len(matches) != 1:
        what = "no branch" if not matches else "more than one branch"
        heads = ", ".join(str(b.get("head", ""))[:13] for b in branches) or "none"
        raise OpenManusError(
            f"{what} matches {head!r} (branch heads: {heads})",
            hint="`openmanus sessions tree ID` lists the branches.",
            error_class="user",
        )
    return matches[0]


def select_branch(doc: ExportDoc, head: str) -> ExportDoc:
    """The document cut to one branch: the events at its checkpoints, plus the events of its
    runs that came before their first checkpoint (notices, ``run_started``)."""
    branches = doc.branches or branches_from_events(doc.events)
    branch = find_branch(branches, head)
    on_branch = set(branch["checkpoints"])
    runs = {e.run_id for e in doc.events if e.checkpoint_id in on_branch}
    events = [
        e
        for e in doc.events
        if e.checkpoint_id in on_branch or (e.checkpoint_id is None and e.run_id in runs)
    ]
    return replace(doc, events=events, branches=[branch])
