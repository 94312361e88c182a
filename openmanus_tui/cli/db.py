"""``openmanus db check|recover``: SQLite's integrity check (read-only), and copying what is
readable of a damaged database into a new file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from openmanus_tui.cli.common import EXIT_ERROR, EXIT_OK, handles, subcommands


def add_parser(sub: Any) -> None:
    db = sub.add_parser("db", help="check or recover the database")
    dsub = subcommands(db)
    handles(dsub.add_parser("check", help="run SQLite's integrity check (read-only)"),
            check_cmd, needs="settings")
    recover = dsub.add_parser("recover", help="copy what is readable into a new database file")
    recover.add_argument(
        "-o", "--output", metavar="NEWFILE", help="the new file (default: next to the database)"
    )
    handles(recover, recover_cmd, needs="settings")


def check_cmd(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime.api import check_database as check_file

    path = settings.db_path
    report = check_file(path)
    for name, rows in report.tables.items():
        print(f"  {name}: {rows if isinstance(rows, str) else f'{rows} rows'}")
    if report.ok:
        print(f"OK: {path} passed SQLite's integrity check")
        return EXIT_OK
    for problem in report.problems:
        print(f"  {problem}")
    print(f"DAMAGED: {path}: {len(report.problems)} problem(s); "
          f"recover with: openmanus db recover -o NEW.db", file=sys.stderr)
    return EXIT_ERROR


def recover_cmd(args: argparse.Namespace, settings: Any) -> int:
    import time
    from pathlib import Path

    from openmanus_tui.runtime.api import recover_database as recover

    path = settings.db_path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    default = path.with_name(f"{path.stem}.recovered-{stamp}.db")
    target = Path(args.output) if args.output else default
    done = recover(path, target)
    for name, rows in done.tables.items():
        print(f"  {name}: {rows} rows")
    for name, why in done.lost.items():
        print(f"  lost in {name}: {why}")
    state = "passes" if not done.problems_after else "FAILS"
    print(f"recovered into {target} with {done.method}; the new file {state} the integrity check; "
          f"{path} was not changed")
    print(f"use it with: storage.path = \"{target}\" (or move it to {path} once nothing runs)")
    return EXIT_OK if not done.problems_after else EXIT_ERROR
