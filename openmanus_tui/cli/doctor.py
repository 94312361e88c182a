"""``openmanus doctor``: what the sandbox can do here and how to improve it, which level gives
which protection (issue 12), the model in use and its fallbacks, where the config and database
are, and the circuit breakers as last recorded (issue 16)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from openmanus_tui.cli.common import EXIT_OK, handles
from openmanus_tui.errors import ConfigError


def add_parser(sub: Any) -> None:
    doctor = sub.add_parser("doctor", help="what the sandbox can do here, and how to improve it")
    doctor.add_argument("--json", action="store_true")
    handles(doctor, handle, needs="settings")


def handle(args: argparse.Namespace, settings: Any) -> int:
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
            "breakers": [b.as_dict() for b in api.stored_breakers(settings)],
            "fallbacks": [f.model for f in settings.model.fallbacks],
        }
        print(json.dumps(data, indent=2, default=str))
        return EXIT_OK
    print(format_report(report))
    print(api.describe_bounds(settings))
    print(format_protections(report, settings))
    print()
    print(f"model:    {info.spec}" + (f"  ({info.offline_reason})" if info.offline_reason else ""))
    for fallback in settings.model.fallbacks:
        where = f" at {fallback.base_url}" if fallback.base_url else ""
        print(f"fallback: {fallback.model}{where}")
    print(f"config:   {config_path()}")
    print(f"database: {settings.db_path}")
    breakers = api.stored_breakers(settings)
    if breakers:
        print("circuit breakers (as last recorded):")
        for state in breakers:
            print(f"  {state.describe()}")
    return EXIT_OK


def protection_rows(report: Any) -> list[dict[str, str]]:
    """Which level gives which protection on this machine (issue 12), for ``doctor``."""
    from openmanus_tui.runtime.api import IsolationLevel

    root = report.mechanisms.get("root")
    as_root = bool(root and root.ok)
    ownership = ""
    if as_root:
        mode = ownership_probe()
        ownership = mode + (
            ": files keep their owner" if mode == "id-mapped mount"
            else ": the sandbox uid owns files only while a command runs"
        )
    rows = []
    for level in sorted(IsolationLevel, reverse=True):
        if not report.available(level):
            rows.append({"level": str(level), "available": "no"})
            continue
        mounts = as_root or level == IsolationLevel.L3
        rows.append(
            {
                "level": str(level),
                "available": "yes",
                "state": "a workspace holding or inside config/data/cache is refused; "
                + ("a config file inside the workspace is masked" if mounts
                   else "a config file inside the workspace is refused")
                + ("" if mounts or level >= IsolationLevel.L1
                   else "; NOT out of reach of commands (they run as you)"),
                "git": ("every .git bound read-only (no rename) + host check after each tool"
                        if mounts else "host check after each tool only (no mounts without root)"),
                "mcp": "L3 profile" if level == IsolationLevel.L3 else (
                    "namespaces + rlimits, no Landlock" if level == IsolationLevel.L2
                    else "unprivileged uid + rlimits (L0)"),
                "ownership": ownership
                if as_root else "your own uid (nothing changes owner)",
            }
        )
    return rows


def ownership_probe() -> str:
    """Make a throwaway sandbox to see whether the workspace bind is really id-mapped."""
    import shutil
    import tempfile

    from openmanus_tui.errors import SandboxError
    from openmanus_tui.runtime.api import Sandbox

    tmp = Path(tempfile.mkdtemp(prefix="openmanus-doctor-"))
    try:
        sandbox = Sandbox(tmp / "ws", state=[])
        try:
            return sandbox.ownership_mode
        finally:
            sandbox.close()
    except SandboxError as exc:
        return f"unknown ({exc})"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def format_protections(report: Any, settings: Any) -> str:
    from openmanus_tui.cli.mcp import server_rows

    lines = ["Protection by level (issue 12):"]
    for row in protection_rows(report):
        if row["available"] == "no":
            lines.append(f"  {row['level']}: not available")
            continue
        lines.append(f"  {row['level']}: state: {row['state']}")
        lines.append(f"      git: {row['git']}")
        lines.append(f"      MCP stdio servers: {row['mcp']}")
        lines.append(f"      file ownership: {row['ownership']}")
    try:
        rows = server_rows(settings)
    except ConfigError as exc:
        lines.append(f"MCP servers: {exc}")
        return "\n".join(lines)
    for row in rows:
        if row.get("runs", "").startswith("HOST"):
            lines.append(f"  warning: MCP server {row['name']!r} runs on the host "
                         "(sandbox = false)")
        if row["trusted"] in ("no", "changed since trusted"):
            lines.append(f"  MCP server {row['name']!r} is not trusted ({row['trusted']}): "
                         f"`openmanus mcp trust {row['name']}`")
    return "\n".join(lines)
