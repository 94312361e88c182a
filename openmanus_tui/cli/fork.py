"""``openmanus fork ID --at CHECKPOINT``: start a new branch from a step of a session, with an
edited message, edited tool-call arguments or edited model text; ``--run`` runs it now."""

from __future__ import annotations

import argparse
import json
from typing import Any

from openmanus_tui.cli.common import handles, run_options


def add_parser(sub: Any) -> None:
    fork = sub.add_parser("fork", help="start a new branch from a step of a session")
    fork.add_argument("session", metavar="ID")
    fork.add_argument("--at", required=True, metavar="CHECKPOINT", help="a checkpoint id or prefix")
    what = fork.add_mutually_exclusive_group()
    what.add_argument("--message", metavar="TEXT", help="re-ask that run with this user message")
    what.add_argument("--args", metavar="JSON", help="new arguments for --call")
    what.add_argument("--text", metavar="TEXT", help="replace the model's text at that step")
    fork.add_argument("--call", metavar="CALL_ID", help="the tool call whose arguments change")
    fork.add_argument("--run", action="store_true", help="run the new branch now")
    fork.add_argument("--force", action="store_true", help="overwrite outside changes to files")
    run_options(fork)
    handles(fork, handle)


async def handle(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.errors import ConfigError

    session = await runtime.open_session(args.session, model=args.model)
    at = await session.history.resolve(args.at)
    call_args = None
    if args.args is not None:
        if not args.call:
            raise ConfigError("fork: --args needs --call CALL_ID (see `sessions show --json`)")
        try:
            parsed = json.loads(args.args)
        except ValueError as exc:
            raise ConfigError(f"fork: --args is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ConfigError("fork: --args must be a JSON object")
        call_args = {args.call: parsed}
    start = await session.history.fork(
        at, message=args.message, call_args=call_args, text=args.text, force=args.force
    )
    print(f"new branch of {session.id} starts at {start}")
    if not args.run:
        hint = f'openmanus run "{args.message}" --session' if args.message else "openmanus resume"
        print(f"continue it with: {hint} {session.id}")
        return 0
    from openmanus_tui.cli.run import run_session

    if args.message is not None:
        return await run_session(args, runtime, session, task=args.message)
    return await run_session(args, runtime, session, task=None)
