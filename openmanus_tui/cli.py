"""The ``openmanus`` command line: headless runs, sessions, configuration and diagnostics.

Every subcommand consumes the runtime's event stream: ``run``/``resume`` render it with rich,
or print it as JSON lines with ``--json``. User mistakes (bad flags, bad config, unknown
session) print one clear line and exit with code 2; a run's outcome sets the exit code:
0 final answer, 1 error, 3 stopped by a guard, 4 waiting for an approval, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
from typing import Any

from openmanus_tui import __version__
from openmanus_tui.errors import ConfigError, OpenManusError
from openmanus_tui.termsafe import installed, sanitize

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_STOPPED, EXIT_AWAITING, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left
OUTCOME_EXIT = {
    "completed": EXIT_OK,
    "stopped": EXIT_STOPPED,
    "awaiting_approval": EXIT_AWAITING,
    "error": EXIT_ERROR,
    "cancelled": EXIT_INTERRUPTED,
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise ConfigError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", metavar="SPEC", help="openai:<model> or scripted:<name>")
        p.add_argument("--approval", choices=["ask", "auto", "yolo"], help="approval mode")
        p.add_argument("--json", action="store_true", help="print events as JSON lines")
        p.add_argument("--max-steps", type=int, metavar="N", help="stop after N model calls")

    run = sub.add_parser("run", help="run a task headless, streaming the events")
    run.add_argument(
        "task", nargs="?", help="what the agent should do; - reads it from standard input"
    )
    run.add_argument("--task-file", metavar="FILE", help="read the task from this file")
    run.add_argument("--session", metavar="ID", help="continue this session instead of a new one")
    run.add_argument("--workspace", metavar="DIR", help="the folder the agent works in")
    run_options(run)

    resume = sub.add_parser("resume", help="continue an interrupted or unfinished session")
    resume.add_argument("session", metavar="ID")
    run_options(resume)

    sessions = sub.add_parser("sessions", help="list, show or remove sessions")
    ssub = sessions.add_subparsers(dest="action", parser_class=_Parser, required=True)
    ls = ssub.add_parser("list", help="list sessions, newest first")
    ls.add_argument("--json", action="store_true")
    show = ssub.add_parser("show", help="print a session's transcript")
    show.add_argument("session", metavar="ID")
    show.add_argument("--json", action="store_true", help="print the stored events as JSON lines")
    which = show.add_mutually_exclusive_group()
    which.add_argument("--branch", metavar="HEAD", help="this branch (default: the current one)")
    which.add_argument(
        "--all", action="store_true", help="every stored event of every branch, in order"
    )
    rm = ssub.add_parser("rm", help="delete a session and its checkpoints")
    rm.add_argument("session", metavar="ID")

    from openmanus_tui.cli_history import add_parsers

    add_parsers(sub, ssub, run_options)

    config = sub.add_parser("config", help="show, locate or validate the configuration")
    csub = config.add_subparsers(dest="action", parser_class=_Parser, required=True)
    cshow = csub.add_parser("show", help="the effective settings (secrets masked)")
    cshow.add_argument("--json", action="store_true")
    csub.add_parser("path", help="where the config file and the data live")
    csub.add_parser("validate", help="check the config file and environment")

    db = sub.add_parser("db", help="check or recover the database")
    dsub = db.add_subparsers(dest="action", parser_class=_Parser, required=True)
    dsub.add_parser("check", help="run SQLite's integrity check (read-only)")
    recover = dsub.add_parser("recover", help="copy what is readable into a new database file")
    recover.add_argument(
        "-o", "--output", metavar="NEWFILE", help="the new file (default: next to the database)"
    )

    from openmanus_tui.cli_security import add_parsers as add_security_parsers

    add_security_parsers(sub, _Parser)

    from openmanus_tui.cli_writing import add_parsers as add_writing_parsers

    add_writing_parsers(sub, _Parser)

    doctor = sub.add_parser("doctor", help="what the sandbox can do here, and how to improve it")
    doctor.add_argument("--json", action="store_true")

    serve = sub.add_parser("serve", help="serve the workbench to a browser (textual-serve)")
    serve.add_argument("--web", action="store_true", required=True,
                       help="serve the workbench over HTTP (the only mode)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, metavar="N", help="port (8000)")
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
    parser = build_parser()
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        subparsers = next(a for a in parser._actions
                          if isinstance(a, argparse._SubParsersAction))
        task, argv = split_task(argv, set(subparsers.choices))
        args = parser.parse_args(argv)
        args.workbench_task = task
        if args.config:
            os.environ["OPENMANUS_CONFIG"] = args.config
        if args.command is None:
            return _workbench(args)
        for option in ("workspace", "model", "approval"):
            if getattr(args, f"top_{option}", None):
                raise ConfigError(f"--{option} goes after the command: "
                                  f"openmanus {args.command} ... --{option} ...")
        if args.command == "serve":
            return _serve(args)
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


def _workbench(args: argparse.Namespace) -> int:
    """Bare ``openmanus``: the Textual workbench (imported only here, the core never does).
    The app reads the settings itself, after its first frame; a broken config file ends it
    with the same one-line error and exit status as every other command."""
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


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _serve(args: argparse.Namespace) -> int:
    """``openmanus serve --web``: each browser tab gets its own workbench process (the same
    ``openmanus`` command, with the same config and data folder) through textual-serve;
    ``serve_web`` makes sure none outlives its tab or the server."""
    from openmanus_tui.config import load_settings

    load_settings()  # a broken config is reported here, not inside every browser tab
    if not 0 < args.port < 65536:
        raise ConfigError(f"serve: --port must be between 1 and 65535, not {args.port}")
    try:
        from openmanus_tui.serve_web import WorkbenchServer
    except ImportError:
        raise ConfigError(
            "serve: textual-serve is not installed", hint="pip install textual-serve"
        ) from None
    if args.host not in LOOPBACK:
        print(f"openmanus: warning: serving on {args.host}: anyone who can reach this port "
              "can drive the agent and its tools on this machine", file=sys.stderr)
    argv = [sys.executable, "-m", "openmanus_tui"]
    try:
        WorkbenchServer(argv, host=args.host, port=args.port, title="OpenManus").serve()
    except OSError as exc:
        raise ConfigError(
            f"serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    return EXIT_OK


async def _dispatch(args: argparse.Namespace) -> int:
    from openmanus_tui.config import load_settings

    settings = load_settings(_overrides(args))
    if args.command in ("run", "resume") or getattr(args, "action", None) == "validate":
        from openmanus_tui.config_check import check_settings

        check_settings(settings)  # the same checks for run and config validate
    if args.command == "config":
        return _config(args, settings)
    if args.command == "doctor":
        return _doctor(args, settings)
    if args.command == "db":
        return _db(args, settings)
    if args.command in ("mcp", "git"):
        from openmanus_tui import cli_security

        return getattr(cli_security, f"{args.command}_cmd")(args, settings)
    if args.command == "cite":
        from openmanus_tui import cli_writing

        return cli_writing.cite_cmd(args, settings)
    if args.command == "write":
        from openmanus_tui import cli_writing

        return await cli_writing.write_cmd(args, settings)
    if args.command == "run":
        # Issue 12: a workspace holding openmanus's own state is refused before anything runs.
        from openmanus_tui.runtime.api import ensure_workspace_allowed

        ensure_workspace_allowed(settings.sandbox.workspace, settings)

    from openmanus_tui.runtime.session import Runtime

    try:
        runtime = await Runtime.open(settings)
    except sqlite3.DatabaseError as exc:
        raise _damage(settings, exc) from None
    try:
        if runtime.db.damaged is not None and not _reads_only(args):
            from openmanus_tui.runtime.api import damaged_error

            raise damaged_error(settings.db_path, runtime.db.damaged)
        return await _dispatch_open(args, runtime)
    except sqlite3.DatabaseError as exc:
        raise _damage(settings, exc) from None
    finally:
        await runtime.close()


# Commands that only read the database: they work on a damaged file opened read-only.
_READ_ONLY = {("sessions", "list"), ("sessions", "show"), ("sessions", "tree"), ("export", None),
              ("diff", None)}


def _reads_only(args: argparse.Namespace) -> bool:
    return (args.command, getattr(args, "action", None)) in _READ_ONLY


def _damage(settings: Any, exc: Exception) -> Exception:
    """One line for a damaged database found while working (not a traceback)."""
    from openmanus_tui.runtime.api import damaged_error, is_damage

    if is_damage(exc):
        return damaged_error(settings.db_path, str(exc))
    return OpenManusError(f"database error: {exc}", hint=f"database: {settings.db_path}")


async def _dispatch_open(args: argparse.Namespace, runtime: Any) -> int:
    if args.command == "sessions" and args.action in ("tree", "prune", "copy"):
        from openmanus_tui import cli_history

        return await getattr(cli_history, f"{args.action}_cmd")(args, runtime)
    if args.command == "sessions":
        return await _sessions(args, runtime)
    if args.command in ("run", "resume"):
        return await _run(args, runtime)
    from openmanus_tui import cli_history

    handler = getattr(cli_history, f"{args.command}_cmd")
    return await handler(args, runtime)


# ---- run / resume -------------------------------------------------------------------------
async def _run(args: argparse.Namespace, runtime: Any) -> int:
    task = None
    if args.command == "run":
        from openmanus_tui.limits import check_task, read_task

        # Checked before a session is created: a refused task leaves nothing behind.
        task = check_task(
            read_task(args.task, args.task_file, runtime.settings.limits.task_chars),
            runtime.settings.limits.task_chars,
        )
    if args.command == "run" and args.session is None:
        session = await runtime.create_session(model=args.model)
    else:
        session = await runtime.open_session(args.session, model=args.model)
        from openmanus_tui.runtime.api import ensure_workspace_allowed

        # a session made before issue 12's rule may hold the person's home as its workspace
        ensure_workspace_allowed(session.workspace, runtime.settings)
    return await run_session(args, runtime, session, task=task)


async def run_session(
    args: argparse.Namespace, runtime: Any, session: Any, task: str | None
) -> int:
    """Run ``task`` in ``session`` (or resume it when ``task`` is None), rendering the events."""
    from openmanus_tui.cli_render import Renderer, terminal_approver, terminal_ask_human

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


# ---- sessions -----------------------------------------------------------------------------
async def _sessions(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.cli_render import print_sessions, print_transcript
    from openmanus_tui.runtime import api

    if args.action == "list":
        records = await runtime.list_sessions()
        if args.json:
            for r in records:
                print(json.dumps(r.__dict__, default=str))
        else:
            print_sessions(records)
        return EXIT_OK
    if args.action == "show":
        # The transcript the workbench shows for the branch: the same function, the same rules.
        session = await runtime.open_session(args.session)
        if args.all:
            branch = await api.session_transcript(session)
        else:
            head = await session.history.resolve(args.branch) if args.branch else None
            branch = await api.branch_transcript(session, head)
        if args.json:
            for e in branch.events:
                print(e.to_json())
        else:
            print_transcript(session.record, branch)
        return EXIT_OK
    record = await runtime.delete_session(args.session)
    print(f"deleted session {record.id} ({record.title or 'untitled'})")
    return EXIT_OK


# ---- config / doctor ----------------------------------------------------------------------
def _config(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.config import config_path, settings_as_dict

    if args.action == "path":
        print(f"config file: {config_path()}{'' if config_path().exists() else ' (not present)'}")
        print(f"data folder: {settings.resolved_data_dir}")
        print(f"database:    {settings.db_path}")
        return EXIT_OK
    if args.action == "validate":
        from openmanus_tui.runtime.api import ensure_workspace_allowed

        ensure_workspace_allowed(settings.sandbox.workspace, settings)  # as `run` does
        where = config_path()
        print(
            f"OK: {where if where.exists() else 'defaults (no config file)'} "
            "and the environment are valid"
        )
        return EXIT_OK
    data = settings_as_dict(settings)
    text = json.dumps(data, indent=2, default=str)
    if args.json:
        print(text)
    else:
        from rich.console import Console
        from rich.syntax import Syntax

        Console().print(Syntax(text, "json", theme="ansi_dark", background_color="default"))
    return EXIT_OK


def _db(args: argparse.Namespace, settings: Any) -> int:
    import time
    from pathlib import Path

    from openmanus_tui.runtime.api import check_database as check_file
    from openmanus_tui.runtime.api import recover_database as recover

    path = settings.db_path
    if args.action == "check":
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


def _doctor(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.cli_security import format_protections, protection_rows
    from openmanus_tui.config import config_path
    from openmanus_tui.runtime import api
    from openmanus_tui.runtime.api import format_sandbox_report as format_report
    from openmanus_tui.runtime.api import make_model
    from openmanus_tui.runtime.api import probe_sandbox as probe

    report = probe()
    _, info = make_model(settings)
    if args.json:
        data = {
            "sandbox": report.to_dict(),
            "model": {
                "spec": info.spec,
                "context_window": info.context_window,
                "offline_reason": info.offline_reason,
            },
            "config_file": str(config_path()),
            "database": str(settings.db_path),
            "protection": protection_rows(report),
        }
        print(json.dumps(data, indent=2, default=str))
        return EXIT_OK
    print(format_report(report))
    print(api.describe_bounds(settings))
    print(format_protections(report, settings))
    print()
    print(f"model:    {info.spec}" + (f"  ({info.offline_reason})" if info.offline_reason else ""))
    print(f"config:   {config_path()}")
    print(f"database: {settings.db_path}")
    return EXIT_OK
