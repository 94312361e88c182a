"""Bare ``openmanus [TASK] [--workspace DIR] [--model SPEC] [--approval MODE]``: the Textual
workbench, working in the current folder. Its options are the top-level parser's own."""

from __future__ import annotations

import argparse
import os
from typing import Any

from openmanus_tui.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", metavar="ID", help="open the workbench on this session")
    parser.add_argument(
        "--last", action="store_true", help="open the workbench on the newest session"
    )
    # Workbench options (their own dests: the commands have options of the same names).
    parser.add_argument("--workspace", metavar="DIR", dest="top_workspace",
                        help="the folder new sessions work in (default: the current folder)")
    parser.add_argument("--model", metavar="SPEC", dest="top_model",
                        help="openai:<model> or scripted:<name>")
    parser.add_argument("--approval", choices=["ask", "auto", "yolo"], dest="top_approval",
                        help="approval mode")


def handle(args: argparse.Namespace) -> int:
    """The Textual workbench (imported only here, the core never does). The app reads the
    settings itself, after its first frame; a broken config file ends it with the same
    one-line error and exit status as every other command."""
    from pathlib import Path

    from openmanus_tui.tui.app import run_tui

    if args.workbench_task is not None and (args.resume or args.last):
        raise ConfigError("a TASK starts a new session: leave out --resume/--last")
    workspace = Path(args.top_workspace or os.getcwd()).expanduser()
    if not workspace.is_dir():
        raise ConfigError(f"--workspace {args.top_workspace}: no such folder",
                          hint="Create it first, or pick an existing folder.")
    if args.top_workspace:
        # A folder named on purpose is refused here, as `run` does; the current folder taken
        # by default falls back to a folder per session inside the app (tui/app.py).
        from openmanus_tui.runtime.api import ensure_workspace_allowed

        ensure_workspace_allowed(workspace)
    overrides: dict[str, Any] = {"sandbox": {"workspace": str(workspace.resolve())}}
    if args.top_approval:
        overrides["approval"] = {"mode": args.top_approval}
    if args.top_model:
        provider, sep, name = args.top_model.partition(":")
        if not sep or not name or provider not in ("openai", "scripted"):
            raise ConfigError(f"--model {args.top_model!r} is not a model spec; "
                              "expected openai:<model> or scripted:<name>")
        overrides["model"] = {"provider": provider, "name": name}
    return run_tui(session_id=args.resume, resume_last=args.last, overrides=overrides,
                   task=args.workbench_task)
