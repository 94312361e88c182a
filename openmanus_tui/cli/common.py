"""What every command module shares: the parser class, exit codes, the run options, and
``handles`` (how a command says which function runs it and what that function needs).

Kept light: it is imported to build the parser, which every ``openmanus`` start pays for
(the workbench's first frame too), so heavy imports belong inside the handlers.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from openmanus_tui.errors import ConfigError, OpenManusError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_STOPPED, EXIT_AWAITING, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left
OUTCOME_EXIT = {
    "completed": EXIT_OK,
    "stopped": EXIT_STOPPED,
    "awaiting_approval": EXIT_AWAITING,
    "error": EXIT_ERROR,
    "cancelled": EXIT_INTERRUPTED,
}

# What the core hands a handler (see ``handles``).
Needs = Literal["args", "settings", "runtime"]
ArgsHandler = Callable[[argparse.Namespace], int]
SettingsHandler = Callable[[argparse.Namespace, Any], "int | Awaitable[int]"]
RuntimeHandler = Callable[[argparse.Namespace, Any], Awaitable[int]]


class Parser(argparse.ArgumentParser):
    """A user mistake on the command line is one line and exit code 2 (``ConfigError``),
    not argparse's own exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        # The line starts "openmanus: " already: name the command after it ("sessions: …").
        command = self.prog.partition(" ")[2]
        raise ConfigError(f"{command}: {message}" if command else message)


def subcommands(parser: argparse.ArgumentParser) -> Any:
    """The actions of a command with actions (``sessions list``): ``args.action`` names it."""
    return parser.add_subparsers(dest="action", parser_class=Parser, required=True)


def handles(
    parser: argparse.ArgumentParser,
    handler: Callable[..., Any],
    *,
    needs: Needs = "runtime",
    read_only: bool = False,
    check_settings: bool = False,
    resolve_secrets: bool = True,
) -> None:
    """Make ``handler`` run this (sub)command. ``needs`` says what it is called with:

    - ``"runtime"``: ``async handler(args, runtime) -> int``; the core loads the settings and
      opens the runtime (and the database) around it. ``read_only=True``: it only reads the
      database, so it also works on a damaged file (opened read-only).
    - ``"settings"``: ``handler(args, settings) -> int`` (sync or async); nothing is opened.
    - ``"args"``: ``handler(args) -> int``, called as is: no settings, no event loop, no
      output sanitiser (``serve``, which runs its own server loop).

    ``check_settings=True`` runs ``config_check.check_settings`` first (what ``run`` checks).
    ``resolve_secrets=False`` leaves ``"secret:NAME"`` settings unresolved (``secrets``,
    ``config history``: they must work while a secret the config names is missing).
    """
    parser.set_defaults(
        handler=handler, needs=needs, read_only=read_only, check_settings=check_settings,
        resolve_secrets=resolve_secrets,
    )


def run_options(p: argparse.ArgumentParser) -> None:
    """The options of every command that runs the agent (run, resume, fork, replay)."""
    p.add_argument("--model", metavar="SPEC", help="openai:<model> or scripted:<name>")
    p.add_argument("--approval", choices=["ask", "auto", "yolo"], help="approval mode")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument("--max-steps", type=int, metavar="N", help="stop after N model calls")


async def with_runtime(
    args: argparse.Namespace, settings: Any, handler: RuntimeHandler, *, read_only: bool = False
) -> int:
    """Open the runtime, run ``handler(args, runtime)``, close it. A damaged database is one
    line (not a traceback); a handler that only reads works on it all the same."""
    from openmanus_tui.runtime.session import Runtime

    try:
        runtime = await Runtime.open(settings)
    except sqlite3.DatabaseError as exc:
        raise _damage(settings, exc) from None
    try:
        if runtime.db.damaged is not None and not read_only:
            from openmanus_tui.runtime.api import damaged_error

            raise damaged_error(settings.db_path, runtime.db.damaged)
        return await handler(args, runtime)
    except sqlite3.DatabaseError as exc:
        raise _damage(settings, exc) from None
    finally:
        await runtime.close()


def _damage(settings: Any, exc: Exception) -> Exception:
    """One line for a damaged database found while working (not a traceback)."""
    from openmanus_tui.runtime.api import damaged_error, is_damage

    if is_damage(exc):
        return damaged_error(settings.db_path, str(exc))
    return OpenManusError(f"database error: {exc}", hint=f"database: {settings.db_path}")
