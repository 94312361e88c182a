"""``openmanus mcp list|trust|revoke``, ``openmanus git approve`` and doctor's protection table.

The commands that let a person decide what the sandbox may not decide for itself (issue 12):
which MCP stdio servers may start (``tools/mcp_trust.py``) and which git hooks and executing
config keys of a workspace are theirs (``sandbox/git_guard.py``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from openmanus_tui.errors import ConfigError

EXIT_OK = 0


def add_parsers(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    mcp = sub.add_parser("mcp", help="list MCP servers, trust or revoke a stdio server")
    msub = mcp.add_subparsers(dest="action", parser_class=parser_class, required=True)
    ls = msub.add_parser("list", help="configured servers: where they run, whether trusted")
    ls.add_argument("--json", action="store_true")
    trust = msub.add_parser("trust", help="allow a stdio server's current command to start")
    trust.add_argument("name", metavar="NAME")
    revoke = msub.add_parser("revoke", help="forget the trust given to a server")
    revoke.add_argument("name", metavar="NAME")

    git = sub.add_parser("git", help="git protection of a workspace")
    gsub = git.add_subparsers(dest="action", parser_class=parser_class, required=True)
    approve = gsub.add_parser(
        "approve", help="accept the hooks and executing config the repositories hold now"
    )
    approve.add_argument("workspace", metavar="DIR")


def configured_servers(settings: Any) -> dict[str, Any]:
    """The MCP servers ``openmanus run`` would start (config file, then [mcp.servers])."""
    from openmanus_tui.runtime.api import load_mcp_config, parse_mcp_config

    mcp = settings.mcp
    servers = load_mcp_config(mcp.config_file)
    if mcp.servers:
        servers.update(parse_mcp_config({"mcpServers": mcp.servers}, source="config: mcp.servers"))
    return servers


def _server_rows(settings: Any) -> list[dict[str, Any]]:
    from openmanus_tui.runtime.api import TrustStore
    from openmanus_tui.runtime.api import mcp_fingerprint as fingerprint

    store = TrustStore(settings.resolved_data_dir)
    known = store.entries()
    rows = []
    for name, cfg in configured_servers(settings).items():
        row: dict[str, Any] = {"name": name, "transport": cfg.transport, "target": cfg.target}
        if cfg.transport == "stdio":
            digest = fingerprint(cfg)
            entry = known.get(name)
            if not isinstance(entry, dict):
                trusted = "no"
            else:
                trusted = "yes" if entry.get("sha256") == digest else "changed since trusted"
            row.update(
                sha256=digest,
                trusted=trusted,
                runs="sandbox" if cfg.sandbox else "HOST (sandbox = false)",
                network=cfg.network,
            )
        else:
            row.update(trusted="not needed", runs="remote")
        rows.append(row)
    return rows


def mcp_cmd(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime.api import TrustStore

    store = TrustStore(settings.resolved_data_dir)
    if args.action == "list":
        rows = _server_rows(settings)
        if args.json:
            print(json.dumps(rows, indent=2))
            return EXIT_OK
        if not rows:
            print("no MCP servers configured")
        for row in rows:
            extra = f"  sha256 {row['sha256'][:16]}" if "sha256" in row else ""
            print(f"{row['name']:<16} {row['transport']:<6} trusted: {row['trusted']:<22} "
                  f"runs: {row['runs']}{extra}")
            print(f"{'':<16} {row['target']}")
        return EXIT_OK
    if args.action == "revoke":
        if not store.revoke(args.name):
            raise ConfigError(f"mcp revoke: {args.name!r} was not trusted")
        print(f"revoked trust in MCP server {args.name!r}")
        return EXIT_OK
    servers = configured_servers(settings)
    cfg = servers.get(args.name)
    if cfg is None:
        names = ", ".join(sorted(servers)) or "none"
        raise ConfigError(f"mcp trust: no MCP server named {args.name!r} (configured: {names})")
    if cfg.transport != "stdio":
        print(f"{args.name!r} is a {cfg.transport} server: it runs elsewhere, no trust needed")
        return EXIT_OK
    digest = store.trust(cfg)
    where = "in the sandbox" if cfg.sandbox else "ON THE HOST (sandbox = false)"
    print(f"trusted MCP server {args.name!r}: `{cfg.target}` (sha256 {digest[:16]}), runs {where}")
    return EXIT_OK


def git_cmd(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime.api import GitGuard, find_git_entries

    ws = Path(args.workspace).expanduser().resolve()
    if not ws.is_dir():
        raise ConfigError(f"git approve: {ws} is not a directory")
    GitGuard(ws, settings.resolved_data_dir).approve()
    repos = find_git_entries(ws)
    print(f"approved the hooks and git config of {len(repos)} repositories under {ws}")
    return EXIT_OK


# --- doctor --------------------------------------------------------------------------------


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
        rows = _server_rows(settings)
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
