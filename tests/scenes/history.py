"""Recorded scenes of the branch tree, the compare view and the replay bar.

For snapshot tests and ``screenshots/make_screenshots.py``: a fixed session tree (ids, steps,
labels and marks as the core would produce them for a session with an edited tool call, an
edited user message and a retry, older steps pruned), a fixed branch diff, and a replay of the
demo session of ``scenes/workbench.py`` paused after two steps. Nothing here calls a model.
"""

from __future__ import annotations

import asyncio
from typing import Any

from openmanus_tui.runtime.api import SessionTree, TreeNode

TITLE = "Summarise data/sales.csv and plot the monthly totals"
DB_SIZE = "database 2.4 MB"
CURRENT = "c18"
MARKED = "c13"
CURSOR = "c06"

MONTHLY = "Monthly totals: Jan 1,204 · Feb 1,377 · Mar 1,512"
SPELLED = "January 1,204, February 1,377, March 1,512"
# (id, parent, step, source, node, kind, label): in the order the steps were made.
_STEPS: list[tuple[str, str | None, int, str, str, str, str]] = [
    ("c01", None, -1, "input", "", "user", f"› {TITLE}"),
    ("c02", "c01", 0, "loop", "", "start", "start"),
    ("c03", "c02", 1, "loop", "call_llm", "tool_call", "→ file_read"),
    ("c04", "c03", 2, "loop", "approve", "approval", "✓ approved by policy"),
    ("c05", "c04", 3, "loop", "call_tool", "result", "← file_read ok"),
    ("c06", "c05", 4, "loop", "call_llm", "tool_call", "→ code_exec"),
    ("c07", "c06", 5, "loop", "approve", "approval", "✓ code_exec approve"),
    ("c08", "c07", 6, "loop", "call_tool", "result", "← code_exec error"),
    ("c09", "c08", 7, "loop", "call_llm", "tool_call", "→ code_exec"),
    ("c10", "c09", 8, "loop", "approve", "approval", "✓ code_exec approve"),
    ("c11", "c10", 9, "loop", "call_tool", "result", "← code_exec ok"),
    ("c12", "c11", 10, "loop", "call_llm", "thought", f"… {MONTHLY}"),
    ("c13", "c12", 11, "loop", "finalize", "answer", f"■ {MONTHLY}"),
    # An edited tool call (the first code_exec), continued.
    ("c14", "c06", 5, "update", "call_llm", "fork", "✎ edited"),
    ("c15", "c14", 6, "loop", "approve", "approval", "✓ code_exec edit"),
    ("c16", "c15", 7, "loop", "call_tool", "result", "← code_exec ok"),
    ("c17", "c16", 8, "loop", "call_llm", "thought", "… Totals by month are in totals.csv"),
    ("c18", "c17", 9, "loop", "finalize", "answer",
     "■ Totals by month are in totals.csv; chart.png"),
    # An edited user message.
    ("c19", "c01", 0, "input", "", "user", "› Summarise data/sales.csv by region"),
    ("c20", "c19", 1, "loop", "", "start", "start"),
    ("c21", "c20", 2, "loop", "call_llm", "tool_call", "→ file_read"),
    ("c22", "c21", 3, "loop", "approve", "approval", "✓ approved by policy"),
    ("c23", "c22", 4, "loop", "call_tool", "result", "← file_read ok"),
    ("c24", "c23", 5, "loop", "call_llm", "thought", "… By region: North 2,410 · South 1,683"),
    ("c25", "c24", 6, "loop", "finalize", "answer", "■ By region: North 2,410 · South 1,683"),
    # A retry of the model's last reply on the first branch.
    ("c26", "c11", 10, "fork", "", "retry", "↻ retry"),
    ("c27", "c26", 11, "loop", "call_llm", "thought", f"… {SPELLED}"),
    ("c28", "c27", 12, "loop", "finalize", "answer", f"■ {SPELLED}"),
]
# Older steps removed by `sessions prune`: shown dimmed, replayable, not forkable.
_PRUNED = {"c02", "c03", "c04"}


def checkpoint_id(short: str) -> str:
    return f"1f0c0000-0000-6000-8000-0000000000{short[1:]}"


def fixed_tree() -> SessionTree:
    nodes: dict[str, TreeNode] = {}
    roots: list[str] = []
    for seq, (short, parent, _langgraph_step, source, node, kind, label) in enumerate(
            _STEPS, 1):
        cid = checkpoint_id(short)
        parent_id = checkpoint_id(parent) if parent else None
        nodes[cid] = TreeNode(
            # Numbered as store/tree.py numbers steps: in the order they were made.
            checkpoint_id=cid, parent_id=parent_id, step=seq, source=source, node=node,
            kind=kind, label=label, seq=seq, pruned=short in _PRUNED,
        )
        if parent_id is None:
            roots.append(cid)
        else:
            nodes[parent_id].children.append(cid)
    return SessionTree(nodes=nodes, roots=roots, current=checkpoint_id(CURRENT))


def fixed_diff() -> Any:
    """The compare view's data for the first branch (A) against the edited-call branch (B)."""
    from openmanus_tui.runtime.api import FileChange
    from openmanus_tui.runtime.history import BranchDiff

    code_a = ("import pandas as pd\ndf = pd.read_csv('data/sales.csv')\n"
              "print(df.groupby('month').total.sum())")
    code_b = ("import pandas as pd\ndf = pd.read_csv('data/sales.csv', parse_dates=['date'])\n"
              "totals = df.resample('MS', on='date').total.sum()\ntotals.to_csv('totals.csv')")
    only_a = [
        {"role": "ai", "text": "I'll total the sales per month.",
         "tool_calls": [{"tool": "code_exec", "args": {"code": code_a}}]},
        {"role": "tool", "tool": "code_exec", "status": "error",
         "text": "KeyError: 'month'\nThe file has no month column; it has date, region, total."},
        {"role": "ai", "text": "The file has a date column: grouping by its month instead.",
         "tool_calls": [{"tool": "code_exec", "args": {"code": "…"}}]},
        {"role": "tool", "tool": "code_exec", "status": "success",
         "text": "2024-01  1204\n2024-02  1377\n2024-03  1512\nSaved totals.png"},
        {"role": "ai", "text": f"{MONTHLY}.", "tool_calls": []},
    ]
    only_b = [
        {"role": "ai", "text": "I'll total the sales per month.",
         "tool_calls": [{"tool": "code_exec", "args": {"code": code_b}}]},
        {"role": "tool", "tool": "code_exec", "status": "success",
         "text": "Wrote totals.csv (3 rows)\nSaved chart.png"},
        {"role": "ai", "text": "Totals by month are in totals.csv; chart.png plots them.",
         "tool_calls": []},
    ]
    files = [
        FileChange(path="chart.png", status="added", binary=True, new_size=18_342),
        FileChange(path="notes.md", status="modified", diff=(
            "--- a/notes.md\n+++ b/notes.md\n@@ -1,3 +1,3 @@\n # Sales notes\n"
            "-Totals: see totals.png\n+Totals: see totals.csv and chart.png\n"
            " Source: data/sales.csv\n"
        )),
        FileChange(path="totals.csv", status="added", diff=(
            "--- /dev/null\n+++ b/totals.csv\n@@ -0,0 +1,4 @@\n+date,total\n"
            "+2024-01-01,1204\n+2024-02-01,1377\n+2024-03-01,1512\n"
        )),
        FileChange(path="totals.png", status="deleted", binary=True, old_size=20_111),
    ]
    return BranchDiff(
        head_a=checkpoint_id("c13"), head_b=checkpoint_id("c18"), common=6,
        only_a=only_a, only_b=only_b,
        final_a=f"{MONTHLY}.",
        final_b="Totals by month are in totals.csv; chart.png plots them.", files=files,
    )


async def stage_tree(pilot: Any) -> None:
    from openmanus_tui.tui.screens.history import HistoryScreen

    app = pilot.app
    await app.ready.wait()
    tree = fixed_tree()

    async def loader() -> SessionTree:
        return tree

    screen = HistoryScreen(TITLE, loader, db_size=DB_SIZE)
    screen.marked = checkpoint_id(MARKED)
    await app.push_screen(screen)
    await pilot.pause()
    screen.select(checkpoint_id(CURSOR))
    await pilot.pause(0.2)


async def stage_compare(pilot: Any) -> None:
    from openmanus_tui.tui.screens.compare import CompareScreen

    app = pilot.app
    await app.ready.wait()
    await app.push_screen(CompareScreen(
        fixed_diff(), "step 13 ■ Monthly totals: Jan 1,204 · Feb 1,377 · Mar 1,512 ◆",
        "step 18 ■ Totals by month are in totals.csv; chart.png ◆ ← current",
    ))
    await pilot.pause(0.2)


async def stage_replay(pilot: Any, steps: int = 3) -> None:
    """The demo session (``scenes.workbench``) replayed from its record, paused after
    ``steps`` steps."""
    from openmanus_tui.tui import branching
    from openmanus_tui.tui.widgets.replay import ReplayBar
    from scenes import workbench as scenes

    app = pilot.app
    await scenes.stage_main(app, live=False, settle=0.1)
    await branching.replay(app)
    bar = app.query_one(ReplayBar)
    bar.set_speed(4)  # max: no waiting between events
    for _ in range(steps):
        bar.action_step()
        await asyncio.sleep(0)
        await bar.wait_paused()
    await pilot.pause(0.3)
