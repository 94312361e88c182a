"""``openmanus run TASK``: run a task headless, streaming the events; and ``run_session``,
which every command that runs the agent (resume, fork --run, replay --live) shares."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from openmanus_tui.cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    OUTCOME_EXIT,
    handles,
    run_options,
    with_runtime,
)


def add_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="run a task headless, streaming the events")
    run.add_argument(
        "task", nargs="?", help="what the agent should do; - reads it from standard input"
    )
    run.add_argument("--task-file", metavar="FILE", help="read the task from this file")
    run.add_argument("--session", metavar="ID", help="continue this session instead of a new one")
    run.add_argument("--workspace", metavar="DIR", help="the folder the agent works in")
    run.add_argument("--agent", metavar="PROFILE",
                     help="a new session's profile: manus, research, writing or data_analysis")
    run_options(run)
    handles(run, handle, needs="settings", check_settings=True)


async def handle(args: argparse.Namespace, settings: Any) -> int:
    # Issue 12: a workspace holding openmanus's own state is refused before anything runs.
    from openmanus_tui.runtime.api import ensure_workspace_allowed

    ensure_workspace_allowed(settings.sandbox.workspace, settings)
    return await with_runtime(args, settings, _run)


async def _run(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.limits import check_task, read_task

    # Checked before a session is created: a refused task leaves nothing behind.
    task = check_task(
        read_task(args.task, args.task_file, runtime.settings.limits.task_chars),
        runtime.settings.limits.task_chars,
    )
    profile = _profile(args)
    if args.session is None:
        session = await runtime.create_session(model=args.model, profile=profile)
    else:
        session = await runtime.open_session(args.session, model=args.model)
        from openmanus_tui.runtime.api import ensure_workspace_allowed

        # a session made before issue 12's rule may hold the person's home as its workspace
        ensure_workspace_allowed(session.workspace, runtime.settings)
    return await run_session(args, runtime, session, task=task)


def _profile(args: argparse.Namespace) -> str | None:
    """The profile ``--agent`` names (stored spelling), None without it; one line (exit 2)
    for an unknown one or for ``--session`` (a session keeps its profile)."""
    if not getattr(args, "agent", None):
        return None
    from openmanus_tui.errors import ConfigError
    from openmanus_tui.runtime.api import PROFILES, resolve_profile

    profile = resolve_profile(args.agent)
    if profile is None:
        raise ConfigError(
            f"run: --agent {args.agent!r} is not a profile; one of: {', '.join(PROFILES)}"
        )
    if args.session is not None:
        raise ConfigError("run: --agent names a new session's profile; leave out --session")
    return profile


async def run_session(
    args: argparse.Namespace, runtime: Any, session: Any, task: str | None
) -> int:
    """Run ``task`` in ``session`` (or resume it when ``task`` is None), rendering the events."""
    from openmanus_tui.cli.render import Renderer, terminal_approver, terminal_ask_human

    renderer = Renderer(json_lines=args.json)
    interactive = sys.stdin.isatty()
    # Nobody to ask: the run pauses at the first call that needs a person (exit 4) and keeps
    # it pending, so `resume` at a terminal asks it; nothing is denied on the user's behalf.
    approver = terminal_approver(renderer, runtime.registry, True) if interactive else None
    ask_human = terminal_ask_human(renderer) if interactive else None
    # An `ask` session resumes in `ask` unless --approval says otherwise.
    session.use_approval_mode(getattr(args, "approval", None))
    try:
        if task is not None:
            outcome = await session.run(
                task, approver=approver, on_event=renderer, ask_human=ask_human
            )
        else:
            outcome = await session.resume(
                approver=approver, on_event=renderer, ask_human=ask_human
            )
            if outcome.reason == "nothing to resume":
                renderer.note(f"Session {session.id} has nothing to resume (it is finished).")
    except (KeyboardInterrupt, asyncio.CancelledError):
        # Ctrl+C (at a prompt too): the run stopped, nothing pending was approved.
        renderer.note(f"Interrupted. Continue with: openmanus resume {session.id}")
        return EXIT_INTERRUPTED
    renderer.summary(session.id, outcome)
    return OUTCOME_EXIT.get(outcome.status, EXIT_ERROR)
