"""``openmanus config show|path|validate``: the effective settings (secrets masked), where the
config file and the data live, and whether the config file and environment are valid."""

from __future__ import annotations

import argparse
import json
from typing import Any

from openmanus_tui.cli.common import EXIT_OK, handles, subcommands


def add_parser(sub: Any) -> None:
    config = sub.add_parser("config", help="show, locate or validate the configuration")
    csub = subcommands(config)
    cshow = csub.add_parser("show", help="the effective settings (secrets masked)")
    cshow.add_argument("--json", action="store_true")
    handles(cshow, show_cmd, needs="settings")
    handles(csub.add_parser("path", help="where the config file and the data live"),
            path_cmd, needs="settings")
    handles(csub.add_parser("validate", help="check the config file and environment"),
            validate_cmd, needs="settings", check_settings=True)


def path_cmd(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.config import config_path

    print(f"config file: {config_path()}{'' if config_path().exists() else ' (not present)'}")
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

        Console().print(Syntax(text, "json", theme="ansi_dark", background_color="default"))
    return EXIT_OK
