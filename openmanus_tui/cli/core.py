"""The core of the command line: the parser (built from ``COMMANDS``), ``main``, the one-line
errors and exit codes, and dispatch to the handler a command registered (``common.handles``).

User mistakes (bad flags, bad config, unknown session) print one clear line and exit with
code 2; a run's outcome sets the exit code: 0 final answer, 1 error, 3 stopped by a guard,
4 waiting for an approval, 130 interrupted. No command's name appears here.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import sys
from typing import Any

from openmanus_tui import __version__
from openmanus_tui.cli import workbench
from openmanus_tui.cli.commands import command_modules
from openmanus_tui.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Parser,
    with_runtime,
)
from openmanus_tui.errors import ConfigError, OpenManusError
from openmanus_tui.termsafe import installed, sanitize


def build_parser() -> argparse.ArgumentParser:
    parser = _top_parser()
    # ``prog``: a command's usage reads "openmanus run …", not the top level's whole usage
    # line followed by "run".
    sub = parser.add_subparsers(dest="command", parser_class=Parser, prog="openmanus")
    for command in command_modules():
        command.add_parser(sub)
    return parser


def _top_parser() -> argparse.ArgumentParser:
    """The top-level options, without the commands (bare ``openmanus`` needs no more)."""
    parser = Parser(
        prog="openmanus",
        usage="openmanus [TASK] [--workspace DIR] [--model SPEC] [--approval MODE] "
              "[--resume ID | --last] | openmanus COMMAND ...",
        description="OpenManus TUI: run, watch and steer an agent. Without a command: the "
                    "workbench, working in the current folder (or --workspace); a TASK starts "
                    "at once.",
    )
    parser.add_argument("--version", action="version", version=f"openmanus {__version__}")
    parser.add_argument(
        "--config", metavar="FILE", help="configuration file (default: the user config dir)"
    )
    workbench.add_arguments(parser)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if getattr(args, "approval", None):
        out["approval"] = {"mode": args.approval}
    if getattr(args, "max_steps", None) is not None:
        out["agent"] = {"max_steps": args.max_steps}
    if getattr(args, "workspace", None):
        out["sandbox"] = {"workspace": args.workspace}
    return out


# Top-level options that take a value (their value is not a TASK or a command).
_VALUE_OPTIONS = {"--config", "--resume", "--workspace", "--model", "--approval"}


def split_task(argv: list[str], commands: set[str]) -> tuple[str | None, list[str]]:
    """(TASK, the other arguments) of ``openmanus [TASK] [options]``: the first positional
    argument is a TASK unless it names a command (``--`` ends the options, for a task that
    starts with a dash or is a command's name)."""
    skip = False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == "--":
            rest = argv[index + 1:]
            return (" ".join(rest) or None), argv[:index]
        elif arg in _VALUE_OPTIONS:
            skip = True
        elif arg.startswith("-"):
            continue
        elif arg in commands:
            return None, argv
        else:
            return arg, argv[:index] + argv[index + 1:]
    return None, argv


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if not argv:
            # Bare ``openmanus``, the workbench: building every command's parser would be a
            # tenth of the time to its first frame (bench/startup.py).
            args = _top_parser().parse_args([])
            args.command, task = None, None
        else:
            parser = build_parser()
            subparsers = next(a for a in parser._actions
                              if isinstance(a, argparse._SubParsersAction))
            task, argv = split_task(argv, set(subparsers.choices))
            args = parser.parse_args(argv)
        args.workbench_task = task
        if args.config:
            os.environ["OPENMANUS_CONFIG"] = args.config
        if args.command is None:
            return workbench.handle(args)
        for option in ("workspace", "model", "approval"):
            if getattr(args, f"top_{option}", None):
                raise ConfigError(f"--{option} goes after the command: "
                                  f"openmanus {args.command} ... --{option} ...")
        if args.needs == "args":
            return args.handler(args)
        # Every terminal path below (renderer, transcripts, history, export, doctor, print)
        # writes through the sanitiser: no raw escape sequence from a model or a tool.
        with installed():
            return asyncio.run(_dispatch(args))
    except ConfigError as exc:
        print(f"openmanus: {sanitize(str(exc))}", file=sys.stderr)
        if exc.hint:
            print(f"  {sanitize(exc.hint)}", file=sys.stderr)
        return EXIT_USAGE
    except OpenManusError as exc:
        print(f"openmanus: {sanitize(str(exc))}", file=sys.stderr)
        if exc.hint:
            print(f"  {sanitize(exc.hint)}", file=sys.stderr)
        return EXIT_USAGE if exc.error_class == "user" else EXIT_ERROR
    except KeyboardInterrupt:
        print("\nopenmanus: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`openmanus doctor | head`): stop quietly, as other tools do.
        # Point stdout at /dev/null so the interpreter's last flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


async def _dispatch(args: argparse.Namespace) -> int:
    from openmanus_tui.config import load_settings

    settings = load_settings(
        _overrides(args), resolve_secrets=getattr(args, "resolve_secrets", True)
    )
    if args.check_settings:
        from openmanus_tui.config_check import check_settings

        check_settings(settings)  # the same checks for run and config validate
    if args.needs == "settings":
        result = args.handler(args, settings)
        return await result if inspect.isawaitable(result) else result
    return await with_runtime(args, settings, args.handler, read_only=args.read_only)
