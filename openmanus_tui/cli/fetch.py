"""``openmanus fetch URL [--json] [--session ID] [--refresh]``: fetch one page through the
network policy and print its source record — title, URL, author, site, domain, dates,
credibility and freshness with every factor.

A URL the policy refuses prints one line and exits 2 (like any user mistake); a page that
cannot be fetched or read (network error, HTTP error, unreadable content) prints one line and
exits 1. With ``--session`` the page is registered in that session's sources.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from openmanus_tui.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, handles, with_runtime


def add_parser(sub: Any) -> None:
    fetch = sub.add_parser(
        "fetch", help="fetch one web page through the network policy and print its scores"
    )
    fetch.add_argument("url", metavar="URL")
    fetch.add_argument("--json", action="store_true", help="print the source record as JSON")
    fetch.add_argument("--session", metavar="ID", help="register it in this session's sources")
    fetch.add_argument(
        "--refresh", action="store_true", help="fetch again even if a fresh copy is cached"
    )
    handles(fetch, handle, needs="settings")


def render(record: dict[str, Any], *, from_cache: bool) -> str:
    """The record as text for a person."""
    number = f"[{record['number']}] " if record.get("number") else ""
    lines = [f"{number}{record['title']}", f"  url          {record['url']}"]
    for label, key in (("domain", "domain"), ("site", "site"), ("author", "author"),
                       ("published", "published"), ("modified", "modified")):  # fmt: skip
        lines.append(f"  {label:<12} {record.get(key) or '—'}")
    cached = " (from the cache)" if from_cache else ""
    lines.append(f"  {'fetched':<12} {record.get('fetched') or '—'}{cached}")
    lines.append(f"  {'text':<12} {record.get('chars') or 0:,} characters")
    cred = record["credibility"]
    lines.append(f"  credibility  {cred['value']:.2f}")
    for factor in cred["factors"]:
        effect = factor.get("effect")
        sign = "      " if effect is None else f"{effect:+.2f} "
        lines.append(f"    {sign}{factor['name']}: {factor['detail']}")
    fresh = record["freshness"]
    value = "unknown" if fresh["value"] is None else f"{fresh['value']:.2f}"
    lines.append(f"  freshness    {value}")
    for factor in fresh["factors"]:
        lines.append(f"          {factor['name']}: {factor['detail']}")
    return "\n".join(lines)


async def handle(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime import api

    try:  # a URL the policy refuses anyway is refused before the runtime is opened
        api.check_fetch_url(settings, args.url)
    except api.PolicyRefusal as exc:
        print(f"openmanus: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return await with_runtime(args, settings, _fetch)


async def _fetch(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.errors import OpenManusError, SessionNotFound
    from openmanus_tui.runtime import api

    try:
        fetched = await api.fetch_source(
            runtime, args.url, session_id=args.session, refresh=args.refresh
        )
    except api.PolicyRefusal as exc:
        print(f"openmanus: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SessionNotFound:
        raise  # the usual one line and exit 2
    except OpenManusError as exc:
        print(f"openmanus: fetch failed: {exc}", file=sys.stderr)
        return EXIT_ERROR
    record = fetched.record.as_dict()
    if not fetched.record.number:  # not registered in any session
        record.pop("number")
        record.pop("session_id")
    if args.json:
        print(json.dumps({**record, "from_cache": fetched.document.from_cache}, indent=2))
    else:
        print(render(record, from_cache=fetched.document.from_cache))
    return EXIT_OK
