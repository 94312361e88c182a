"""``openmanus import FILE``: bring back a JSON export or a ``run --json`` stream as a session.
(The module's name has an underscore: ``import`` is a Python keyword.)"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from openmanus_tui.cli.common import handles


def add_parser(sub: Any) -> None:
    imp = sub.add_parser("import", help="bring back a JSON export or a run --json stream")
    imp.add_argument("file", metavar="FILE", help="the file, or - for standard input")
    handles(imp, handle)


async def handle(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.errors import ConfigError
    from openmanus_tui.runtime.api import import_document

    if args.file == "-":
        text, source = sys.stdin.read(), "standard input"
    else:
        try:
            text, source = Path(args.file).read_text(encoding="utf-8"), args.file
        except OSError as exc:
            raise ConfigError(f"import: cannot read {args.file}: {exc.strerror}") from None
    session, count = await import_document(runtime, text, source=source)
    print(f"imported {count} events as session {session.id}")
    return 0
