"""The REST API under load: runs/s and p95 run latency at 1, 10 and 50 concurrent runs, and the
API's per-step cost against the same runs in-process.

Usage: python bench/api_load.py [--concurrency 1,10,50] [--steps 4] [--repeat 1]

Each run is a scripted model making ``--steps`` read-only tool calls (``list_files``) and then
answering, in approval mode yolo, each on a thread (session) of its own. "in-process" drives
``AgentSession.run`` for all runs at once with ``asyncio.gather``; "api" starts the real server
(uvicorn, on a free loopback port, in a thread) and drives it with the real ``langgraph-sdk``
client (``runs.wait``), client and server in this one process (so the client's cost is counted
against the API). The server keeps its default ``service.max_concurrent_runs`` (10): beyond
that, runs queue. Target (issue 15): api/in-process wall time per step <= 1.2 at 10 concurrent.
Everything lives in a temporary directory; the user's config and data are untouched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET = 1.2
TARGET_AT = 10


def _script(path: Path, steps: int) -> str:
    path.write_text(json.dumps({
        "steps": [{"text": f"step {i}", "tool_calls": [
            {"name": "list_files", "args": {"path": f"d{i}"}}]} for i in range(steps)],
        "final": "done",
    }))
    return f"scripted:{path}"


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(len(ordered) * 0.95) - 1)]


async def _in_process(n: int, model: str) -> tuple[float, list[float]]:
    from openmanus_tui.config import load_settings
    from openmanus_tui.runtime.session import Runtime

    runtime = await Runtime.open(load_settings())
    try:
        sessions = [await runtime.create_session(model=model) for _ in range(n)]
        for s in sessions:
            s.use_approval_mode("yolo")

        async def one(session: object) -> float:
            started = time.perf_counter()
            outcome = await session.run("go")  # type: ignore[attr-defined]
            assert outcome.final_answer == "done", outcome
            return time.perf_counter() - started

        started = time.perf_counter()
        latencies = await asyncio.gather(*(one(s) for s in sessions))
        return time.perf_counter() - started, list(latencies)
    finally:
        await runtime.close()


@contextlib.contextmanager
def _server():
    import uvicorn

    from openmanus_tui.config import load_settings
    from openmanus_tui.service.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(load_settings()), host="127.0.0.1",
                                           port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("the API server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(60)


async def _api(url: str, n: int, model: str) -> tuple[float, list[float]]:
    from langgraph_sdk import get_client

    client = get_client(url=url, api_key=None)
    threads = [(await client.threads.create())["thread_id"] for _ in range(n)]
    config = {"configurable": {"model": model, "approval": "yolo"}}

    async def one(tid: str) -> float:
        started = time.perf_counter()
        result = await client.runs.wait(tid, "manus", input={"input": "go"}, config=config)
        assert result.get("final_answer") == "done", result
        return time.perf_counter() - started

    started = time.perf_counter()
    latencies = await asyncio.gather(*(one(t) for t in threads))
    return time.perf_counter() - started, list(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]

    home = Path(tempfile.mkdtemp(prefix="openmanus-api-bench-"))
    for key in [k for k in os.environ if k.startswith(("OPENMANUS_", "OPENAI_"))]:
        del os.environ[key]
    (home / "config.toml").write_text("")
    os.environ["OPENMANUS_CONFIG"] = str(home / "config.toml")
    os.environ["OPENMANUS_DATA_DIR"] = str(home / "data")
    model = _script(home / "bench.json", args.steps)
    steps_per_run = args.steps + 1
    ratios: dict[int, float] = {}
    try:
        asyncio.run(_in_process(1, model))  # warm-up: imports, the sandbox probe
        with _server() as url:
            asyncio.run(_api(url, 1, model))  # warm-up
            print(f"{'n':>4} {'mode':<11} {'wall s':>8} {'runs/s':>8} {'p95 s':>8} "
                  f"{'ms/step':>8}")
            for n in levels:
                best: dict[str, tuple[float, list[float]]] = {}
                for _ in range(args.repeat):
                    for mode in ("in-process", "api"):
                        result = asyncio.run(
                            _in_process(n, model) if mode == "in-process"
                            else _api(url, n, model)
                        )
                        if mode not in best or result[0] < best[mode][0]:
                            best[mode] = result
                for mode, (wall, lat) in best.items():
                    per_step = wall / (n * steps_per_run) * 1000
                    print(f"{n:>4} {mode:<11} {wall:>8.2f} {n / wall:>8.2f} {_p95(lat):>8.2f} "
                          f"{per_step:>8.1f}")
                ratios[n] = best["api"][0] / best["in-process"][0]
                print(f"{n:>4} ratio api/in-process per step {ratios[n]:.2f} "
                      f"(median latency api {statistics.median(best['api'][1]):.2f} s)")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if TARGET_AT in ratios:
        verdict = "PASS" if ratios[TARGET_AT] <= TARGET else "MISS"
        print(f"target at {TARGET_AT} concurrent: api/in-process <= {TARGET}: "
              f"{ratios[TARGET_AT]:.2f} {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
