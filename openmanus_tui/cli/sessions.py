"""``openmanus sessions list|show|rm|tree|prune|copy``: the stored sessions, their transcripts
and branch trees, deleting and pruning them, saving a branch as a session of its own."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from openmanus_tui.cli.common import EXIT_OK, handles, subcommands


def add_parser(sub: Any) -> None:
    sessions = sub.add_parser("sessions", help="list, show or remove sessions")
    ssub = subcommands(sessions)
    ls = ssub.add_parser("list", help="list sessions, newest first")
    ls.add_argument("--json", action="store_true")
    handles(ls, list_cmd, read_only=True)
    show = ssub.add_parser("show", help="print a session's transcript")
    show.add_argument("session", metavar="ID")
    show.add_argument("--json", action="store_true", help="print the stored events as JSON lines")
    which = show.add_mutually_exclusive_group()
    which.add_argument("--branch", metavar="HEAD", help="this branch (default: the current one)")
    which.add_argument(
        "--all", action="store_true", help="every stored event of every branch, in order"
    )
    handles(show, show_cmd, read_only=True)
    rm = ssub.add_parser("rm", help="delete a session and its checkpoints")
    rm.add_argument("session", metavar="ID")
    handles(rm, rm_cmd)

    tree = ssub.add_parser("tree", help="the branch tree of a session")
    tree.add_argument("session", metavar="ID")
    tree.add_argument("--json", action="store_true")
    handles(tree, tree_cmd, read_only=True)

    prune = ssub.add_parser(
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
    handles(prune, prune_cmd)

    copy = ssub.add_parser("copy", help="save a branch as a new session of its own")
    copy.add_argument("session", metavar="ID")
    copy.add_argument("--branch", metavar="HEAD", help="the branch head (default: current)")
    handles(copy, copy_cmd)


async def list_cmd(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.cli.render import print_sessions

    records = await runtime.list_sessions()
    if args.json:
        for r in records:
            print(json.dumps(r.__dict__, default=str))
    else:
        print_sessions(records)
    return EXIT_OK


async def show_cmd(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.cli.render import print_transcript
    from openmanus_tui.runtime import api

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


async def rm_cmd(args: argparse.Namespace, runtime: Any) -> int:
    record = await runtime.delete_session(args.session)
    print(f"deleted session {record.id} ({record.title or 'untitled'})")
    return EXIT_OK


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
