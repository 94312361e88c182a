"""The history commands of the CLI: tree, fork, switch, replay, diff, export, import, prune.

They are thin: the work is in ``runtime/history.py``, ``runtime/replay.py``,
``runtime/importer.py``, ``store/retention.py`` and ``export/``; this module parses, prints and
sets exit codes, like ``cli.py`` does for runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text
from rich.tree import Tree


def add_parsers(sub: Any, sessions: Any, run_options: Any) -> None:
    tree = sessions.add_parser("tree", help="the branch tree of a session")
    tree.add_argument("session", metavar="ID")
    tree.add_argument("--json", action="store_true")

    prune = sessions.add_parser(
        "prune", help="keep branch heads and recent steps, delete older checkpoints, compact"
    )
    prune.add_argument(
        "--keep-last",
        type=int,
        metavar="N",
        help="checkpoints kept per branch head (default: storage.keep_last or 50)",
    )
    prune.add_argument(
        "--older-than",
        type=float,
        metavar="DAYS",
        help="only sessions not updated for this many days",
    )

    copy = sessions.add_parser("copy", help="save a branch as a new session of its own")
    copy.add_argument("session", metavar="ID")
    copy.add_argument("--branch", metavar="HEAD", help="the branch head (default: current)")

    fork = sub.add_parser("fork", help="start a new branch from a step of a session")
    fork.add_argument("session", metavar="ID")
    fork.add_argument("--at", required=True, metavar="CHECKPOINT", help="a checkpoint id or prefix")
    what = fork.add_mutually_exclusive_group()
    what.add_argument("--message", metavar="TEXT", help="re-ask that run with this user message")
    what.add_argument("--args", metavar="JSON", help="new arguments for --call")
    what.add_argument("--text", metavar="TEXT", help="replace the model's text at that step")
    fork.add_argument("--call", metavar="CALL_ID", help="the tool call whose arguments change")
    fork.add_argument("--run", action="store_true", help="run the new branch now")
    fork.add_argument("--force", action="store_true", help="overwrite outside changes to files")
    run_options(fork)

    switch = sub.add_parser("switch", help="make a branch head current (restores its files)")
    switch.add_argument("session", metavar="ID")
    switch.add_argument("head", metavar="CHECKPOINT")
    switch.add_argument("--force", action="store_true", help="overwrite outside changes to files")

    replay = sub.add_parser("replay", help="replay a branch from its record, or live")
    replay.add_argument("session", metavar="ID")
    replay.add_argument("--branch", metavar="HEAD", help="the branch head (default: current)")
    replay.add_argument("--live", action="store_true", help="re-execute into a new branch")
    replay.add_argument(
        "--from",
        dest="start",
        metavar="CHECKPOINT",
        help="with --live: the step to re-execute from (default: the first)",
    )
    replay.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="recorded timing scaled by this (0: as fast as possible)",
    )
    replay.add_argument("--force", action="store_true", help="overwrite outside changes to files")
    replay.add_argument(
        "--break",
        dest="breakpoints",
        action="append",
        default=[],
        metavar="TOOL",
        help="pause before each call of this tool (repeatable; Enter goes on)",
    )
    replay.add_argument("--step", action="store_true", help="pause after every step")
    run_options(replay)

    diff = sub.add_parser("diff", help="compare two branches: messages, answers and files")
    diff.add_argument("session", metavar="ID")
    diff.add_argument("branch_a", metavar="HEAD_A")
    diff.add_argument("branch_b", metavar="HEAD_B")
    diff.add_argument("--json", action="store_true")

    export = sub.add_parser("export", help="write a session as Markdown, JSON or HTML")
    export.add_argument("session", metavar="ID")
    export.add_argument("--format", choices=["md", "json", "html"], default="md")
    export.add_argument("--branch", metavar="HEAD", help="only this branch")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")

    imp = sub.add_parser("import", help="bring back a JSON export or a run --json stream")
    imp.add_argument("file", metavar="FILE", help="the file, or - for standard input")


# ---- handlers -----------------------------------------------------------------------------
async def tree_cmd(args: argparse.Namespace, runtime: Any) -> int:
    # Imported here: building the parser (every command, the workbench too) must stay cheap.
    from openmanus_tui.runtime.api import KIND_STYLE

    session = await runtime.open_session(args.session)
    tree = await session.history.tree()
    if args.json:
        print(json.dumps(tree.to_dict(), default=str))
        return 0
    current_line = set(tree.lineage(tree.current)) if tree.current else set()
    heads = set(tree.heads)
    root = Tree(Text(f"{session.record.title or 'untitled'}  ({session.id})", style="bold"))

    def label(cid: str) -> Text:
        node = tree.nodes[cid]
        text = Text(f"{cid[-12:]} ", style="dim")
        text.append(node.label, style=KIND_STYLE.get(node.kind, ""))
        if cid in heads:
            text.append("  ◆ head", style="bold yellow")
        if cid == tree.current:
            text.append("  ← current", style="bold")
        elif cid in current_line:
            text.stylize("bold")
        return text

    def add(parent: Tree, cid: str) -> None:
        # A linear run stays one level deep; only a fork opens a new level.
        while True:
            branch = parent.add(label(cid))
            children = sorted(tree.nodes[cid].children, key=lambda c: tree.nodes[c].seq)
            if len(children) == 1:
                parent, cid = parent, children[0]
                continue
            for child in children:
                add(branch, child)
            return

    for root_id in tree.roots:
        add(root, root_id)
    Console(highlight=False).print(root)
    return 0


async def prune_cmd(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.errors import ConfigError

    keep_last = args.keep_last
    if keep_last is None:
        keep_last = runtime.settings.storage.keep_last or 50
    if keep_last < 1:
        raise ConfigError("sessions prune: --keep-last must be at least 1")
    stats = await runtime.prune(keep_last=keep_last, older_than_days=args.older_than)
    mb = 1024 * 1024
    print(
        f"pruned {stats.checkpoints_deleted} checkpoint(s) in {len(stats.per_session)} of "
        f"{stats.sessions} session(s); kept {stats.checkpoints_kept}; database "
        f"{stats.size_before / mb:.2f} MB -> {stats.size_after / mb:.2f} MB"
    )
    return 0


async def copy_cmd(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.runtime import api

    session = await runtime.open_session(args.session)
    copy = await api.copy_branch(session, args.branch)
    head = copy.record.parent_checkpoint or ""
    print(f"saved branch {head[-12:]} of {session.id} as session {copy.id}")
    return 0


async def fork_cmd(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.errors import ConfigError

    session = await runtime.open_session(args.session, model=args.model)
    at = await session.history.resolve(args.at)
    call_args = None
    if args.args is not None:
        if not args.call:
            raise ConfigError("fork: --args needs --call CALL_ID (see `sessions show --json`)")
        try:
            parsed = json.loads(args.args)
        except ValueError as exc:
            raise ConfigError(f"fork: --args is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ConfigError("fork: --args must be a JSON object")
        call_args = {args.call: parsed}
    start = await session.history.fork(
        at, message=args.message, call_args=call_args, text=args.text, force=args.force
    )
    print(f"new branch of {session.id} starts at {start}")
    if not args.run:
        hint = f'openmanus run "{args.message}" --session' if args.message else "openmanus resume"
        print(f"continue it with: {hint} {session.id}")
        return 0
    from openmanus_tui.cli import run_session

    if args.message is not None:
        return await run_session(args, runtime, session, task=args.message)
    return await run_session(args, runtime, session, task=None)


async def switch_cmd(args: argparse.Namespace, runtime: Any) -> int:
    session = await runtime.open_session(args.session)
    head = await session.history.resolve(args.head)
    changes = await session.history.switch(head, force=args.force)
    print(f"session {session.id} is now at {head}; {len(changes)} file(s) restored")
    return 0


async def replay_cmd(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.cli_render import Renderer
    from openmanus_tui.runtime.replay import Replayer

    session = await runtime.open_session(args.session, model=args.model)
    history = session.history
    if args.live:
        from openmanus_tui.runtime import api

        if args.start:
            start = await history.resolve(args.start)
        else:
            start = await api.live_replay_start(session, args.branch)
        await history.fork(start, force=args.force)
        from openmanus_tui.cli import run_session

        return await run_session(args, runtime, session, task=None)
    head = await history.resolve(args.branch) if args.branch else None
    events = await history.recorded(head)
    renderer = Renderer(json_lines=args.json)
    replayer = Replayer(
        events, speed=args.speed, breakpoints=args.breakpoints, break_on_steps=args.step
    )
    if not (args.breakpoints or args.step):
        await replayer.play(renderer)
        return 0
    import asyncio

    from openmanus_tui.cli_render import _read_line
    from openmanus_tui.terminal_input import in_daemon_thread

    playing = asyncio.create_task(replayer.play(renderer))
    interactive = sys.stdin.isatty()
    while not playing.done():
        await asyncio.sleep(0.02)
        if replayer.paused and not playing.done():
            where = replayer.paused_at.type if replayer.paused_at else "step"
            if interactive:
                answer = await in_daemon_thread(
                    _read_line, f"paused at {where}: Enter goes on, s steps, q quits > "
                )
            else:
                answer = ""  # nobody to ask: breakpoints only mark the place
            if answer == "q":
                playing.cancel()
                break
            if answer == "s":
                replayer.step()
            else:
                replayer.resume()
    return 0


async def diff_cmd(args: argparse.Namespace, runtime: Any) -> int:
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


async def export_cmd(args: argparse.Namespace, runtime: Any) -> int:
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


async def import_cmd(args: argparse.Namespace, runtime: Any) -> int:
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
