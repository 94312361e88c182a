"""TUI streaming bench: tokens streamed into the real workbench, and a 10,000-event session opened.

    python bench/tui_stream.py [--seconds 30] [--rate 200] [--events 10000]

The app runs headless (``App.run_test``: layout and rendering happen, nothing is written to a
terminal) in a temporary config and data folder. Two parts:

1. **stream**: a recorded run (``RunStarted``, then ``ThoughtDelta`` tokens — words with a
   paragraph break every 60 — then ``Thought``) is fed through ``app.handle_event``, the path
   the runtime's events take, at ``--rate`` tokens per second on an absolute schedule for
   ``--seconds``. A ticker task measures event-loop stalls (how late a 5 ms sleep wakes up);
   a sampler reads how many tokens the stream's Markdown block has actually been given. The
   lag is how long after the last token was sent the block showed all of them.
2. **open**: a session of ``--events`` stored events (thought / tool call / decision / start /
   finish / usage / checkpoint cycles) is opened with ``app.open_session`` — reading, folding
   into the transcript and mounting the bounded window — timed until the next frame.

Prints p50 / p95 / max stall, tokens shown per second against sent, the lag, time to open and
resident memory (RSS now and peak), then the targets with PASS or MISS: p95 stall < 50 ms,
lag < 0.5 s (no lag behind the stream), open < 1 s, peak RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

TICK_S = 0.005
SAMPLE_S = 0.1
SENTENCE = ("the agent reads the file then it writes a short summary of what it found and "
            "checks each number against the source before it answers")
WORDS = SENTENCE.split(" ")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def token(i: int) -> str:
    word = WORDS[i % len(WORDS)]
    return word + ("\n\n" if i % 60 == 59 else " ")


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux


def session_events(session_id: str, count: int) -> list:
    """``count`` stored events in realistic cycles, with increasing seq and a checkpoint chain
    (each cycle ends with a step's checkpoint, as the runtime records them)."""
    from openmanus_tui import events as ev

    out: list = []
    ts = time.time() - 3600
    step = 0

    def ckpt(n: int) -> str:
        return f"1f0c0000-0000-6000-8000-{n:012d}"

    def add(event: ev.Event) -> None:
        nonlocal ts
        ts += 0.01
        event.session_id, event.run_id, event.seq, event.ts = (
            session_id, "run_bench", len(out) + 1, ts)
        event.checkpoint_id = ckpt(step)
        out.append(event)

    add(ev.RunStarted(model="scripted:demo", input="a long task"))
    i = 0
    while len(out) < count:
        mid, cid = f"msg_{i}", f"call_{i}"
        args = {"path": f"file_{i % 50}.txt"}
        cycle = [
            ev.Thought(message_id=mid, text=f"Step {i}: I'll read **file_{i % 50}.txt** next."),
            ev.ToolCall(call_id=cid, tool="file_read", args=args, raw_args="{}", tier=1,
                        risk="read", message_id=mid),
            ev.ApprovalDecided(call_id=cid, tool="file_read", decision="approve", by="policy"),
            ev.ToolStarted(call_id=cid, tool="file_read", args=args, isolation="L2"),
            ev.ToolFinished(call_id=cid, tool="file_read", status="ok", duration_ms=2.5,
                            result="\n".join(f"line {k} of file {i}" for k in range(12))),
            ev.Usage(message_id=mid, tokens_in=1500 + i, tokens_out=40, context_tokens=900,
                     context_window=32_000, total_tokens_in=1500 * (i + 1),
                     total_tokens_out=40 * (i + 1)),
        ]
        for event in cycle[: count - len(out)]:
            add(event)
        if len(out) < count:
            parent = ckpt(step)
            step += 1
            add(ev.Checkpoint(parent_id=parent, step=step, source="loop", nodes=["call_tool"],
                              changed=["messages"]))
        i += 1
    return out


async def stream_part(app, pilot, seconds: float, rate: float) -> dict[str, float]:
    from openmanus_tui import events as ev
    from openmanus_tui.tui.widgets.stream import StreamView

    stream = app.query_one(StreamView)
    app.handle_event(ev.RunStarted(model="scripted:demo", input="stream", seq=0))
    message_id = "msg_stream"
    total = int(seconds * rate)
    stalls: list[float] = []
    shown_samples: list[tuple[float, int]] = []
    done = asyncio.Event()
    sent_all_at: list[float] = []

    async def ticker() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(TICK_S)
            stalls.append(time.perf_counter() - start - TICK_S)

    def shown_tokens() -> int:
        widget = stream._widgets.get(f"thought:{message_id}") or next(
            (w for k, w in stream._widgets.items() if message_id in k), None)
        return len(getattr(widget, "_shown", "").split()) if widget is not None else 0

    async def sampler() -> None:
        while not done.is_set():
            shown_samples.append((time.perf_counter(), shown_tokens()))
            await asyncio.sleep(SAMPLE_S)

    async def sender() -> None:
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            app.handle_event(ev.ThoughtDelta(message_id=message_id, text=token(i)))
        sent_all_at.append(time.perf_counter())

    tasks = [asyncio.create_task(ticker()), asyncio.create_task(sampler())]
    t0 = time.perf_counter()
    await sender()
    # Wait (bounded) until the block shows every token sent.
    deadline = time.perf_counter() + 30
    while shown_tokens() < total and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    caught_up = time.perf_counter()
    done.set()
    await asyncio.gather(*tasks)
    text = "".join(token(i) for i in range(total))
    app.handle_event(ev.Thought(message_id=message_id, text=text))
    await pilot.pause(0.1)
    duration = sent_all_at[0] - t0
    return {
        "sent": total,
        "shown": shown_tokens(),
        "duration": duration,
        "sent_rate": total / duration,
        "shown_rate": shown_samples[-1][1] / (shown_samples[-1][0] - t0) if shown_samples else 0,
        "lag": caught_up - sent_all_at[0] if shown_tokens() >= total else float("inf"),
        "p50": percentile(stalls, 0.50) * 1000,
        "p95": percentile(stalls, 0.95) * 1000,
        "max": max(stalls) * 1000 if stalls else 0.0,
        "ticks": len(stalls),
    }


async def open_part(app, pilot, count: int) -> dict[str, float]:
    from openmanus_tui.store.db import SessionRecord
    from openmanus_tui.tui.widgets.stream import StreamView

    db = app.runtime.db
    sid = "bench-10k"
    await db.create_session(SessionRecord(id=sid, title="10k events", model="scripted:demo",
                                          workspace=str(db.path.parent / "ws")))
    for event in session_events(sid, count):
        await db.append_event(event, commit=False)
    await db.flush_events(commit=True)
    start = time.perf_counter()
    await app.open_session(sid)
    await pilot.pause()  # the next frame
    elapsed = time.perf_counter() - start
    stream = app.query_one(StreamView)
    # The same read and fold again, without the widgets: what mounting costs is the rest.
    from openmanus_tui.runtime import api
    from openmanus_tui.tui import branching

    start = time.perf_counter()
    branching.transcript_from(await api.branch_transcript(app.session))
    fold = time.perf_counter() - start
    stored = len(await db.events(sid))
    return {"seconds": elapsed, "fold": fold, "events": stored,
            "blocks": len(stream.transcript.blocks), "mounted": stream.mounted_blocks}


async def run(seconds: float, rate: float, events: int) -> int:
    from openmanus_tui.launch import configure_process

    configure_process()  # tuned as ``openmanus`` tunes its process (``launch.py``)
    from openmanus_tui.config import load_settings
    from openmanus_tui.runtime.session import AgentSession
    from openmanus_tui.tui.app import OpenManusApp

    AgentSession.isolation = lambda self: "L2"  # type: ignore[method-assign]  # no sandbox probe
    app = OpenManusApp(load_settings(), blink=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await app.ready.wait()
        s = await stream_part(app, pilot, seconds, rate)
        o = await open_part(app, pilot, events)
        now, peak = rss_mb(), peak_rss_mb()
    print(f"stream  {s['sent']} tokens in {s['duration']:.1f} s: sent {s['sent_rate']:.0f}/s, "
          f"shown {s['shown_rate']:.0f}/s, all shown {s['lag'] * 1000:.0f} ms after the last")
    print(f"stall   p50 {s['p50']:.1f} ms  p95 {s['p95']:.1f} ms  max {s['max']:.1f} ms "
          f"({s['ticks']} ticks of {TICK_S * 1000:.0f} ms)")
    print(f"open    {o['events']} events -> {o['blocks']} blocks, {o['mounted']} mounted: "
          f"{o['seconds'] * 1000:.0f} ms (read + fold {o['fold'] * 1000:.0f} ms, "
          f"mount and first layout {(o['seconds'] - o['fold']) * 1000:.0f} ms)")
    print(f"memory  rss {now:.0f} MB, peak {peak:.0f} MB")
    targets = [
        ("p95 stall < 50 ms", f"{s['p95']:.1f} ms", s["p95"] < 50),
        ("no lag: all tokens shown < 500 ms after the last", f"{s['lag'] * 1000:.0f} ms",
         s["lag"] < 0.5),
        (f"open {events} events < 1 s", f"{o['seconds']:.2f} s", o["seconds"] < 1),
        ("peak memory < 300 MB", f"{peak:.0f} MB", peak < 300),
    ]
    for name, value, ok in targets:
        print(f"target {name}: {value} {'PASS' if ok else 'MISS'}")
    if s["shown"] < s["sent"] or o["events"] != events:
        print("error: the app did not show every token or store every event", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0, help="tokens per second")
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="om-bench-tui-") as tmp:
        (Path(tmp) / "config.toml").write_text("")
        for key in [k for k in os.environ if k.startswith(("OPENAI_", "OPENMANUS_"))]:
            del os.environ[key]
        os.environ["OPENMANUS_CONFIG"] = str(Path(tmp) / "config.toml")
        os.environ["OPENMANUS_DATA_DIR"] = str(Path(tmp) / "data")
        return asyncio.run(run(args.seconds, args.rate, args.events))


if __name__ == "__main__":
    sys.exit(main())
