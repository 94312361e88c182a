"""``openmanus config show|path|validate|history|diff|rollback``: the effective settings
(secrets masked), where the config file (and the ``OPENMANUS_ENV`` overlay) and the data live,
whether the config file and environment are valid, and the configuration versions applied
(``runtime/config_versions.py``): list them, compare two, write one back."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from openmanus_tui.cli.common import EXIT_OK, handles, subcommands


def add_parser(sub: Any) -> None:
    config = sub.add_parser(
        "config", help="show, locate, validate, list versions of or roll back the configuration"
    )
    csub = subcommands(config)
    cshow = csub.add_parser("show", help="the effective settings (secrets masked)")
    cshow.add_argument("--json", action="store_true")
    handles(cshow, show_cmd, needs="settings")
    handles(csub.add_parser("path", help="where the config file and the data live"),
            path_cmd, needs="settings")
    handles(csub.add_parser("validate", help="check the config file and environment"),
            validate_cmd, needs="settings", check_settings=True)
    history = csub.add_parser("history", help="every configuration applied, oldest first")
    history.add_argument("--json", action="store_true")
    handles(history, history_cmd, needs="settings", resolve_secrets=False)
    diff = csub.add_parser("diff", help="what changed between two configuration versions")
    diff.add_argument("a", type=int, metavar="A")
    diff.add_argument("b", type=int, metavar="B", nargs="?", help="default: the newest version")
    handles(diff, diff_cmd, needs="settings", resolve_secrets=False)
    rollback = csub.add_parser(
        "rollback", help="write a version's config file(s) back (the current ones are kept)"
    )
    rollback.add_argument("version", type=int, metavar="N")
    handles(rollback, rollback_cmd, needs="settings", resolve_secrets=False)


def _sources() -> list[str]:
    from openmanus_tui.config import config_sources

    return [f"{what}: {path}{'' if present else ' (not present)'}"
            for what, path, present in config_sources()]


def path_cmd(args: argparse.Namespace, settings: Any) -> int:
    for line in _sources():
        print(line)
    print(f"data folder: {settings.resolved_data_dir}")
    print(f"database:    {settings.db_path}")
    return EXIT_OK


def validate_cmd(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.config import config_path
    from openmanus_tui.runtime.api import ensure_workspace_allowed

    ensure_workspace_allowed(settings.sandbox.workspace, settings)  # as `run` does
    where = config_path()
    print(
        f"OK: {where if where.exists() else 'defaults (no config file)'} "
        "and the environment are valid"
    )
    return EXIT_OK


def show_cmd(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.config import settings_as_dict

    data = settings_as_dict(settings)
    text = json.dumps(data, indent=2, default=str)
    if args.json:
        print(text)
    else:
        from rich.console import Console
        from rich.syntax import Syntax

        for line in _sources():
            print(f"# {line}")
        Console().print(Syntax(text, "json", theme="ansi_dark", background_color="default"))
    return EXIT_OK


# ---- versions ---------------------------------------------------------------------------------
def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


async def history_cmd(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime import config_versions as cv

    async with cv.config_database(settings) as db:
        versions = await cv.list_versions(db)
    if args.json:
        for v in versions:
            print(json.dumps({"version": v.id, "applied": v.ts, "source": v.source,
                              "hash": v.hash, **v.content}))
        return EXIT_OK
    if not versions:
        print("no configuration recorded yet (one is, each time a run starts)")
        return EXIT_OK
    print(f"{'version':>7}  {'applied':19}  {'source':12}  {'hash':12}  files")
    for v in versions:
        files = ", ".join(
            os.path.basename(p) + ("" if t is not None else " (absent)")
            for p, t in v.content.get("files", {}).items()
        )
        env = v.content.get("env")
        files += f"  [OPENMANUS_ENV={env}]" if env else ""
        print(f"{v.id:>7}  {_when(v.ts):19}  {v.source:12}  {v.hash[:12]}  {files}")
    return EXIT_OK


async def diff_cmd(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime import config_versions as cv

    async with cv.config_database(settings) as db:
        a = await cv.get_version(db, args.a)
        if args.b is None:
            b = (await cv.list_versions(db))[-1]
        else:
            b = await cv.get_version(db, args.b)
    sys.stdout.write(cv.describe_diff(a, b))
    return EXIT_OK


async def rollback_cmd(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime import config_versions as cv

    async with cv.config_database(settings) as db:
        result = await cv.rollback(db, settings, args.version)
    for path in result.written:
        print(f"wrote {path}")
    for backup in result.backups:
        print(f"  previous file kept as {backup}")
    now = f" (now version {result.new_version})" if result.new_version is not None else ""
    print(f"configuration version {result.version} restored{now}; a running workbench "
          "applies it by itself")
    return EXIT_OK
