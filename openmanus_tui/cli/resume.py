"""``openmanus resume ID``: continue an interrupted or unfinished session."""

from __future__ import annotations

import argparse
from typing import Any

from openmanus_tui.cli.common import handles, run_options


def add_parser(sub: Any) -> None:
    resume = sub.add_parser("resume", help="continue an interrupted or unfinished session")
    resume.add_argument("session", metavar="ID")
    run_options(resume)
    handles(resume, handle, check_settings=True)


async def handle(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.cli.run import run_session
    from openmanus_tui.runtime.api import ensure_workspace_allowed

    session = await runtime.open_session(args.session, model=args.model)
    # a session made before issue 12's rule may hold the person's home as its workspace
    ensure_workspace_allowed(session.workspace, runtime.settings)
    return await run_session(args, runtime, session, task=None)
