"""``openmanus switch ID CHECKPOINT``: make a branch head current (restores its files)."""

from __future__ import annotations

import argparse
from typing import Any

from openmanus_tui.cli.common import handles


def add_parser(sub: Any) -> None:
    switch = sub.add_parser("switch", help="make a branch head current (restores its files)")
    switch.add_argument("session", metavar="ID")
    switch.add_argument("head", metavar="CHECKPOINT")
    switch.add_argument("--force", action="store_true", help="overwrite outside changes to files")
    handles(switch, handle)


async def handle(args: argparse.Namespace, runtime: Any) -> int:
    session = await runtime.open_session(args.session)
    head = await session.history.resolve(args.head)
    changes = await session.history.switch(head, force=args.force)
    print(f"session {session.id} is now at {head}; {len(changes)} file(s) restored")
    return 0
