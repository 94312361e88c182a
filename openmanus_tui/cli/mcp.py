"""``openmanus mcp list|trust|revoke``: which MCP servers are configured, and which stdio
servers a person allowed to start (``tools/mcp_trust.py``, issue 12)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from openmanus_tui.cli.common import EXIT_OK, handles, subcommands
from openmanus_tui.errors import ConfigError


def add_parser(sub: Any) -> None:
    mcp = sub.add_parser("mcp", help="list MCP servers, trust or revoke a stdio server")
    msub = subcommands(mcp)
    ls = msub.add_parser("list", help="configured servers: where they run, whether trusted")
    ls.add_argument("--json", action="store_true")
    trust = msub.add_parser("trust", help="allow a stdio server's current command to start")
    trust.add_argument("name", metavar="NAME")
    revoke = msub.add_parser("revoke", help="forget the trust given to a server")
    revoke.add_argument("name", metavar="NAME")
    for parser in (ls, trust, revoke):
        handles(parser, handle, needs="settings")


def configured_servers(settings: Any) -> dict[str, Any]:
    """The MCP servers ``openmanus run`` would start (config file, then [mcp.servers])."""
    from openmanus_tui.runtime.api import load_mcp_config, parse_mcp_config

    mcp = settings.mcp
    servers = load_mcp_config(mcp.config_file)
    if mcp.servers:
        servers.update(parse_mcp_config({"mcpServers": mcp.servers}, source="config: mcp.servers"))
    return servers


def server_rows(settings: Any) -> list[dict[str, Any]]:
    """One row per configured server: transport, target, whether trusted, where it runs."""
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


def handle(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime.api import TrustStore

    store = TrustStore(settings.resolved_data_dir)
    if args.action == "list":
        rows = server_rows(settings)
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
