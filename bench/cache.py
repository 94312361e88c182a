"""Model-cache bench: a 20-step run replayed live with the model cache on, against the same
replay with the cache off, measured in the same run.

The real ``langchain-openai`` client talks to the loopback server (``tests/openai_server.py``),
which waits ``--latency`` seconds before each answer as a real model would. The run makes
``--steps - 1`` read-only tool calls (``file_read``) and then answers. It is run once (filling
the cache), then replayed live from its first model step twice: with the cache off (every step
asks the server again) and with it on.

    python bench/cache.py [--steps 20] [--latency 0.1]

Targets (issue 16): the cached replay sends 0 model requests; its wall time is printed as a
ratio of the uncached replay's. Exits non-zero when a replay did not do its work or the cached
one sent a request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


async def main(steps: int, latency: float) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="om-bench-cache-"))
    try:
        return await _bench(tmp, steps, latency)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def _bench(tmp: Path, steps: int, latency: float) -> int:
    (tmp / "config.toml").write_text("")
    os.environ["OPENMANUS_CONFIG"] = str(tmp / "config.toml")
    os.environ["OPENMANUS_DATA_DIR"] = str(tmp / "data")
    from openai_server import OpenAITestServer, Reply, ToolCallSpec, script_responder

    from openmanus_tui import events as ev
    from openmanus_tui.config import load_settings
    from openmanus_tui.runtime import api
    from openmanus_tui.runtime.session import Runtime

    workspace = tmp / "ws"
    workspace.mkdir()
    for i in range(steps):
        (workspace / f"f{i:02d}.txt").write_text(f"file {i}\n" * 10)
    replies = [
        Reply(tool_calls=[ToolCallSpec("file_read", {"path": f"f{i:02d}.txt"})])
        for i in range(steps - 1)
    ]
    scripted = script_responder([*replies, Reply(text="read them all")])

    def slow(body: dict) -> Reply:
        time.sleep(latency)  # the model "thinks"
        return scripted(body)

    with OpenAITestServer(slow) as server:
        os.environ.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-bench",
                          OPENMANUS_MODEL__NAME="test-model")

        def settings(cache: bool):
            return load_settings({
                "approval": {"mode": "yolo"},
                "agent": {"max_steps": steps + 5, "repeat_limit": steps + 5},
                "model": {"temperature": 0},
                "cache": {"model": cache},
                "sandbox": {"workspace": str(workspace)},
            })

        async def timed_replay(cache: bool, session_id: str) -> tuple[float, int, int, float]:
            async with await Runtime.open(settings(cache)) as runtime:
                session = await runtime.open_session(session_id)
                start = await api.live_replay_start(session)
                before = server.request_count
                seen: list[ev.Event] = []
                began = time.perf_counter()
                outcome = await session.history.retry_live(start, on_event=seen.append)
                wall = time.perf_counter() - began
                done = next(e for e in seen if isinstance(e, ev.RunFinished))
                if outcome.final_answer != "read them all" or done.steps != steps:
                    print(f"FAIL: the replay did not finish its {steps} steps: {outcome}")
                    raise SystemExit(1)
                return wall, server.request_count - before, done.steps, done.cost

        async with await Runtime.open(settings(True)) as runtime:
            session = await runtime.create_session(title="cache bench")
            began = time.perf_counter()
            outcome = await session.run("read every file")
            first = time.perf_counter() - began
            assert outcome.final_answer == "read them all", outcome
            session_id = session.id
        print(f"first run (fills the cache): {steps} steps, {server.request_count} requests, "
              f"{first:.2f} s")
        uncached, n_uncached, _, _ = await timed_replay(False, session_id)
        cached, n_cached, _, cost = await timed_replay(True, session_id)
    print(f"live replay, cache off: {n_uncached} model requests, {uncached:.2f} s")
    print(f"live replay, cache on:  {n_cached} model requests, {cached:.2f} s, cost ${cost:.4f}")
    print(f"ratio wall time cached/uncached: {cached / uncached:.2f} "
          f"(model latency {latency * 1000:.0f} ms per request)")
    ok = n_cached == 0 and n_uncached == steps
    print(f"target: 0 model requests with the cache on: {'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per model answer")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.steps, args.latency)))
