"""History bench: the branch tree, branch switching and opening a step, against LangGraph's
own ``aget_state_history`` walk measured in the same run.

A session with about 1,000 checkpoints and 5 branches is built with the scripted model; each
step rewrites one of 100 files in the workspace, so every branch has its own files.

    python bench/history.py [--steps 330] [--files 100]

Targets (issue 5): the tree in under 5% of the stock walk's time; a branch switch (workspace
restore included) under 0.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def build_script(path: Path, steps: int, files: int) -> str:
    script = {
        "steps": [
            {
                "text": f"step {i}",
                "tool_calls": [
                    {
                        "name": "file_write",
                        "args": {"path": f"f{i % files:03d}.txt", "content": f"version {i}\n" * 20},
                    }
                ],
            }
            for i in range(steps)
        ],
        "final": "done",
    }
    path.write_text(json.dumps(script))
    return f"scripted:{path}"


async def main(steps: int, files: int) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="om-bench-history-"))
    (tmp / "config.toml").write_text("")
    os.environ["OPENMANUS_CONFIG"] = str(tmp / "config.toml")
    os.environ["OPENMANUS_DATA_DIR"] = str(tmp / "data")
    from openmanus_tui.config import load_settings
    from openmanus_tui.runtime.session import Runtime
    from openmanus_tui.store.tree import load_tree

    workspace = tmp / "ws"
    workspace.mkdir()
    for i in range(files):
        (workspace / f"f{i:03d}.txt").write_text(f"original {i}\n" * 20)
    settings = load_settings(
        {
            "approval": {"mode": "yolo"},
            "agent": {"max_steps": steps + 10, "repeat_limit": steps + 10},
            "model": {"context_window": 50_000_000},
            "sandbox": {"workspace": str(workspace)},
        }
    )
    runtime = await Runtime.open(settings)
    try:
        started = time.perf_counter()
        session = await runtime.create_session(model=build_script(tmp / "s.json", steps, files))
        await session.run("rewrite the files")
        tree = await session.history.tree()
        llm_nodes = [n for n in tree.nodes.values() if n.kind == "tool_call"]
        for back in (3, 6, 9, 12):  # four more branches: retries near the end
            await session.history.fork(llm_nodes[-back].parent_id, force=True)
            await session.resume()
        build_s = time.perf_counter() - started
        tree = await session.history.tree()
        print(
            f"session: {len(tree.nodes)} checkpoints, {len(tree.heads)} branches, "
            f"{files} files (built in {build_s:.1f} s)"
        )

        tree_times = []
        for _ in range(5):
            t0 = time.perf_counter()
            await load_tree(runtime.db, session.id)
            tree_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        thread = {"configurable": {"thread_id": session.id}}
        walked = [s async for s in runtime.graph.aget_state_history(thread)]
        walk_s = time.perf_counter() - t0
        tree_s = statistics.median(tree_times)

        switch_times = []
        for _ in range(2):
            for head in tree.heads:
                t0 = time.perf_counter()
                await session.history.switch(head, force=True)
                switch_times.append(time.perf_counter() - t0)
        middle = sorted(tree.nodes.values(), key=lambda n: n.seq)[len(tree.nodes) // 2]
        open_times = []
        for _ in range(5):
            t0 = time.perf_counter()
            await runtime.graph.aget_state(session.history.at(middle.checkpoint_id))
            open_times.append(time.perf_counter() - t0)
    finally:
        await runtime.close()

    ratio = tree_s / walk_s
    print(f"tree (events SQL):          {tree_s * 1000:8.1f} ms")
    print(f"stock aget_state_history:   {walk_s * 1000:8.1f} ms  ({len(walked)} snapshots)")
    verdict = "PASS" if ratio < 0.05 else "MISS"
    print(f"tree / stock walk:          {ratio:8.2%}   target < 5%: {verdict}")
    worst = max(switch_times)
    print(
        f"branch switch (restore):    median {statistics.median(switch_times) * 1000:.1f} ms, "
        f"max {worst * 1000:.1f} ms   target < 500 ms: {'PASS' if worst < 0.5 else 'MISS'}"
    )
    print(f"open a step (aget_state):   median {statistics.median(open_times) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=330)
    parser.add_argument("--files", type=int, default=100)
    options = parser.parse_args()
    sys.exit(asyncio.run(main(options.steps, options.files)))
