"""``openmanus git approve DIR``: accept the hooks and executing git config a workspace's
repositories hold now (``sandbox/git_guard.py``, issue 12)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from openmanus_tui.cli.common import EXIT_OK, handles, subcommands
from openmanus_tui.errors import ConfigError


def add_parser(sub: Any) -> None:
    git = sub.add_parser("git", help="git protection of a workspace")
    gsub = subcommands(git)
    approve = gsub.add_parser(
        "approve", help="accept the hooks and executing config the repositories hold now"
    )
    approve.add_argument("workspace", metavar="DIR")
    handles(approve, approve_cmd, needs="settings")


def approve_cmd(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime.api import GitGuard, find_git_entries

    ws = Path(args.workspace).expanduser().resolve()
    if not ws.is_dir():
        raise ConfigError(f"git approve: {ws} is not a directory")
    GitGuard(ws, settings.resolved_data_dir).approve()
    repos = find_git_entries(ws)
    print(f"approved the hooks and git config of {len(repos)} repositories under {ws}")
    return EXIT_OK
