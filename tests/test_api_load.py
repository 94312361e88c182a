"""Fifty concurrent runs against one server on loopback: all finish, no ``database is
locked``, every stored event streamed exactly once and in order; the p95 queue wait and run
time are printed (bench/api_load.py measures throughput)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil
import pytest
from api_helpers import serve, write_file_script

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import Runtime

RUNS = 50


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


@pytest.mark.slow
async def test_fifty_concurrent_runs(tmp_path: Path) -> None:
    model = write_file_script(tmp_path)
    cfg = {"configurable": {"model": model, "approval": "yolo"}}
    with serve() as srv:
        client = srv.client()
        # Processes other tests of this worker left behind are not this test's concern.
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        threads = [(await client.threads.create())["thread_id"] for _ in range(RUNS)]

        async def one(tid: str) -> tuple[str, list[dict], float, float]:
            sent = time.monotonic()
            first = None
            parts = []
            async for part in client.runs.stream(tid, "manus", input={"input": "go"},
                                                 stream_mode=["custom"], config=cfg):
                if part.event == "error":
                    raise AssertionError(part.data)
                if part.event == "custom":
                    if first is None:
                        first = time.monotonic()
                    parts.append(part.data)
            return tid, parts, (first or sent) - sent, time.monotonic() - sent

        results = await asyncio.gather(*(one(t) for t in threads))
        statuses = [(await client.threads.get(t))["status"] for t in threads]
        # Each run's sandbox helper is stopped when the run ends (none left per thread).
        left = {p.pid for p in psutil.Process().children(recursive=True)} - before
        assert len(left) < 5
    assert statuses == ["idle"] * RUNS
    waits = [r[2] for r in results]
    totals = [r[3] for r in results]
    print(f"\n{RUNS} concurrent runs: p95 queue wait {_p95(waits):.2f} s, "
          f"p95 run time {_p95(totals):.2f} s")

    runtime = await Runtime.open(load_settings())
    try:
        for tid, parts, _, _ in results:
            finished = [p for p in parts if p["type"] == "run_finished"]
            assert [p["status"] for p in finished] == ["completed"]
            assert not any("database is locked" in str(p) for p in parts)
            stored = await runtime.db.events(tid)
            streamed = [p for p in parts if not ev.parse_event(p).ephemeral]
            # every stored event streamed once, in order, nothing streamed that was not stored
            assert [p["seq"] for p in streamed] == [e.seq for e in stored]
            assert [p["type"] for p in streamed] == [e.type for e in stored]
    finally:
        await runtime.close()


def test_api_load_bench_runs_and_reports(tmp_path: Path) -> None:
    """``bench/api_load.py`` at tiny sizes: both modes did the work, every line is printed."""
    import os
    import re
    import subprocess
    import sys

    bench = Path(__file__).resolve().parent.parent / "bench" / "api_load.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENMANUS_", "XDG_"))}
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env.update(TMPDIR=str(tmp))
    proc = subprocess.run([sys.executable, str(bench), "--concurrency", "2", "--steps", "1"],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for n in (2,):
        for mode in ("in-process", "api"):
            assert re.search(rf"^\s*{n} {mode} +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+$", proc.stdout,
                             re.M), proc.stdout
        assert re.search(rf"^\s*{n} ratio api/in-process per step [\d.]+", proc.stdout, re.M)
    assert list(tmp.iterdir()) == []  # the bench removed its temporary directory
