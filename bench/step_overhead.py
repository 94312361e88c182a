"""Step overhead and database size: our runtime vs a bare LangGraph ReAct graph, in one run.

Usage: python bench/step_overhead.py [--steps 50,400] [--repeat 3] [--result-bytes 200]
                                    [--profile FILE]

For each N the same scripted model makes N tool calls (a read-only ``echo`` tool returning
~200 bytes) and then answers. Ours runs through ``Runtime``/``AgentSession`` (events table,
approval node, tool journal, DeltaChannel messages); the baseline is the textbook ReAct graph
(``add_messages``, an llm node, a tool node, a conditional edge) on the stock
``AsyncSqliteSaver.from_conn_string`` with ``durability="sync"``. Only the run is timed (not
opening the database or compiling); sizes are read after ``PRAGMA wal_checkpoint(TRUNCATE)``.
Targets (issue): at every N ours is no slower than bare (wall time; the CPU-time ratio is
printed next to it, steadier on a loaded machine), and at the largest N its database is >= 10x
smaller. Everything lives in a temporary directory; the user's config and data are untouched.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from pydantic import BaseModel, Field

from openmanus_tui.config import load_settings
from openmanus_tui.errors import OpenManusError
from openmanus_tui.events import Event
from openmanus_tui.models.scripted import ScriptedChatModel, load_script
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.tools.base import Risk, ToolContext, ToolRegistry, ToolResult, ToolSpec
from openmanus_tui.tools.builtin import TERMINATE

TIME_TARGET = 1.0  # ours / bare wall time at the largest N: at most this
SIZE_TARGET = 10.0  # bare / ours database size at the largest N: at least this
WARMUP_STEPS = 3
FINAL = "All probes answered."


# ---- the shared workload -------------------------------------------------------------------
class EchoArgs(BaseModel):
    step: int = Field(description="The probe number.")
    text: str = Field(description="Text to echo back.")


RESULT_BYTES = 200


def echo_payload(step: int, text: str) -> str:
    """The tool's work, shared by both graphs: a fixed-size reply naming the probe."""
    head = f"echo #{step}: {text} "
    return (head + "." * RESULT_BYTES)[: max(RESULT_BYTES, len(head))]


async def _echo(ctx: ToolContext, args: EchoArgs) -> ToolResult:
    return ToolResult(echo_payload(args.step, args.text))


ECHO = ToolSpec(
    name="echo", description="Echo a probe back.", args_model=EchoArgs, func=_echo, risk=Risk.READ
)


def write_script(directory: Path, steps: int) -> Path:
    """A script of ``steps`` echo calls (distinct args, so the loop guard stays quiet)."""
    path = directory / f"probe{steps}.json"
    script = {
        "steps": [
            {
                "text": f"Probe {i}.",
                "tool_calls": [{"name": "echo", "args": {"step": i, "text": f"p{i}"}}],
            }
            for i in range(steps)
        ],
        "final": FINAL,
    }
    path.write_text(json.dumps(script), encoding="utf-8")
    return path


# ---- database sizes ------------------------------------------------------------------------
@dataclass
class Size:
    live: int  # file + -wal as the run left them
    compact: int  # file + -wal after wal_checkpoint(TRUNCATE)
    tables: dict[str, int]  # stored payload bytes per table


def _files_size(path: Path) -> int:
    return sum(
        p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()
    )


def measure_size(path: Path, live: int) -> Size:
    """``live`` is taken before the run's connection closes (closing folds the WAL in)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables: dict[str, int] = {}
        payload = {
            "checkpoints": "length(checkpoint) + length(metadata)",
            "writes": "length(value)",
            "events": "length(payload)",
        }
        existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table, expr in payload.items():
            if table in existing:
                sql = f"SELECT COALESCE(SUM({expr}), 0) FROM {table}"
                tables[table] = conn.execute(sql).fetchone()[0]
    finally:
        conn.close()
    return Size(live=live, compact=_files_size(path), tables=tables)


# ---- ours ----------------------------------------------------------------------------------
@dataclass
class RunResult:
    seconds: float  # the best of the repeats (noise on a shared machine only ever adds)
    size: Size
    detail: str
    runs: list[float] = field(default_factory=list)
    # CPU time of the process during the run (all its threads: aiosqlite's too), best of the
    # repeats: on a loaded machine wall time also counts the waits for a core, CPU time not.
    cpu: float = 0.0

    def merge(self, other: RunResult) -> RunResult:
        runs = [*(self.runs or [self.seconds]), other.seconds]
        return RunResult(min(runs), self.size, self.detail, runs, min(self.cpu, other.cpu))


async def run_ours(
    workdir: Path, script: Path, steps: int, profiler: cProfile.Profile | None
) -> RunResult:
    db_path = workdir / "ours.db"
    settings = load_settings({
        "storage": {"path": str(db_path)},
        # Room for the whole history: trimming would change what the scripted model replies.
        "model": {"context_window": 50_000_000},
        "agent": {"max_steps": steps + 5, "repeat_limit": steps + 5, "token_budget": 10**12},
        "approval": {"mode": "auto"},
    })
    registry = ToolRegistry([ECHO, TERMINATE])
    events: list[Event] = []
    runtime = await Runtime.open(settings, registry)
    try:
        session = await runtime.create_session(model=f"scripted:{script}", workspace=workdir / "ws")
        gc.collect()
        if profiler:
            profiler.enable()
        started, cpu = time.perf_counter(), time.process_time()
        outcome = await session.run("Run the probes.", on_event=events.append)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler:
            profiler.disable()
        live = _files_size(db_path)
    finally:
        await runtime.close()
    finished = sum(
        1 for e in events if e.type == "tool_finished" and getattr(e, "status", "") == "ok"
    )
    if not outcome.ok or outcome.final_answer != FINAL or finished != steps:
        raise SystemExit(
            f"ours: the run did not do the work: status={outcome.status} reason={outcome.reason!r} "
            f"answer={outcome.final_answer!r} tool results={finished}/{steps}"
        )
    return RunResult(seconds, measure_size(db_path, live), f"{len(events)} events", cpu=cpu)


# ---- bare LangGraph ------------------------------------------------------------------------
class BareState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def build_bare(model: Any) -> StateGraph:
    async def llm(state: BareState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    async def tools(state: BareState) -> dict[str, Any]:
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)
        return {"messages": [
            ToolMessage(content=echo_payload(**EchoArgs.model_validate(c["args"]).model_dump()),
                        tool_call_id=c["id"], name=c["name"])
            for c in last.tool_calls
        ]}

    def route(state: BareState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    graph = StateGraph(BareState)
    graph.add_node("llm", llm)
    graph.add_node("tools", tools)
    graph.add_edge(START, "llm")
    graph.add_conditional_edges("llm", route, ["tools", END])
    graph.add_edge("tools", "llm")
    return graph


async def run_bare(workdir: Path, script: Path, steps: int) -> RunResult:
    db_path = workdir / "bare.db"
    registry = ToolRegistry([ECHO, TERMINATE])
    model = ScriptedChatModel(script=load_script(str(script))).bind_tools(registry.openai_schemas())
    async with AsyncSqliteSaver.from_conn_string(str(db_path)) as saver:
        graph = build_bare(model).compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "bench"}}
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        state = await graph.ainvoke(
            {"messages": [HumanMessage("Run the probes.")]}, config, durability="sync"
        )
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        live = _files_size(db_path)
    results = sum(1 for m in state["messages"] if isinstance(m, ToolMessage))
    answer = state["messages"][-1].content
    if answer != FINAL or results != steps:
        raise SystemExit(
            f"bare: the run did not do the work: answer={answer!r} results={results}/{steps}"
        )
    return RunResult(seconds, measure_size(db_path, live), f"{len(state['messages'])} messages",
                     cpu=cpu)


# ---- report --------------------------------------------------------------------------------
def mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


Row = tuple[int, RunResult, RunResult]


async def measure_n(root: Path, steps: int, repeat: int) -> Row:
    ours: RunResult | None = None
    bare: RunResult | None = None
    for rep in range(repeat):
        workdir = root / f"n{steps}-r{rep}"
        workdir.mkdir()
        script = write_script(workdir, steps)
        # Alternate the order so that neither side always runs on a warmer (or dirtier) process.
        for name in ("ours", "bare") if rep % 2 == 0 else ("bare", "ours"):
            if name == "ours":
                r = await run_ours(workdir, script, steps, None)
                ours = r if ours is None else ours.merge(r)
            else:
                r = await run_bare(workdir, script, steps)
                bare = r if bare is None else bare.merge(r)
        shutil.rmtree(workdir)  # the stock database reaches ~130 MB at 400 steps
    assert ours is not None and bare is not None
    return steps, ours, bare


async def measure(root: Path, steps_list: list[int], repeat: int) -> list[Row]:
    # Warm-up: imports, pydantic schemas, the sandbox probe are paid once, outside the timing.
    warm = root / "warmup"
    warm.mkdir()
    script = write_script(warm, WARMUP_STEPS)
    await run_ours(warm, script, WARMUP_STEPS, None)
    await run_bare(warm, script, WARMUP_STEPS)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus; echo result {RESULT_BYTES} B; "
          f"wall time: best of {repeat}")
    print(f"{'steps':>5} {'graph':<5} {'wall s':>7} {'median':>7} {'ms/step':>8} "
          f"{'db compact':>11} {'db live':>9}  stored payload")
    rows: list[Row] = []
    for steps in steps_list:
        row = await measure_n(root, steps, repeat)
        rows.append(row)
        _, ours, bare = row
        for name, r in (("ours", ours), ("bare", bare)):
            payload = ", ".join(f"{t} {mb(b)}" for t, b in r.size.tables.items())
            median = statistics.median(r.runs or [r.seconds])
            print(f"{steps:>5} {name:<5} {r.seconds:>7.2f} {median:>7.2f} "
                  f"{r.seconds * 1000 / steps:>8.2f} {mb(r.size.compact):>11} "
                  f"{mb(r.size.live):>9}  {payload} ({r.detail})")
        print(f"{steps:>5} ratio time ours/bare {ours.seconds / bare.seconds:.2f}   "
              f"cpu {ours.cpu / bare.cpu:.2f}   "
              f"size bare/ours {bare.size.compact / ours.size.compact:.1f}x")
    return rows


def report(rows: list[Row]) -> None:
    if len(rows) >= 2:
        (n0, o0, b0), (n1, o1, b1) = rows[0], rows[-1]
        k = n1 / n0
        print(f"growth {n0} -> {n1} steps (x{k:g}; linear x{k:g}, quadratic x{k * k:g}): "
              f"bare saver size x{b1.size.compact / b0.size.compact:.1f}, "
              f"ours x{o1.size.compact / o0.size.compact:.1f}; "
              f"ms/step bare {b0.seconds * 1000 / n0:.2f} -> {b1.seconds * 1000 / n1:.2f}, "
              f"ours {o0.seconds * 1000 / n0:.2f} -> {o1.seconds * 1000 / n1:.2f}")
    # The time target holds at every N (the issue: at 50 steps as well as at 400).
    for n, ours, bare in rows:
        time_ratio = ours.seconds / bare.seconds
        print(f"target time at {n} steps: ours/bare <= {TIME_TARGET:.2f}: {time_ratio:.2f} "
              f"{verdict(time_ratio <= TIME_TARGET)} (cpu {ours.cpu / bare.cpu:.2f})")
    n, ours, bare = rows[-1]
    size_ratio = bare.size.compact / ours.size.compact
    print(f"target size at {n} steps: bare/ours >= {SIZE_TARGET:.0f}x: {size_ratio:.1f}x "
          f"{verdict(size_ratio >= SIZE_TARGET)}")


async def bench(steps_list: list[int], repeat: int, profile_out: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="om-bench-") as tmp:
        root = Path(tmp)
        config = root / "config.toml"
        config.write_text("", encoding="utf-8")  # named and present: no user config is read
        os.environ["OPENMANUS_CONFIG"] = str(config)
        os.environ["OPENMANUS_DATA_DIR"] = str(root / "data")
        report(await measure(root, steps_list, repeat))
        if profile_out:
            # A separate run: the profiler's own cost must not leak into the timings above.
            steps = max(steps_list)
            workdir = root / "profile"
            workdir.mkdir()
            profiler = cProfile.Profile()
            await run_ours(workdir, write_script(workdir, steps), steps, profiler)
            profiler.dump_stats(profile_out)
            print(f"cProfile of ours at {steps} steps (an extra, untimed run): {profile_out}")


def parse_steps(text: str) -> list[int]:
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not steps or min(steps) < 1:
        raise argparse.ArgumentTypeError("step counts must be positive")
    return steps


def main() -> None:
    global RESULT_BYTES
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=parse_steps, default=[50, 400],
                        help="comma-separated tool-call iterations per run (default 50,400)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per size and graph; the best wall time is reported (default 3)")
    parser.add_argument("--result-bytes", type=int, default=200, help="size of each echo result")
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile of ours at the largest N to this file"
    )
    args = parser.parse_args()
    RESULT_BYTES = max(1, args.result_bytes)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        asyncio.run(bench(args.steps, max(1, args.repeat), args.profile))
    except OpenManusError as exc:
        sys.exit(f"error: {exc.message}")


if __name__ == "__main__":
    main()
