"""``openmanus replay ID``: replay a branch from its record (with breakpoints and steps), or
``--live``: re-execute it into a new branch."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from openmanus_tui.cli.common import handles, run_options


def add_parser(sub: Any) -> None:
    replay = sub.add_parser("replay", help="replay a branch from its record, or live")
    replay.add_argument("session", metavar="ID")
    replay.add_argument("--branch", metavar="HEAD", help="the branch head (default: current)")
    replay.add_argument("--live", action="store_true", help="re-execute into a new branch")
    replay.add_argument(
        "--from",
        dest="start",
        metavar="CHECKPOINT",
        help="with --live: the step to re-execute from (default: the first)",
    )
    replay.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="recorded timing scaled by this (0: as fast as possible)",
    )
    replay.add_argument("--force", action="store_true", help="overwrite outside changes to files")
    replay.add_argument(
        "--break",
        dest="breakpoints",
        action="append",
        default=[],
        metavar="TOOL",
        help="pause before each call of this tool (repeatable; Enter goes on)",
    )
    replay.add_argument("--step", action="store_true", help="pause after every step")
    run_options(replay)
    handles(replay, handle)


async def handle(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.cli.render import Renderer
    from openmanus_tui.runtime.replay import Replayer

    session = await runtime.open_session(args.session, model=args.model)
    history = session.history
    if args.live:
        from openmanus_tui.runtime import api

        if args.start:
            start = await history.resolve(args.start)
        else:
            start = await api.live_replay_start(session, args.branch)
        await history.fork(start, force=args.force)
        from openmanus_tui.cli.run import run_session

        return await run_session(args, runtime, session, task=None)
    head = await history.resolve(args.branch) if args.branch else None
    events = await history.recorded(head)
    renderer = Renderer(json_lines=args.json)
    replayer = Replayer(
        events, speed=args.speed, breakpoints=args.breakpoints, break_on_steps=args.step
    )
    if not (args.breakpoints or args.step):
        await replayer.play(renderer)
        return 0
    import asyncio

    from openmanus_tui.cli.render import _read_line
    from openmanus_tui.terminal_input import in_daemon_thread

    playing = asyncio.create_task(replayer.play(renderer))
    interactive = sys.stdin.isatty()
    while not playing.done():
        await asyncio.sleep(0.02)
        if replayer.paused and not playing.done():
            where = replayer.paused_at.type if replayer.paused_at else "step"
            if interactive:
                answer = await in_daemon_thread(
                    _read_line, f"paused at {where}: Enter goes on, s steps, q quits > "
                )
            else:
                answer = ""  # nobody to ask: breakpoints only mark the place
            if answer == "q":
                playing.cancel()
                break
            if answer == "s":
                replayer.step()
            else:
                replayer.resume()
    return 0
