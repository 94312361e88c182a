"""``openmanus export ID``: write a session (or one branch) as Markdown, JSON or HTML."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from openmanus_tui.cli.common import handles


def add_parser(sub: Any) -> None:
    export = sub.add_parser("export", help="write a session as Markdown, JSON or HTML")
    export.add_argument("session", metavar="ID")
    export.add_argument("--format", choices=["md", "json", "html"], default="md")
    export.add_argument("--branch", metavar="HEAD", help="only this branch")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    handles(export, handle, read_only=True)


async def handle(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.runtime import api

    session = await runtime.open_session(args.session)
    doc = await api.export_document(session, args.branch)
    text = api.render_export(doc, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(doc.events)} events)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
