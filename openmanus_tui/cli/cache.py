"""``openmanus cache stats|clear``: the model-response cache and the tool-result cache (issue 16):
entries, size, hits, misses and hit rates by model or tool; emptying one or both."""

from __future__ import annotations

import argparse
import json
from typing import Any

from openmanus_tui.cli.common import EXIT_OK, handles, subcommands


def add_parser(sub: Any) -> None:
    cache = sub.add_parser("cache", help="model and tool caches: hit rates, clear")
    csub = subcommands(cache)
    stats = csub.add_parser("stats", help="entries, size, hits and misses of each cache")
    stats.add_argument("--json", action="store_true")
    handles(stats, stats_cmd)
    clear = csub.add_parser("clear", help="empty the caches")
    clear.add_argument("which", nargs="?", choices=["all", "model", "tool"], default="all")
    handles(clear, clear_cmd)


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KiB"


async def stats_cmd(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.runtime import api

    stats = await api.cache_stats(runtime)
    if args.json:
        print(json.dumps(stats, indent=2))
        return EXIT_OK
    for name, s in stats.items():
        state = "on" if s["enabled"] else f"off: {s['off_why']}"
        looked = s["hits"] + s["misses"]
        rate = f"{s['hit_rate']:.0%}" if looked else "–"
        print(f"{name} cache ({state}): {s['entries']} entries, {_size(s['bytes'])}, "
              f"{s['hits']} hits / {looked} lookups ({rate})")
        for label, c in s["by_label"].items():
            total = c["hits"] + c["misses"]
            print(f"  {label}: {c['hits']}/{total} ({c['hits'] / total:.0%})" if total
                  else f"  {label}: 0")
    return EXIT_OK


async def clear_cmd(args: argparse.Namespace, runtime: Any) -> int:
    from openmanus_tui.runtime import api

    removed = await api.clear_cache(runtime, args.which)
    print(", ".join(f"{name} cache: {n} entries removed" for name, n in removed.items()))
    return EXIT_OK
