"""``openmanus config history|diff|rollback`` and ``openmanus secrets set|list|rm``.

Versions are the core's (``runtime/config_versions.py``), secrets the encrypted store's
(``secret_store.py``); this module parses, prints and reads a secret's value: from a prompt that
does not echo at a terminal, else from standard input (``printf %s "$KEY" | openmanus secrets
set NAME``), never from the command line (where ``ps`` and the shell history would see it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from openmanus_tui.errors import ConfigError

EXIT_OK = 0


def add_config_parsers(csub: Any) -> None:
    """``history``, ``diff`` and ``rollback`` under ``openmanus config``."""
    history = csub.add_parser("history", help="every configuration applied, oldest first")
    history.add_argument("--json", action="store_true")
    diff = csub.add_parser("diff", help="what changed between two configuration versions")
    diff.add_argument("a", type=int, metavar="A")
    diff.add_argument("b", type=int, metavar="B", nargs="?", help="default: the newest version")
    rollback = csub.add_parser(
        "rollback", help="write a version's config file(s) back (the current ones are kept)"
    )
    rollback.add_argument("version", type=int, metavar="N")


def add_secrets_parsers(sub: Any, parser_class: type) -> None:
    secrets = sub.add_parser("secrets", help="store, list or remove encrypted secrets")
    ssub = secrets.add_subparsers(dest="action", parser_class=parser_class, required=True)
    put = ssub.add_parser(
        "set", help="store a secret (typed at a prompt, or read from standard input)"
    )
    put.add_argument("name", metavar="NAME")
    listing = ssub.add_parser("list", help="the stored secrets' names (never their values)")
    listing.add_argument("--json", action="store_true")
    rm = ssub.add_parser("rm", help="remove a stored secret")
    rm.add_argument("name", metavar="NAME")


# ---- config history / diff / rollback ---------------------------------------------------------
def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


async def config_versions_cmd(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime import config_versions as cv

    async with cv.config_database(settings) as db:
        if args.action == "history":
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
        if args.action == "diff":
            a = await cv.get_version(db, args.a)
            if args.b is None:
                newest = (await cv.list_versions(db))[-1]
                b = newest
            else:
                b = await cv.get_version(db, args.b)
            sys.stdout.write(cv.describe_diff(a, b))
            return EXIT_OK
        result = await cv.rollback(db, settings, args.version)
        for path in result.written:
            print(f"wrote {path}")
        for backup in result.backups:
            print(f"  previous file kept as {backup}")
        now = f" (now version {result.new_version})" if result.new_version is not None else ""
        print(f"configuration version {result.version} restored{now}; a running workbench "
              "applies it by itself")
        return EXIT_OK


# ---- secrets ----------------------------------------------------------------------------------
def read_secret_value(name: str) -> str:
    """The value: typed at a prompt without echo when standard input is a terminal, else
    all of standard input without its final line break."""
    stdin = sys.stdin
    if stdin is not None and stdin.isatty():
        import termios

        fd = stdin.fileno()
        old = termios.tcgetattr(fd)
        new = termios.tcgetattr(fd)
        new[3] &= ~termios.ECHO
        sys.stderr.write(f"value for {name} (not shown): ")
        sys.stderr.flush()
        try:
            termios.tcsetattr(fd, termios.TCSAFLUSH, new)
            line = stdin.readline()
        finally:
            termios.tcsetattr(fd, termios.TCSAFLUSH, old)
            sys.stderr.write("\n")
        return line.rstrip("\r\n")
    data = stdin.read() if stdin is not None else ""
    return data[:-1] if data.endswith("\n") else data


def secrets_cmd(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.secret_store import SecretStore, check_name

    store = SecretStore(settings.resolved_data_dir, use_keyring=settings.secrets.keyring)
    if args.action == "set":
        check_name(args.name)  # before asking for the value
        value = read_secret_value(args.name)
        if not value.strip():
            raise ConfigError(f"secret {args.name!r}: the value is empty; nothing stored")
        store.set(args.name, value)
        print(f"stored secret {args.name} (key: {store.key_location()}); "
              f"refer to it as \"secret:{args.name}\"")
        return EXIT_OK
    if args.action == "rm":
        store.remove(args.name)
        print(f"removed secret {args.name}")
        return EXIT_OK
    entries = store.list()
    if args.json:
        print(json.dumps([{"name": e.name, "updated": e.updated} for e in entries]))
        return EXIT_OK
    if not entries:
        print("no secrets stored")
        return EXIT_OK
    for entry in entries:
        print(f"{entry.name}  (set {_when(entry.updated)})")
    print(f"key: {store.key_location()}")
    return EXIT_OK
