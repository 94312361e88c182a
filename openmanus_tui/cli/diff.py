"""``openmanus diff ID HEAD_A HEAD_B``: compare two branches: messages, answers and files."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.text import Text

from openmanus_tui.cli.common import handles


def add_parser(sub: Any) -> None:
    diff = sub.add_parser("diff", help="compare two branches: messages, answers and files")
    diff.add_argument("session", metavar="ID")
    diff.add_argument("branch_a", metavar="HEAD_A")
    diff.add_argument("branch_b", metavar="HEAD_B")
    diff.add_argument("--json", action="store_true")
    handles(diff, handle, read_only=True)


async def handle(args: argparse.Namespace, runtime: Any) -> int:
    session = await runtime.open_session(args.session)
    a = await session.history.resolve(args.branch_a)
    b = await session.history.resolve(args.branch_b)
    diff = await session.history.compare(a, b)
    if args.json:
        print(json.dumps(diff.to_dict(), default=str))
        return 0
    console = Console(highlight=False)
    console.print(Text(f"{diff.common} message(s) in common", style="dim"))
    for side, items, head in (("A", diff.only_a, a), ("B", diff.only_b, b)):
        console.rule(f"only on {side} ({head[-12:]})")
        for item in items:
            line = Text(f"{item['role']:>9}  ", style="bold")
            calls = item.get("tool_calls") or []
            line.append(item.get("text", "")[:200])
            if calls:
                line.append(
                    "  → " + ", ".join(f"{c['tool']}({json.dumps(c['args'])[:80]})" for c in calls),
                    style="cyan",
                )
            console.print(line)
    console.rule("answers")
    console.print(Text(f"A: {diff.final_a}"))
    console.print(Text(f"B: {diff.final_b}"))
    console.rule(f"files ({len(diff.files)} changed)")
    for change in diff.files:
        console.print(Text(f"{change.status:>9}  {change.path}"))
        if getattr(change, "diff", None):
            console.print(Text(change.diff, style="dim"))
    return 0
