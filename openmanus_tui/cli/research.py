"""``openmanus research "QUESTION"`` and ``openmanus research verify REPORT.md``.

``research`` runs the research graph in a new Research session (the current folder is its
workspace unless ``--workspace``), renders its events like ``run``, and writes the verified
report (``--format md|html|pdf|json``, ``-o FILE``). ``research verify`` checks a report's
citations: one verdict per citation, exit 0 when every one is supported, 1 otherwise.
A QUESTION whose first word is ``verify`` is the subcommand: ask such a question in other
words.
Front-end code only: everything it does goes through ``openmanus_tui.runtime``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from openmanus_tui.cli.common import EXIT_ERROR, OUTCOME_EXIT, handles, with_runtime
from openmanus_tui.errors import ConfigError

FORMATS = ("md", "html", "pdf", "json")
DEPTHS = ("quick", "standard", "deep")


def add_parser(sub: Any) -> None:
    research = sub.add_parser(
        "research", help="research a question with checked citations (or: research verify)",
        usage='openmanus research "QUESTION" [--depth quick|standard|deep] [--source URL|FILE]… '
              "[--allow-domain D]… [--format md|html|pdf|json] [-o FILE] [--json]\n"
              "       openmanus research verify REPORT.md [--session ID] [--json]",
    )
    research.add_argument("question", nargs="+", metavar="QUESTION",
                          help="what to research; or: verify REPORT.md")
    research.add_argument("--depth", choices=DEPTHS, help="sub-questions, sources and rounds")
    research.add_argument("--source", action="append", default=[], metavar="URL|FILE",
                          help="read this first and cite it like any source (repeatable)")
    research.add_argument("--allow-domain", action="append", default=[], metavar="D",
                          help="only these domains (and subdomains) may be read (repeatable)")
    research.add_argument("--format", choices=FORMATS, default="md", help="of -o FILE (md)")
    research.add_argument("-o", "--output", metavar="FILE", help="write the report here")
    research.add_argument("--workspace", metavar="DIR",
                          help="the folder whose files are sources (default: the current one)")
    research.add_argument("--model", metavar="SPEC", help="openai:<model> or scripted:<name>")
    research.add_argument("--approval", choices=["ask", "auto", "yolo"], help="approval mode")
    research.add_argument("--session", metavar="ID",
                          help="verify: check against this session's sources (default: the "
                               "report's reference list, fetched through the network policy)")
    research.add_argument("--json", action="store_true",
                          help="print events as JSON lines (verify: the verdicts as JSON)")
    handles(research, handle, needs="settings", check_settings=True)


_RESEARCH_ONLY = ("depth", "source", "allow_domain", "output", "model", "approval", "workspace")


async def handle(args: argparse.Namespace, settings: Any) -> int:
    """``research verify REPORT.md`` or ``research QUESTION`` (the word ``verify`` first)."""
    words = list(args.question)
    if words[0] == "verify":
        if len(words) != 2:
            raise ConfigError("research verify: give one REPORT.md")
        given = [f"--{name.replace('_', '-')}" for name in _RESEARCH_ONLY if getattr(args, name)]
        if given:
            raise ConfigError(f"research verify: {', '.join(given)} is for research QUESTION")
        args.report = words[1]
        return await with_runtime(args, settings, verify_cmd, read_only=True)
    if args.session:
        raise ConfigError("research: --session is for research verify")
    args.question = " ".join(words)
    # Issue 12: a workspace holding openmanus's own state is refused before anything runs.
    from openmanus_tui.runtime.api import ensure_workspace_allowed

    workspace = Path(args.workspace or os.getcwd()).expanduser().resolve()
    if not workspace.is_dir():
        raise ConfigError(f"--workspace {args.workspace}: no such folder")
    ensure_workspace_allowed(workspace, settings)
    args.workspace = str(workspace)
    if args.allow_domain:
        from pydantic import ValidationError

        try:  # validated on assignment, as the config file's list is
            settings.network.allowed_domains = list(args.allow_domain)
        except ValidationError as exc:
            why = exc.errors()[0].get("msg", "not a domain").removeprefix("Value error, ")
            raise ConfigError(f"research: --allow-domain: {why}") from None
    if args.depth:
        settings.research.depth = args.depth
    return await with_runtime(args, settings, research_cmd)


def _reading_list(sources: list[str], workspace: Path) -> list[str]:
    """URLs as given; files as workspace paths (one line, exit 2, for one outside it)."""
    out = []
    for raw in sources:
        if re.match(r"^https?://", raw, re.I):
            out.append(raw)
            continue
        path = Path(raw).expanduser()
        full = (path if path.is_absolute() else Path.cwd() / path).resolve()
        if not full.is_file():
            raise ConfigError(f"--source {raw}: no such file")
        try:
            rel = full.relative_to(workspace)
        except ValueError:
            raise ConfigError(
                f"--source {raw}: the file is outside the workspace {workspace}",
                hint="Copy it into the workspace, or pass --workspace DIR that contains it.",
            ) from None
        out.append(f"file:{rel.as_posix()}")
    return out


async def research_cmd(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.cli.render import Renderer, terminal_approver, terminal_ask_human
    from openmanus_tui.limits import check_task
    from openmanus_tui.runtime import api

    question = check_task(args.question, runtime.settings.limits.task_chars)
    if args.output is None and args.format == "pdf":
        raise ConfigError("--format pdf needs -o FILE")
    workspace = Path(args.workspace)
    reading = _reading_list(args.source, workspace)
    session = await runtime.create_session(
        model=args.model, workspace=workspace, profile="research", title=question[:60]
    )
    renderer = Renderer(json_lines=args.json)
    interactive = sys.stdin.isatty()
    approver = terminal_approver(renderer, runtime.registry, True) if interactive else None
    ask_human = terminal_ask_human(renderer) if interactive else None
    session.use_approval_mode(args.approval)
    outcome = await session.run(
        question, approver=approver, on_event=renderer, ask_human=ask_human,
        research={"depth": args.depth or runtime.settings.research.depth,
                  "reading_list": reading, "allow_domains": list(args.allow_domain)},
    )
    renderer.summary(session.id, outcome)
    result = await api.research_result(runtime, session.id)
    if result is not None and outcome.status == "completed":
        if args.output:
            target = Path(args.output).expanduser()
            api.write_research(result, args.format, target)
            renderer.note(f"report written to {target} ({args.format})", "green")
        elif args.format != "md" and not args.json:
            sys.stdout.write(api.render_research(result, args.format))
    return OUTCOME_EXIT.get(outcome.status, EXIT_ERROR)


_LABEL = {
    "supported": "supported",
    "fabricated": "FABRICATED",
    "unreadable": "UNREADABLE",
    "misquote": "MISQUOTE",
    "number_not_found": "NUMBER NOT FOUND",
    "unsupported": "UNSUPPORTED",
}


async def verify_cmd(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.runtime import api

    path = Path(args.report).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"research verify: no such file: {args.report}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"research verify: cannot read {args.report}: {exc}") from None
    checked = await api.verify_report_text(
        runtime, text, base_dir=path.resolve().parent, session_id=args.session
    )
    if args.json:
        print(json.dumps(checked.as_dict(), indent=2))
    else:
        for v in checked.verdicts:
            passage = v.passage if len(v.passage) <= 80 else v.passage[:79] + "…"
            print(f"[{v.number}] {_LABEL[v.status]}: {v.reason} — “{passage}”")
        supported = sum(v.supported for v in checked.verdicts)
        if not checked.verdicts:
            print("no citations found")
        else:
            print(f"{supported} of {len(checked.verdicts)} citations supported "
                  f"(support threshold {api.SUPPORT_THRESHOLD})")
    return 0 if checked.ok else 1
